"""Discovery: crawl what lands in `raw/` and report where it departs from the dataset contracts.

Daily (or triggered by hand, with an optional `dt` naming the day the drift is recorded under):
1. **crawl_raw** — the Glue crawler `SAGELAKE_CRAWLER` (a deployment setting, default `sagelake-raw`)
   over `s3://<bucket>/raw/`, defined as code (`sagelake.lake.discovery.crawler_config`), created or
   updated, then run. One table per dataset folder, named `crawled_<folder>` (`crawled_customers`,
   `crawled_events`, …) so it never touches the contract-defined `raw_*` tables the pipeline reads;
   `dt=` folders become partitions. On AWS the Glue crawler runs and the task waits in the triggerer; on
   the local target a real local crawler infers each dataset's schema from its files (CSV header and
   value types, JSON keys, Parquet schema, `.gz` too) and records the run as AWS would.
2. **compare_with_contracts** — every crawled table against the contract at its location
   (`include/contracts/`): columns added, missing, or of a type the contract cannot load. One JSON line
   per dataset in `s3://<bucket>/metrics/crawler_drift/dt=<dt>/drift.jsonl`, registered as partition `dt`
   of the catalog table `crawler_drift` (a re-run replaces that day's record).
3. **check_crawler_drift** — a `warn` check (`include/sql/discovery/crawler_drift.sql`): the number of
   columns that differ, zero expected. A violation is reported in the task's verdict, never fatal: drift is
   for people to look at (the record names the columns); `churn_prepare` still checks each file itself.

See docs/discovery.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import dag, task

from sagelake.config.params import pipeline_params, task_defaults
from sagelake.config.settings import (
    AWS_CONN_ID,
    DISCOVERY_SQL_DIR,
    SQL_DIR,
    crawler_name,
    deployment_settings,
)
from sagelake.lake.discovery import crawler_config
from sagelake.operators.athena import QualityCheckOperator
from sagelake.operators.glue_crawler import SagelakeGlueCrawlerOperator

CRAWLER = crawler_name()
DT = "{{ params.dt or ds }}"
DRIFT_CHECK = DISCOVERY_SQL_DIR / "crawler_drift.sql"


@task
def ensure_database(params: dict[str, Any]) -> str:
    """The crawler writes into the lake's Glue database: create it if this is the first thing to run."""
    from sagelake.lake.catalog import ensure_database as ensure

    ensure(GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn(), params["glue_database"])
    return params["glue_database"]


@task
def compare_with_contracts(dt: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Compare every crawled table with its dataset's contract; record the differences for day ``dt``."""
    from sagelake.lake.discovery import drift_records, write_drift
    from sagelake.lake.layout import Lake

    s3 = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
    glue = GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()
    tables = [
        table
        for page in glue.get_paginator("get_tables").paginate(DatabaseName=params["glue_database"])
        for table in page["TableList"]
    ]
    crawl = glue.get_crawler(Name=CRAWLER)["Crawler"].get("LastCrawl", {})
    crawled_at = crawl["StartTime"].isoformat() if crawl.get("StartTime") else ""
    records = drift_records(tables, Lake(params["bucket"]), crawler=CRAWLER, crawled_at=crawled_at)
    uri = write_drift(s3, glue, params["glue_database"], params["bucket"], dt, records)
    for record in records:
        detail = ", ".join(
            f"{kind} {record[kind]}" for kind in ("added", "missing", "type_changed") if record[kind]
        )
        print(
            f"{record['dataset'] or '-'} ↔ {record['crawled_table'] or '-'}: {record['status']}, "
            f"{record['columns_differing']} column(s) differ{': ' + detail if detail else ''}"
        )
    print(f"drift of dt={dt}: {uri}")
    return records


@dag(
    dag_id="lake_discovery",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one crawl at a time: a crawler runs once at a time on AWS too
    template_searchpath=[str(SQL_DIR)],
    params=pipeline_params("the run's logical date", "bucket", "glue_database", "athena_workgroup"),
    default_args=task_defaults("data-engineering", retries=2),
    tags=["sagelake", "discovery", "glue", "athena"],
    doc_md=__doc__,
)
def lake_discovery() -> None:
    crawl = SagelakeGlueCrawlerOperator(
        task_id="crawl_raw",
        config=crawler_config(
            name=CRAWLER,
            role=deployment_settings()["glue_role"],  # not a run param
            database="{{ params.glue_database }}",
            bucket="{{ params.bucket }}",
        ),
        deferrable=True,
        poll_interval=30,
    )
    check = QualityCheckOperator(
        task_id="check_crawler_drift",
        check_file=DRIFT_CHECK,
        database="{{ params.glue_database }}",
        output_location="s3://{{ params.bucket }}/athena-results/",
        workgroup="{{ params.athena_workgroup }}",
        dt=DT,
        results_bucket="{{ params.bucket }}",  # the verdict is a row of quality_results
        deferrable=True,
        sleep_time=5,
        retries=0,
    )

    ensure_database() >> crawl >> compare_with_contracts(DT) >> check


lake_discovery()
