"""Tune → evaluate against the champion → register → decide (policy or a person) → deploy → smoke test.

Runs when `churn_prepare` publishes a checked `churn_features` partition, when `churn_drift` finds that
a partition or the endpoint's traffic drifted from the serving model's baseline (or manually with
`{"dt": "YYYY-MM-DD"}`, and `{"algorithm": "xgboost"}` for SageMaker's built-in XGBoost instead of the
scikit-learn script); every partition is read where the Glue Data Catalog publishes it:
1. **training_data** — the window: the last N published partitions up to `dt`; a fixed, hash-chosen
   share of the newest day's customers is held out (never trained on); the rest become the channels
   (Parquet for script mode, label-first CSV for built-in XGBoost) with a validation share for tuning;
   **drift_baseline** writes the window's statistics, the baseline `churn_drift` compares new data with.
2. **tune** — a SageMaker hyperparameter tuning job (Bayesian by default; the objective `validation:auc`
   parsed from each trial's log). Locally every trial really trains, at most as many at once as cores.
3. **best_model** — the best trial's model; every trial is tracked in MLflow (parameters, metrics, model).
4. **evaluate** — a SageMaker Processing job scores the best trial **and the champion** (the model the
   production endpoint serves) on the held-out rows: metrics JSON, ROC / PR / confusion / calibration
   plots and an HTML page in the lake, logged to the trial's MLflow run. A champion of the other kind
   (script mode vs built-in XGBoost: no container scores both) is not scored, and a person decides.
5. **register** — a version in the model package group, `ModelMetrics` pointing at the report, metadata
   linking the MLflow run, the training job and the data partition.
6. **decide** — the approval policy (Variable `sagelake_approval_policy` / `SAGELAKE_APPROVAL_*`: a
   deployment setting no trigger can change): approve, reject, or ask a person. Only the newest published
   partition may promote by policy; backfills and reprocessing of old days ask a person.
7. **approved_by_policy** / **ask_a_person** (Required Actions page: both models side by side, the report
   link; no answer within `SAGELAKE_APPROVAL_TIMEOUT_MINUTES` rejects) / **rejected** — the grid shows the
   outcome; the decision, who made it and why are written to the registry.
8. **deploy** — the production endpoint (a deployment setting) create-or-update to the approved version:
   its own model and endpoint config, a blue/green update (canary or linear traffic shifting, a baking
   period, automatic rollback on the endpoint's CloudWatch alarms: `SAGELAKE_DEPLOY_*`); the task fails if
   SageMaker rolled it back.
9. **smoke_test** — invokes the endpoint with held-out rows and checks the answer; a failed answer puts
   the endpoint back on the config it served before.
10. **autoscale** — the serving variant's target tracking on invocations per instance
   (`SAGELAKE_ENDPOINT_*_INSTANCES`, `SAGELAKE_ENDPOINT_TARGET_INVOCATIONS`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import TriggerRule, dag, task

from sagelake.config.params import param, pipeline_params, task_defaults
from sagelake.config.settings import AWS_CONN_ID, deployment_settings, model_settings, rollout_settings
from sagelake.lake.assets import curated_features
from sagelake.ml.algorithms import ALGORITHMS
from sagelake.ml.retraining import retraining_requested
from sagelake.monitoring.notifications import deadline_alert
from sagelake.operators.sagemaker import (
    DeployEndpointOperator,
    ModelApprovalOperator,
    PersonApprovalOperator,
    RegisterModelVersionOperator,
)
from sagelake.operators.sagemaker_processing import SagelakeProcessingOperator
from sagelake.operators.sagemaker_tuning import SagelakeTuningOperator

DEPLOYMENT = deployment_settings()  # roles, production endpoint, registry group: not run params
MODEL = model_settings()  # window, holdout, tuning limits, approval timeout: not run params
ROLLOUT = rollout_settings()  # traffic shifting, rollback alarms, autoscaling bounds: not run params


def sagemaker_client() -> Any:
    return AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn


def s3_client() -> Any:
    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


@task
def partition(params: dict[str, Any], triggering_asset_events: Any = None) -> str:
    """The partition to train for (``dt`` param, else the triggering asset event)."""
    from sagelake.ml.lifecycle import resolve_dt

    events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
    return resolve_dt(params.get("dt"), events)


@task
def training_data(dt: str, params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Write the window's channels and held-out rows under ``training/`` for this run."""
    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

    from sagelake.lake.layout import Lake
    from sagelake.lake.publish import published, published_partitions
    from sagelake.ml.algorithms import algorithm
    from sagelake.ml.naming import run_suffix
    from sagelake.ml.training_data import prepare_training_data

    spec = algorithm(params["algorithm"])
    glue = GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()
    data = prepare_training_data(
        s3_client(),
        published_partitions(glue, params["glue_database"], "churn_features"),
        Lake(params["bucket"]).training_data(dt, run_suffix(run_id)),
        days=int(MODEL["window_days"]),
        layout=spec.layout,
        as_of=dt,
        holdout_share=float(MODEL["holdout_share"]),
        validation_share=float(MODEL["validation_share"]),
    )
    newest = published(glue, params["glue_database"], "churn_features", data.window.newest)
    print(f"window {sorted(data.window.days)}; rows {data.rows}; held out: {data.holdout_uri}")
    return {**data.to_dict(), "algorithm": spec.name, "version": newest.version if newest else ""}


@task
def drift_baseline(data: dict[str, Any], dt: str, params: dict[str, Any], run_id: str) -> dict[str, str]:
    """The training window's drift baseline (Model Monitor's statistics.json / constraints.json), which
    ``churn_drift`` compares each new partition and the endpoint's traffic with."""
    from sagelake.config.settings import drift_settings
    from sagelake.ml.drift import Thresholds
    from sagelake.ml.drift_store import baseline_id, write_training_baseline

    return write_training_baseline(
        s3_client(),
        params["bucket"],
        baseline_id(dt, run_id),
        data["window"],
        Thresholds.from_settings(drift_settings()),
        run_id=run_id,
    )


@task
def tuning_job(data: dict[str, Any], dt: str, params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request: the algorithm's ranges over this run's channels."""
    from sagelake.config.settings import TRAINING_DIR, spot_training_settings
    from sagelake.lake.layout import Lake
    from sagelake.ml.algorithms import algorithm, training_definition, tuning_config
    from sagelake.ml.lifecycle import publish_source_dir
    from sagelake.ml.naming import resource_name

    spec = algorithm(data["algorithm"])
    lake = Lake(params["bucket"])
    source = publish_source_dir(s3_client(), lake, TRAINING_DIR) if spec.layout == "parquet" else None
    region = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn_region_name
    name = resource_name("churn", dt, run_id)
    training = training_definition(
        spec,
        job_name=name,
        role=DEPLOYMENT["sagemaker_role"],
        region=region,
        instance_type=params["training_instance_type"],
        channels=data["channels"],
        output_uri=lake.model_output(),
        source_uri=source,
        spot=spot_training_settings(),  # deployment setting: SAGELAKE_SPOT_TRAINING
    )
    return tuning_config(
        spec,
        job_name=name,
        training=training,
        max_jobs=int(MODEL["tuning_max_jobs"]),
        max_parallel=int(MODEL["tuning_max_parallel"]),
        strategy=str(MODEL["tuning_strategy"]),
        random_seed=42,
    )


@task
def best_model(
    tuning: dict[str, Any], data: dict[str, Any], dt: str, run_id: str, dag: Any = None
) -> dict[str, Any]:
    """Track every trial in MLflow (hyperparameters, final metrics, the job's description as an
    artefact); return the best trial's job, model and final metrics."""
    import json
    import tempfile
    from pathlib import Path

    from sagelake.ml import tracking
    from sagelake.ml.spot import billing_log_line
    from sagelake.ml.tuning import best_training_job_name

    sagemaker = sagemaker_client()
    name = tuning["Tuning"]["HyperParameterTuningJobName"]
    pages = sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name
    )
    best_name = best_training_job_name(tuning)
    best: dict[str, Any] = {}
    for summary in [s for page in pages for s in page["TrainingJobSummaries"]]:
        if summary["TrainingJobStatus"] != "Completed":
            continue
        job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        print(billing_log_line(job))
        with tempfile.TemporaryDirectory() as folder:
            record = Path(folder) / "training_job.json"  # the job as SageMaker describes it
            record.write_text(json.dumps(job, indent=2, sort_keys=True, default=str))
            trial = tracking.log_trial(
                model_package_group=DEPLOYMENT["model_package_group"],
                training_job_name=job["TrainingJobName"],
                dt=dt,
                version=data["version"],
                hyperparameters=tracking.hyperparameters_from_request(job.get("HyperParameters", {})),
                metrics=tracking.metrics_from_description(job),
                model_artifact=job["ModelArtifacts"]["S3ModelArtifacts"],
                dag_id=dag.dag_id if dag else None,
                airflow_run_id=run_id,
                artifacts=[record],
                tags={
                    "sagelake.tuning_job": name,
                    "sagelake.best_trial": str(job["TrainingJobName"] == best_name),
                },
            )
        if job["TrainingJobName"] == best_name:
            best = {
                "training_job": best_name,
                "image_uri": job["AlgorithmSpecification"]["TrainingImage"],
                "model_url": job["ModelArtifacts"]["S3ModelArtifacts"],
                "metrics": tracking.metrics_from_description(job),
                "mlflow": {**trial.to_dict(), "url": trial.url},
            }
    if not best:
        raise ValueError(f"tuning job {name}: best trial {best_name} is not among its completed trials")
    print(f"best trial {best_name}: {best['metrics']}; MLflow run {best['mlflow']['url']}")
    return best


@task
def evaluation_job(
    best: dict[str, Any], data: dict[str, Any], dt: str, params: dict[str, Any], run_id: str
) -> dict[str, Any]:
    """The CreateProcessingJob request scoring the best trial and the champion on the held-out rows."""
    from sagelake.config.target import is_local
    from sagelake.ml import evaluation
    from sagelake.ml.images import is_builtin_xgboost_model
    from sagelake.ml.naming import resource_name
    from sagelake.ml.serving import serving_model

    champion = serving_model(sagemaker_client(), DEPLOYMENT["endpoint_name"])
    builtin = is_builtin_xgboost_model({"Image": best["image_uri"]})
    if champion and champion.builtin_xgboost != builtin:
        # no container runs both kinds of model: the challenger alone, and `decide` asks a person
        print(f"champion {champion.model_url} is another kind of model: not scored")
        champion = None
    name = resource_name("churn-eval", dt, run_id)
    image = evaluation.evaluation_image_uri(
        AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn_region_name,
        params["training_instance_type"],
        challenger_builtin_xgboost=builtin,
        champion_builtin_xgboost=builtin if champion else None,
        local=is_local(),
    )
    print(f"champion: {champion.model_url if champion else 'none scored'}")
    return evaluation.evaluation_request(
        job_name=name,
        role=DEPLOYMENT["sagemaker_role"],
        image_uri=image,
        code_uri=evaluation.publish_evaluation_code(s3_client(), params["bucket"]),
        challenger_model_uri=best["model_url"],
        champion_model_uri=champion.model_url if champion else None,
        holdout_uri=data["holdout_uri"],
        report_uri=evaluation.report_prefix(params["bucket"], dt, name),
        instance_type=params["training_instance_type"],
    )


@task(multiple_outputs=True)
def track_evaluation(
    evaluated: dict[str, Any], best: dict[str, Any], data: dict[str, Any], dt: str, run_id: str
) -> dict[str, Any]:
    """Log the report into the best trial's MLflow run; prepare the registration's metrics and lineage."""
    import tempfile
    from pathlib import Path

    from sagelake.config.target import is_local
    from sagelake.lake.links import report_link
    from sagelake.ml import tracking
    from sagelake.ml.aws_requests import model_package_extras
    from sagelake.ml.evaluation import model_metrics, read_report, report_files
    from sagelake.monitoring.emit import emit_model

    report_uri = evaluated["Processing"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    s3 = s3_client()
    report = read_report(s3, report_uri)
    challenger = report["models"]["challenger"]
    champion = (report["models"] or {}).get("champion")
    with tempfile.TemporaryDirectory() as folder:
        trial = tracking.log_evaluation(
            model_package_group=DEPLOYMENT["model_package_group"],
            training_job_name=best["training_job"],
            metrics={k: v for k, v in challenger.items() if isinstance(v, int | float)},
            champion_metrics={k: v for k, v in (champion or {}).items() if isinstance(v, int | float)},
            report_uri=report_uri,
            report_files=tracking.download_prefix(s3, report_uri, Path(folder)),
        )
    extras = model_package_extras(
        evaluation_uri=report_files(report_uri)["model_quality"],
        metrics={k: v for k, v in challenger.items() if isinstance(v, int | float)},
        dt=dt,
        run_id=run_id,
        training_job=best["training_job"],
    )
    extras["ModelMetrics"] = model_metrics(report_uri)
    extras["CustomerMetadataProperties"].update(tracking.registry_lineage(trial))
    extras["CustomerMetadataProperties"]["train_days"] = ",".join(data["train_days"])[:256]
    html = report_files(report_uri)["html"]
    region = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn_region_name
    link = report_link(s3, html, region, local=is_local())
    print(f"evaluation report: {html}\n  open: {link}")
    emit_model(report["models"], DEPLOYMENT["model_package_group"])  # ModelQuality in CloudWatch
    return {"report_uri": report_uri, "extras": extras, "report_html": html, "report_url": link}


@task.branch
def route(decision: dict[str, Any]) -> str:
    """Follow the decision: ``approved_by_policy``, ``ask_a_person`` or ``rejected``."""
    return {"approve": "approved_by_policy", "ask": "ask_a_person", "reject": "rejected"}[decision["outcome"]]


@task
def approval_request(decision: dict[str, Any], report_url: str, dt: str) -> str:
    """What the person sees: both models' metrics side by side, why the policy asks, the report."""
    from sagelake.ml.approval import comparison_markdown
    from sagelake.ml.policy import Decision

    return comparison_markdown(
        decision["challenger"],
        decision["champion"],
        decision=Decision(decision["outcome"], decision["reasons"]),
        report_url=report_url,
        package_arn=decision["model_package_arn"],
        dt=dt,
    )


@task
def endpoint_request(register_arn: str, dt: str, params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Model + endpoint config + endpoint requests serving the approved package version."""
    from sagelake.ml.aws_requests import endpoint_request as build
    from sagelake.ml.deployment import deployment_config
    from sagelake.ml.drift_store import capture_destination
    from sagelake.ml.lifecycle import package_container, package_version
    from sagelake.ml.naming import resource_name

    container, status = package_container(sagemaker_client(), register_arn)
    if status != "Approved":
        raise ValueError(f"model package {register_arn} is {status}, not Approved: refusing to deploy it")
    name = resource_name("churn", dt, run_id, f"v{package_version(register_arn)}")
    return build(
        model_name=name,
        endpoint_config_name=name,
        endpoint_name=DEPLOYMENT["endpoint_name"],
        role=DEPLOYMENT["sagemaker_role"],
        image_uri=container["Image"],
        model_data_url=container["ModelDataUrl"],
        instance_type=params["endpoint_instance_type"],
        instance_count=ROLLOUT.instance_count,
        data_capture_uri=capture_destination(params["bucket"]),  # what churn_drift reads
        deployment_config=deployment_config(ROLLOUT),
    )


@task
def smoke_test(data: dict[str, Any], deployed: dict[str, Any]) -> dict[str, Any]:
    """Invoke the production endpoint over HTTP with held-out rows; on a failed or malformed answer, put
    it back on the config it served before and fail (no retry: production is as it was)."""
    from airflow.sdk.exceptions import AirflowFailException

    from sagelake.ml.deployment import RolledBackError, smoke_test_or_roll_back

    runtime = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker-runtime").conn
    try:
        return smoke_test_or_roll_back(
            sagemaker_client(),
            runtime,
            s3_client(),
            DEPLOYMENT["endpoint_name"],
            deployed["EndpointConfig"]["EndpointConfigName"],
            data["holdout_uri"],
        )
    except RolledBackError as error:
        raise AirflowFailException(str(error)) from error


@task
def autoscale(deployed: dict[str, Any]) -> dict[str, Any]:
    """Target tracking on invocations per instance for each serving variant (register + policy: upserts)."""
    from sagelake.ml.deployment import apply_autoscaling

    client = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="application-autoscaling").conn
    return {
        variant["VariantName"]: apply_autoscaling(
            client, DEPLOYMENT["endpoint_name"], variant["VariantName"], ROLLOUT
        )
        for variant in deployed["EndpointConfig"]["ProductionVariants"]
    }


@dag(
    dag_id="churn_train_deploy",
    schedule=curated_features() | retraining_requested(),  # each published day, or drift
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        **pipeline_params(
            "the triggering asset event's",
            "bucket",
            "glue_database",
            "training_instance_type",
            "endpoint_instance_type",
        ),
        "algorithm": param(
            str(MODEL["algorithm"]),
            enum=list(ALGORITHMS),
            description="sklearn: script mode (scikit-learn container); xgboost: built-in XGBoost.",
        ),
    },
    default_args=task_defaults("ml-engineering"),
    deadline=deadline_alert("churn_train_deploy"),
    tags=["sagelake", "sagemaker", "training", "deployment"],
    doc_md=__doc__,
)
def churn_train_deploy() -> None:
    dt = partition()
    data = training_data(dt)
    baseline = drift_baseline(data, dt)
    tune = SagelakeTuningOperator(
        task_id="tune",
        config=tuning_job(data, dt),
        wait_for_completion=True,
        deferrable=True,
        check_interval=30,
    )
    baseline >> tune
    best = best_model(tune.output, data, dt)
    evaluate = SagelakeProcessingOperator(
        task_id="evaluate",
        config=evaluation_job(best, data, dt),
        wait_for_completion=True,
        deferrable=True,
        check_interval=30,
    )
    evaluation = track_evaluation(evaluate.output, best, data, dt)
    register = RegisterModelVersionOperator(
        task_id="register",
        image_uri=best["image_uri"],
        model_url=best["model_url"],
        package_group_name=DEPLOYMENT["model_package_group"],
        package_group_desc="Customer churn classifier (sagelake)",
        package_desc="trained on churn_features up to dt={{ ti.xcom_pull(task_ids='partition') }}",
        extras=evaluation["extras"],
    )
    decide = ModelApprovalOperator(
        task_id="decide",
        model_package_arn=register.output,
        report_uri=evaluation["report_uri"],
        dt=dt,
        database="{{ params.glue_database }}",
        endpoint_name=DEPLOYMENT["endpoint_name"],
    )
    approved = EmptyOperator(task_id="approved_by_policy")
    ask = PersonApprovalOperator(
        task_id="ask_a_person",
        subject="Deploy churn model for dt={{ ti.xcom_pull(task_ids='partition') }} to production?",
        body=approval_request(decide.output, evaluation["report_url"], dt),
        model_package_arn=register.output,
        response_timeout=timedelta(minutes=int(MODEL["approval_timeout_minutes"])),
    )
    rejected = EmptyOperator(task_id="rejected")
    route(decide.output) >> [approved, ask, rejected]
    # either approval promotes; a person's Reject skips it, and so does the policy's rejection
    promote = EmptyOperator(task_id="promote", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    request = endpoint_request(register.output, dt)
    [approved, ask] >> promote >> request
    deploy = DeployEndpointOperator(
        task_id="deploy",
        config=request,
        operation="create",
        wait_for_completion=True,
        deferrable=True,
        check_interval=15,
    )
    smoke_test(data, deploy.output) >> autoscale(deploy.output)


churn_train_deploy()
