"""Ingest → prepare → audit → publish: one day's raw files become a curated, checked feature partition.

For one partition `dt`: the run's logical date, or the `dt` in its conf (runs started by an S3
"Object Created" event through the EventBridge webhook or the `eventbridge_sqs` DAG carry the object's
partition there, with the event under `event`). Readers never see a partition before it passed its checks
(write–audit–publish):
1. **wait_for_raw_files** — deferrable S3 sensor on `raw/customers/dt=…/customers.csv*` and
   `raw/events/dt=…/events.jsonl*` (`.gz` too).
2. **claim_partition** — one run per partition: a lease in S3 (`locks/churn_prepare/dt=….json`); another
   run of the same day (the day's second file, the schedule, a backfill) waits here until it is released.
3. **plan_partition** — a new version id for this attempt, registered as partition `dt` of the `*_staged`
   tables the checks read, and the fingerprint of the raw objects and the code; it ends the run at
   **input_unchanged** if that fingerprint is already published (param `reprocess` forces the work).
4. **register_raw_partitions** — Glue Data Catalog tables (as code; raw columns from the contracts in
   `include/contracts/`) and the day's raw partitions.
5. **glue_churn_features** — the Glue job `include/glue/churn_features.py` checks every raw file against
   its contract (columns bound by name; a missing required column, an empty file or content that does not
   match its name fails before anything is written; added columns are reported as schema drift), cleans,
   quarantines and aggregates into `…/dt=…/version=<version>/` of each output, a location nobody reads yet.
   On the local target it runs on local Spark.
6. **check_*** — the Athena checks of `include/sql/checks/` audit the staged version; a failing `error`
   check fails the run and nothing is published. Each verdict, with the bytes its query scanned, is a
   row of the `quality_results` table (partition `dt`; a re-run replaces its own rows).
7. **publish_partition** — switches partition `dt` of `churn_quarantine`, `etl_metrics` and, last,
   `churn_features` to the audited version (one `UpdatePartition` each), then emits the `churn_features`
   asset event (`extra`: `dt`, `version`, `location`) that starts `churn_train_deploy`.
8. **finish_partition** (a teardown: it runs whatever happened) — deletes the day's staged and superseded
   versions, never the published one, and frees the partition.

Re-runs and backfills are safe: a failed or killed run leaves the published version untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, PokeReturnValue, dag, task

from sagelake.config.params import pipeline_params
from sagelake.config.settings import AWS_CONN_ID, CHECKS_DIR, GLUE_SCRIPT, SQL_DIR
from sagelake.lake.assets import curated_features
from sagelake.lake.contracts import load_contracts, to_job_argument
from sagelake.ml.aws_requests import glue_job_kwargs
from sagelake.operators.athena import QualityCheckOperator
from sagelake.operators.glue import GlueCatalogPartitionOperator, SagelakeGlueJobOperator
from sagelake.quality.checks import load_checks

CURATED = curated_features()
DT = "{{ params.dt or ds }}"  # an event's partition (conf "dt"), else the logical date's
LAKE = "s3://{{ params.bucket }}"
VERSION = "{{ ti.xcom_pull(task_ids='plan_partition', key='plan')['version'] }}"
LOCKED_DATASET = "churn_prepare"


def clients() -> tuple[Any, Any]:
    """S3 and Glue clients of the ``aws_default`` connection."""
    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn(), GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()


@task.sensor(poke_interval=15, timeout=6 * 60 * 60, mode="reschedule")
def claim_partition(dt: str, params: dict[str, Any], run_id: str) -> PokeReturnValue:
    """Take the partition's lease, or wait (rescheduled) while another run holds it."""
    from sagelake.config.settings import partition_lease
    from sagelake.lake.partition_lock import lock_key, try_acquire

    s3, _ = clients()
    claim = try_acquire(s3, params["bucket"], lock_key(LOCKED_DATASET, dt), run_id, partition_lease())
    if not claim.acquired:
        print(f"dt={dt} is being processed by {claim.holder.owner} (lease until {claim.holder.expires_at})")
    return PokeReturnValue(is_done=claim.acquired, xcom_value=run_id)


@task.branch
def plan_partition(dt: str, params: dict[str, Any], run_id: str, ti: Any = None) -> str:
    """Plan this attempt (XCom ``plan``): a new version, staged for the audit; the input fingerprint.

    Ends the run at ``input_unchanged`` when the published version came from the same input and code
    (unless ``reprocess``).
    """
    from sagelake.config.settings import CONTRACTS_DIR
    from sagelake.lake import catalog
    from sagelake.lake.layout import Lake
    from sagelake.lake.publish import input_fingerprint, new_version, published, stage, version_location

    s3, glue = clients()
    lake, database = Lake(params["bucket"]), params["glue_database"]
    code = [GLUE_SCRIPT.read_bytes(), *(path.read_bytes() for path in sorted(CONTRACTS_DIR.glob("*.json")))]
    fingerprint = input_fingerprint(s3, [lake.raw_customers(dt), lake.raw_events(dt)], code)
    current = published(glue, database, "churn_features", dt)
    version = new_version(run_id, datetime.now(UTC))
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    partitions = output_partitions(params["bucket"], dt)
    locations = {t: version_location(partitions[t], version) for t in catalog.PUBLISHED_TABLES}
    stage(glue, database, locations, dt)  # the checks read these; readers never do
    ti.xcom_push(key="plan", value={"version": version, "fingerprint": fingerprint, "locations": locations})
    if current is not None and current.fingerprint == fingerprint and not params["reprocess"]:
        print(f"dt={dt}: version {current.version} was published from the same input and code")
        return "input_unchanged"
    return "register_raw_partitions"


def output_partitions(bucket: str, dt: str) -> dict[str, str]:
    """Partition ``dt`` of every output of the Glue job, in publishing order (the readers' table last)."""
    from sagelake.lake.layout import Lake

    lake = Lake(bucket)
    return {
        "processed_events": lake.processed_events(dt),
        "churn_quarantine": lake.quarantine(dt),
        "etl_metrics": lake.etl_metrics(dt),
        "churn_features": lake.curated_features(dt),
    }


@task(outlets=[CURATED])
def publish_partition(
    dt: str, params: dict[str, Any], run_id: str, ti: Any = None, outlet_events: Any = None
) -> dict[str, str]:
    """Switch the readers' partitions to the audited version, then announce it to the training DAG."""
    from sagelake.lake.publish import publish

    _, glue = clients()
    plan = ti.xcom_pull(task_ids="plan_partition", key="plan")
    publish(
        glue,
        params["glue_database"],
        plan["locations"],
        dt,
        version=plan["version"],
        fingerprint=plan["fingerprint"],
        run_id=run_id,
    )
    announced = {"dt": dt, "version": plan["version"], "location": plan["locations"]["churn_features"]}
    outlet_events[CURATED].extra = announced
    return announced


@task
def finish_partition(dt: str, params: dict[str, Any], run_id: str) -> list[str]:
    """Delete the day's staged and superseded versions (never the one the catalog publishes now), then
    free the partition for the next run of the same day."""
    from sagelake.lake.partition_lock import lock_key, release
    from sagelake.lake.publish import clean_versions

    s3, glue = clients()
    partitions = output_partitions(params["bucket"], dt)
    deleted = clean_versions(s3, glue, params["glue_database"], partitions, dt, anchor="churn_features")
    for folder in deleted:
        print(f"deleted {folder}")
    release(s3, params["bucket"], lock_key(LOCKED_DATASET, dt), run_id)
    return deleted


@dag(
    dag_id="churn_prepare",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=2,
    template_searchpath=[str(SQL_DIR)],
    params={
        **pipeline_params(dt_fallback="the run's logical date"),
        "reprocess": Param(False, type="boolean", description="Process even an input already published."),
    },
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
        bucket_key=[f"raw/customers/dt={DT}/customers.csv*", f"raw/events/dt={DT}/events.jsonl*"],
        wildcard_match=True,
        deferrable=True,
        poke_interval=15,
        timeout=6 * 60 * 60,
    )
    claim = claim_partition(DT)
    plan = plan_partition(DT)
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
            "--contracts": to_job_argument(load_contracts()),  # include/contracts/: a bad one fails import
            "--input_customers": f"{LAKE}/raw/customers/dt={DT}/",
            "--input_events": f"{LAKE}/raw/events/dt={DT}/",
            "--output_features": f"{LAKE}/curated/churn_features/dt={DT}/version={VERSION}/",
            "--output_processed_events": f"{LAKE}/processed/events/dt={DT}/version={VERSION}/",
            "--output_quarantine": f"{LAKE}/quarantine/churn/dt={DT}/version={VERSION}/",
            "--output_metrics": f"{LAKE}/metrics/etl/dt={DT}/version={VERSION}/",
        },
        deferrable=True,
        waiter_delay=30,
    )
    checks = [
        QualityCheckOperator(
            task_id=f"check_{spec.name}",
            check_file=spec.path,
            database="{{ params.glue_database }}",
            output_location=f"{LAKE}/athena-results/",
            workgroup="{{ params.athena_workgroup }}",
            dt=DT,
            version=VERSION,
            results_bucket="{{ params.bucket }}",  # every verdict is a row of quality_results
            deferrable=True,
            sleep_time=5,
            retries=0,
        )
        for spec in load_checks(CHECKS_DIR)  # a malformed check file fails the DAG import, naming it
    ]
    unchanged = EmptyOperator(task_id="input_unchanged")
    finish = finish_partition(DT).as_teardown(setups=claim)

    wait_for_raw >> claim >> plan >> [register_raw, unchanged]
    register_raw >> etl >> checks >> publish_partition(DT) >> finish


churn_prepare()
