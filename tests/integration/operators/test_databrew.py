"""The profile operator's local branch against the control plane: it profiles a published partition's
Parquet files and writes ``profile.json`` and ``report.html`` at the profile's keys (the report served by
the control plane at the URL the task links to); the DataBrew definitions are created, then updated."""

from __future__ import annotations

import io
import json
import urllib.parse
import urllib.request
from unittest import mock

import boto3
import pandas as pd
import pytest

from devstack.stack import aws_connection
from sagelake.lake import profiles
from sagelake.operators.databrew import REPORT_URL_KEY, DataBrewProfileOperator, ensure_profile_job
from tests.support.constants import ACCOUNT_ID, REGION

DT = "2026-03-01"
VERSION = "20260301T060000000000Z-abc123"


@pytest.fixture()
def connection(aws_env, monkeypatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    return aws_env


@pytest.fixture()
def location(s3, bucket) -> str:
    frame = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3", "C3", "C5"],
            "plan": ["basic", "premium", "basic", "basic", None],
            "monthly_fee": [10.0, 30.0, 20.0, 20.0, None],
            "churned": [0, 1, 0, 0, 1],
        }
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    prefix = f"curated/churn_features/dt={DT}/version={VERSION}/"
    s3.put_object(Bucket=bucket, Key=f"{prefix}part-00000.snappy.parquet", Body=buffer.getvalue())
    return f"s3://{bucket}/{prefix}"


def context() -> dict:
    ti = mock.MagicMock(dag_id="lake_profile", task_id="profile_churn_features", run_id="manual__1")
    return {"ti": ti, "task_instance": ti, "run_id": "manual__1"}


def test_local_branch_writes_profile_and_report(connection, s3, bucket, location) -> None:
    op = DataBrewProfileOperator(
        task_id="profile_churn_features", dataset="churn_features", dt=DT, location=location, bucket=bucket
    )
    ctx = context()
    result = op.execute(ctx)

    keys = profiles.profile_keys(bucket, "churn_features", DT, VERSION)
    assert result == {
        "dataset": "churn_features",
        "dt": DT,
        "version": VERSION,  # from the location's version= folder
        "engine": "local-duckdb",
        "profile": f"s3://{bucket}/profiles/churn_features/dt={DT}/version={VERSION}/profile.json",
        "report": f"s3://{bucket}/profiles/churn_features/dt={DT}/version={VERSION}/report.html",
        "report_url": result["report_url"],
    }
    url = urllib.parse.urlsplit(result["report_url"])  # presigned: the control plane's objects are private
    assert f"{url.scheme}://{url.netloc}" == connection
    assert urllib.parse.unquote(url.path) == f"/{bucket}/{keys.report_key}" and "Signature=" in url.query
    stored = s3.get_object(Bucket=bucket, Key=keys.profile_key)
    assert stored["ContentType"] == "application/json"
    profile = profiles.from_document(json.loads(stored["Body"].read()))  # validates against the schema
    assert (profile.row_count, profile.duplicate_rows, profile.location) == (5, 1, location)
    fee = profile.column("monthly_fee")
    assert (fee.count, fee.missing, fee.distinct, fee.mean) == (4, 1, 3, 20.0)
    assert fee.quantiles["p50"] == 20.0
    assert [(v.value, v.count) for v in profile.column("plan").top_values] == [("basic", 3), ("premium", 1)]

    ctx["ti"].xcom_push.assert_called_once_with(key=REPORT_URL_KEY, value=result["report_url"])
    with urllib.request.urlopen(result["report_url"], timeout=10) as response:  # the link opens the report
        page = response.read().decode()
    assert response.headers["Content-Type"].startswith("text/html")
    assert page == profiles.render_html(profile)
    assert "monthly_fee" in page and profiles.format_value(fee.stddev) in page


def test_rerun_rewrites_the_same_keys(connection, s3, bucket, location) -> None:
    def run() -> dict:
        return DataBrewProfileOperator(
            task_id="p", dataset="churn_features", dt=DT, location=location, bucket=bucket, version="v-given"
        ).execute(context())

    first, second = run(), run()
    first.pop("report_url"), second.pop("report_url")  # presigned: signed at each run
    assert first == second and "version=v-given/" in first["profile"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="profiles/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"profiles/churn_features/dt={DT}/version=v-given/profile.json",
        f"profiles/churn_features/dt={DT}/version=v-given/report.html",
    ]


def test_databrew_definitions_are_created_then_updated(aws_env, bucket) -> None:
    databrew = boto3.client("databrew", endpoint_url=aws_env, region_name=REGION)
    name = f"sagelake-profile-{bucket}"

    def define(version: str, role: str) -> None:
        keys = profiles.profile_keys(bucket, "churn_features", DT, version)
        location = f"s3://{bucket}/curated/churn_features/dt={DT}/version={version}/"
        ensure_profile_job(
            databrew,
            profiles.databrew_dataset_request(name, location),
            profiles.databrew_profile_job_request(name, name, f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", keys),
        )

    define("v1", "databrew")
    define("v1", "databrew")  # idempotent
    first = databrew.describe_job(Name=name)
    define("v2", "databrew-2")  # the next partition (and a changed role): same dataset and job, updated
    dataset = databrew.describe_dataset(Name=name)
    assert dataset["Input"]["S3InputDefinition"] == {
        "Bucket": bucket,
        "Key": f"curated/churn_features/dt={DT}/version=v2/",
    }
    assert dataset["Format"] == "PARQUET"
    job = databrew.describe_job(Name=name)
    assert (first["Type"], first["DatasetName"], first["MaxRetries"]) == ("PROFILE", name, 0)
    assert first["RoleArn"].endswith("role/databrew") and job["RoleArn"].endswith("role/databrew-2")
    assert [d["Name"] for d in databrew.list_datasets()["Datasets"]].count(name) == 1
    assert [j["Name"] for j in databrew.list_jobs()["Jobs"]].count(name) == 1
