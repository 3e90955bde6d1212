"""Train → register → approve → deploy → smoke test, on the curated partition that triggered the run.

Runs when `churn_prepare` publishes a checked `churn_features` partition (or manually with
`{"dt": "YYYY-MM-DD"}`); it reads the partition where the Glue Data Catalog publishes it:
1. **train** — SageMaker training job (scikit-learn container, script mode, `include/training/train.py`).
   On the local target the same request runs the script in a subprocess with SageMaker's environment.
2. **evaluate** — stores the job's `evaluation.json` beside the model and tracks the trial in MLflow
   (hyperparameters, metrics, the report; tags: training job, partition `dt` and its published version).
3. **register** — a version in the model package group (idempotent per model artefact), its metadata
   linking the MLflow run, the training job and the data partition.
4. **approve** — policy: approved when validation AUC reaches the approval floor, a deployment setting
   (Variable `sagelake_approval_policy`, else `SAGELAKE_APPROVAL_FLOOR` / `SAGELAKE_MIN_AUC`, default
   0.75) that a run's trigger cannot change; else rejected and deployment skipped.
5. **deploy** — endpoint create-or-update to the approved version.
6. **smoke_test** — invokes the endpoint with rows of the partition and checks the answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import dag, task

from sagelake.config.params import pipeline_params
from sagelake.config.settings import AWS_CONN_ID, TRAINING_DIR
from sagelake.lake.assets import curated_features
from sagelake.operators.sagemaker import (
    DeployEndpointOperator,
    ModelApprovalOperator,
    RegisterModelVersionOperator,
    SagelakeTrainingOperator,
)


@task
def partition(params: dict[str, Any], triggering_asset_events: Any = None) -> str:
    """The partition to train on (``dt`` param, else the triggering asset event)."""
    from sagelake.ml.lifecycle import resolve_dt

    events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
    return resolve_dt(params.get("dt"), events)


def curated_location(dt: str, params: dict[str, Any]) -> str:
    """Where the catalog publishes partition ``dt`` of ``churn_features`` (never a staged version)."""
    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

    from sagelake.lake.publish import published_location

    glue = GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()
    return published_location(glue, params["glue_database"], "churn_features", dt)


@task
def training_request(dt: str, params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Upload the training code and build the CreateTrainingJob request for this run."""
    from sagelake.lake.layout import Lake
    from sagelake.ml.aws_requests import training_request as build
    from sagelake.ml.images import sklearn_image_uri
    from sagelake.ml.lifecycle import publish_source_dir
    from sagelake.ml.naming import resource_name

    lake = Lake(params["bucket"])
    region = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn_region_name
    source_uri = publish_source_dir(S3Hook(aws_conn_id=AWS_CONN_ID).get_conn(), lake, TRAINING_DIR)
    return build(
        job_name=resource_name("churn", dt, run_id),
        role=params["sagemaker_role"],
        image_uri=sklearn_image_uri(region, params["training_instance_type"]),
        train_uri=curated_location(dt, params),
        output_uri=lake.model_output(),
        source_uri=source_uri,
        instance_type=params["training_instance_type"],
        hyperparameters={"max_iter": 200, "max_depth": 4, "learning_rate": 0.08, "seed": 42},
    )


@task(multiple_outputs=True)
def evaluate(
    training: dict[str, Any], dt: str, params: dict[str, Any], run_id: str, dag: Any = None
) -> dict[str, Any]:
    """Publish the evaluation report, track the trial in MLflow (parameters, metrics, the report, the
    data partition and version) and prepare the registration metadata, its lineage included."""
    import json
    import tempfile
    from pathlib import Path

    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

    from sagelake.lake.publish import published
    from sagelake.ml import tracking
    from sagelake.ml.aws_requests import model_package_extras
    from sagelake.ml.lifecycle import publish_evaluation

    job = training["Training"]
    summary = publish_evaluation(S3Hook(aws_conn_id=AWS_CONN_ID).get_conn(), job)
    current = published(
        GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn(), params["glue_database"], "churn_features", dt
    )
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "evaluation.json"
        report.write_text(
            json.dumps({"metrics": summary["metrics"], "uri": summary["evaluation_uri"]}, indent=2)
        )
        trial = tracking.log_trial(
            model_package_group=params["model_package_group"],
            training_job_name=summary["training_job"],
            dt=dt,
            version=current.version if current and current.version else "",
            hyperparameters=tracking.hyperparameters_from_request(job.get("HyperParameters", {})),
            metrics=summary["metrics"],
            model_artifact=summary["model_url"],
            dag_id=dag.dag_id if dag else None,
            airflow_run_id=run_id,
            artifacts=[report],
        )
    print(f"MLflow run {trial.run_id}: {trial.url or trial.tracking_uri}")
    summary["extras"] = model_package_extras(
        evaluation_uri=summary["evaluation_uri"],
        metrics=summary["metrics"],
        dt=dt,
        run_id=run_id,
        training_job=summary["training_job"],
    )
    summary["extras"]["CustomerMetadataProperties"].update(tracking.registry_lineage(trial))
    summary["mlflow"] = {**trial.to_dict(), "url": trial.url}
    return summary


@task
def endpoint_request(
    approval: dict[str, Any], dt: str, params: dict[str, Any], run_id: str
) -> dict[str, Any]:
    """Model + endpoint config + endpoint requests serving the approved package version."""
    from sagelake.ml.aws_requests import endpoint_request as build
    from sagelake.ml.lifecycle import package_container, package_version
    from sagelake.ml.naming import resource_name

    arn = approval["model_package_arn"]
    sagemaker = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn
    container, status = package_container(sagemaker, arn)
    if status != "Approved":
        raise ValueError(f"model package {arn} is {status}, not Approved: refusing to deploy it")
    name = resource_name("churn", dt, run_id, f"v{package_version(arn)}")
    return build(
        model_name=name,
        endpoint_config_name=name,
        endpoint_name=params["endpoint_name"],
        role=params["sagemaker_role"],
        image_uri=container["Image"],
        model_data_url=container["ModelDataUrl"],
        instance_type=params["endpoint_instance_type"],
    )


@task
def smoke_test(dt: str, params: dict[str, Any]) -> dict[str, Any]:
    """Invoke the endpoint over HTTP with real rows of the partition; fail on a malformed answer."""
    import json

    from sagelake.ml.lifecycle import check_predictions, sample_instances

    instances = sample_instances(S3Hook(aws_conn_id=AWS_CONN_ID).get_conn(), curated_location(dt, params))
    runtime = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker-runtime").conn
    response = runtime.invoke_endpoint(
        EndpointName=params["endpoint_name"],
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"instances": instances}),
    )
    predictions = check_predictions(json.loads(response["Body"].read()), len(instances))
    return {
        "endpoint": params["endpoint_name"],
        "instance": instances[0],
        "prediction": predictions[0],
        "variant": response.get("InvokedProductionVariant"),
    }


@dag(
    dag_id="churn_train_deploy",
    schedule=[curated_features()],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=pipeline_params(dt_fallback="the triggering asset event's"),
    default_args={
        "owner": "ml-engineering",
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "aws_conn_id": AWS_CONN_ID,
    },
    tags=["sagelake", "sagemaker", "training", "deployment"],
    doc_md=__doc__,
)
def churn_train_deploy() -> None:
    dt = partition()
    train = SagelakeTrainingOperator(
        task_id="train",
        config=training_request(dt),
        wait_for_completion=True,
        deferrable=True,
        check_interval=30,
        print_log=False,
    )
    evaluation = evaluate(train.output, dt)
    register = RegisterModelVersionOperator(
        task_id="register",
        image_uri=evaluation["image_uri"],
        model_url=evaluation["model_url"],
        package_group_name="{{ params.model_package_group }}",
        package_group_desc="Customer churn classifier (sagelake)",
        package_desc="trained on churn_features dt={{ ti.xcom_pull(task_ids='partition') }}",
        extras=evaluation["extras"],
    )
    approve = ModelApprovalOperator(task_id="approve", model_package_arn=register.output)
    deploy = DeployEndpointOperator(
        task_id="deploy",
        config=endpoint_request(approve.output, dt),
        operation="create",
        wait_for_completion=True,
        deferrable=True,
        check_interval=15,
    )
    deploy >> smoke_test(dt)


churn_train_deploy()
