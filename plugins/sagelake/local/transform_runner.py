"""The local SageMaker batch transform engine: run a CreateTransformJob request as SageMaker does.

moto records a transform job as ``Completed`` and writes nothing. This runner does the work first, with the
same model and inference code the endpoint server uses (:mod:`sagelake.local.endpoint_server`):

- the request's ``ModelName`` is described in the control plane; its ``ModelDataUrl`` is downloaded and
  extracted;
- a script-mode model (``code/inference.py``) is served by an endpoint-server ``ModelWorker``
  subprocess on the image's framework environment (:func:`sagelake.local.framework_env.interpreter_for`;
  this interpreter when there is none), so it loads and predicts with the container's versions; a built-in
  XGBoost model (:func:`sagelake.ml.images.is_builtin_xgboost_model`) is scored with the xgboost library as
  the algorithm's batch inference does (``SAGEMAKER_BATCH``: one score per line);
- every object under ``TransformInput``'s ``S3Prefix`` is split (``SplitType`` ``None`` or ``Line``) into
  records, grouped into requests (``BatchStrategy`` ``SingleRecord``, the default here, or ``MultiRecord`` up
  to ``MaxPayloadInMB``), sent with ``ContentType`` and ``TransformOutput.Accept``, and the responses are
  assembled (``AssembleWith`` ``Line``: a newline after each response that lacks one; ``None``: as they
  are) into ``<S3OutputPath>/<input key below the prefix>.out``
  (:func:`sagelake.ml.batch.output_object_uri`).

Then :func:`record_transform_job` records the job in the control plane, where ``DescribeTransformJob``
says ``Completed``. A failure (model, input, request) uploads and records nothing. Not run locally:
``ManifestFile`` inputs, compressed inputs, ``DataProcessing`` filters and joins (refused by name).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelake.lake.layout import split_s3_uri
from sagelake.local.endpoint_server import (
    InvocationError,
    ModelWorker,
    load_xgboost_booster,
    predict_builtin_xgboost,
)
from sagelake.local.framework_env import FrameworkEnvError, interpreter_for
from sagelake.local.job_requests import required
from sagelake.local.s3_files import list_keys
from sagelake.ml.artifacts import extract_tar
from sagelake.ml.batch import output_object_uri
from sagelake.ml.images import is_builtin_xgboost_model

log = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD_MB = 6
SPLIT_TYPES = ("None", "Line")
STRATEGIES = ("SingleRecord", "MultiRecord")
# (request body, content type, accept) -> response body
Predictor = Callable[[bytes, str, str], bytes]


class TransformRequestError(ValueError):
    """The CreateTransformJob request cannot be run locally (missing field, unsupported option...)."""


class TransformJobFailedError(RuntimeError):
    """The model failed on the input, or the input broke a limit; nothing was uploaded or recorded."""


@dataclass(frozen=True)
class TransformRunResult:
    """What a finished local transform job produced."""

    job_name: str
    outputs: dict[str, str]  # input object URI -> output object URI
    records: int = 0
    requests: int = 0
    model_url: str = ""
    served_on: str = field(default="")


def _required(request: dict, *path: str) -> Any:
    return required(request, *path, operation="CreateTransformJob", error=TransformRequestError)


def split_records(body: bytes, split_type: str) -> list[bytes]:
    """An input object's records: the whole object (``None``) or its non-empty lines (``Line``)."""
    if split_type == "None":
        return [body] if body else []
    return [line for line in body.split(b"\n") if line.strip()]


def mini_batches(records: list[bytes], strategy: str, max_payload_bytes: int) -> Iterator[bytes]:
    """Request bodies: one record each (``SingleRecord``), or as many newline-joined records as fit in
    ``max_payload_bytes`` (``MultiRecord``). A record larger than the limit fails the job, as on AWS."""
    batch: list[bytes] = []
    size = 0
    for record in records:
        if len(record) > max_payload_bytes:
            raise TransformJobFailedError(
                f"a record of {len(record)} bytes exceeds MaxPayloadInMB ({max_payload_bytes} bytes)"
            )
        if strategy == "SingleRecord":
            yield record
            continue
        if batch and size + len(record) + 1 > max_payload_bytes:
            yield b"\n".join(batch) + b"\n"
            batch, size = [], 0
        batch.append(record)
        size += len(record) + 1
    if batch:
        yield b"\n".join(batch) + b"\n"


def assemble(responses: list[bytes], assemble_with: str) -> bytes:
    """The ``.out`` object: responses concatenated, each ending in a newline with ``Line``."""
    if assemble_with == "None":
        return b"".join(responses)
    return b"".join(r if r.endswith(b"\n") else r + b"\n" for r in responses)


def _check(request: dict[str, Any]) -> dict[str, Any]:
    """The request's settings, refusing what does not run locally."""
    source = _required(request, "TransformInput", "DataSource", "S3DataSource")
    data_type = source.get("S3DataType", "S3Prefix")
    if data_type != "S3Prefix":
        raise TransformRequestError(f"S3DataType {data_type!r} is not run locally: use S3Prefix")
    transform_input = request["TransformInput"]
    if transform_input.get("CompressionType", "None") != "None":
        raise TransformRequestError("compressed transform input is not run locally: CompressionType None")
    split_type = transform_input.get("SplitType", "None")
    if split_type not in SPLIT_TYPES:
        raise TransformRequestError(f"SplitType {split_type!r} is not run locally: one of {SPLIT_TYPES}")
    strategy = request.get("BatchStrategy", "SingleRecord")
    if strategy not in STRATEGIES:
        raise TransformRequestError(f"BatchStrategy {strategy!r} is not one of {STRATEGIES}")
    if strategy == "MultiRecord" and split_type == "None":
        raise TransformRequestError("BatchStrategy MultiRecord needs SplitType Line")
    processing = request.get("DataProcessing") or {}
    unsupported = [
        k
        for k in ("InputFilter", "OutputFilter", "JoinSource")
        if processing.get(k) not in (None, "$", "None")
    ]
    if unsupported:
        raise TransformRequestError(f"DataProcessing {unsupported} is not run locally: join outputs yourself")
    output = _required(request, "TransformOutput")
    assemble_with = output.get("AssembleWith", "None")
    if assemble_with not in ("None", "Line"):
        raise TransformRequestError(f"AssembleWith {assemble_with!r} is not one of None, Line")
    if output.get("KmsKeyId"):
        log.info("transform job: KmsKeyId is ignored locally")
    return {
        "job": _required(request, "TransformJobName"),
        "model": _required(request, "ModelName"),
        "input_uri": _required(source, "S3Uri"),
        "output_path": _required(output, "S3OutputPath"),
        "content_type": transform_input.get("ContentType") or "application/octet-stream",
        "accept": output.get("Accept") or transform_input.get("ContentType") or "application/json",
        "split_type": split_type,
        "strategy": strategy,
        "assemble_with": assemble_with,
        "max_payload": int(request.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB) * 1024 * 1024,
    }


def model_container(sagemaker: Any, model_name: str) -> dict[str, Any]:
    """``PrimaryContainer`` (else the first of ``Containers``) of the SageMaker Model ``model_name``."""
    model = sagemaker.describe_model(ModelName=model_name)
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    if not container.get("ModelDataUrl"):
        raise TransformRequestError(f"model {model_name} has no ModelDataUrl: nothing to load")
    return dict(container)


@contextlib.contextmanager
def predictor(container: dict[str, Any], directory: Path, url: str) -> Iterator[tuple[Predictor, str]]:
    """``(predict, where it runs)`` for an extracted model: the built-in algorithm in this process, or a
    model worker on the image's framework environment (this interpreter when it has none)."""
    if is_builtin_xgboost_model(container):
        try:
            booster = load_xgboost_booster(directory)
        except InvocationError as error:
            raise TransformJobFailedError(error.extra.get("OriginalMessage", error.message)) from None

        def predict_xgboost(body: bytes, content_type: str, accept: str) -> bytes:
            return predict_builtin_xgboost(booster, body, content_type, batch=True)

        yield predict_xgboost, "xgboost (built-in algorithm)"
        return
    try:
        python = interpreter_for(container.get("Image")) or Path(sys.executable)
    except FrameworkEnvError as error:
        raise TransformJobFailedError(str(error)) from None
    if not (directory / "code" / "inference.py").is_file():
        raise TransformJobFailedError(f"model data {url} has no code/inference.py: train with train.py")
    try:
        worker = ModelWorker(python, directory, url)
    except InvocationError as error:
        raise TransformJobFailedError(error.extra.get("OriginalMessage", error.message)) from None
    try:

        def predict_script(body: bytes, content_type: str, accept: str) -> bytes:
            payload, _ = worker.invoke(body, content_type, accept)
            return payload

        yield predict_script, str(python)
    finally:
        worker.close()


def run_transform_job(request: dict[str, Any], sagemaker: Any, s3: Any, work_dir: Path) -> TransformRunResult:
    """Run one CreateTransformJob request locally; upload its ``.out`` objects on success (not recorded)."""
    settings = _check(request)
    job = settings["job"]
    container = model_container(sagemaker, settings["model"])
    url = container["ModelDataUrl"]
    bucket, prefix = split_s3_uri(settings["input_uri"])
    keys = sorted(list_keys(s3, bucket, prefix))
    if not keys:  # SageMaker fails the job: "No S3 objects found under S3 URL ..."
        raise TransformRequestError(f"no S3 objects found under {settings['input_uri']}")
    directory = Path(work_dir).resolve() / "model"
    try:
        model_bucket, model_key = split_s3_uri(url)
        extract_tar(s3.get_object(Bucket=model_bucket, Key=model_key)["Body"].read(), directory)
    except Exception as error:
        raise TransformJobFailedError(
            f"cannot load model data {url}: {type(error).__name__}: {error}"
        ) from None
    outputs: dict[str, bytes] = {}
    records = requests = 0
    with predictor(container, directory, url) as (predict, served_on):
        log.info("transform job %s: model %s on %s, %d input object(s)", job, url, served_on, len(keys))
        for key in keys:
            source = f"s3://{bucket}/{key}"
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            items = split_records(body, settings["split_type"])
            responses = []
            for payload in mini_batches(items, settings["strategy"], settings["max_payload"]):
                try:
                    responses.append(predict(payload, settings["content_type"], settings["accept"]))
                except InvocationError as error:
                    message = error.extra.get("OriginalMessage", error.message)
                    raise TransformJobFailedError(f"transform job {job}: {source}: {message}") from None
                except Exception as error:  # the built-in algorithm's own failure
                    raise TransformJobFailedError(f"transform job {job}: {source}: {error}") from None
            records += len(items)
            requests += len(responses)
            outputs[source] = assemble(responses, settings["assemble_with"])
    uris = {}
    for source, blob in outputs.items():
        target = output_object_uri(settings["input_uri"], source, settings["output_path"])
        out_bucket, out_key = split_s3_uri(target)
        s3.put_object(Bucket=out_bucket, Key=out_key, Body=blob)
        uris[source] = target
        log.info("transform job %s: %s -> %s (%d bytes)", job, source, target, len(blob))
    return TransformRunResult(job, uris, records, requests, url, served_on)


def record_transform_job(sagemaker: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Record a finished job in the control plane; return its ``DescribeTransformJob`` answer (moto records
    every created transform job as ``Completed``)."""
    sagemaker.create_transform_job(**request)
    described = sagemaker.describe_transform_job(TransformJobName=request["TransformJobName"])
    status = described.get("TransformJobStatus")
    if status != "Completed":
        raise TransformJobFailedError(f"transform job {request['TransformJobName']} recorded as {status}")
    return described
