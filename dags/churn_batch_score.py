"""Score every customer of a published day with the model production serves → `churn_scores` in the lake.

Runs when `churn_prepare` publishes a checked `churn_features` partition (or manually with
`{"dt": "YYYY-MM-DD"}`); the day is read where the Glue Data Catalog publishes it.

**Which model.** The one the production endpoint (deployment setting `SAGELAKE_ENDPOINT`) serves, not the
newest Approved package version: an approved version that the deployment has not promoted yet (a person
approved it and the deploy failed, or it awaits a later run) is not what customers are scored with in real
time, and a daily batch that answered differently from the endpoint for the same customer would be two
truths. Batch and real-time scores of a day come from one model, and each row names it (model package
version and artefact). With no production endpoint yet, the run skips.

1. **partition** — the day: the `dt` param, else the triggering asset event's.
2. **transform_input** — the serving model (endpoint → config → model) and the day's published rows,
   written under a run-scoped `batch/churn_scores/dt=…/run=…/` prefix in the model's protocol: JSON lines of
   `{"instances": [...]}` for a script-mode model (its `inference.py`), headerless CSV in the training
   channels' encoding for built-in XGBoost; the customer ids beside it, in the same order.
3. **transform_job** — the CreateTransformJob request (`sagelake.ml.batch.transform_request`) naming the
   serving model; job names come from the run, so retries and backfills never collide.
4. **score** — a SageMaker batch transform job (deferrable on AWS). Locally the same model artefact and
   inference code score the rows (`local/transform_runner.py`: the script in the container's framework
   environment, or the xgboost library), write `<input>.out` where SageMaker would, and the job is recorded
   as Completed.
5. **publish_scores** — outputs joined with the ids by position (a count mismatch fails the run),
   `curated/churn_scores/dt=<dt>/version=<v>/part-0.parquet` (customer_id, churn_probability,
   model_package_arn, model_url, transform_job, scored_at) published as partition `dt` of the
   `churn_scores` table (one catalog switch), an asset event `churn_scores` with `{dt, version, location}`;
   then the day's older score versions and this run's scratch prefix are deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import dag, task

from sagelake.config.params import pipeline_params, task_defaults
from sagelake.config.settings import AWS_CONN_ID, deployment_settings
from sagelake.lake.assets import churn_scores, curated_features
from sagelake.operators.sagemaker_transform import SagelakeTransformOperator

DEPLOYMENT = deployment_settings()  # the production endpoint and the registry group: not run params
SCORES = churn_scores()


def sagemaker_client() -> Any:
    return AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn


def s3_client() -> Any:
    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


def glue_client() -> Any:
    return GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()


@task
def partition(params: dict[str, Any], triggering_asset_events: Any = None) -> str:
    """The day to score (``dt`` param, else the triggering asset event)."""
    from sagelake.ml.lifecycle import resolve_dt

    events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
    return resolve_dt(params.get("dt"), events)


@task
def transform_input(dt: str, params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The production model and the day's rows, prepared as that model's transform input."""
    from airflow.sdk.exceptions import AirflowSkipException

    from sagelake.lake.publish import published_location
    from sagelake.ml.batch import batch_prefix, prepare_transform_input
    from sagelake.ml.naming import run_suffix
    from sagelake.ml.serving import serving_model
    from sagelake.ml.training_data import read_partition
    from sagelake.operators.sagemaker import find_model_package

    sagemaker = sagemaker_client()
    model = serving_model(sagemaker, DEPLOYMENT["endpoint_name"])
    if model is None:
        raise AirflowSkipException(
            f"no production endpoint {DEPLOYMENT['endpoint_name']} yet: nothing scores"
        )
    location = published_location(glue_client(), params["glue_database"], "churn_features", dt)
    s3 = s3_client()
    frame = read_partition(s3, location)
    prefix = batch_prefix(params["bucket"], dt, run_suffix(run_id))
    prepared = prepare_transform_input(s3, frame, prefix, builtin_xgboost=model.builtin_xgboost)
    package = find_model_package(sagemaker, DEPLOYMENT["model_package_group"], model.model_url) or ""
    print(f"scoring {prepared['rows']} rows of {location} with {model.model_url} ({package or 'no package'})")
    return {**prepared, "model": model.to_dict(), "features_location": location, "model_package_arn": package}


@task
def transform_job(prepared: dict[str, Any], dt: str, params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The CreateTransformJob request: the serving model over the prepared input."""
    from sagelake.ml.batch import transform_request
    from sagelake.ml.naming import resource_name

    return transform_request(
        job_name=resource_name("churn-score", dt, run_id),
        model_name=prepared["model"]["model_name"],
        input_uri=prepared["input_uri"],
        output_uri=prepared["output_uri"],
        content_type=prepared["content_type"],
        instance_type=params["endpoint_instance_type"],
    )


@task(outlets=[SCORES])
def publish_scores(
    scored: dict[str, Any],
    prepared: dict[str, Any],
    dt: str,
    params: dict[str, Any],
    run_id: str,
    outlet_events: Any = None,
) -> dict[str, Any]:
    """Join the outputs with the customer ids, write the day's scores and publish them in the catalog."""
    from sagelake.lake.layout import Lake
    from sagelake.lake.publish import clean_versions, delete_prefix, new_version
    from sagelake.ml import batch

    s3, glue = s3_client(), glue_client()
    transform = scored["Transform"]
    ids, scores = batch.read_scores(s3, prepared, transform)
    now = datetime.now(UTC)
    frame = batch.scores_frame(
        ids,
        scores,
        model_package_arn=prepared["model_package_arn"],
        model_url=prepared["model"]["model_url"],
        transform_job=transform["TransformJobName"],
        scored_at=now.isoformat(timespec="seconds"),
    )
    version = new_version(run_id, now)
    location = batch.publish_scores(
        s3,
        glue,
        params["glue_database"],
        Lake(params["bucket"]),
        dt,
        frame,
        version=version,
        run_id=run_id,
        fingerprint=batch.scores_fingerprint(prepared["features_location"], prepared["model"]["model_url"]),
    )
    announced = {"dt": dt, "version": version, "location": location}
    outlet_events[SCORES].extra = announced
    partition_uri = batch.scores_partition(params["bucket"], dt)
    stale = clean_versions(
        s3, glue, params["glue_database"], {batch.SCORES_TABLE: partition_uri}, dt, anchor=batch.SCORES_TABLE
    )
    delete_prefix(s3, prepared["prefix"])  # this run's input, ids and outputs: scratch
    print(f"published {len(frame)} scores at {location}; mean {frame['churn_probability'].mean():.4f}")
    print(f"deleted {len(stale)} older version(s) of dt={dt}")
    return {**announced, "rows": len(frame)}


@dag(
    dag_id="churn_batch_score",
    schedule=[curated_features()],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=pipeline_params(
        "the triggering asset event's", "bucket", "glue_database", "endpoint_instance_type"
    ),
    default_args=task_defaults("ml-engineering"),
    tags=["sagelake", "sagemaker", "inference", "batch"],
    doc_md=__doc__,
)
def churn_batch_score() -> None:
    dt = partition()
    prepared = transform_input(dt)
    score = SagelakeTransformOperator(
        task_id="score",
        config=transform_job(prepared, dt),
        wait_for_completion=True,
        deferrable=True,
        check_interval=30,
    )
    publish_scores(score.output, prepared, dt)


churn_batch_score()
