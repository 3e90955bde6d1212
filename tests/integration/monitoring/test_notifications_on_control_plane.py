"""Failure notifications on the control plane: a task that fails in a real DAG run, and a missed deadline,
arrive as messages on the queue the local stack subscribes to the alerts topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from devstack.stack import bootstrap_alerts
from sagelake.config.settings import alerts_topic_arn
from tests.support.constants import REGION
from tests.support.pipeline import use_local_target


@pytest.fixture()
def alerts(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The local stack's alerts topic and queue (created as ``bootstrap_control_plane`` does)."""
    use_local_target(monkeypatch, aws_env)
    monkeypatch.delenv("SAGELAKE_ALERTS_TOPIC_ARN", raising=False)
    session = boto3.Session(region_name=REGION)
    topic, queue_url = bootstrap_alerts(session, aws_env)
    sqs = session.client("sqs", endpoint_url=aws_env)
    return {
        "topic": topic,
        "queue_url": queue_url,
        "sqs": sqs,
        "sns": session.client("sns", endpoint_url=aws_env),
    }


def received(alerts: dict, marker: str) -> list[dict]:
    """The SNS envelopes on the alerts queue whose message contains ``marker`` (every message read is
    deleted, so tests sharing the queue never see each other's)."""
    found: list[dict] = []
    for _ in range(5):
        answer = alerts["sqs"].receive_message(
            QueueUrl=alerts["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in answer.get("Messages", []):
            found.append(json.loads(message["Body"]))
            alerts["sqs"].delete_message(QueueUrl=alerts["queue_url"], ReceiptHandle=message["ReceiptHandle"])
        if any(marker in envelope["Message"] for envelope in found):
            break
    return [envelope for envelope in found if marker in envelope["Message"]]


def test_the_settings_default_topic_is_the_one_the_local_stack_creates_once(alerts: dict) -> None:
    assert alerts_topic_arn() == alerts["topic"]
    session = boto3.Session(region_name=REGION)
    assert bootstrap_alerts(session, alerts["sns"].meta.endpoint_url) == (
        alerts["topic"],
        alerts["queue_url"],
    )
    subscriptions = alerts["sns"].list_subscriptions_by_topic(TopicArn=alerts["topic"])["Subscriptions"]
    assert [s["Protocol"] for s in subscriptions] == ["sqs"]  # idempotent: subscribed once


FAILING_DAG = """
from datetime import datetime, timezone

from airflow.sdk import dag, task

from sagelake.monitoring.notifications import notify_failure


@dag(
    dag_id="{dag_id}",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    default_args={{"owner": "test", "retries": 0, "on_failure_callback": notify_failure}},
)
def failing():
    @task
    def explode():
        raise ValueError("{marker}")

    explode()


failing()
"""


def failing_dag(folder: Path, marker: str):
    """A one-task DAG whose task raises ``ValueError(marker)``, written and synced to the metadata DB as
    the DAG processor would (``dag.test`` runs only serialized DAGs)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    dag_id = f"failing_{marker.replace('-', '_')}"
    (folder / f"{dag_id}.py").write_text(FAILING_DAG.format(dag_id=dag_id, marker=marker))
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="dags-folder")
    assert bag.import_errors == {}
    DagBundlesManager().sync_bundles_to_db()  # the bundle row the DAG refers to
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags[dag_id]


def test_a_task_that_fails_in_a_dag_run_publishes_its_failure(alerts: dict, tmp_path: Path) -> None:
    marker = f"boom-{uuid.uuid4().hex[:8]}"
    run = failing_dag(tmp_path, marker).test()
    assert str(run.state) == "failed"
    (envelope,) = received(alerts, marker)
    assert envelope["TopicArn"] == alerts["topic"]
    assert envelope["Subject"] == f"sagelake: {run.dag_id}.explode failed (try 1 of 1)"
    body = envelope["Message"]
    assert f"DAG:       {run.dag_id}" in body and f"Run:       {run.run_id}" in body
    assert "Task:      explode" in body and "Try:       1 of 1" in body
    assert f"Exception: ValueError: {marker}" in body
    assert f"/dags/{run.dag_id}/runs/" in body and "/tasks/explode" in body  # the log URL


DEADLINE_DAG = """
from datetime import datetime, timezone

from airflow.sdk import dag, task

from sagelake.monitoring.notifications import deadline_alert


@dag(
    dag_id="{dag_id}",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    default_args={{"owner": "test", "retries": 0}},
    deadline=deadline_alert("churn_prepare"),
)
def late():
    @task
    def wait():
        pass

    wait()


late()
"""


def test_a_missed_deadline_goes_from_the_scheduler_through_the_triggerer_to_the_topic(
    alerts: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the scheduler and the triggerer do, step by step, in this process: the queued run gets its
    deadline, the scheduler's ``handle_miss`` queues the callback as a trigger, and the trigger, rebuilt from
    its stored row as the triggerer does, runs ``notify_missed_deadline`` with the provider's async client."""
    from airflow._shared.module_loading import import_string
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.deadline import Deadline
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    monkeypatch.setenv("SAGELAKE_DEADLINE_MINUTES_CHURN_PREPARE", "7")
    dag_id = f"late_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{dag_id}.py").write_text(DEADLINE_DAG.format(dag_id=dag_id))
    bag = BundleDagBag(dag_folder=str(tmp_path), bundle_path=tmp_path, bundle_name="dags-folder")
    assert bag.import_errors == {}
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)

    run_id = f"manual__{dag_id}"
    with create_session() as session:
        run = SerializedDagModel.get_dag(dag_id, session=session).create_dagrun(
            run_id=run_id,
            run_after=datetime.now(UTC),
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.QUEUED,
            session=session,
        )
        dagrun_id, queued_at = run.id, run.queued_at
    with create_session() as session:  # (Airflow's sessions do not autoflush: the run is committed first)
        (deadline,) = session.scalars(select(Deadline).where(Deadline.dagrun_id == dagrun_id)).all()
        assert deadline.deadline_time - queued_at == timedelta(minutes=7)
        deadline.handle_miss(session)  # as the scheduler does once deadline_time has passed
        session.flush()
        trigger_id = deadline.callback.trigger.id
    with create_session() as session:
        stored = session.get(Trigger, trigger_id)
        trigger = import_string(stored.classpath)(**stored.kwargs)

    async def events() -> list:
        return [event.payload async for event in trigger.run()]

    assert [e["state"] for e in asyncio.run(events())] == ["running", "success"]
    (envelope,) = received(alerts, run_id)
    assert envelope["Subject"] == f"sagelake: {dag_id} missed its deadline"
    assert f"Run:       {run_id}" in envelope["Message"] and "State:     queued" in envelope["Message"]
