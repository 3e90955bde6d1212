"""Profile → store → link: every published partition gets a data profile, the drift baseline of later work.

Runs when `churn_prepare` publishes a checked `churn_features` partition (its asset event's `extra` names
the `dt`, `version` and `location` published), or manually with `{"dt": "YYYY-MM-DD"}` (then the partition
is read where the Glue Data Catalog publishes it now). One run at a time: the runs share one DataBrew
dataset and job per profiled dataset.
1. **published_partition** — the partition version to profile: the event's, or the catalog's for `dt`;
   the processed events of the same version sit beside it (same `version=` folder).
2. **profile_churn_features** — per column: count, missing, distinct, min/max/mean/stddev, 5/25/50/75/95 %
   quantiles, top values. On AWS a Glue DataBrew profile job (dataset and job created or updated as code,
   started with the provider's operator, deferrable) whose output is converted to the project's shape;
   on the local target the same statistics from the same Parquet files, with DuckDB.
3. **profile_processed_events** — the same for the day's cleaned events.

Each writes `s3://<bucket>/profiles/<dataset>/dt=<dt>/version=<version>/profile.json` (the JSON shape of
`include/profiles/profile.schema.json`) and `report.html` beside it, linked from the task ("Profile report").
See docs/profiles.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from sagelake.config.params import pipeline_params, task_defaults
from sagelake.config.settings import AWS_CONN_ID, databrew_role
from sagelake.lake.assets import curated_features
from sagelake.operators.databrew import DataBrewProfileOperator

PARTITION = "ti.xcom_pull(task_ids='published_partition')"


@task
def published_partition(params: dict[str, Any], triggering_asset_events: Any = None) -> dict[str, Any]:
    """``{dt, version, locations: {dataset: published location}}`` of the partition to profile."""
    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
    from airflow.sdk.exceptions import AirflowFailException

    from sagelake.lake.layout import Lake, check_dt
    from sagelake.lake.profiles import newest_announcement, version_of
    from sagelake.lake.publish import published, version_location

    if params.get("dt"):
        dt = check_dt(params["dt"])
        glue = GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()
        found = published(glue, params["glue_database"], "churn_features", dt)
        if found is None:
            # no retry: a retry would find the catalog unchanged
            raise AirflowFailException(
                f"churn_features dt={dt} is not published: run churn_prepare for it first"
            )
        location, version = found.location, found.version or version_of(found.location)
    else:
        events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
        announced = newest_announcement(getattr(e, "extra", None) for e in events)
        dt, version, location = announced["dt"], announced["version"], announced["location"]
    if not version:
        raise ValueError(f"published location {location} has no version= folder: nothing names the version")
    lake = Lake(params["bucket"])
    partition = {
        "dt": dt,
        "version": version,
        "locations": {
            "churn_features": location,
            "processed_events": version_location(lake.processed_events(dt), version),
        },
    }
    print(f"profiling dt={dt} version={version}: {partition['locations']}")
    return partition


def profile(dataset: str) -> DataBrewProfileOperator:
    return DataBrewProfileOperator(
        task_id=f"profile_{dataset}",
        dataset=dataset,
        dt=f"{{{{ {PARTITION}['dt'] }}}}",
        version=f"{{{{ {PARTITION}['version'] }}}}",
        location=f"{{{{ {PARTITION}['locations']['{dataset}'] }}}}",
        bucket="{{ params.bucket }}",
        role=databrew_role(),  # a deployment setting, not a run param
        deferrable=True,
        waiter_delay=30,
        waiter_max_attempts=120,
    )


@dag(
    dag_id="lake_profile",
    schedule=[curated_features()],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=pipeline_params("the triggering asset event's", "bucket", "glue_database"),
    default_args=task_defaults("data-engineering"),
    tags=["sagelake", "profiling", "databrew"],
    doc_md=__doc__,
)
def lake_profile() -> None:
    published_partition() >> [profile("churn_features"), profile("processed_events")]


lake_profile()
