"""Ingest → prepare → check: one day's raw files become a curated, quality-checked feature partition.

For one partition `dt`: the run's logical date, or the `dt` in its conf (runs started by an S3
"Object Created" event through the EventBridge webhook or the `eventbridge_sqs` DAG carry the object's
partition there, with the event under `event`):
1. **wait_for_raw_files** — deferrable S3 sensor on `raw/customers/dt=…/customers.csv` and
   `raw/events/dt=…/events.jsonl`.
2. **register_raw_partitions** — Glue Data Catalog tables (as code) and the day's raw partitions.
3. **glue_churn_features** — the Glue job `include/glue/churn_features.py` cleans, quarantines and
   aggregates into `curated/churn_features/dt=…/` (Parquet). On the local target it runs on local Spark.
4. **register_curated_partitions** — catalog partitions of the curated and quarantine tables.
5. **check_*** — the Athena checks of `include/sql/checks/`; a failing `error` check fails the run.
6. **publish_curated** — emits the `churn_features` asset event (`extra.dt`) that starts `churn_train_deploy`.

Every task reads and overwrites only its `dt` partition: re-runs and backfills are safe.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import dag, task

from sagelake.config.params import pipeline_params
from sagelake.config.settings import AWS_CONN_ID, CHECKS_DIR, GLUE_SCRIPT, SQL_DIR
from sagelake.lake.assets import curated_features
from sagelake.ml.aws_requests import glue_job_kwargs
from sagelake.operators.athena import QualityCheckOperator
from sagelake.operators.glue import GlueCatalogPartitionOperator, SagelakeGlueJobOperator
from sagelake.quality.checks import load_checks

CURATED = curated_features()
DT = "{{ params.dt or ds }}"  # an event's partition (conf "dt"), else the logical date's
LAKE = "s3://{{ params.bucket }}"


@dag(
    dag_id="churn_prepare",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=2,
    template_searchpath=[str(SQL_DIR)],
    params=pipeline_params(dt_fallback="the run's logical date"),
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "aws_conn_id": AWS_CONN_ID,
    },
    tags=["sagelake", "ingest", "glue", "athena"],
    doc_md=__doc__,
)
def churn_prepare() -> None:
    wait_for_raw = S3KeySensor(
        task_id="wait_for_raw_files",
        bucket_name="{{ params.bucket }}",
        bucket_key=[f"raw/customers/dt={DT}/customers.csv", f"raw/events/dt={DT}/events.jsonl"],
        deferrable=True,
        poke_interval=15,
        timeout=6 * 60 * 60,
    )
    register_raw = GlueCatalogPartitionOperator(
        task_id="register_raw_partitions",
        database="{{ params.glue_database }}",
        bucket="{{ params.bucket }}",
        dt=DT,
        tables=["raw_customers", "raw_events"],
    )
    etl = SagelakeGlueJobOperator(
        task_id="glue_churn_features",
        job_name="{{ params.glue_job_name }}",
        script_location=str(GLUE_SCRIPT),
        s3_bucket="{{ params.bucket }}",
        iam_role_name="{{ params.glue_role }}",
        replace_script_file=True,
        update_config=True,
        create_job_kwargs=glue_job_kwargs(),
        script_args={
            "--dt": DT,
            "--input_customers": f"{LAKE}/raw/customers/dt={DT}/",
            "--input_events": f"{LAKE}/raw/events/dt={DT}/",
            "--output_features": f"{LAKE}/curated/churn_features/dt={DT}/",
            "--output_processed_events": f"{LAKE}/processed/events/dt={DT}/",
            "--output_quarantine": f"{LAKE}/quarantine/churn/dt={DT}/",
            "--output_metrics": f"{LAKE}/metrics/etl/dt={DT}/",
        },
        deferrable=True,
        waiter_delay=30,
    )
    register_curated = GlueCatalogPartitionOperator(
        task_id="register_curated_partitions",
        database="{{ params.glue_database }}",
        bucket="{{ params.bucket }}",
        dt=DT,
        tables=["churn_features", "churn_quarantine"],
    )
    checks = [
        QualityCheckOperator(
            task_id=f"check_{spec.name}",
            check_file=spec.path,
            database="{{ params.glue_database }}",
            output_location=f"{LAKE}/athena-results/",
            workgroup="{{ params.athena_workgroup }}",
            deferrable=True,
            sleep_time=5,
            retries=0,
        )
        for spec in load_checks(CHECKS_DIR)  # a malformed check file fails the DAG import, naming it
    ]

    @task(outlets=[CURATED])
    def publish_curated(dt: str, outlet_events=None) -> str:
        """Announce the checked partition to the training DAG."""
        outlet_events[CURATED].extra = {"dt": dt}
        return dt

    wait_for_raw >> register_raw >> etl >> register_curated >> checks >> publish_curated(DT)


churn_prepare()
