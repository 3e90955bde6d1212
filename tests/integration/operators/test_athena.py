"""The quality gate's local branch against the control plane: the verdict and the bytes its query read,
recorded once per check and run in the ``quality_results`` table, which Athena SQL reads back."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException
from botocore.config import Config

from devstack.stack import aws_connection
from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.local.athena.engine import LocalAthenaEngine
from sagelake.operators.athena import QualityCheckOperator
from tests.support.constants import REGION

DT = "2026-11-26"


@pytest.fixture()
def lake_db(aws_env, bucket, monkeypatch) -> tuple[Any, Any, str, Lake]:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name=REGION)
    glue = boto3.client("glue", endpoint_url=aws_env, region_name=REGION)
    database, lake = f"db_{uuid.uuid4().hex[:10]}", Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    return s3, glue, database, lake


def put_features(s3, glue, database: str, lake: Lake, n: int) -> int:
    """A curated partition of ``n`` customers; returns its file's size."""
    buf = io.BytesIO()
    pq.write_table(pa.table({"customer_id": [f"c{i}" for i in range(n)]}), buf)
    bucket, key = split_s3_uri(lake.curated_features(DT) + "part-0.parquet")
    s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    catalog.register_partition(glue, database, "churn_features", DT)
    return len(buf.getvalue())


def check_file(tmp_path: Path, database: str, severity: str = "error") -> Path:
    path = tmp_path / "row_count.sql"
    path.write_text(
        f"-- description: enough customers\n-- severity: {severity}\n-- expect: value >= 10\n"
        f"SELECT count(*) AS value FROM {database}.churn_features WHERE dt = '{DT}'\n"
    )
    return path


def run_check(path: Path, database: str, lake: Lake, run_id: str, version: str = "v1") -> dict[str, Any]:
    op = QualityCheckOperator(
        task_id="check_row_count",
        check_file=path,
        database=database,
        dt=DT,
        results_bucket=lake.bucket,
        version=version,
    )
    op.query = path.read_text()  # what Airflow renders from the template search path
    return op.execute({"run_id": run_id})


def recorded(glue, aws_env: str, database: str) -> list[tuple]:
    with LocalAthenaEngine(
        glue, s3_endpoint_url=aws_env, region=REGION, access_key_id="testing", secret_access_key="testing"
    ) as engine:
        return engine.execute(
            "SELECT check_name, value, threshold, severity, verdict, run_id, version, bytes_scanned, dt "
            f"FROM quality_results WHERE dt = '{DT}' ORDER BY run_id, checked_at",
            database,
        ).rows


def test_verdicts_are_recorded_once_per_check_and_run(lake_db, aws_env, tmp_path) -> None:
    s3, glue, database, lake = lake_db
    size = put_features(s3, glue, database, lake, 25)
    path = check_file(tmp_path, database)

    verdict = run_check(path, database, lake, "manual__1")
    assert (verdict["value"], verdict["passed"], verdict["bytes_scanned"]) == (25.0, True, size)
    run_check(path, database, lake, "manual__1", version="v2")  # a retry of the same run: replaces its row
    run_check(path, database, lake, "scheduled__2")  # another run: a row of its own

    assert recorded(glue, aws_env, database) == [
        ("row_count", 25.0, "value >= 10", "error", "pass", "manual__1", "v2", size, DT),
        ("row_count", 25.0, "value >= 10", "error", "pass", "scheduled__2", "v1", size, DT),
    ]


def test_a_failed_check_is_recorded_before_the_task_fails(lake_db, aws_env, tmp_path) -> None:
    s3, glue, database, lake = lake_db
    put_features(s3, glue, database, lake, 3)
    with pytest.raises(AirflowFailException, match="value=3.0 does not satisfy value >= 10"):
        run_check(check_file(tmp_path, database), database, lake, "manual__1")
    [row] = recorded(glue, aws_env, database)
    assert row[:5] == ("row_count", 3.0, "value >= 10", "error", "fail")


def test_the_workgroups_bytes_scanned_limit_is_enforced_locally(lake_db, aws_env, tmp_path) -> None:
    from sagelake.local.athena.engine import BytesScannedLimitError

    s3, glue, database, lake = lake_db
    size = put_features(s3, glue, database, lake, 25)
    # below AWS's 10 MB minimum, so that a tiny file exceeds it: skip botocore's client-side validation
    unvalidated = Config(parameter_validation=False)
    athena = boto3.client("athena", endpoint_url=aws_env, region_name=REGION, config=unvalidated)
    workgroup = f"wg-{uuid.uuid4().hex[:8]}"
    athena.create_work_group(Name=workgroup, Configuration={"BytesScannedCutoffPerQuery": size - 1})
    op = QualityCheckOperator(
        task_id="check_row_count",
        check_file=check_file(tmp_path, database),
        database=database,
        workgroup=workgroup,
    )
    op.query = op.check_file.read_text()
    with pytest.raises(BytesScannedLimitError, match=f"limit of {size - 1} bytes"):
        op.execute({"run_id": "manual__1"})
    op.workgroup = None  # no workgroup: no limit
    assert op.execute({"run_id": "manual__1"})["bytes_scanned"] == size
