"""Ingest → prepare → audit → publish: one day's raw files become a curated, checked feature partition.

For one partition `dt`: the run's logical date, or the `dt` in its conf (runs started by an S3
"Object Created" event through the EventBridge webhook or the `eventbridge_sqs` DAG carry the object's
partition there, with the event under `event`). Readers never see a partition before it passed its checks
(write–audit–publish):
1. **wait_for_raw_files** — deferrable S3 sensor on `raw/customers/dt=…/customers.csv*` and
   `raw/events/dt=…/events.jsonl*` (`.gz` too).
2. **plan_partition** — one run per partition: it takes a lease in S3 (`locks/churn_prepare/dt=….json`),
   or waits (rescheduled) while another run of the same day holds it (the day's second file, the
   schedule, a backfill). Then it fingerprints the raw objects and the code and ends the run at
   **input_unchanged** if that fingerprint is already published (param `reprocess` forces the work);
   else it registers the day's raw partitions (tables as code; raw columns from the contracts in
   `include/contracts/`) and a new version id, staged as partition `dt` of the `*_staged` tables the
   checks read.
3. **glue_churn_features** — the Glue job `include/glue/churn_features.py` checks every raw file against
   its contract (columns bound by name; a missing required column, an empty file or content that does not
   match its name fails before anything is written; added columns are reported as schema drift), cleans,
   quarantines and aggregates into `…/dt=…/version=<version>/` of each output, a location nobody reads yet.
   On the local target it runs on local Spark.
4. **check_*** — the Athena checks of `include/sql/checks/` audit the staged version; a failing `error`
   check fails the run and nothing is published. Each verdict, with the bytes its query scanned, is a
   row of the `quality_results` table (partition `dt`; a re-run replaces its own rows).
5. **publish_partition** — switches partition `dt` of `churn_quarantine`, `etl_metrics` and, last,
   `churn_features` to the audited version (one `UpdatePartition` each), emits the `churn_features`
   asset event (`extra`: `dt`, `version`, `location`) that starts `churn_train_deploy`, then deletes the
   day's other versions (never the published one) and frees the partition. It puts the rows published
   and the quarantine ratio in CloudWatch; each check puts its verdict (docs/monitoring.md).
6. **abandon_partition** — only after a failed ETL or check (`one_failed`): deletes the attempt's
   unpublished version and frees the partition, if this run holds it. (A publication that fails for good
   frees the partition from its failure callback; the next run of the day cleans up.)

Re-runs and backfills are safe: a failed or killed run leaves the published version untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import TriggerRule, dag, task

from sagelake.config.params import param, pipeline_params, task_defaults
from sagelake.config.settings import AWS_CONN_ID, CHECKS_DIR, GLUE_SCRIPT, SQL_DIR, deployment_settings
from sagelake.lake.assets import curated_features
from sagelake.lake.contracts import load_contracts, to_job_argument
from sagelake.ml.aws_requests import glue_job_kwargs
from sagelake.monitoring.emit import emit_check_verdict
from sagelake.monitoring.notifications import deadline_alert, notify_failure
from sagelake.operators.athena import QualityCheckOperator
from sagelake.operators.glue import SagelakeGlueJobOperator
from sagelake.quality.checks import load_checks

CURATED = curated_features()
DT = "{{ params.dt or ds }}"  # an event's partition (conf "dt"), else the logical date's
LAKE = "s3://{{ params.bucket }}"
VERSION = "{{ ti.xcom_pull(task_ids='plan_partition', key='plan')['version'] }}"
LOCKED_DATASET = "churn_prepare"
CLAIM_RETRY = timedelta(seconds=15)  # how often a run waiting for its partition tries again


def clients() -> tuple[Any, Any]:
    """S3 and Glue clients of the ``aws_default`` connection."""
    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn(), GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()


@task.branch
def plan_partition(dt: str, params: dict[str, Any], run_id: str, ti: Any = None) -> str:
    """Claim the partition, then plan this attempt (XCom ``plan``): a new version, staged for the audit,
    the input fingerprint, the day's raw partitions registered.

    While another run holds the partition, the task is rescheduled (every 15 s, at most until that run's
    lease expires). Ends the run at ``input_unchanged`` (freeing the partition) when the published version
    came from the same input and code, unless ``reprocess``.
    """
    from airflow.sdk.exceptions import AirflowRescheduleException

    from sagelake.config.settings import CONTRACTS_DIR, partition_lease
    from sagelake.lake import catalog
    from sagelake.lake.layout import Lake
    from sagelake.lake.partition_lock import lock_key, release, try_acquire
    from sagelake.lake.publish import input_fingerprint, new_version, published, stage, version_location

    s3, glue = clients()
    lake, database, lock = Lake(params["bucket"]), params["glue_database"], lock_key(LOCKED_DATASET, dt)
    claim = try_acquire(s3, lake.bucket, lock, run_id, partition_lease())
    if not claim.acquired:
        print(f"dt={dt} is being processed by {claim.holder.owner} (lease until {claim.holder.expires_at})")
        raise AirflowRescheduleException(datetime.now(UTC) + CLAIM_RETRY)
    code = [GLUE_SCRIPT.read_bytes(), *(path.read_bytes() for path in sorted(CONTRACTS_DIR.glob("*.json")))]
    fingerprint = input_fingerprint(s3, [lake.raw_customers(dt), lake.raw_events(dt)], code)
    current = published(glue, database, "churn_features", dt)
    if current is not None and current.fingerprint == fingerprint and not params["reprocess"]:
        print(f"dt={dt}: version {current.version} was published from the same input and code")
        release(s3, lake.bucket, lock, run_id)
        return "input_unchanged"
    version = new_version(run_id, datetime.now(UTC))
    catalog.register_partitions(glue, database, lake, dt, ["raw_customers", "raw_events"])
    partitions = output_partitions(params["bucket"], dt)
    locations = {t: version_location(partitions[t], version) for t in catalog.PUBLISHED_TABLES}
    stage(glue, database, locations, dt)  # the checks read these; readers never do
    ti.xcom_push(key="plan", value={"version": version, "fingerprint": fingerprint, "locations": locations})
    return "glue_churn_features"


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


def release_partition(context: Any) -> None:
    """``publish_partition``'s failure callback: free the day (its retries are over) for the next run."""
    from sagelake.lake.partition_lock import lock_key, release

    s3, _ = clients()
    params = context["params"]
    dt = params.get("dt") or context["ds"]  # as DT renders
    release(s3, params["bucket"], lock_key(LOCKED_DATASET, dt), context["run_id"])


@task(outlets=[CURATED], on_failure_callback=[notify_failure, release_partition])
def publish_partition(
    dt: str, params: dict[str, Any], run_id: str, ti: Any = None, outlet_events: Any = None
) -> dict[str, str]:
    """Switch the readers' partitions to the audited version and announce it to the DAGs that read it;
    then delete the day's other versions and free the partition."""
    from sagelake.lake.publish import publish
    from sagelake.monitoring.emit import emit_published

    s3, glue = clients()
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
    clean_up(dt, params, run_id)
    emit_published(s3, plan["locations"]["etl_metrics"])  # rows published, quarantine ratio
    return announced


@task(trigger_rule=TriggerRule.ONE_FAILED)
def abandon_partition(dt: str, params: dict[str, Any], run_id: str) -> list[str]:
    """After a failure: delete the day's unpublished versions and free the partition, if this run holds
    it (a run that never claimed the day leaves another run's work alone)."""
    from sagelake.lake.partition_lock import holds, lock_key

    s3, _ = clients()
    if not holds(s3, params["bucket"], lock_key(LOCKED_DATASET, dt), run_id):
        print(f"dt={dt} is not held by this run: nothing to clean up")
        return []
    return clean_up(dt, params, run_id)


def clean_up(dt: str, params: dict[str, Any], run_id: str) -> list[str]:
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
        **pipeline_params(
            "the run's logical date", "bucket", "glue_database", "glue_job_name", "athena_workgroup"
        ),
        "reprocess": param(False, type="boolean", description="Process even an input already published."),
    },
    default_args=task_defaults("data-engineering", retries=2),
    deadline=deadline_alert("churn_prepare"),
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
    plan = plan_partition(DT)
    etl = SagelakeGlueJobOperator(
        task_id="glue_churn_features",
        job_name="{{ params.glue_job_name }}",
        script_location=str(GLUE_SCRIPT),
        s3_bucket="{{ params.bucket }}",
        iam_role_name=deployment_settings()["glue_role"],  # not a run param
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
            on_success_callback=emit_check_verdict,  # the verdict as CloudWatch metrics
            on_failure_callback=[notify_failure, emit_check_verdict],
        )
        for spec in load_checks(CHECKS_DIR)  # a malformed check file fails the DAG import, naming it
    ]
    unchanged = EmptyOperator(task_id="input_unchanged")
    publish = publish_partition(DT)

    wait_for_raw >> plan >> [etl, unchanged]
    etl >> checks >> publish
    [etl, *checks] >> abandon_partition(DT)  # publish stays a leaf: a failed audit fails the run


churn_prepare()
