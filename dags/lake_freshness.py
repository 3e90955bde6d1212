"""Freshness: every hour, how old the newest published `churn_features` day is, as a CloudWatch metric.

1. **emit_freshness** — reads the Glue Data Catalog's published partitions of `churn_features` (what readers
   see) and puts `HoursSinceLastPublish` (namespace `sagelake`, dimension `Dataset=churn_features`): hours
   since the end (UTC midnight) of the newest published day. Nothing published yet: no datum.

Its own hourly DAG, not a task of `churn_prepare` or `lake_discovery`: the freshness alarm
(`include/infra/ml.cfn.json`, `FreshnessAlarm`) evaluates one-hour periods and counts a period without data
as stale, so the metric must arrive every hour *whether or not* anything lands — a task of the pipeline that
stalls would go silent exactly when it matters, and `lake_discovery` runs daily and starts a Glue crawler,
too costly to run hourly. If Airflow itself stops, the datum stops and the alarm fires too.
See docs/monitoring.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.sdk import dag, task

from sagelake.config.params import setting_params, task_defaults
from sagelake.config.settings import AWS_CONN_ID


@task
def emit_freshness(params: dict[str, Any]) -> int:
    """``HoursSinceLastPublish`` of ``churn_features``; returns how many data were sent (0 or 1)."""
    from sagelake.monitoring.emit import emit_freshness as send

    return send(GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn(), params["glue_database"])


@dag(
    dag_id="lake_freshness",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=setting_params("glue_database"),  # no dt: freshness looks at every published day
    default_args=task_defaults(
        "data-engineering",
        retries=2,
        retry_delay=timedelta(minutes=1),
        execution_timeout=timedelta(minutes=10),
    ),
    tags=["sagelake", "monitoring"],
    doc_md=__doc__,
)
def lake_freshness() -> None:
    emit_freshness()


lake_freshness()
