"""Warehouse load: a published curated partition into Redshift, then analytics across warehouse and lake.

Runs when `churn_prepare` publishes a checked `churn_features` partition (its asset event's `extra` carries
`dt`, `version` and `location`), or manually with `{"dt": "YYYY-MM-DD"}`. It talks to Redshift through the
Data API (`RedshiftDataOperator`) on a Redshift Serverless workgroup; the workgroup, database, Spectrum IAM
role and optional secret are deployment settings (`SAGELAKE_REDSHIFT_*`, `SAGELAKE_SPECTRUM_*`,
`SAGELAKE_WAREHOUSE_TABLE`), not run params: a run chooses only its day.
On the local target the same SQL runs on the local Redshift engine (a DuckDB file, Redshift SQL translated
with sqlglot; Spectrum tables read through the local Glue catalog).
1. **plan_load** — the day to load (the `dt` param, else the newest triggering event's), checked to be
   published in the Glue catalog, its published version, and the Spectrum role's ARN.
2. **create_external_schema** — `CREATE EXTERNAL SCHEMA IF NOT EXISTS spectrum FROM DATA CATALOG …`:
   the lake's tables, as the catalog publishes them, become readable from Redshift (Spectrum).
3. **create_warehouse_table** — `CREATE TABLE IF NOT EXISTS` the warehouse copy of the curated features.
4. **load_day** — one transaction (`BatchExecuteStatement`): delete that `dt`, then insert the published
   partition read from `spectrum.churn_features`. Re-runs replace the day, never duplicate it.
5. **churn_vs_etl** — the analytics query: churn by day and plan from the warehouse joined with the ETL's
   own counts from the Spectrum table `etl_metrics`, over the 7 days ending at `dt`.
6. **report** — the query's rows, readable in the task log and as XCom.

SQL lives in `include/sql/warehouse/`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.sdk import dag, task

from sagelake.config.params import pipeline_params, task_defaults
from sagelake.config.settings import AWS_CONN_ID, SQL_DIR, warehouse_settings
from sagelake.lake.assets import curated_features
from sagelake.operators.redshift import SagelakeRedshiftDataOperator

ANALYTICS_DAYS = 7
WAREHOUSE = warehouse_settings()  # the SQL files read it as {{ warehouse.* }}


@task
def plan_load(params: dict[str, Any], triggering_asset_events: Any = None) -> dict[str, str]:
    """The day to load and its published version, the analytics window, and the Spectrum role's ARN."""
    from sagelake.lake.layout import check_dt
    from sagelake.lake.publish import NotPublishedError, published
    from sagelake.operators.redshift import role_arn, window_start

    events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
    extras = [dict(e.extra) for e in events if getattr(e, "extra", None) and "dt" in e.extra]
    if params.get("dt"):
        dt = check_dt(str(params["dt"]))
    elif extras:
        dt = check_dt(max(str(extra["dt"]) for extra in extras))
    else:
        raise ValueError(
            'no day to load: trigger with conf {"dt": "YYYY-MM-DD"} or let churn_prepare\'s curated asset '
            "event trigger the run"
        )
    glue = GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()
    found = published(glue, params["glue_database"], "churn_features", dt)
    if found is None:
        raise NotPublishedError(
            f"churn_features dt={dt} is not published: run churn_prepare for that day first"
        )
    caller = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sts").conn.get_caller_identity()["Arn"]
    return {
        "dt": dt,
        "dt_from": window_start(dt, ANALYTICS_DAYS),
        "version": found.version or "unversioned",
        "location": found.location,
        "iam_role": role_arn(WAREHOUSE["spectrum_role"], caller),
    }


@task
def report(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The analytics query's rows, one dict each, logged as a table."""
    from sagelake.operators.redshift import result_rows

    rows = result_rows(results[0])
    for row in rows:
        print(" | ".join(f"{name}={value}" for name, value in row.items()))
    return rows


@dag(
    dag_id="warehouse_load",
    schedule=[curated_features()],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=pipeline_params("the triggering asset event's", "glue_database"),
    template_searchpath=[str(SQL_DIR)],
    user_defined_macros={"warehouse": WAREHOUSE},
    default_args=task_defaults("analytics-engineering"),
    tags=["sagelake", "redshift", "spectrum", "warehouse"],
    doc_md=__doc__,
)
def warehouse_load() -> None:
    redshift = {
        "workgroup_name": WAREHOUSE["redshift_workgroup"],
        "database": WAREHOUSE["redshift_database"],
        "secret_arn": WAREHOUSE["redshift_secret_arn"],
        "deferrable": True,
        "poll_interval": 5,
    }
    plan = plan_load()
    schema = SagelakeRedshiftDataOperator(
        task_id="create_external_schema", sql="warehouse/create_external_schema.sql", **redshift
    )
    table = SagelakeRedshiftDataOperator(
        task_id="create_warehouse_table", sql="warehouse/create_warehouse_table.sql", **redshift
    )
    load = SagelakeRedshiftDataOperator(
        task_id="load_day", sql=["warehouse/delete_day.sql", "warehouse/insert_day.sql"], **redshift
    )
    analytics = SagelakeRedshiftDataOperator(
        task_id="churn_vs_etl", sql="warehouse/churn_vs_etl.sql", return_sql_result=True, **redshift
    )
    plan >> schema >> table >> load >> analytics
    report(analytics.output)


warehouse_load()
