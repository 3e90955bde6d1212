"""``churn_drift`` run for real (``dag.test``) on the local target, against a training baseline written as
``churn_train_deploy`` writes it: a partition drifted on purpose (monthly fees shifted, the premium plan's
share up) and its captured endpoint traffic drift, the reports and metrics are written and a
``retraining_requested`` asset event is emitted; a partition like the training days is reported and
emits no event."""

from __future__ import annotations

import json

import boto3
import pytest

from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.ml import drift_store
from sagelake.ml.drift import Thresholds
from sagelake.ml.training_data import serving_csv
from tests.support.constants import REGION, ROOT
from tests.support.lake_days import features, publish_day
from tests.support.pipeline import use_local_target

TRAIN_DAYS = ["2026-09-01", "2026-09-02", "2026-09-03"]
DRIFTED, STEADY = "2026-09-04", "2026-09-05"
RUN_ID = "manual__2026-09-03T00:00:00+00:00"


def drifted(n: int, seed: int):
    frame = features(n, seed)
    frame["monthly_fee"] = frame["monthly_fee"] + 5.0
    frame.loc[frame.index < n // 2, "plan"] = "premium"
    return frame


@pytest.fixture(scope="module")
def lake(control_plane_url: str):
    from sagelake.config.settings import default_params, deployment_settings

    mp = pytest.MonkeyPatch()
    use_local_target(mp, control_plane_url)
    # an endpoint of this module's own: a model another test deployed (with its own baseline) never
    # becomes the reference here, whatever order the tests run in
    mp.setenv("SAGELAKE_ENDPOINT", "sagelake-drift-e2e")
    params = default_params()
    bucket, database = str(params["bucket"]), str(params["glue_database"])
    session = boto3.Session(region_name=REGION)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    glue = session.client("glue", endpoint_url=control_plane_url)
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    layout = Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, layout)
    window = {
        dt: publish_day(s3, glue, database, layout, dt, features(800, 100 + i))
        for i, dt in enumerate(TRAIN_DAYS)
    }
    baseline = drift_store.baseline_id(TRAIN_DAYS[-1], RUN_ID)
    drift_store.write_training_baseline(s3, bucket, baseline, window, Thresholds(), run_id=RUN_ID)
    publish_day(s3, glue, database, layout, DRIFTED, drifted(600, 200))
    publish_day(s3, glue, database, layout, STEADY, features(600, 201))
    # the endpoint's data capture of the drifted day: two requests in one capture file
    endpoint = deployment_settings()["endpoint_name"]
    body = serving_csv(drifted(300, 202)).decode().splitlines()
    records = [
        json.dumps(
            {
                "captureData": {
                    "endpointInput": {
                        "observedContentType": "text/csv",
                        "mode": "INPUT",
                        "data": "\n".join(part),
                        "encoding": "CSV",
                    }
                }
            }
        )
        for part in (body[:150], body[150:])
    ]
    key = f"monitoring/capture/{endpoint}/primary/{DRIFTED.replace('-', '/')}/10/capture-0001.jsonl"
    s3.put_object(Bucket=bucket, Key=key, Body="\n".join(records).encode())
    yield {
        "s3": s3,
        "bucket": bucket,
        "baseline": baseline,
        "cloudwatch": session.client("cloudwatch", endpoint_url=control_plane_url),
    }
    mp.undo()


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "churn_drift.py"))
    assert bag.import_errors == {}
    return bag.dags["churn_drift"]


def retraining_events(dt: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "retraining_requested")
        ).all()
        return [dict(e.extra) for e in events if (e.extra or {}).get("dt") == dt]


def read_json(s3, uri: str):
    bucket, key = split_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def keys_under(s3, uri: str) -> set[str]:
    bucket, prefix = split_s3_uri(uri)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {o["Key"][len(prefix) :] for o in listed.get("Contents", [])}


def test_a_drifted_partition_is_reported_and_requests_retraining(lake) -> None:
    run = load_dag().test(run_conf={"dt": DRIFTED})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    s3, bucket = lake["s3"], lake["bucket"]
    report = drift_store.report_uri(bucket, DRIFTED)
    violations = read_json(s3, report + drift_store.VIOLATIONS)["violations"]
    assert {(v["feature_name"], v["constraint_check_type"]) for v in violations} == {
        ("monthly_fee", "baseline_drift_check"),
        ("plan", "baseline_drift_check"),
    }
    scores = read_json(s3, report + drift_store.SCORES)
    assert scores["baseline_id"] == lake["baseline"] and scores["dt"] == DRIFTED and scores["rows"] == 600
    assert {"plots/monthly_fee.png", "plots/plan.png", drift_store.STATISTICS} <= keys_under(s3, report)
    traffic = read_json(s3, drift_store.report_uri(bucket, DRIFTED, "traffic") + drift_store.SCORES)
    assert traffic["rows"] == 300 and sorted(traffic["drifted"]) == ["monthly_fee", "plan"]
    events = retraining_events(DRIFTED)
    assert len(events) == 1
    assert events[0]["baseline_id"] == lake["baseline"] and events[0]["report"] == report
    assert any(r.startswith("partition monthly_fee: PSI") for r in events[0]["reasons"])
    assert any(r.startswith("traffic plan: L-infinity") for r in events[0]["reasons"])
    listed = lake["cloudwatch"].list_metrics(Namespace="sagelake", MetricName="psi")["Metrics"]
    features_sent = {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "Feature"}
    assert "monthly_fee" in features_sent


def test_a_partition_like_the_training_days_requests_nothing(lake) -> None:
    run = load_dag().test(run_conf={"dt": STEADY})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["partition_drift"] == "success" and states["traffic_drift"] == "success"
    assert states["drift_above_threshold"] == "success" and states["request_retraining"] == "skipped"
    s3, bucket = lake["s3"], lake["bucket"]
    report = drift_store.report_uri(bucket, STEADY)
    assert read_json(s3, report + drift_store.VIOLATIONS) == {"violations": []}
    assert read_json(s3, report + drift_store.SCORES)["drifted"] == []
    assert not keys_under(s3, drift_store.report_uri(bucket, STEADY, "traffic"))  # nothing captured that day
    assert retraining_events(STEADY) == []
