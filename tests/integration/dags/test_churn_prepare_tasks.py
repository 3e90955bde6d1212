"""churn_prepare's own tasks against the control plane: a run waits while another holds its day, and the
clean-up after a failure touches only the work of the run that holds the day."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from airflow.sdk.exceptions import AirflowRescheduleException

from devstack.stack import aws_connection
from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.lake.partition_lock import holds, lock_key, try_acquire
from tests.support.constants import REGION, ROOT

DT = "2026-11-26"


@pytest.fixture(scope="module")
def dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("churn_prepare_dag", ROOT / "dags" / "churn_prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def params(aws_env, bucket, monkeypatch) -> dict[str, Any]:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    return {"bucket": bucket, "glue_database": f"db_{uuid.uuid4().hex[:10]}", "reprocess": False}


def put(s3, uri: str) -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")


def keys(s3, uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(uri)
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_plan_waits_while_another_run_holds_the_day(dag_module, params, s3) -> None:
    lock = lock_key(dag_module.LOCKED_DATASET, DT)
    assert try_acquire(s3, params["bucket"], lock, "run-b", timedelta(minutes=5)).acquired
    with pytest.raises(AirflowRescheduleException):
        dag_module.plan_partition.function(DT, params, "run-a")
    assert holds(s3, params["bucket"], lock, "run-b")  # untouched


def test_abandon_cleans_up_only_for_the_run_holding_the_day(dag_module, params, s3) -> None:
    lake, lock = Lake(params["bucket"]), lock_key(dag_module.LOCKED_DATASET, DT)
    staged = lake.curated_features(DT) + "version=v-run-b/part-0.parquet"
    put(s3, staged)
    assert try_acquire(s3, params["bucket"], lock, "run-b", timedelta(minutes=5)).acquired

    # run-a failed without ever claiming the day (e.g. its sensor timed out): run-b's work stays
    assert dag_module.abandon_partition.function(DT, params, "run-a") == []
    assert keys(s3, staged) and holds(s3, params["bucket"], lock, "run-b")

    # run-b's own failure: its unpublished version goes and the day is free again
    glue = boto3.client("glue", endpoint_url=s3.meta.endpoint_url, region_name=REGION)
    catalog.ensure_database(glue, params["glue_database"])
    catalog.ensure_tables(glue, params["glue_database"], lake)
    deleted = dag_module.abandon_partition.function(DT, params, "run-b")
    assert deleted == [lake.curated_features(DT) + "version=v-run-b/"]
    assert keys(s3, staged) == [] and not holds(s3, params["bucket"], lock, "run-b")
