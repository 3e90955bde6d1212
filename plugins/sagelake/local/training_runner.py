"""The local SageMaker training engine: run a CreateTrainingJob request the way the container does.

A request for SageMaker's built-in XGBoost algorithm (the XGBoost image without script-mode
hyperparameters) goes to :mod:`sagelake.local.builtin_xgboost`; everything below is script mode.

Channels are downloaded into ``<work>/input/data/<channel>``, the script-mode ``sourcedir.tar.gz``
is extracted into ``<work>/code`` and the entry point runs in a subprocess with the SageMaker
environment contract (``SM_*``) and, of the caller's environment, only what
:func:`sagelake.local.subprocess_env.job_environment` allows (no Airflow secret). On success the model
dir and the output data dir are tarred to
``{S3OutputPath}/{TrainingJobName}/output/model.tar.gz`` and ``.../output.tar.gz``.

With ``CheckpointConfig`` the checkpoints under its S3 prefix are restored into ``<work>/checkpoints``
(``SM_CHECKPOINT_DIR``; ``input/config/checkpointconfig.json``) and synced back while the script runs
(:mod:`sagelake.local.checkpoint_sync`). ``EnableManagedSpotTraining`` runs on-demand locally (nothing
interrupts it): the result's ``billable_seconds`` equals its ``training_seconds``, the run's wall time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelake.lake.layout import split_s3_uri
from sagelake.local.checkpoint_sync import (
    LOCAL_DIR_ENV,
    CheckpointPlan,
    checkpoint_plan,
    synced_checkpoints,
    write_checkpoint_config,
)
from sagelake.local.job_requests import required, run_container, tail
from sagelake.local.s3_files import KeyEscapesError, download_prefix
from sagelake.local.subprocess_env import job_environment
from sagelake.ml.artifacts import extract_tar, package_source_dir
from sagelake.ml.images import is_builtin_xgboost_training
from sagelake.ml.metrics_log import final_metrics
from sagelake.ml.spot import SpotSettingsError, check_spot_request

log = logging.getLogger(__name__)

CURRENT_HOST = "algo-1"


class TrainingJobFailedError(RuntimeError):
    """The training script failed (or timed out); nothing was uploaded."""


class TrainingRequestError(ValueError):
    """The CreateTrainingJob request cannot be run locally (bad field, missing channel data, ...)."""


@dataclass(frozen=True)
class TrainingRunResult:
    """What a finished local training job produced."""

    job_name: str
    model_artifacts: str  # s3://.../{job}/output/model.tar.gz (ModelArtifacts.S3ModelArtifacts)
    output_data: str  # s3://.../{job}/output/output.tar.gz
    metrics: dict[str, float] = field(default_factory=dict)
    log_tail: str = ""
    # DescribeTrainingJob's TrainingTimeInSeconds and BillableTimeInSeconds: the local run's wall seconds
    # (staging to upload); billable is the same, as a local run has no spot discount
    training_seconds: int | None = None
    billable_seconds: int | None = None


def elapsed_seconds(started: float) -> int:
    """Whole seconds since ``started`` (a ``time.monotonic()``), rounded up, at least 1 (as AWS reports)."""
    return max(1, math.ceil(time.monotonic() - started))


def _json_or_raw(value: Any) -> Any:
    """Hyperparameter values arrive as strings, usually JSON-encoded (``"\\"train.py\\""``, ``"200"``)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _as_arg(value: Any) -> str:
    """How the SageMaker training toolkit renders a decoded hyperparameter on the command line."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _as_env(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def decode_hyperparameters(raw: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split decoded hyperparameters into (user hyperparameters, ``sagemaker_*`` framework parameters)."""
    user, framework = {}, {}
    for key, value in (raw or {}).items():
        (framework if key.startswith("sagemaker_") else user)[key] = _json_or_raw(value)
    return user, framework


def command_line(program: Path, hyperparameters: dict[str, Any]) -> list[str]:
    """``[python, program, --key value, ...]`` with keys sorted like the toolkit does."""
    args = [sys.executable, str(program)]
    for key in sorted(hyperparameters):
        args += [f"--{key}", _as_arg(hyperparameters[key])]
    return args


def _required(request: dict, *path: str) -> Any:
    return required(request, *path, operation="CreateTrainingJob", error=TrainingRequestError)


def download_channel(s3_client, channel: dict, dest: Path) -> int:
    """Download an S3Prefix channel into ``dest`` keeping paths below the prefix; return the file count."""
    name = channel.get("ChannelName", "?")
    source = (channel.get("DataSource") or {}).get("S3DataSource")
    if not source:
        raise TrainingRequestError(
            f"channel {name!r} has no DataSource.S3DataSource: only S3 channels run locally"
        )
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise TrainingRequestError(
            f"channel {name!r}: S3DataType {source['S3DataType']!r} unsupported, use S3Prefix"
        )
    if channel.get("InputMode", "File") == "Pipe":
        raise TrainingRequestError(f"channel {name!r}: Pipe input mode is unsupported locally, use File")
    uri = source["S3Uri"]
    try:
        count = download_prefix(s3_client, uri, dest)
    except KeyEscapesError as error:
        raise TrainingRequestError(f"channel {name!r}: {error}") from None
    if count == 0:
        raise TrainingRequestError(
            f"channel {name!r}: no objects under {uri}: produce the data first or fix the channel's S3Uri"
        )
    return count


def _fetch_source(s3_client, uri: str) -> bytes:
    if uri.startswith("file://"):
        return Path(uri[len("file://") :]).read_bytes()
    bucket, key = split_s3_uri(uri)
    try:
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3_client.exceptions.NoSuchKey:
        raise TrainingRequestError(
            f"sagemaker_submit_directory {uri} does not exist: upload sourcedir.tar.gz"
        ) from None


def parse_metrics(lines: list[str], definitions: list[dict] | None = None) -> dict[str, float]:
    """Metrics from log lines: the job's MetricDefinitions if any, else ``name:part=value`` lines; the
    last value of a metric wins, as in the final metrics SageMaker reports."""
    return final_metrics(lines, definitions)


def _environment(
    request: dict,
    work: Path,
    channels: dict[str, Path],
    hps: dict,
    framework: dict,
    checkpoint_dir: Path | None = None,
) -> dict:
    """The entry point's environment: the SageMaker contract (``SM_*``) plus the allowed variables of this
    process's (:func:`job_environment`); writes ``input/config``."""
    model_dir, output_dir = work / "model", work / "output"
    resource = {"current_host": CURRENT_HOST, "hosts": [CURRENT_HOST], "network_interface_name": "eth0"}
    input_config = {
        c["ChannelName"]: {k: v for k, v in c.items() if k != "ChannelName"}
        for c in request["InputDataConfig"]
    }
    program = str(framework.get("sagemaker_program", ""))
    training_env = {
        "job_name": request["TrainingJobName"],
        "channel_input_dirs": {name: str(path) for name, path in channels.items()},
        "current_host": CURRENT_HOST,
        "hosts": [CURRENT_HOST],
        "hyperparameters": hps,
        "additional_framework_parameters": {k: v for k, v in framework.items()},
        "input_dir": str(work / "input"),
        "input_config_dir": str(work / "input" / "config"),
        "input_data_config": input_config,
        "model_dir": str(model_dir),
        "output_dir": str(output_dir),
        "output_data_dir": str(output_dir / "data"),
        "module_dir": str(framework.get("sagemaker_submit_directory", "")),
        "module_name": program.removesuffix(".py"),
        "user_entry_point": program,
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": 0,
        "resource_config": resource,
        "log_level": 20,
    }
    contract = {
        "PYTHONUNBUFFERED": "1",
        "TRAINING_JOB_NAME": request["TrainingJobName"],
        "SM_TRAINING_ENV": json.dumps(training_env),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(output_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
        "SM_INPUT_DIR": str(work / "input"),
        "SM_INPUT_CONFIG_DIR": str(work / "input" / "config"),
        "SM_INPUT_DATA_CONFIG": json.dumps(input_config),
        "SM_HPS": json.dumps(hps),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_CURRENT_HOST": CURRENT_HOST,
        "SM_HOSTS": json.dumps([CURRENT_HOST]),
        "SM_RESOURCE_CONFIG": json.dumps(resource),
        "SM_USER_ENTRY_POINT": program,
        "SM_MODULE_DIR": training_env["module_dir"],
        "SM_LOG_LEVEL": "20",
    }
    for name, path in channels.items():
        contract[f"SM_CHANNEL_{name.upper()}"] = str(path)
    if checkpoint_dir is not None:
        contract[LOCAL_DIR_ENV] = str(checkpoint_dir)
    for key, value in hps.items():
        contract[f"SM_HP_{key.upper()}"] = _as_env(value)
    config_dir = work / "input" / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters") or {}))
    (config_dir / "inputdataconfig.json").write_text(json.dumps(input_config))
    (config_dir / "resourceconfig.json").write_text(json.dumps(resource))
    return job_environment(contract)


def _upload(s3_client, uri: str, data: bytes) -> str:
    bucket, key = split_s3_uri(uri)
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    return uri


@dataclass(frozen=True)
class _TrainingPlan:
    """A validated CreateTrainingJob request and the fields a local run needs from it."""

    request: dict  # with InputDataConfig normalised to a list
    job: str
    output_path: str  # S3OutputPath without its trailing '/'
    hyperparameters: dict[str, Any]
    framework: dict[str, Any]
    program_name: str
    submit_dir: str
    timeout: float | None
    metric_definitions: list[dict] | None
    checkpoint: CheckpointPlan | None = None


def check_spot(request: dict) -> CheckpointPlan | None:
    """Refuse what CreateTrainingJob refuses about spot; return the request's checkpoint plan, if any."""
    try:
        check_spot_request(request)
    except SpotSettingsError as error:
        raise TrainingRequestError(str(error)) from None
    return checkpoint_plan(request, error=TrainingRequestError)


def _plan_job(request: dict) -> _TrainingPlan:
    """Check that ``request`` runs locally (script mode, S3 output) and pick out what the run needs."""
    job = _required(request, "TrainingJobName")
    output_path = _required(request, "OutputDataConfig", "S3OutputPath").rstrip("/")
    split_s3_uri(output_path + "/")
    checkpoint = check_spot(request)
    hps, framework = decode_hyperparameters(request.get("HyperParameters") or {})
    program_name = framework.get("sagemaker_program")
    submit_dir = framework.get("sagemaker_submit_directory")
    if not program_name or not submit_dir:
        raise TrainingRequestError(
            f"training job {job}: HyperParameters need sagemaker_program and sagemaker_submit_directory "
            "(script mode) to run locally"
        )
    return _TrainingPlan(
        request={**request, "InputDataConfig": request.get("InputDataConfig") or []},
        job=job,
        output_path=output_path,
        hyperparameters=hps,
        framework=framework,
        program_name=str(program_name),
        submit_dir=str(submit_dir),
        timeout=(request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds"),
        metric_definitions=(request.get("AlgorithmSpecification") or {}).get("MetricDefinitions"),
        checkpoint=checkpoint,
    )


def _stage_channels(plan: _TrainingPlan, s3_client, work: Path) -> dict[str, Path]:
    """Clear what an earlier run left in ``work``, then download every channel; return channel -> dir."""
    for stale in ("input", "code", "model", "output", "checkpoints"):  # a reused work dir: no old artefacts
        shutil.rmtree(work / stale, ignore_errors=True)
    channels: dict[str, Path] = {}
    for channel in plan.request["InputDataConfig"]:
        name = _required(channel, "ChannelName")
        channels[name] = work / "input" / "data" / name
        count = download_channel(s3_client, channel, channels[name])
        log.info("training job %s: channel %s: %d file(s) downloaded", plan.job, name, count)
    return channels


def _stage_code(plan: _TrainingPlan, s3_client, work: Path) -> Path:
    """Extract the submit directory into ``work/code``; return the entry point, which must be inside it."""
    code_dir = work / "code"
    extract_tar(_fetch_source(s3_client, plan.submit_dir), code_dir)
    program = (code_dir / plan.program_name).resolve()
    if not program.is_file() or code_dir.resolve() not in program.parents:
        raise TrainingRequestError(
            f"training job {plan.job}: sagemaker_program {plan.program_name!r} is not in {plan.submit_dir}"
        )
    if (code_dir / "requirements.txt").exists():
        log.warning(
            "training job %s: requirements.txt is not installed locally; the venv must provide it", plan.job
        )
    return program


def _run_entry_point(
    plan: _TrainingPlan,
    work: Path,
    channels: dict[str, Path],
    program: Path,
    checkpoint_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the entry point in ``work/code`` with the ``SM_*`` contract; keep and log its output."""
    for directory in ("model", "output/data"):
        (work / directory).mkdir(parents=True, exist_ok=True)
    env = _environment(
        plan.request, work, channels, plan.hyperparameters, plan.framework, checkpoint_dir=checkpoint_dir
    )
    write_checkpoint_config(work / "input" / "config", plan.checkpoint, checkpoint_dir)
    cmd = command_line(program, plan.hyperparameters)
    log.info("training job %s: running %s", plan.job, " ".join(cmd[1:]))
    proc = run_container(
        cmd,
        cwd=work / "code",
        env=env,
        timeout=plan.timeout,
        job=plan.job,
        kind="training",
        error=TrainingJobFailedError,
        logger=log,
        image_uri=(plan.request.get("AlgorithmSpecification") or {}).get("TrainingImage"),
    )
    (work / "output" / "stdout.log").write_text(proc.stdout)
    (work / "output" / "stderr.log").write_text(proc.stderr)
    return proc


def _failure_detail(work: Path, stderr: str) -> str:
    """Why the script failed: its ``output/failure`` file (SageMaker's convention), then its stderr tail."""
    failure = work / "output" / "failure"
    reason = failure.read_text().strip() if failure.exists() else ""
    detail = tail(stderr, 10) or "no output on stderr"
    if reason and reason not in detail:
        detail = f"{reason}\n{detail}"
    return detail


def _upload_artefacts(plan: _TrainingPlan, s3_client, work: Path) -> tuple[str, str]:
    """Upload the model dir and the output data dir as tarballs; return (model.tar.gz, output.tar.gz) URIs."""
    prefix = f"{plan.output_path}/{plan.job}/output"
    model_uri = _upload(s3_client, f"{prefix}/model.tar.gz", package_source_dir(work / "model"))
    output_uri = _upload(s3_client, f"{prefix}/output.tar.gz", package_source_dir(work / "output" / "data"))
    log.info("training job %s: model artefacts at %s", plan.job, model_uri)
    return model_uri, output_uri


def run_training_job(request: dict, s3_client, work_dir: Path) -> TrainingRunResult:
    """Run one CreateTrainingJob request locally; upload model.tar.gz and output.tar.gz on success.

    Built-in XGBoost requests run on the local xgboost library
    (:func:`sagelake.local.builtin_xgboost.run_builtin_xgboost`), script-mode requests run their script.
    """
    if is_builtin_xgboost_training(request):
        from sagelake.local.builtin_xgboost import run_builtin_xgboost  # it imports this module

        return run_builtin_xgboost(request, s3_client, work_dir)
    started = time.monotonic()
    plan = _plan_job(request)
    work = Path(work_dir)
    channels = _stage_channels(plan, s3_client, work)
    program = _stage_code(plan, s3_client, work)
    with synced_checkpoints(s3_client, plan.checkpoint, work, plan.job) as checkpoint_dir:
        proc = _run_entry_point(plan, work, channels, program, checkpoint_dir)
    if proc.returncode != 0:
        detail = _failure_detail(work, proc.stderr)
        raise TrainingJobFailedError(f"training job {plan.job} failed (exit {proc.returncode}): {detail}")
    model_uri, output_uri = _upload_artefacts(plan, s3_client, work)
    seconds = elapsed_seconds(started)
    return TrainingRunResult(
        job_name=plan.job,
        model_artifacts=model_uri,
        output_data=output_uri,
        metrics=parse_metrics(proc.stdout.splitlines(), plan.metric_definitions),
        log_tail=tail(proc.stdout + "\n" + proc.stderr),
        training_seconds=seconds,
        billable_seconds=seconds,
    )
