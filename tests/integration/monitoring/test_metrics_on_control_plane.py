"""The metrics on the control plane: what the tasks send is stored under the names, dimensions and values
the alarms and the dashboard read (moto's CloudWatch stores data; it never evaluates alarms)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from sagelake.lake import catalog
from sagelake.lake.layout import Lake
from sagelake.lake.publish import publish
from sagelake.monitoring import emit, metrics
from sagelake.quality.results import result_uri
from tests.support.constants import REGION
from tests.support.pipeline import use_local_target


@pytest.fixture()
def cloudwatch(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    use_local_target(monkeypatch, aws_env)
    return boto3.client("cloudwatch", endpoint_url=aws_env, region_name=REGION)


def stored(
    cloudwatch: Any,
    name: str,
    dimensions: dict[str, str],
    at: datetime,
    *,
    namespace: str = metrics.NAMESPACE,
) -> list[float]:
    """The values of one metric stored within a minute of ``at`` (Maximum per one-second period)."""
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    },
                    "Period": 1,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=at - timedelta(minutes=1),
        EndTime=at + timedelta(minutes=1),
    )
    return answer["MetricDataResults"][0]["Values"]


def test_put_metrics_batches_are_all_stored(cloudwatch: Any) -> None:
    namespace, at = f"test-{uuid.uuid4().hex[:8]}", datetime.now(UTC)
    data = [metrics.datum("Rows", i, "Count", {"Part": str(i)}, at) for i in range(1200)]
    assert metrics.put_metrics(cloudwatch, namespace, data) == 1200
    listed = cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace, MetricName="Rows")
    assert len([m for page in listed for m in page["Metrics"]]) == 1200
    assert stored(cloudwatch, "Rows", {"Part": "1199"}, at, namespace=namespace) == [1199.0]


def test_freshness_is_computed_from_the_catalogs_published_days(
    cloudwatch: Any, s3: Any, bucket: str
) -> None:
    glue = boto3.client("glue", endpoint_url=cloudwatch.meta.endpoint_url, region_name=REGION)
    database = f"db_{uuid.uuid4().hex[:8]}"
    glue.create_database(DatabaseInput={"Name": database})
    assert emit.emit_freshness(glue, database) == 0  # no table yet: no datum, the alarm counts it stale
    lake = Lake(bucket)
    glue.create_table(DatabaseName=database, TableInput=catalog.table_inputs(lake)["churn_features"])
    for dt in ("2020-12-30", "2020-12-31"):
        location = lake.curated_features(dt) + "version=v1/"
        publish(glue, database, {"churn_features": location}, dt, version="v1", fingerprint="f", run_id="r")
    # a unique moment of the past, so only this test's datum is in the window read back
    now = datetime(2021, 1, 1, tzinfo=UTC) + timedelta(minutes=uuid.uuid4().int % 500_000)
    assert emit.emit_freshness(glue, database, now=now) == 1
    hours = stored(cloudwatch, "HoursSinceLastPublish", {"Dataset": "churn_features"}, now)
    assert hours == [pytest.approx((now - datetime(2021, 1, 1, tzinfo=UTC)).total_seconds() / 3600)]


def test_a_checks_recorded_verdict_becomes_its_metrics(cloudwatch: Any, s3: Any, bucket: str) -> None:
    check, run_id, dt = f"check_{uuid.uuid4().hex[:8]}", "manual__r1", "2026-11-26"
    row = {"check_name": check, "severity": "error", "verdict": "fail", "value": 60.0}
    key = result_uri(Lake(bucket), dt, {**row, "dag_id": "churn_prepare", "run_id": run_id})
    s3.put_object(Bucket=bucket, Key=key.split(f"s3://{bucket}/", 1)[1], Body=json.dumps(row).encode())
    task = SimpleNamespace(
        results_bucket=bucket, dt=dt, dag_id="churn_prepare", check_file=Path(f"/checks/{check}.sql")
    )
    at = datetime.now(UTC)
    assert (
        emit.emit_check_verdict({"task": task, "run_id": run_id}) == 4
    )  # CheckFailed, CheckValue, 2 × FailedChecks
    dims = {"Dataset": "churn_features", "Check": check}
    assert stored(cloudwatch, "CheckFailed", {**dims, "Severity": "error"}, at) == [1.0]
    assert stored(cloudwatch, "CheckValue", dims, at) == [60.0]
    other = SimpleNamespace(**{**vars(task), "check_file": Path("/checks/never_ran.sql")})
    assert emit.emit_check_verdict({"task": other, "run_id": run_id}) == 0  # no verdict: nothing sent


def test_publish_and_model_metrics_are_stored_under_their_dimensions(
    cloudwatch: Any, s3: Any, bucket: str
) -> None:
    record = {"customers_landed": 100, "events_landed": 900, "features_rows": 97, "events_cleaned": 880}
    record["quarantined"] = 23
    location = f"s3://{bucket}/metrics/etl/dt=2026-11-26/version=v1/"
    s3.put_object(
        Bucket=bucket, Key="metrics/etl/dt=2026-11-26/version=v1/part-0.json", Body=json.dumps(record)
    )
    at = datetime.now(UTC)
    assert emit.emit_published(s3, location) == 4
    assert stored(cloudwatch, "QuarantineRatio", {"Dataset": "churn_features"}, at)[-1] == pytest.approx(
        0.023
    )
    group = f"group-{uuid.uuid4().hex[:8]}"
    assert emit.emit_model({"challenger": {"roc_auc": 0.9}, "champion": {"roc_auc": 0.8}}, group) == 2
    quality = {"ModelPackageGroup": group, "Candidate": "champion", "Metric": "roc_auc"}
    assert stored(cloudwatch, "ModelQuality", quality, at) == [0.8]
    assert emit.emit_published(s3, f"s3://{bucket}/metrics/etl/dt=2026-11-27/version=none/") == 0  # logged


def test_a_failed_put_is_logged_not_raised(cloudwatch: Any, caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        metrics.datum("X", float("nan"), "None", {"Dataset": "d"}, datetime.now(UTC))
    ]  # CloudWatch refuses NaN
    assert emit.emit(bad, cloudwatch=cloudwatch) == 0
    assert "CloudWatch metrics not sent" in caplog.text
