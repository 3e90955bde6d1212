"""The local SageMaker Processing engine: run a CreateProcessingJob request the way the container does.

The container's file system below ``/opt/ml/`` is ``<work>/opt/ml/``: every ``ProcessingInput`` (S3
prefix, File mode) is downloaded into its ``LocalPath`` there, ``/opt/ml/config/processingjobconfig.json``
and ``resourceconfig.json`` are written as SageMaker writes them, the ``ContainerEntrypoint`` +
``ContainerArguments`` run in a subprocess with the request's ``Environment`` and, of the caller's
environment, only what :func:`sagelake.local.subprocess_env.job_environment` allows (``python``/``python3``
become this interpreter; ``/opt/ml/...`` paths in the command line are mapped below ``<work>``, and
``SAGELAKE_PROCESSING_ROOT=<work>`` tells the script so). After a zero exit every ``ProcessingOutput``'s
``LocalPath`` is uploaded to its ``S3Uri`` (``EndOfJob``; ``Continuous`` uploads at the end too), and the
job is recorded in the control plane, where it reads ``Completed`` with its creation, end and modification
times. A failure uploads and records nothing and raises with the container's ``/opt/ml/output/message``
(SageMaker's FailureReason) and stderr tail.
"""

from __future__ import annotations

import json
import logging
import posixpath
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelake.lake.layout import split_s3_uri
from sagelake.local.job_requests import required, run_container, tail
from sagelake.local.s3_files import KeyEscapesError, download_prefix
from sagelake.local.subprocess_env import job_environment

log = logging.getLogger(__name__)

CONTAINER_ROOT = "/opt/ml/"
PROCESSING_ROOT = "/opt/ml/processing/"
ROOT_ENV = "SAGELAKE_PROCESSING_ROOT"
FAILURE_MESSAGE = "opt/ml/output/message"
PYTHON_NAMES = {"python", "python3"}
CURRENT_HOST = "algo-1"


class ProcessingRequestError(ValueError):
    """The CreateProcessingJob request cannot be run locally (missing field, unsupported input...)."""


class ProcessingJobFailedError(RuntimeError):
    """The processing container failed or timed out; nothing was uploaded or recorded."""


@dataclass(frozen=True)
class ProcessingRunResult:
    """What a finished local processing job produced."""

    job_name: str
    outputs: dict[str, str]  # OutputName -> S3Uri it was uploaded to
    uploaded: dict[str, int] = field(default_factory=dict)  # OutputName -> number of files
    log_tail: str = ""


def _required(request: dict, *path: str) -> Any:
    return required(request, *path, operation="CreateProcessingJob", error=ProcessingRequestError)


def local_path(work: Path, container_path: str, under: str = CONTAINER_ROOT) -> Path:
    """Where container path ``/opt/ml/...`` is locally (``<work>/opt/ml/...``), under ``under``."""
    normal = posixpath.normpath(container_path)
    if not container_path.startswith("/") or not (normal + "/").startswith(under):
        raise ProcessingRequestError(f"path {container_path!r} must be under {under}")
    return work / normal.lstrip("/")


def map_argument(work: Path, value: str) -> str:
    """A command-line token with its ``/opt/ml/...`` path (whole, or after ``--name=``) mapped to ``work``."""
    name, sep, rest = value.partition("=")
    if sep and rest.startswith(CONTAINER_ROOT) and not name.startswith(CONTAINER_ROOT):
        return f"{name}={local_path(work, rest)}"
    return str(local_path(work, value)) if value.startswith(CONTAINER_ROOT) else value


def command_line(app: dict[str, Any], work: Path) -> list[str]:
    """The container's command: entry point + arguments, Python as this interpreter, paths mapped."""
    entrypoint = list(app.get("ContainerEntrypoint") or [])
    if not entrypoint:
        raise ProcessingRequestError(
            "AppSpecification.ContainerEntrypoint is required to run a processing job locally "
            '(e.g. ["python3", "/opt/ml/processing/input/code/evaluate.py"])'
        )
    if Path(entrypoint[0]).name in PYTHON_NAMES:
        entrypoint[0] = sys.executable
    return [map_argument(work, str(token)) for token in [*entrypoint, *(app.get("ContainerArguments") or [])]]


def download_input(s3: Any, processing_input: dict[str, Any], work: Path) -> int:
    """Download one S3 ``ProcessingInput`` into its local path (keys below the prefix's last ``/``)."""
    name = processing_input.get("InputName", "?")
    source = processing_input.get("S3Input")
    if not source:
        raise ProcessingRequestError(f"input {name!r}: only S3Input inputs run locally")
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise ProcessingRequestError(f"input {name!r}: S3DataType {source['S3DataType']!r} unsupported")
    if source.get("S3InputMode", "File") != "File":
        raise ProcessingRequestError(f"input {name!r}: S3InputMode {source['S3InputMode']!r} unsupported")
    container = _required(source, "LocalPath")
    try:
        dest = local_path(work, container, PROCESSING_ROOT)
    except ProcessingRequestError as error:
        raise ProcessingRequestError(f"input {name!r}: LocalPath {error}") from None
    try:
        count = download_prefix(s3, _required(source, "S3Uri"), dest)
    except KeyEscapesError as error:
        raise ProcessingRequestError(f"input {name!r}: {error}") from None
    if count == 0:  # SageMaker fails the job: "No S3 objects found under S3 URL ..."
        raise ProcessingRequestError(f"input {name!r}: no S3 objects found under {source['S3Uri']}")
    return count


def upload_output(s3: Any, output: dict[str, Any], work: Path) -> tuple[str, int]:
    """Upload every file below an output's local path to its ``S3Uri``; return (URI, file count)."""
    name = output.get("OutputName", "?")
    target = output.get("S3Output")
    if not target:
        raise ProcessingRequestError(f"output {name!r}: only S3Output outputs run locally")
    uri = _required(target, "S3Uri").rstrip("/")
    bucket, prefix = split_s3_uri(uri + "/")
    source = local_path(work, _required(target, "LocalPath"))
    count = 0
    for path in sorted(source.rglob("*")) if source.is_dir() else []:
        if path.is_file():
            s3.upload_file(str(path), bucket, prefix + path.relative_to(source).as_posix())
            count += 1
    return uri, count


def _write_config(request: dict[str, Any], work: Path) -> None:
    config = work / "opt" / "ml" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "processingjobconfig.json").write_text(json.dumps(request, default=str))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": CURRENT_HOST, "hosts": [CURRENT_HOST]})
    )


def _check(request: dict[str, Any]) -> tuple[str, list[dict], list[dict]]:
    job = _required(request, "ProcessingJobName")
    _required(request, "AppSpecification", "ImageUri")
    inputs = list(request.get("ProcessingInputs") or [])
    outputs = list((request.get("ProcessingOutputConfig") or {}).get("Outputs") or [])
    for output in outputs:
        try:
            local_path(Path("/"), _required(output, "S3Output", "LocalPath"), PROCESSING_ROOT)
        except ProcessingRequestError as error:
            raise ProcessingRequestError(f"output {output.get('OutputName')!r}: LocalPath {error}") from None
    return job, inputs, outputs


def run_processing_job(request: dict[str, Any], s3: Any, work_dir: Path) -> ProcessingRunResult:
    """Run one CreateProcessingJob request locally; upload its outputs on success (not recorded)."""
    job, inputs, outputs = _check(request)
    work = Path(work_dir).resolve()
    shutil.rmtree(work / "opt", ignore_errors=True)  # a reused work dir must not leak an earlier run
    for processing_input in inputs:
        count = download_input(s3, processing_input, work)
        log.info("processing job %s: input %s: %d file(s)", job, processing_input.get("InputName"), count)
    for output in outputs:
        local_path(work, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    _write_config(request, work)
    cmd = command_line(request["AppSpecification"], work)
    env = job_environment({**(request.get("Environment") or {}), ROOT_ENV: str(work)})
    timeout = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    log.info("processing job %s: running %s", job, " ".join(cmd[1:]))
    proc = run_container(
        cmd,
        cwd=work,
        env=env,
        timeout=timeout,
        job=job,
        kind="processing",
        error=ProcessingJobFailedError,
        logger=log,
        image_uri=request["AppSpecification"]["ImageUri"],
    )
    if proc.returncode != 0:
        message = work / FAILURE_MESSAGE
        reason = message.read_text().strip() if message.exists() else ""
        detail = tail(proc.stderr, 10) or "no output on stderr"
        if reason and reason not in detail:
            detail = f"{reason}\n{detail}"
        raise ProcessingJobFailedError(f"processing job {job} failed (exit {proc.returncode}): {detail}")
    uris, counts = {}, {}
    for output in outputs:
        name = output.get("OutputName", "?")
        uris[name], counts[name] = upload_output(s3, output, work)
        log.info("processing job %s: output %s: %d file(s) to %s", job, name, counts[name], uris[name])
    return ProcessingRunResult(job, uris, counts, tail(proc.stdout + "\n" + proc.stderr))


def record_processing_job(sagemaker: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Record a finished job in the control plane; return its ``DescribeProcessingJob`` answer.

    moto records every created processing job as ``Completed`` with ``CreationTime``,
    ``ProcessingEndTime`` and ``LastModifiedTime`` set to the moment of this call (after the run).
    """
    sagemaker.create_processing_job(**request)
    described = sagemaker.describe_processing_job(ProcessingJobName=request["ProcessingJobName"])
    status = described.get("ProcessingJobStatus")
    if status != "Completed":
        raise ProcessingJobFailedError(f"processing job {request['ProcessingJobName']} recorded as {status}")
    return described
