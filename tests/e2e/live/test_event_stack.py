"""Event-driven runs on a real local stack (``airflow standalone`` + moto), on free ports in a temp dir.

EventBridge → SQS: an S3 "Object Created" event sent to the local SQS queue is picked up by the
triggerer's AssetWatcher, routed by ``eventbridge_sqs`` and runs ``churn_prepare`` on the event's
partition. The same event then POSTed to the webhook is answered as a duplicate of that run.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from tests.support.constants import ACCOUNT_ID
from tests.support.live_stack import LIVE_DAYS, run_report, wait_for_run

pytestmark = pytest.mark.e2e

DT, OTHER_DT = LIVE_DAYS["events"]


def rejected_bodies(api, timeout_s: float) -> list[str]:
    """Bodies the finished ``eventbridge_sqs`` runs rejected, once there is at least one."""
    deadline, bodies = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline and not bodies:
        for run in api.dag_runs("eventbridge_sqs", limit=50):
            if run["state"] == "success":
                bodies += [
                    e["body"]
                    for e in api.xcom("eventbridge_sqs", run["dag_run_id"], "route_messages", "rejected")
                ]
        time.sleep(2)
    return bodies


def test_s3_event_through_sqs_runs_the_pipeline_once_even_if_also_posted(live) -> None:
    from devstack import stack as local_stack
    from devstack.datagen import generate_day, land_day
    from devstack.demo import webhook_url
    from devstack.webhook_client import deliver, object_created_event
    from sagelake.lake.layout import Lake, split_s3_uri

    api, s3, sqs = live["api"], live["s3"], live["sqs"]
    lake = Lake("sagelake-lake")
    uris = land_day(s3, lake, DT, generate_day(DT, n_customers=700))
    for dag_id in ("churn_prepare", "eventbridge_sqs"):
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)

    bucket, key = split_s3_uri(uris[-1])
    event = object_created_event(
        bucket, key, 1, "etag", region=local_stack.REGION, account=ACCOUNT_ID, time=datetime.now(UTC)
    )
    queue_url = sqs.get_queue_url(QueueName=local_stack.EVENTS_QUEUE)["QueueUrl"]
    for body in (json.dumps(event), json.dumps(event), "not an event"):  # SQS delivers at least once
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    run_id = f"eventbridge__{event['id']}"
    run = wait_for_run(api, "churn_prepare", run_id, timeout_s=600)
    assert run.get("state") == "success", run_report(api, live["stack"], "churn_prepare", run_id)
    assert run["conf"]["dt"] == DT and run["conf"]["event"]["key"] == key
    curated = keys_under(s3, lake.curated_features(DT))
    assert any(key.endswith(".parquet") and "/version=" in key for key in curated)

    runs = api.dag_runs("churn_prepare", limit=100)
    assert [r["dag_run_id"] for r in runs if r["dag_run_id"] == run_id] == [run_id]
    assert "not an event" in rejected_bodies(api, timeout_s=120)

    # The same event delivered to the webhook too: the run exists, so nothing new starts.
    status, answer = deliver(webhook_url(live["stack"]), event, local_stack.webhook_key(live["stack"]))
    assert status == 200
    assert answer == {"dag_id": "churn_prepare", "dag_run_id": run_id, "state": "success", "duplicate": True}


def test_both_files_events_at_once_publish_one_version_and_a_replay_publishes_nothing(live) -> None:
    """The two raw files of a day land and their events arrive together: two runs of one partition. The
    partition lock runs them one after the other; the second finds the input already published."""
    from concurrent.futures import ThreadPoolExecutor

    from devstack import stack as local_stack
    from devstack.datagen import generate_day, land_day
    from devstack.demo import webhook_url
    from devstack.webhook_client import deliver, object_created_event
    from sagelake.lake.layout import Lake, split_s3_uri

    api, s3, stack = live["api"], live["s3"], live["stack"]
    day = OTHER_DT
    lake = Lake("sagelake-lake")
    uris = land_day(s3, lake, day, generate_day(day, n_customers=700))
    api.wait_for_dag("churn_prepare")
    api.unpause("churn_prepare")
    key = local_stack.webhook_key(stack)

    def event_for(uri: str) -> dict:
        bucket, object_key = split_s3_uri(uri)
        return object_created_event(
            bucket,
            object_key,
            1,
            "etag",
            region=local_stack.REGION,
            account=ACCOUNT_ID,
            time=datetime.now(UTC),
        )

    events = [event_for(uri) for uri in uris]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda e: deliver(webhook_url(stack), e, key), events))
    assert [status for status, _ in answers] == [202, 202]
    runs = [wait_for_run(api, "churn_prepare", answer["dag_run_id"], timeout_s=600) for _, answer in answers]
    assert [run.get("state") for run in runs] == ["success", "success"], "\n".join(
        run_report(api, stack, "churn_prepare", answer["dag_run_id"]) for _, answer in answers
    )

    def state(run_id: str, task_id: str) -> str:
        return next(
            t["state"] for t in api.task_instances("churn_prepare", run_id) if t["task_id"] == task_id
        )

    published = [state(run["dag_run_id"], "publish_partition") for run in runs]
    unchanged = [state(run["dag_run_id"], "input_unchanged") for run in runs]
    assert sorted(published) == ["skipped", "success"] and sorted(unchanged) == ["skipped", "success"]
    folders = {k.split("/")[3] for k in keys_under(s3, lake.curated_features(day))}
    assert len(folders) == 1 and next(iter(folders)).startswith("version=")

    # S3 notifies again (a new event id for the same object) after success: a new run publishes nothing new.
    status, answer = deliver(webhook_url(stack), event_for(uris[0]), key)
    assert status == 202
    replay = wait_for_run(api, "churn_prepare", answer["dag_run_id"], timeout_s=600)
    assert replay.get("state") == "success", run_report(api, stack, "churn_prepare", answer["dag_run_id"])
    assert state(answer["dag_run_id"], "input_unchanged") == "success"
    assert {k.split("/")[3] for k in keys_under(s3, lake.curated_features(day))} == folders


def keys_under(s3, uri: str) -> list[str]:
    from sagelake.lake.layout import split_s3_uri

    bucket, prefix = split_s3_uri(uri)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
