"""``lake_profile`` run for real (``dag.test``) on the local target: a published partition of
``churn_features`` and its processed events (the same version) are profiled from the catalog's location,
each profile and report stored at its keys; a day that is not published fails the run."""

from __future__ import annotations

import io
import json

import boto3
import pandas as pd
import pytest

from sagelake.lake import catalog, profiles
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.lake.publish import publish, version_location
from tests.support.constants import REGION, ROOT
from tests.support.pipeline import use_local_target

DT, UNPUBLISHED_DT = "2026-10-05", "2026-10-06"
VERSION = "20261005T060000000000Z-e2e001"


@pytest.fixture(scope="module")
def published_day(control_plane_url: str):
    from sagelake.config.settings import default_params

    mp = pytest.MonkeyPatch()
    use_local_target(mp, control_plane_url)
    params = default_params()
    bucket, database = str(params["bucket"]), str(params["glue_database"])
    session = boto3.Session(region_name=REGION)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    glue = session.client("glue", endpoint_url=control_plane_url)
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    lake = Lake(bucket)
    features = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(8)],
            "plan": ["basic", "basic", "premium", None, "basic", "standard", "premium", "basic"],
            "monthly_fee": [10.0, 12.5, 40.0, 11.0, None, 25.0, 45.0, 10.0],
            "churned": [0, 0, 1, 0, 1, 0, 0, 1],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": ["C0", "C0", "C1", "C2", "C2", "C2"],
            "event_type": ["login", "purchase", "login", "login", "login", "logout"],
            "amount": [None, 19.99, None, None, None, None],
            "ts": pd.to_datetime(
                [
                    "2026-10-05 08:00",
                    "2026-10-05 08:05",
                    "2026-10-05 09:00",
                    "2026-10-05 10:00",
                    "2026-10-05 11:00",
                    "2026-10-05 12:00",
                ]
            ),
        }
    )
    locations = {
        "churn_features": version_location(lake.curated_features(DT), VERSION),
        "processed_events": version_location(lake.processed_events(DT), VERSION),
    }
    for name, frame in (("churn_features", features), ("processed_events", events)):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        b, prefix = split_s3_uri(locations[name])
        s3.put_object(Bucket=b, Key=f"{prefix}part-00000.snappy.parquet", Body=buffer.getvalue())
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    publish(
        glue,
        database,
        {"churn_features": locations["churn_features"]},
        DT,
        version=VERSION,
        fingerprint="e2e",
        run_id="e2e",
    )
    yield {
        "s3": s3,
        "bucket": bucket,
        "frames": {"churn_features": features, "processed_events": events},
        "locations": locations,
    }
    mp.undo()


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "lake_profile.py"))
    assert bag.import_errors == {}
    return bag.dags["lake_profile"]


def test_manual_run_profiles_the_published_partition(published_day) -> None:
    run = load_dag().test(run_conf={"dt": DT})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == dict.fromkeys(
        ["published_partition", "profile_churn_features", "profile_processed_events"], "success"
    )
    s3, bucket = published_day["s3"], published_day["bucket"]
    for dataset, frame in published_day["frames"].items():
        keys = profiles.profile_keys(bucket, dataset, DT, VERSION)
        profile = profiles.from_document(
            json.loads(s3.get_object(Bucket=bucket, Key=keys.profile_key)["Body"].read())
        )
        assert (profile.dataset, profile.version, profile.location) == (
            dataset,
            VERSION,
            published_day["locations"][dataset],
        )
        assert profile.row_count == len(frame) and [c.name for c in profile.columns] == list(frame.columns)
        for column in profile.columns:
            assert column.missing == int(frame[column.name].isna().sum()), (dataset, column.name)
        report = s3.get_object(Bucket=bucket, Key=keys.report_key)["Body"].read().decode()
        assert report == profiles.render_html(profile)
    fee = profiles.from_document(
        json.loads(
            s3.get_object(
                Bucket=bucket, Key=profiles.profile_keys(bucket, "churn_features", DT, VERSION).profile_key
            )["Body"].read()
        )
    ).column("monthly_fee")
    assert fee.mean == pytest.approx(published_day["frames"]["churn_features"]["monthly_fee"].mean())


def test_a_day_not_published_fails_and_writes_nothing(published_day) -> None:
    run = load_dag().test(run_conf={"dt": UNPUBLISHED_DT})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["published_partition"] == "failed"
    listed = published_day["s3"].list_objects_v2(
        Bucket=published_day["bucket"], Prefix=f"profiles/churn_features/dt={UNPUBLISHED_DT}/"
    )
    assert listed.get("KeyCount", 0) == 0
