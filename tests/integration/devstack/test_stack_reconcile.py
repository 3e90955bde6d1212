"""``make up`` compares Airflow's history with the restored control-plane state: every successful
``churn_prepare`` run whose day is not published, or published where the lake holds nothing, is one line."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack import stack as local_stack
from devstack.airflow_api import AirflowApiError
from sagelake.lake import catalog
from sagelake.lake.layout import Lake
from tests.support.constants import REGION
from tests.support.lake_days import features, publish_day


class History:
    """Airflow's run history as the REST API pages it (``dag_runs``), from a list of runs."""

    def __init__(self, runs: list[dict[str, Any]] | None = None, error: str | None = None) -> None:
        self.runs, self.error, self.queries = runs or [], error, []

    def dag_runs(self, dag_id: str, **query: Any) -> list[dict[str, Any]]:
        self.queries.append((dag_id, query))
        if self.error:
            raise AirflowApiError(self.error)
        return self.runs[query["offset"] : query["offset"] + query["limit"]]


def run(run_id: str, database: str, dt: str | None = None, logical_date: str | None = None) -> dict[str, Any]:
    conf = {"glue_database": database} | ({"dt": dt} if dt else {})
    return {"dag_run_id": run_id, "conf": conf, "logical_date": logical_date, "run_after": logical_date}


@pytest.fixture()
def stack(aws_env: str, tmp_path: Path) -> local_stack.Stack:
    port = int(aws_env.rsplit(":", 1)[1])
    return local_stack.Stack(local_dir=tmp_path, ports=local_stack.Ports(control_plane=port))


def test_reports_each_successful_run_whose_day_the_restored_state_lost(stack, s3, bucket: str) -> None:
    glue = boto3.client("glue", endpoint_url=stack.control_plane_url, region_name=REGION)
    database, lake = f"db_{uuid.uuid4().hex[:10]}", Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    publish_day(s3, glue, database, lake, "2026-11-01", features(20, 1))  # intact
    emptied = publish_day(s3, glue, database, lake, "2026-11-02", features(20, 2))
    for version in s3.list_object_versions(Bucket=bucket, Prefix=emptied.split(bucket + "/")[1])["Versions"]:
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    history = History(
        [
            run("event__a", database, dt="2026-11-01"),
            run("event__b", database, dt="2026-11-02"),
            run("scheduled__2026-11-03T00:00:00+00:00", database, logical_date="2026-11-03T00:00:00Z"),
        ]
    )

    found = local_stack.reconcile(stack, api=history)

    assert len(found) == 2, found
    assert "event__b (dt=2026-11-02)" in found[0] and f"{emptied} holds no objects" in found[0]
    assert "(dt=2026-11-03)" in found[1] and f"{database}.churn_features is missing" in found[1]
    assert history.queries[0] == (
        "churn_prepare",
        {"state": "success", "limit": 100, "offset": 0, "order_by": "run_after"},
    )


def test_pages_through_the_whole_history(stack, s3, bucket: str) -> None:
    glue = boto3.client("glue", endpoint_url=stack.control_plane_url, region_name=REGION)
    database = f"db_{uuid.uuid4().hex[:10]}"
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, Lake(bucket))
    history = History([run(f"r{i}", database, dt="2026-11-05") for i in range(150)])

    found = local_stack.reconcile(stack, api=history)

    assert len(found) == 150 and [q[1]["offset"] for q in history.queries] == [0, 100]


def test_no_history_for_a_dag_never_parsed(stack) -> None:
    assert local_stack.reconcile(stack, api=History(error="GET /api/v2/dags/churn_prepare → HTTP 404")) == []
    with pytest.raises(AirflowApiError):
        local_stack.reconcile(stack, api=History(error="GET … → HTTP 500: boom"))
