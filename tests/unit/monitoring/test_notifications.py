"""Failure notifications: the messages, the topic setting, the run deadlines, the wiring in every DAG."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from sagelake.config import settings
from sagelake.monitoring import notifications
from tests.support.constants import ROOT


def failed_ti(**overrides: object) -> SimpleNamespace:
    fields = {
        "dag_id": "churn_prepare",
        "task_id": "glue_churn_features",
        "map_index": -1,
        "try_number": 3,
        "max_tries": 2,
        "log_url": "http://af/dags/churn_prepare/runs/r1/tasks/glue_churn_features?try_number=3",
    }
    return SimpleNamespace(**{**fields, **overrides})


def test_the_failure_message_names_dag_run_task_try_log_and_exception() -> None:
    context = {"ti": failed_ti(), "run_id": "manual__2026-11-27", "exception": ValueError("bad input")}
    subject, body = notifications.failure_message(context)
    assert subject == "sagelake: churn_prepare.glue_churn_features failed (try 3 of 3)"
    lines = dict(line.split(":", 1) for line in body.splitlines()[1:])
    assert {k: v.strip() for k, v in lines.items()} == {
        "DAG": "churn_prepare",
        "Run": "manual__2026-11-27",
        "Task": "glue_churn_features",
        "Try": "3 of 3",
        "Log": "http://af/dags/churn_prepare/runs/r1/tasks/glue_churn_features?try_number=3",
        "Exception": "ValueError: bad input",
    }


def test_a_mapped_task_and_a_missing_exception_are_said_so() -> None:
    _, body = notifications.failure_message({"ti": failed_ti(map_index=4), "run_id": "r"})
    assert "Task:      glue_churn_features[4]" in body
    assert "no exception" in body


def test_the_exception_text_is_cut_and_the_subject_is_valid_for_sns() -> None:
    long = notifications.exception_text(RuntimeError("x" * 10_000))
    assert len(long) < notifications.EXCEPTION_LIMIT + 20 and long.endswith("(cut)")
    subject = notifications.subject_line("é\nline two " + "y" * 200)
    assert len(subject) == 100 and subject.isascii() and "\n" not in subject
    assert all(" " <= c <= "~" for c in subject)


def test_the_deadline_message_comes_from_the_context_the_scheduler_gives() -> None:
    context = {
        "dag_run": {
            "dag_id": "churn_train_deploy",
            "dag_run_id": "asset_triggered__2026-11-27T01:00:00",
            "state": "running",
            "queued_at": "2026-11-27T01:00:00Z",
        },
        "deadline": {"id": "d1", "deadline_time": "2026-11-27T09:00:00Z"},
    }
    subject, body = notifications.deadline_message(context, "http://af/")
    assert subject == "sagelake: churn_train_deploy missed its deadline"
    assert "Run:       asset_triggered__2026-11-27T01:00:00" in body
    assert "Deadline:  2026-11-27T09:00:00Z" in body
    assert "State:     running (queued at 2026-11-27T01:00:00Z)" in body
    assert (
        "Log:       http://af/dags/churn_train_deploy/runs/asset_triggered__2026-11-27T01%3A00%3A00" in body
    )


def test_the_topic_is_the_setting_else_the_local_stacks_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGELAKE_ALERTS_TOPIC_ARN", raising=False)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    monkeypatch.setenv("SAGELAKE_TARGET", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert settings.alerts_topic_arn() == "arn:aws:sns:eu-west-1:123456789012:sagelake-alerts"
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "000000000000")
    assert settings.alerts_topic_arn() == "arn:aws:sns:eu-west-1:000000000000:sagelake-alerts"
    monkeypatch.setenv("SAGELAKE_TARGET", "aws")
    assert settings.alerts_topic_arn() is None  # no guessed topic on AWS
    monkeypatch.setenv("SAGELAKE_ALERTS_TOPIC_ARN", "arn:aws:sns:eu-west-1:111122223333:ops")
    assert settings.alerts_topic_arn() == "arn:aws:sns:eu-west-1:111122223333:ops"
    monkeypatch.setenv("SAGELAKE_ALERTS_TOPIC_ARN", "ops")
    with pytest.raises(ValueError, match="SAGELAKE_ALERTS_TOPIC_ARN"):
        settings.alerts_topic_arn()


def test_without_a_topic_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGELAKE_ALERTS_TOPIC_ARN", raising=False)
    monkeypatch.setenv("SAGELAKE_TARGET", "aws")
    notifications.notify_failure({"ti": failed_ti(), "run_id": "r"})  # no client is made: no network


def test_run_deadlines_are_settings_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGELAKE_DEADLINE_MINUTES_CHURN_PREPARE", raising=False)
    assert settings.run_deadline("churn_prepare") == timedelta(minutes=120)
    monkeypatch.setenv("SAGELAKE_DEADLINE_MINUTES_CHURN_TRAIN_DEPLOY", "30")
    assert settings.run_deadline("churn_train_deploy") == timedelta(minutes=30)
    monkeypatch.setenv("SAGELAKE_DEADLINE_MINUTES_CHURN_PREPARE", "0")
    with pytest.raises(ValueError, match="SAGELAKE_DEADLINE_MINUTES_CHURN_PREPARE"):
        settings.run_deadline("churn_prepare")
    with pytest.raises(KeyError):
        settings.run_deadline("lake_setup")


def test_the_deadline_alert_runs_the_async_notifier_after_the_queued_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineReference

    monkeypatch.setenv("SAGELAKE_DEADLINE_MINUTES_CHURN_PREPARE", "45")
    alert = notifications.deadline_alert("churn_prepare")
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == timedelta(minutes=45)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "sagelake.monitoring.notifications.notify_missed_deadline"


@pytest.fixture(scope="module")
def dags() -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def test_every_task_of_every_dag_notifies_its_failure(dags: dict) -> None:
    assert len(dags) >= 10
    for dag_id, dag in dags.items():
        for task in dag.tasks:
            assert notifications.notify_failure in (task.on_failure_callback or []), (
                f"{dag_id}.{task.task_id}"
            )


def test_the_pipeline_dags_have_a_run_deadline_that_survives_serialization(dags: dict) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id in ("churn_prepare", "churn_train_deploy"):
        (alert,) = dags[dag_id].deadline
        assert alert.interval == settings.run_deadline(dag_id)
        (stored,) = DagSerialization.to_dict(dags[dag_id])["dag"]["deadline"]
        assert stored["callback"]["__data__"]["path"] == alert.callback.path
        assert stored["reference"] == {"reference_type": "DagRunQueuedAtDeadline"}
