"""MLflow tracking of the pipeline's trials: one experiment per model package group, one run per training job.

The tracking URI comes from configuration (``sagelake.config.settings.mlflow_settings``): on the ``aws``
target the ARN of a SageMaker managed MLflow tracking server — the ``sagemaker-mlflow`` plugin registers the
``arn`` scheme with MLflow (tracking store, SigV4 auth, routing header), so the ARN *is* the tracking URI;
locally the URL of the local stack's MLflow server (SQLite store, artefacts under ``.local/mlflow``).

Every function is idempotent on retries: a training job is found again by its tag
``sagelake.training_job`` and logged into the same run, never a second one. MLflow is imported inside the
functions only: DAG files import this module at parse time.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelake.config.settings import mlflow_settings
from sagelake.config.target import current_target
from sagelake.ml.metrics_log import final_metrics

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

# Tags every trial's run carries (the lineage MLflow side).
TAG_TRAINING_JOB = "sagelake.training_job"
TAG_MODEL_PACKAGE_GROUP = "sagelake.model_package_group"
TAG_DT = "sagelake.dt"
TAG_VERSION = "sagelake.version"
TAG_DAG_ID = "sagelake.dag_id"
TAG_AIRFLOW_RUN_ID = "sagelake.airflow_run_id"
TAG_MODEL_ARTIFACT = "sagelake.model_artifact"
TAG_EVALUATION_REPORT = "sagelake.evaluation_report"
TAG_CHAMPION = "sagelake.champion_model_package"
TAG_MODEL_PACKAGE = "sagelake.model_package_arn"

EVALUATION_PREFIX = "eval_"
CHAMPION_PREFIX = "champion_eval_"
EVALUATION_ARTIFACT_DIR = "evaluation"

# SageMaker's TrainingJobName pattern: also keeps the search filter free of quotes.
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name> (or mlflow-app/<id>)
_TRACKING_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:sagemaker:[a-z0-9-]+:\d{12}:(?:mlflow-tracking-server|mlflow-app)/[A-Za-z0-9-]+$"
)


class TrackingConfigError(ValueError):
    """The MLflow tracking configuration is missing or malformed (one actionable line)."""


class TrackingConflictError(RuntimeError):
    """A retry would change what a run already recorded (e.g. a hyperparameter's value)."""


# ---------------------------------------------------------------------------------------------------------
# configuration


def is_tracking_arn(uri: str) -> bool:
    """True if ``uri`` is a SageMaker managed MLflow ARN (the ``sagemaker-mlflow`` plugin's URI form)."""
    return uri.startswith("arn:")


def tracking_uri() -> str:
    """The tracking URI for the current target.

    ``aws``: ``SAGELAKE_MLFLOW_TRACKING_ARN`` (validated), else ``SAGELAKE_MLFLOW_TRACKING_URI`` (a server of
    your own). ``local``: ``SAGELAKE_MLFLOW_TRACKING_URI``, else the local stack's default address.
    """
    settings = mlflow_settings()
    arn, uri = settings["tracking_arn"], settings["tracking_uri"]
    if current_target() == "aws":
        if arn:
            if not _TRACKING_ARN.match(arn):
                raise TrackingConfigError(
                    f"SAGELAKE_MLFLOW_TRACKING_ARN={arn!r} is not the ARN of a SageMaker MLflow tracking "
                    "server (arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)"
                )
            return arn
        if uri:
            return uri
        raise TrackingConfigError(
            "no MLflow tracking server: set SAGELAKE_MLFLOW_TRACKING_ARN to the ARN of the SageMaker "
            "managed MLflow tracking server (or SAGELAKE_MLFLOW_TRACKING_URI to a server of your own)"
        )
    if uri:
        return uri
    port = settings["port"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise TrackingConfigError(f"SAGELAKE_MLFLOW_PORT={port!r} is not a TCP port")
    return f"http://127.0.0.1:{port}"


def client(uri: str | None = None) -> MlflowClient:
    """An ``MlflowClient`` on ``uri`` (default: :func:`tracking_uri`).

    Also sets MLflow's process-wide tracking URI: the ``sagemaker-mlflow`` plugin signs requests (SigV4)
    and adds its routing header from ``mlflow.get_tracking_uri()``, not from the client's URI.
    """
    import mlflow

    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    _quiet_plugin_header_noise()
    return mlflow.MlflowClient(tracking_uri=uri)


class _PluginHeaderNoise(logging.Filter):
    """Drops the warning MLflow logs on every request to a non-ARN server: the ``sagemaker-mlflow``
    header provider is always "in context" and fails to parse any other tracking URI as an ARN."""

    def filter(self, record: logging.LogRecord) -> bool:
        import mlflow

        noise = record.getMessage().startswith(
            "Encountered unexpected error during resolving request headers"
        )
        return not (noise and not is_tracking_arn(mlflow.get_tracking_uri()))


def _quiet_plugin_header_noise() -> None:
    logger = logging.getLogger("mlflow.tracking.request_header.registry")
    if not any(isinstance(f, _PluginHeaderNoise) for f in logger.filters):
        logger.addFilter(_PluginHeaderNoise())


def experiment_url(uri: str, experiment_id: str) -> str | None:
    """The MLflow UI page of an experiment on an HTTP server (``None`` for an ARN or a database URI:
    SageMaker's UI opens through a presigned URL, ``CreatePresignedMlflowTrackingServerUrl``)."""
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}"


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of a run on an HTTP server (``None`` otherwise, see :func:`experiment_url`)."""
    base = experiment_url(uri, experiment_id)
    return f"{base}/runs/{run_id}" if base else None


# ---------------------------------------------------------------------------------------------------------
# what a training job gives to log


def hyperparameters_from_request(hyperparameters: Mapping[str, str]) -> dict[str, str]:
    """A CreateTrainingJob ``HyperParameters`` map as the user set it: JSON-encoded values decoded (script
    mode encodes them), SageMaker's framework entries (``sagemaker_program``…) left out."""
    params = {}
    for key, raw in hyperparameters.items():
        if key.startswith("sagemaker_"):
            continue
        try:
            value = json.loads(raw)
        except (TypeError, ValueError):
            value = raw
        params[key] = value if isinstance(value, str) else json.dumps(value)
    return params


def metrics_from_log(
    log_text: str, metric_definitions: Iterable[Mapping[str, str]] | None = None
) -> dict[str, float]:
    """Final metrics from a training log, as SageMaker computes them: each ``MetricDefinitions`` regex's
    first group on every line, the last value wins; without definitions, ``name:part=value`` lines."""
    return final_metrics(log_text.splitlines(), metric_definitions)


def metrics_from_description(description: Mapping[str, Any]) -> dict[str, float]:
    """Final metrics of a ``DescribeTrainingJob`` answer (``FinalMetricDataList``)."""
    return {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList") or []}


def metrics_from_evaluation(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of an ``evaluation.json``'s ``metrics`` object."""
    return {
        k: float(v)
        for k, v in (evaluation.get("metrics") or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


# ---------------------------------------------------------------------------------------------------------
# experiments and runs


def _artifact_location(uri: str) -> str | None:
    """Artefacts of a direct SQLite store go beside its database file (MLflow's default would be
    ``./mlruns`` of the current directory); a server (HTTP, ARN) chooses its own."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()
    return (database.parent / "mlartifacts").as_uri()


def ensure_experiment(model_package_group: str, uri: str | None = None) -> str:
    """The id of the experiment of ``model_package_group`` (named after it), created or restored if needed."""
    uri = uri or tracking_uri()
    return _ensure_experiment(client(uri), uri, model_package_group)


def _ensure_experiment(mlflow_client: MlflowClient, uri: str, model_package_group: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = mlflow_client.get_experiment_by_name(model_package_group)
    if experiment is None:
        try:
            return mlflow_client.create_experiment(
                model_package_group,
                artifact_location=_artifact_location(uri),
                tags={TAG_MODEL_PACKAGE_GROUP: model_package_group},
            )
        except MlflowException as error:  # another task created it meanwhile
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = mlflow_client.get_experiment_by_name(model_package_group)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        mlflow_client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _check_job_name(training_job_name: str) -> None:
    if not _JOB_NAME.match(training_job_name):
        raise ValueError(f"{training_job_name!r} is not a SageMaker training job name")


def find_trial_run(mlflow_client: MlflowClient, experiment_id: str, training_job_name: str) -> Run | None:
    """The (oldest) active run tagged with ``training_job_name``, if any."""
    _check_job_name(training_job_name)
    runs = mlflow_client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_TRAINING_JOB}` = '{training_job_name}'",
        max_results=50,
    )
    return min(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id)) if runs else None


def _trial_run(mlflow_client: MlflowClient, experiment_id: str, training_job_name: str) -> Run:
    """The job's run: found by tag, else created; if a concurrent attempt created one too, the oldest
    wins and this attempt's is deleted."""
    run = find_trial_run(mlflow_client, experiment_id, training_job_name)
    if run is not None:
        return run
    created = mlflow_client.create_run(
        experiment_id, tags={TAG_TRAINING_JOB: training_job_name}, run_name=training_job_name
    )
    winner = find_trial_run(mlflow_client, experiment_id, training_job_name) or created
    if winner.info.run_id != created.info.run_id:
        mlflow_client.delete_run(created.info.run_id)
    return winner


@dataclass(frozen=True)
class TrialRun:
    """Where a training job was tracked (JSON-friendly: ``to_dict``/``from_dict`` for XCom)."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    training_job_name: str
    dt: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRun:
        return cls(**{name: str(data[name]) for name in cls.__dataclass_fields__})

    @property
    def url(self) -> str | None:
        """The run's page in the MLflow UI (HTTP servers only)."""
        return run_url(self.tracking_uri, self.experiment_id, self.run_id)


def _log_into(
    mlflow_client: MlflowClient,
    run: Run,
    *,
    params: Mapping[str, str] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    artifacts: Iterable[str | Path] = (),
    artifact_path: str | None = None,
) -> None:
    """Log what the run does not hold yet, in one batch; artefacts overwrite their earlier copies."""
    from mlflow.entities import Metric, Param, RunTag

    run_id, data = run.info.run_id, run.data
    new_params = []
    for key, value in (params or {}).items():
        value = str(value)
        if key in data.params:
            if data.params[key] != value:
                raise TrackingConflictError(
                    f"run {run_id} already has {key}={data.params[key]!r}, not {value!r}: "
                    "a training job's hyperparameters cannot change"
                )
            continue
        new_params.append(Param(key, value))
    now = int(time.time() * 1000)
    new_metrics = [
        Metric(key, float(value), now, 0)
        for key, value in (metrics or {}).items()
        if data.metrics.get(key) != float(value)
    ]
    new_tags = [RunTag(k, str(v)) for k, v in (tags or {}).items() if data.tags.get(k) != str(v)]
    if new_params or new_metrics or new_tags:
        mlflow_client.log_batch(run_id, metrics=new_metrics, params=new_params, tags=new_tags)
    for path in artifacts:
        path = Path(path)
        if path.is_dir():
            sub = f"{artifact_path}/{path.name}" if artifact_path else path.name
            mlflow_client.log_artifacts(run_id, str(path), sub)
        elif path.is_file():
            mlflow_client.log_artifact(run_id, str(path), artifact_path)
        else:
            raise FileNotFoundError(f"artefact {path} does not exist")


def log_trial(
    *,
    model_package_group: str,
    training_job_name: str,
    dt: str,
    version: str,
    hyperparameters: Mapping[str, Any],
    metrics: Mapping[str, float],
    model_artifact: str | None = None,
    dag_id: str | None = None,
    airflow_run_id: str | None = None,
    artifacts: Iterable[str | Path] = (),
    tags: Mapping[str, str] | None = None,
    uri: str | None = None,
) -> TrialRun:
    """Log one training job as a finished MLflow run of its model package group's experiment.

    :param model_package_group: the experiment (one per model package group).
    :param training_job_name: the run's name and its key: a retry finds the same run.
    :param dt: the data partition trained on; ``version`` its published version.
    :param hyperparameters: logged as params (see :func:`hyperparameters_from_request`).
    :param metrics: the final metrics (:func:`metrics_from_log`, :func:`metrics_from_description` or
        :func:`metrics_from_evaluation`).
    :param model_artifact: the S3 URI of ``model.tar.gz``.
    :param dag_id: Airflow's ``dag_id``; ``airflow_run_id`` its ``run_id``.
    :param artifacts: local files (logged at the run's root) or folders (under their name).
    :param tags: more tags (e.g. ``mlflow.parentRunId`` for a tuning job's trials).
    :param uri: the tracking URI (default: :func:`tracking_uri`).
    """
    _check_job_name(training_job_name)
    uri = uri or tracking_uri()
    mlflow_client = client(uri)
    experiment_id = _ensure_experiment(mlflow_client, uri, model_package_group)
    run = _trial_run(mlflow_client, experiment_id, training_job_name)
    run_tags = {
        TAG_TRAINING_JOB: training_job_name,
        TAG_MODEL_PACKAGE_GROUP: model_package_group,
        TAG_DT: dt,
        TAG_VERSION: version,
        **({TAG_MODEL_ARTIFACT: model_artifact} if model_artifact else {}),
        **({TAG_DAG_ID: dag_id} if dag_id else {}),
        **({TAG_AIRFLOW_RUN_ID: airflow_run_id} if airflow_run_id else {}),
        **(tags or {}),
    }
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in hyperparameters.items()}
    _log_into(mlflow_client, run, params=params, metrics=metrics, tags=run_tags, artifacts=artifacts)
    if run.info.status != "FINISHED":
        mlflow_client.set_terminated(run.info.run_id, "FINISHED")
    return TrialRun(uri, experiment_id, run.info.run_id, training_job_name, dt, version)


def _existing_run(model_package_group: str, training_job_name: str, uri: str | None) -> tuple[Any, Run, str]:
    uri = uri or tracking_uri()
    mlflow_client = client(uri)
    experiment = mlflow_client.get_experiment_by_name(model_package_group)
    run = find_trial_run(mlflow_client, experiment.experiment_id, training_job_name) if experiment else None
    if run is None:
        raise LookupError(
            f"no MLflow run for training job {training_job_name} in experiment {model_package_group}: "
            "log_trial must run first"
        )
    return mlflow_client, run, uri


def trial_for_job(*, model_package_group: str, training_job_name: str, uri: str | None = None) -> TrialRun:
    """The run :func:`log_trial` logged for a training job (``LookupError`` if there is none)."""
    _, run, uri = _existing_run(model_package_group, training_job_name, uri)
    return _trial_from_run(uri, run)


def download_prefix(s3_client: Any, uri: str, dest: Path) -> list[Path]:
    """Download every object under the S3 folder ``uri`` into ``dest`` (keeping sub-folders): an evaluation
    report's files, to log them as artefacts. Returns the files, sorted."""
    from sagelake.lake.layout import split_s3_uri

    bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
    files = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            if not relative or relative.endswith("/"):
                continue
            target = Path(dest) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3_client.download_file(bucket, obj["Key"], str(target))
            files.append(target)
    return sorted(files)


def log_evaluation(
    *,
    model_package_group: str,
    training_job_name: str,
    metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None = None,
    champion_model_package: str | None = None,
    report_uri: str | None = None,
    report_files: Iterable[str | Path] = (),
    uri: str | None = None,
) -> TrialRun:
    """Log the evaluation on held-out data into the training job's run.

    Metrics as ``eval_<name>`` (the challenger) and ``champion_eval_<name>`` (the serving model on the
    same data); the report's S3 location and the champion's model package as tags; the report's files
    (metrics JSON, PNG plots, HTML) under ``evaluation/``.
    """
    mlflow_client, run, uri = _existing_run(model_package_group, training_job_name, uri)
    all_metrics = {f"{EVALUATION_PREFIX}{k}": v for k, v in metrics.items()}
    all_metrics.update({f"{CHAMPION_PREFIX}{k}": v for k, v in (champion_metrics or {}).items()})
    tags = {
        **({TAG_EVALUATION_REPORT: report_uri} if report_uri else {}),
        **({TAG_CHAMPION: champion_model_package} if champion_model_package else {}),
    }
    _log_into(
        mlflow_client,
        run,
        metrics=all_metrics,
        tags=tags,
        artifacts=report_files,
        artifact_path=EVALUATION_ARTIFACT_DIR,
    )
    return _trial_from_run(uri, run)


def link_model_package(
    *, model_package_group: str, training_job_name: str, model_package_arn: str, uri: str | None = None
) -> TrialRun:
    """Tag the job's run with the model package version registered from it (the link back from MLflow)."""
    mlflow_client, run, uri = _existing_run(model_package_group, training_job_name, uri)
    _log_into(mlflow_client, run, tags={TAG_MODEL_PACKAGE: model_package_arn})
    return _trial_from_run(uri, run)


def _trial_from_run(uri: str, run: Run) -> TrialRun:
    tags = run.data.tags
    return TrialRun(
        uri,
        run.info.experiment_id,
        run.info.run_id,
        tags[TAG_TRAINING_JOB],
        tags.get(TAG_DT, ""),
        tags.get(TAG_VERSION, ""),
    )


# ---------------------------------------------------------------------------------------------------------
# lineage in the SageMaker model registry

LINEAGE_KEYS = ("mlflow_run_id", "mlflow_experiment_id", "training_job", "dt", "version")


@dataclass(frozen=True)
class Lineage:
    """What a model package version records about where it came from."""

    mlflow_run_id: str
    mlflow_experiment_id: str
    training_job: str
    dt: str
    version: str


def registry_lineage(trial: TrialRun) -> dict[str, str]:
    """``CustomerMetadataProperties`` entries linking a model package version to its MLflow run, training
    job and data partition (merge them into the CreateModelPackage request)."""
    return asdict(
        Lineage(trial.run_id, trial.experiment_id, trial.training_job_name, trial.dt, trial.version)
    )


def lineage_from_metadata(metadata: Mapping[str, str]) -> Lineage:
    """The lineage in a model package's ``CustomerMetadataProperties`` (``KeyError`` if incomplete)."""
    missing = [key for key in LINEAGE_KEYS if key not in metadata]
    if missing:
        raise KeyError(f"the model package's metadata lacks the lineage keys {missing}")
    return Lineage(**{key: str(metadata[key]) for key in LINEAGE_KEYS})


def read_lineage(sagemaker_client: Any, model_package_arn: str) -> Lineage:
    """The lineage of a registered model package version (``DescribeModelPackage``)."""
    description = sagemaker_client.describe_model_package(ModelPackageName=model_package_arn)
    return lineage_from_metadata(description.get("CustomerMetadataProperties") or {})
