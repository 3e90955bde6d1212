"""The Redshift Data operator's local branch against the control plane: statements really run on the local
engine's file under the state directory, and it returns what the provider returns."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devstack.stack import aws_connection
from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.local.redshift.engine import database_path
from sagelake.local.redshift.errors import NoResultSetError
from sagelake.operators.redshift import SagelakeRedshiftDataOperator, result_rows
from tests.support.constants import REGION
from tests.support.contract import FEATURES_SCHEMA

DT = "2026-11-26"


@pytest.fixture()
def state(aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    monkeypatch.setenv("SAGELAKE_LOCAL_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture()
def glue_database(state: Path, s3, bucket: str, aws_env: str) -> str:
    glue = boto3.client("glue", endpoint_url=aws_env, region_name=REGION)
    name = f"db_{uuid.uuid4().hex[:10]}"
    lake = Lake(bucket)
    catalog.ensure_database(glue, name)
    catalog.ensure_tables(glue, name, lake)
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "plan": ["basic", "premium", "basic"],
            "region": ["north"] * 3,
            "monthly_fee": [9.99, 19.99, 9.99],
            "age": [30.0, 40.0, None],
            "support_tickets": pd.array([0, 2, 1], dtype="int32"),
            "tenure_days": pd.array([10, 20, 30], dtype="int32"),
            "n_events": [1, 2, 3],
            "n_logins": [1, 1, 1],
            "n_purchases": [0, 1, 2],
            "total_amount": [0.0, 5.5, 7.25],
            "avg_session_s": [60.0, 90.0, 30.0],
            "churned": pd.array([1, 0, 0], dtype="int32"),
        }
    )
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, schema=FEATURES_SCHEMA, preserve_index=False), buf)
    location = lake.curated_features(DT) + "version=v1/"
    s3.put_object(Bucket=bucket, Key=split_s3_uri(location)[1] + "part-0.parquet", Body=buf.getvalue())
    catalog.register_partition(glue, name, "churn_features", DT, location=location)
    return name


def run(sql: str | list[str], **kwargs: Any) -> Any:
    op = SagelakeRedshiftDataOperator(
        task_id="q", sql=sql, workgroup_name="wg", database="dev", deferrable=True, **kwargs
    )
    return op.execute({})


def test_local_branch_returns_ids_and_results_as_the_provider(state: Path, glue_database: str) -> None:
    ids = run(
        [
            f"CREATE EXTERNAL SCHEMA IF NOT EXISTS spectrum FROM DATA CATALOG DATABASE '{glue_database}' "
            "IAM_ROLE 'arn:aws:iam::123456789012:role/spectrum'",
            "CREATE TABLE IF NOT EXISTS w (dt DATE, customer_id VARCHAR(8), churned INT) "
            "DISTKEY(customer_id)",
            f"DELETE FROM w WHERE dt = '{DT}'",
            "INSERT INTO w SELECT dt::DATE, customer_id, churned FROM spectrum.churn_features "
            f"WHERE dt = '{DT}'",
        ]
    )
    assert len(ids) == 4 and len({i.rsplit(":", 1)[0] for i in ids}) == 1  # sub-statements of one batch
    assert [i.rsplit(":", 1)[1] for i in ids] == ["1", "2", "3", "4"]
    assert database_path(state, "wg", "dev").is_file()  # the warehouse is a file under the state dir

    single = run("SELECT customer_id FROM w ORDER BY 1")
    assert len(single) == 1 and ":" not in single[0]

    results = run(
        "SELECT w.customer_id, f.plan, f.age, w.churned FROM w JOIN spectrum.churn_features f "
        "ON f.customer_id = w.customer_id AND f.dt = :dt ORDER BY 1",
        parameters=[{"name": "dt", "value": DT}],
        return_sql_result=True,
    )
    assert len(results) == 1 and results[0]["TotalNumRows"] == 3
    assert results[0]["Records"][2] == [
        {"stringValue": "c"},
        {"stringValue": "basic"},
        {"isNull": True},
        {"longValue": 0},
    ]
    assert result_rows(results[0])[1] == {"customer_id": "b", "plan": "premium", "age": 40.0, "churned": 0}


def test_return_sql_result_of_a_statement_without_rows_fails_as_on_aws(
    state: Path, glue_database: str
) -> None:
    with pytest.raises(NoResultSetError, match="has no result set"):
        run("CREATE TABLE IF NOT EXISTS x (a INT)", return_sql_result=True)


def test_sessions_and_batch_parameters_are_refused(state: Path) -> None:
    with pytest.raises(ValueError, match="sessions are not supported"):
        run("SELECT 1", session_keep_alive_seconds=60)
    with pytest.raises(ValueError, match="BatchExecuteStatement takes no parameters"):
        run(["SELECT :a"], parameters=[{"name": "a", "value": "1"}])
