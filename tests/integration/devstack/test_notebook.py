"""The exploration notebook runs headless against a control plane holding two published days and the
newest day's profile, so it never rots: every cell executes, and its outputs show the lake's figures."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import boto3
import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from sagelake.lake import catalog, profiles
from sagelake.lake.layout import Lake
from sagelake.local.aws_session import AwsAccess
from sagelake.local.profiler import profile_location
from tests.support.constants import REGION, ROOT
from tests.support.lake_days import features, publish_day

NOTEBOOK = ROOT / "notebooks" / "explore_lake.ipynb"
DAYS = ["2026-11-23", "2026-11-24"]


@pytest.fixture()
def published_lake(aws_env, bucket, monkeypatch) -> dict:
    database = f"db_{uuid.uuid4().hex[:10]}"
    for name, value in {
        "SAGELAKE_CONTROL_PLANE_PORT": str(urlparse(aws_env).port),
        "SAGELAKE_GLUE_DATABASE": database,
        "SAGELAKE_BUCKET": bucket,
        "SAGELAKE_TARGET": "local",
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name=REGION)
    glue = boto3.client("glue", endpoint_url=aws_env, region_name=REGION)
    lake = Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    frames = {dt: features(80 + 10 * i, seed=i) for i, dt in enumerate(DAYS)}
    quarantine = pd.DataFrame(
        {"source": ["events"] * 3, "reason": ["malformed_json"] * 3, "record": ["{"] * 3}
    )
    for dt, frame in frames.items():
        location = publish_day(s3, glue, database, lake, dt, frame, quarantine)
        catalog.register_partition(
            glue, database, "churn_features", dt, location=location, parameters={"sagelake_version": "v1"}
        )
    access = AwsAccess(REGION, "testing", "testing", None, {"s3": aws_env, "glue": aws_env})
    profile = profile_location(
        access,
        location,
        dataset="churn_features",
        dt=DAYS[-1],
        version="v1",
        created_at="2026-11-24T00:00:00Z",
    )
    keys = profiles.profile_keys(bucket, "churn_features", DAYS[-1], "v1")
    s3.put_object(Bucket=bucket, Key=keys.profile_key, Body=profiles.to_json(profile).encode())
    return {"frames": frames}


def text_outputs(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_the_notebook_runs_headless_against_the_local_lake(published_lake) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()

    out = text_outputs(notebook)
    frames = published_lake["frames"]
    assert f"exploring {DAYS[0]} .. {DAYS[-1]}; profile of {DAYS[-1]}" in out
    assert f"churn_features dt={DAYS[-1]} version=v1: {len(frames[DAYS[-1]])} rows" in out
    assert f"features — {sum(len(f) for f in frames.values())} rows" in out
    assert "quarantine reasons — 2 rows" in out  # one row per day: 3 malformed_json events each
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # distributions, churn by segment, quarantine reasons
