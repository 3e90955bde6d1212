"""Failure notifications: a failed task or a missed run deadline publishes a message to the alerts topic.

One helper per event, both through the Amazon provider's ``SnsNotifier`` and the ``aws_default`` connection
(moto's SNS on the local target), to ``SAGELAKE_ALERTS_TOPIC_ARN`` (:func:`sagelake.config.settings.
alerts_topic_arn`, read when the notification is sent):

- :func:`notify_failure`: every DAG's ``default_args["on_failure_callback"]``. It runs in the task's process
  once the task failed for good (retries are ``on_retry_callback``, not notified); the message names the
  DAG, the run, the task, the try, the log URL and the exception.
- :func:`deadline_alert`: a DAG's ``deadline=`` (Airflow's ``DeadlineAlert``): when a run has not
  succeeded ``SAGELAKE_DEADLINE_MINUTES_<DAG>`` after it was queued, the scheduler queues
  :func:`notify_missed_deadline`, which the triggerer runs. A run that succeeds in time drops its deadline;
  a run that failed earlier still gets the missed-deadline message (its data is late too).

The message builders are plain functions of the callback's context (unit-tested without Airflow).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sagelake.config.settings import AWS_CONN_ID

log = logging.getLogger(__name__)

SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters, no line break
EXCEPTION_LIMIT = 4000  # characters of the exception text in a message


def subject_line(text: str) -> str:
    """``text`` as a valid SNS subject: printable ASCII on one line, at most 100 characters."""
    cleaned = "".join(c if " " <= c <= "~" else " " for c in " ".join(text.split()))
    return cleaned if len(cleaned) <= SUBJECT_LIMIT else cleaned[: SUBJECT_LIMIT - 3] + "..."


def exception_text(error: BaseException | str | None) -> str:
    """``Type: message`` of the exception (cut at 4,000 characters), or a note that there was none."""
    if error is None:
        return "(no exception: the task was marked failed, or its process died)"
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text if len(text) <= EXCEPTION_LIMIT else text[:EXCEPTION_LIMIT] + " …(cut)"


def failure_message(context: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and body of a task failure, from the task's callback context."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    task = ti.task_id + (f"[{map_index}]" if map_index is not None and map_index >= 0 else "")
    tries = getattr(ti, "max_tries", None)
    attempt = f"{ti.try_number}" + (f" of {tries + 1}" if isinstance(tries, int) else "")
    subject = subject_line(f"sagelake: {ti.dag_id}.{task} failed (try {attempt})")
    body = "\n".join(
        [
            f"Task failed: {ti.dag_id}.{task}",
            f"DAG:       {ti.dag_id}",
            f"Run:       {context['run_id']}",
            f"Task:      {task}",
            f"Try:       {attempt}",
            f"Log:       {ti.log_url}",
            f"Exception: {exception_text(context.get('exception'))}",
        ]
    )
    return subject, body


def run_url(dag_id: str, run_id: str, base_url: str) -> str:
    """The Airflow UI page of a DAG run."""
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"


def deadline_message(context: Mapping[str, Any], base_url: str) -> tuple[str, str]:
    """Subject and body of a missed deadline, from the context the scheduler gives a deadline callback
    (``dag_run``: the run as the REST API shows it; ``deadline``: its ``deadline_time``)."""
    run = context.get("dag_run") or {}
    dag_id, run_id = run.get("dag_id", "?"), run.get("dag_run_id") or run.get("run_id", "?")
    deadline = (context.get("deadline") or {}).get("deadline_time")
    subject = subject_line(f"sagelake: {dag_id} missed its deadline")
    body = "\n".join(
        [
            f"Run deadline missed: {dag_id}",
            f"DAG:       {dag_id}",
            f"Run:       {run_id}",
            f"State:     {run.get('state', '?')} (queued at {run.get('queued_at', '?')})",
            f"Deadline:  {deadline}",
            f"Log:       {run_url(dag_id, run_id, base_url)}",
        ]
    )
    return subject, body


def _notifier(subject: str, message: str) -> Any:
    """The provider's ``SnsNotifier`` to the alerts topic, or None (logged) when there is none."""
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    from sagelake.config.settings import alerts_topic_arn

    topic = alerts_topic_arn()
    if topic is None:
        log.warning("no alerts topic (set SAGELAKE_ALERTS_TOPIC_ARN): not sent: %s", subject)
        return None
    return SnsNotifier(aws_conn_id=AWS_CONN_ID, target_arn=topic, subject=subject, message=message)


def notify_failure(context: Any) -> None:
    """Task failure callback (``default_args["on_failure_callback"]``): the failure to the alerts topic."""
    notifier = _notifier(*failure_message(context))
    if notifier is not None:
        notifier.notify(context)  # sent as built: no Jinja rendering of an exception's text


def _base_url() -> str:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080/")


async def notify_missed_deadline(context: Any = None, **_: Any) -> None:
    """Deadline callback (``AsyncCallback``, run by the triggerer): the missed deadline to the topic."""
    notifier = _notifier(*deadline_message(context or {}, _base_url()))
    if notifier is not None:
        await notifier.async_notify(context)


def deadline_alert(dag_id: str) -> Any:
    """``DeadlineAlert`` for ``dag_id``: a run not done ``run_deadline(dag_id)`` after it was queued
    calls :func:`notify_missed_deadline`. Use as ``@dag(..., deadline=deadline_alert("<dag id>"))``."""
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    from sagelake.config.settings import run_deadline

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=run_deadline(dag_id),
        callback=AsyncCallback(notify_missed_deadline),
        name=f"{dag_id} not done in time",
    )
