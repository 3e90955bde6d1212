"""EventBridge → SQS → DAG runs: the way in with no inbound endpoint (an AssetWatcher in the triggerer).

An EventBridge rule sends S3 "Object Created" events (and custom `Training Requested` events) to an SQS
queue; the triggerer long-polls it with the Amazon provider's `SqsSensorTrigger` (an `AssetWatcher`), and
every batch of messages becomes an event of the asset `eventbridge_events`, which starts this DAG:
1. **route_messages** — validates each message as an EventBridge event and maps it to a DAG run with the
   same routes as the webhook (`sagelake.events.eventbridge`); rejected messages are logged with their reason
   and kept in this task's XCom `rejected`.
2. **trigger_run** — one mapped `TriggerDagRunOperator` per event, run id `eventbridge__<event id>`:
   the same run the webhook would create, so a redelivered message (or the same event arriving both
   ways) is skipped, not run twice.

Queue: `SAGELAKE_EVENTS_QUEUE_URL` names the queue it watches; when it is not set the DAG has no schedule.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, AssetWatcher, dag, task

from sagelake.config.params import task_defaults
from sagelake.config.settings import AWS_CONN_ID, events_queue_url

QUEUE_URL = events_queue_url()
log = logging.getLogger(__name__)


EVENTS = (
    Asset(
        name="eventbridge_events",
        uri=QUEUE_URL,
        watchers=[
            AssetWatcher(
                name="eventbridge_sqs_queue",
                trigger=SqsSensorTrigger(
                    sqs_queue=QUEUE_URL,
                    aws_conn_id=AWS_CONN_ID,
                    max_messages=10,
                    wait_time_seconds=20,  # long polling: one request per 20 s while the queue is empty
                    waiter_delay=1,
                ),
            )
        ],
    )
    if QUEUE_URL
    else None
)


@dag(
    dag_id="eventbridge_sqs",
    schedule=[EVENTS] if EVENTS else None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=task_defaults("data-engineering", retries=2, retry_delay=timedelta(seconds=10)),
    tags=["sagelake", "ingest", "eventbridge", "sqs"],
    doc_md=__doc__,
)
def eventbridge_sqs() -> None:
    @task
    def route_messages(triggering_asset_events: Any = None, ti: Any = None) -> list[dict[str, Any]]:
        """TriggerDagRunOperator arguments for each routable event of the triggering batches."""
        from sagelake.events.eventbridge import load_routes, message_bodies, runs_from_messages

        extras = [e.extra for events in (triggering_asset_events or {}).values() for e in events]
        runs, rejected = runs_from_messages(message_bodies(extras), load_routes())
        for entry in rejected:
            log.warning("rejected message: %s", entry["reason"])
        ti.xcom_push(key="rejected", value=rejected)
        return [
            {"trigger_dag_id": run.dag_id, "trigger_run_id": run.run_id, "conf": run.conf} for run in runs
        ]

    TriggerDagRunOperator.partial(
        task_id="trigger_run", logical_date=None, skip_when_already_exists=True
    ).expand_kwargs(route_messages())


eventbridge_sqs()
