"""The local endpoint data plane: a sagemaker-runtime ``InvokeEndpoint`` server.

An endpoint's resolution (endpoint → endpoint config → production variants → models → ``ModelDataUrl``,
plus the config's ``DataCaptureConfig``) is asked of the control plane on its first request and then
kept fresh by a background refresher every ``resolve_ttl`` seconds (0.5 s), so requests never wait on
the control plane. When an ``UpdateEndpoint`` points the endpoint at other models, the refresher loads
them first and then switches (blue/green, as SageMaker does): requests keep being answered by the old
models until the new ones are ready, none fails. Each ``model.tar.gz`` is loaded once (its
``code/inference.py`` under a unique module name, ``model_fn`` called once) and runs
``input_fn → predict_fn → output_fn``. Errors carry AWS's codes, so botocore raises
``ValidationError`` / ``ModelError`` as against real SageMaker.

Only approved models are served: every variant's ``ModelDataUrl`` must be the artefact of a model package
version whose ``ModelApprovalStatus`` is Approved (:class:`ModelRegistry`), checked at every resolution
(so an approval or its withdrawal is seen within ``resolve_ttl``); otherwise requests get a
``ValidationError`` naming the package versions and their status, and nothing of that artefact is
downloaded or imported.

An endpoint config with ``DataCaptureConfig`` has its sampled invocations written to S3 in SageMaker's
data-capture format and layout (:mod:`sagelake.local.data_capture`). Each variant's ``Invocations``,
``Invocation4XXErrors``, ``Invocation5XXErrors`` and ``ModelLatency`` are put to CloudWatch as SageMaker
publishes them, by a background flusher (:mod:`sagelake.local.endpoint_metrics`). Variants are picked by
the endpoint's ``CurrentWeight`` (``UpdateEndpointWeightsAndCapacities``), else the config's weights.

Responses are HTTP/1.1 (kept-alive connections) written in one send with ``TCP_NODELAY``.

A model on the XGBoost image without ``SAGEMAKER_PROGRAM`` (SageMaker's built-in XGBoost algorithm,
:func:`sagelake.ml.images.is_builtin_xgboost_model`) has no inference script: its ``xgboost-model`` is
loaded with the local xgboost library and served as the algorithm's inference does — ``text/csv`` rows
of features in, one score per row out, comma-separated on one line (``SAGEMAKER_BATCH`` set in the
model's environment: one per line, as in batch transform).

A model whose image is a framework container with a local environment
(:func:`sagelake.local.framework_env.framework_for`: the scikit-learn image) is served by worker processes
on that environment's Python (:mod:`sagelake.local.model_worker`), so it loads and predicts with the
container's versions, not the Airflow venv's; ``main`` does so unless ``SAGELAKE_LOCAL_FRAMEWORK_ENVS`` is
false. One worker starts with the model; more (up to the container's ``SAGEMAKER_MODEL_SERVER_WORKERS``,
else ``model_workers``: one per CPU) when concurrent requests find them all busy. Each runs one
math-library thread. A warm spare worker per environment (imports done, no model yet) is kept ready,
so a newly deployed model is served in the time of its ``model_fn``. Other models (built-in XGBoost,
other images) are served in this process.

Run as ``python -m sagelake.local.endpoint_server --port 8085 --control-plane-url http://127.0.0.1:4566``.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import hashlib
import importlib.util
import json
import logging
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sagelake.aws_errors import has_code
from sagelake.config.settings import local_framework_envs
from sagelake.lake.layout import split_s3_uri
from sagelake.local import data_capture, endpoint_metrics, model_worker
from sagelake.local.framework_env import FrameworkEnvError, framework_python
from sagelake.local.subprocess_env import job_environment
from sagelake.ml.artifacts import extract_tar
from sagelake.ml.images import is_builtin_xgboost_model

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
JSON = "application/json"
CSV = "text/csv"
XGBOOST_MODEL_FILE = "xgboost-model"
XGBOOST_CONTENT_TYPES = ("text/csv", "text/libsvm", "text/x-libsvm", "application/x-recordio-protobuf")
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit
WORKER_STOP_SECONDS = 5
RESOLVE_TTL_SECONDS = 0.5  # how often a served endpoint's resolution is refreshed
IDLE_SECONDS = 60.0  # an endpoint not invoked for this long is no longer refreshed
DEFAULT_MODEL_WORKERS = os.cpu_count() or 1  # SageMaker's model servers: one worker per vCPU
# The Python serving a model's image: a framework venv's, or None for this process.
Interpreter = Callable[[str | None], Path | None]


class InvocationError(Exception):
    """An error to return to the caller with an AWS status and error code."""

    def __init__(self, status: int, code: str, message: str, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}


def validation_error(message: str) -> InvocationError:
    return InvocationError(400, "ValidationError", message)


def model_error(message: str, variant: str = "") -> InvocationError:
    """424 ModelError, shaped like AWS's (the container's 500 wrapped as OriginalStatusCode)."""
    extra = {"OriginalStatusCode": 500, "OriginalMessage": message}
    prefix = f"Received server error (500) from {variant or 'primary'} with message"
    return InvocationError(424, "ModelError", f'{prefix} "{message}".', extra)


@dataclass(frozen=True)
class Variant:
    """One production variant of an endpoint config."""

    name: str
    model_name: str
    weight: float


@dataclass(frozen=True)
class ModelSource:
    """Where a variant's model comes from: its ``ModelDataUrl`` and how it is served."""

    url: str
    builtin_xgboost: bool = False
    batch: bool = False  # SAGEMAKER_BATCH in the container environment (built-in XGBoost's output shape)
    image: str | None = None  # the container's Image: which framework environment serves it
    workers: int | None = None  # SAGEMAKER_MODEL_SERVER_WORKERS of the container


@dataclass(frozen=True)
class Resolution:
    """What an endpoint serves: its config's variants, each variant's model and the data capture."""

    config_name: str
    variants: tuple[Variant, ...]
    sources: dict[str, ModelSource] = field(hash=False)
    capture: data_capture.CaptureConfig | None = None
    version: str = ""  # the endpoint's config name and LastModifiedTime it was resolved from


def worker_environment() -> dict[str, str]:
    """A worker's environment: of this one only what :func:`job_environment` allows (a model's code sees
    no secret of the server or of the Airflow task running a transform job), with one math-library thread
    per worker unless set (on a busy machine OpenMP's spinning threads turn a 3 ms prediction into tens
    of ms)."""
    threads = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return job_environment({name: os.environ.get(name) or "1" for name in threads})


def start_worker_process(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd, env=worker_environment()
    )


def start_spare(python: Path, cwd: Path) -> subprocess.Popen:
    """A warm model worker waiting for its model (:func:`sagelake.local.model_worker.serve_spare`)."""
    return start_worker_process([str(python), "-I", model_worker.__file__, model_worker.SPARE], cwd)


def stop_process(proc: subprocess.Popen) -> None:
    with contextlib.suppress(OSError):
        proc.stdin.close()
    try:
        proc.wait(WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


class ModelWorker:
    """A model served by :mod:`sagelake.local.model_worker` on another Python; one request at a time."""

    def __init__(
        self, python: Path, directory: Path, url: str, spare: subprocess.Popen | None = None
    ) -> None:
        self.python = python
        self._lock = threading.Lock()
        if spare is None:
            argv = [str(python), "-I", model_worker.__file__, str(directory)]
            self._proc = start_worker_process(argv, directory)
            ready = self._receive()
        else:  # a warm spare (model_worker --spare): tell it which model to serve
            self._proc = spare
            with contextlib.suppress(OSError):  # a dead spare: _receive says so
                model_worker.write_message(spare.stdin, {"directory": str(directory)})
            ready = self._receive()
            if ready is not None and ready[0].get("spare"):
                ready = self._receive()
        if ready is None or not ready[0].get("ok"):
            self.close()
            reason = ready[0].get("error") if ready else f"its worker exited (code {self._proc.poll()})"
            raise model_error(f"loading {url} failed: {reason}")

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def _receive(self) -> tuple[dict, bytes] | None:
        try:
            return model_worker.read_message(self._proc.stdout)
        except (OSError, ValueError):
            return None

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """``(payload, content type)``; an :class:`InvocationError` (ModelError) when the model fails."""
        with self._lock:
            try:
                header = {"content_type": content_type, "accept": accept}
                model_worker.write_message(self._proc.stdin, header, body)
                reply = self._receive()
            except OSError:
                reply = None
        if reply is None:
            raise model_error(f"the model's worker exited (code {self._proc.poll()})")
        header, payload = reply
        if not header.get("ok"):
            raise model_error(str(header.get("error")))
        return payload, header.get("content_type") or accept

    def close(self) -> None:
        stop_process(self._proc)


class WorkerPool:
    """Up to ``size`` :class:`ModelWorker` of one model (the container's model server workers): one is
    started with the model, another only when a request finds them all busy (so a model invoked one
    request at a time costs one process). A request takes an idle worker."""

    def __init__(self, spawn: Callable[[], ModelWorker], size: int) -> None:
        self._spawn = spawn
        self.size = max(1, size)
        self.workers: list[ModelWorker] = [self._spawn()]
        self._idle: queue.SimpleQueue[ModelWorker] = queue.SimpleQueue()
        self._idle.put(self.workers[0])
        self._lock = threading.Lock()
        self._growing = False
        self._closed = False

    @property
    def alive(self) -> bool:
        return all(worker.alive for worker in list(self.workers))

    def _grow(self) -> None:
        try:
            worker = self._spawn()
        except InvocationError as error:
            log.warning("an extra model worker failed to start: %s", error.message)
            worker = None
        with self._lock:
            self._growing = False
            if worker is not None and self._closed:
                worker.close()
            elif worker is not None:
                self.workers.append(worker)
                self._idle.put(worker)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = not self._growing and not self._closed and len(self.workers) < self.size
                self._growing = self._growing or grow
            if grow:
                threading.Thread(target=self._grow, name="model-worker-start", daemon=True).start()
            worker = self._idle.get()
        try:
            return worker.invoke(body, content_type, accept)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self.workers)
        for worker in workers:
            worker.close()


@dataclass
class LoadedModel:
    """A model archive extracted on disk and its inference module and model (none for built-in XGBoost),
    or the worker process serving it."""

    url: str
    directory: Path
    module: ModuleType | None
    model: Any
    builtin_xgboost: bool = False
    worker: WorkerPool | None = None


def load_xgboost_booster(directory: Path):
    """The built-in algorithm's model: ``xgboost-model`` (else the archive's only file) as a Booster."""
    import xgboost as xgb

    path = directory / XGBOOST_MODEL_FILE
    if not path.is_file():
        files = [p for p in directory.iterdir() if p.is_file()]
        if len(files) != 1:
            raise model_error(
                f"no {XGBOOST_MODEL_FILE} in the model archive: train it with the built-in XGBoost algorithm"
            )
        path = files[0]
    booster = xgb.Booster()
    booster.load_model(bytearray(path.read_bytes()))  # from a buffer, xgboost detects the format
    booster.set_param("nthread", 1)  # as the container: one thread per worker
    return booster


def parse_csv_rows(body: bytes):
    """``text/csv`` rows of numbers (empty field = missing) as a float matrix; a ModelError otherwise."""
    import numpy as np

    text = body.decode("utf-8").strip()
    if not text:
        raise model_error("Loading csv data failed: the request body is empty")
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise model_error(f"Loading csv data failed: rows have different column counts {sorted(widths)}")
    try:
        return np.array([[float(v) if v.strip() else np.nan for v in row] for row in rows], dtype="float64")
    except ValueError as exc:
        raise model_error(
            f"Loading csv data failed with Exception, please ensure data is in csv format: {exc}"
        ) from None


def predict_builtin_xgboost(booster, body: bytes, content_type: str, batch: bool = False) -> bytes:
    """The built-in algorithm's ``/invocations``: scores of ``text/csv`` rows, comma-separated."""
    import xgboost as xgb

    kind = (content_type or CSV).split(";")[0].strip().lower()
    if kind not in XGBOOST_CONTENT_TYPES:
        raise model_error(
            f"Content-type {content_type} not supported. Supported content-type is text/csv, text/libsvm"
        )
    if kind != CSV:
        raise model_error(f"Content-type {kind} is not served locally: send text/csv")
    rows = parse_csv_rows(body)
    expected = booster.num_features()
    if rows.shape[1] != expected:
        raise model_error(
            f"Feature size of csv inference data {rows.shape[1]} is not consistent with feature size of "
            f"trained model {expected}"
        )
    scores = booster.predict(xgb.DMatrix(rows, missing=float("nan")), validate_features=False)
    values = [str(v) for v in scores.tolist()]
    return ("\n".join(values) + "\n" if batch else ",".join(values)).encode()


def choose_variant(variants: list[Variant], rng: random.Random, target: str | None = None) -> Variant:
    """The targeted variant, else one drawn by weight (all weights zero → uniform)."""
    if not variants:
        raise validation_error("endpoint config has no production variants")
    if target:
        for variant in variants:
            if variant.name == target:
                return variant
        raise validation_error(f"target variant {target!r} is not one of {[v.name for v in variants]}")
    weights = [max(v.weight, 0.0) for v in variants]
    if sum(weights) <= 0:
        weights = [1.0] * len(variants)
    return rng.choices(variants, weights=weights, k=1)[0]


class ModelCache:
    """Download and load each ``ModelDataUrl`` once; thread-safe.

    ``interpreter`` maps a model's image to the Python of its framework environment: such a model is
    served by a :class:`ModelWorker` on it; without one (or when it gives ``None``), in this process.
    """

    def __init__(
        self,
        s3_client,
        cache_dir: Path,
        interpreter: Interpreter | None = None,
        workers: int = DEFAULT_MODEL_WORKERS,
    ) -> None:
        self.s3 = s3_client
        self.cache_dir = Path(cache_dir)
        self.interpreter = interpreter
        self.workers = workers
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # guards the dicts; a load holds only its URL's lock
        self._loading: dict[str, threading.Lock] = {}
        self._spares: dict[Path, subprocess.Popen] = {}
        self._closed = False

    @staticmethod
    def _usable(loaded: LoadedModel | None) -> bool:
        return loaded is not None and (loaded.worker is None or loaded.worker.alive)

    def get(
        self, url: str, builtin_xgboost: bool = False, image: str | None = None, workers: int | None = None
    ) -> LoadedModel:
        loaded = self._models.get(url)
        if self._usable(loaded):
            return loaded
        with self._lock:
            lock = self._loading.setdefault(url, threading.Lock())
        with lock:  # one load per URL; other models keep serving meanwhile
            loaded = self._models.get(url)
            if not self._usable(loaded):
                if loaded is not None and loaded.worker is not None:
                    loaded.worker.close()
                loaded = self._load(url, builtin_xgboost, image, workers)
                with self._lock:
                    self._models[url] = loaded
            return loaded

    def source(self, source: ModelSource) -> LoadedModel:
        return self.get(source.url, source.builtin_xgboost, source.image, source.workers)

    def worker(self, python: Path, directory: Path, url: str) -> ModelWorker:
        """A worker serving the model in ``directory``: the warm spare of ``python`` if there is one
        (and a new spare started for the next model), else a fresh process."""
        with self._lock:
            spare = self._spares.pop(python, None)
        if spare is not None and spare.poll() is not None:
            stop_process(spare)
            spare = None
        try:
            return ModelWorker(python, directory, url, spare)
        finally:  # the next spare warms up once this worker no longer competes for the CPU
            with self._lock:
                if not self._closed and python not in self._spares:
                    self._spares[python] = start_spare(python, self.cache_dir)

    def close(self) -> None:
        """Stop the models' worker processes and the spares."""
        with self._lock:
            self._closed = True
            models, self._models = list(self._models.values()), {}
            spares, self._spares = list(self._spares.values()), {}
        for loaded in models:
            if loaded.worker is not None:
                loaded.worker.close()
        for spare in spares:
            stop_process(spare)

    def _python_for(self, image: str | None) -> Path | None:
        if self.interpreter is None:
            return None
        try:
            return self.interpreter(image)
        except FrameworkEnvError as exc:
            raise model_error(str(exc)) from None

    def _load(
        self, url: str, builtin_xgboost: bool = False, image: str | None = None, workers: int | None = None
    ) -> LoadedModel:
        try:
            bucket, key = split_s3_uri(url)
            data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ValueError, ClientError, BotoCoreError) as exc:
            raise model_error(f"cannot download model data {url}: {exc}") from None
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        directory = self.cache_dir / digest
        staging = self.cache_dir / f".{digest}-{uuid.uuid4().hex[:8]}"
        try:
            extract_tar(data, staging)
        except Exception as exc:  # a corrupt archive is the model's fault, not the caller's
            shutil.rmtree(staging, ignore_errors=True)
            raise model_error(f"model data {url} is not a readable model.tar.gz: {exc}") from None
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)
        if builtin_xgboost:
            try:
                booster = load_xgboost_booster(directory)
            except InvocationError:
                raise
            except Exception as exc:
                raise model_error(f"loading {url} failed: {type(exc).__name__}: {exc}") from None
            log.info("loaded built-in XGBoost model %s into %s", url, directory)
            return LoadedModel(url=url, directory=directory, module=None, model=booster, builtin_xgboost=True)
        script = directory / "code" / "inference.py"
        if not script.is_file():
            raise model_error(f"model data {url} has no code/inference.py: train with the sagelake train.py")
        python = self._python_for(image)
        if python is not None:
            size = max(1, workers or self.workers)
            worker = WorkerPool(lambda: self.worker(python, directory, url), size)
            log.info("loaded model %s into %s, served on %s by %d worker(s)", url, directory, python, size)
            return LoadedModel(url=url, directory=directory, module=None, model=None, worker=worker)
        module_name = f"sagelake_endpoint_model_{digest}_{uuid.uuid4().hex[:8]}"
        code_dir = str(script.parent)
        sys.path.insert(0, code_dir)  # the container puts code/ on the path for sibling imports
        try:
            spec = importlib.util.spec_from_file_location(module_name, script)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[module_name] = module
            model = module.model_fn(str(directory))
        except Exception as exc:
            raise model_error(f"loading {url} failed: {type(exc).__name__}: {exc}") from None
        finally:
            sys.path.remove(code_dir)
        log.info("loaded model %s into %s", url, directory)
        return LoadedModel(url=url, directory=directory, module=module, model=model)


APPROVED = "Approved"


class ModelRegistry:
    """Which model artefacts the model registry approves: the ``ModelDataUrl`` of every container of every
    package version whose ``ModelApprovalStatus`` is Approved.

    One ``ListModelPackages`` (versioned, Approved; paginated) per :meth:`approved_urls`; a version's
    containers are described once (``DescribeModelPackage``: a registered version's
    ``InferenceSpecification`` does not change) and remembered by ARN.
    """

    def __init__(self, sagemaker) -> None:
        self.sagemaker = sagemaker
        self._urls: dict[str, tuple[str, ...]] = {}  # package version ARN -> its containers' ModelDataUrl
        self._lock = threading.Lock()

    def _summaries(self, **filters: str) -> list[dict]:
        summaries: list[dict] = []
        for page in self.sagemaker.get_paginator("list_model_packages").paginate(
            ModelPackageType="Versioned", **filters
        ):
            summaries += page.get("ModelPackageSummaryList", [])
        return summaries

    def _package_urls(self, arn: str) -> tuple[str, ...]:
        urls = self._urls.get(arn)
        if urls is None:
            described = self.sagemaker.describe_model_package(ModelPackageName=arn)
            containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
            urls = tuple(c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl"))
            with self._lock:
                self._urls[arn] = urls
        return urls

    def approved_urls(self) -> set[str]:
        """The ``ModelDataUrl`` of every Approved package version, as the registry says now."""
        summaries = self._summaries(ModelApprovalStatus=APPROVED)
        return {url for s in summaries for url in self._package_urls(s["ModelPackageArn"])}

    def statuses(self, url: str) -> dict[str, str]:
        """Package version ARN → ``ModelApprovalStatus`` of every version registering ``url`` (for an
        error message: one call per version not yet described)."""
        return {
            s["ModelPackageArn"]: s.get("ModelApprovalStatus", "")
            for s in self._summaries()
            if url in self._package_urls(s["ModelPackageArn"])
        }

    def refusal(self, url: str, model_name: str, endpoint: str) -> InvocationError:
        """The ValidationError answering a request to ``endpoint`` whose model ``model_name`` serves
        ``url``, an artefact of no Approved package version."""
        statuses = self.statuses(url)
        why = (
            "; ".join(f"{arn} is {status}" for arn, status in sorted(statuses.items()))
            if statuses
            else "no model package version registers it"
        )
        return validation_error(
            f"Endpoint {endpoint}: model {model_name} serves {url}, which is not the model of an Approved "
            f"model package version ({why}); only approved models are served: approve its package version "
            "(UpdateModelPackage ModelApprovalStatus=Approved) or deploy an approved one."
        )

    def check(self, resolution: Resolution, endpoint: str) -> Resolution:
        """``resolution`` when every variant's model artefact is approved; else the ValidationError
        naming the first one that is not (nothing of it is loaded)."""
        approved = self.approved_urls()
        for variant in resolution.variants:
            url = resolution.sources[variant.name].url
            if url not in approved:
                raise self.refusal(url, variant.model_name, endpoint)
        return resolution


def serving_config(endpoint_url: str, endpoint: str) -> str | None:
    """The endpoint config the local endpoint server at ``endpoint_url`` routes ``endpoint``'s requests to
    now (``GET /endpoints/{name}``; the control plane says ``InService`` before the server has switched);
    None when it cannot serve the endpoint."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint_url.rstrip('/')}/endpoints/{endpoint}", timeout=5) as answer:
            return json.loads(answer.read())["EndpointConfigName"]
    except urllib.error.HTTPError:
        return None


def wait_until_serving(endpoint_url: str, endpoint: str, config_name: str, timeout_s: float = 120) -> None:
    """Wait until the local endpoint server serves ``config_name`` for ``endpoint`` (its models loaded):
    what ``InService`` after an update means on AWS. TimeoutError naming both configs otherwise."""
    deadline = time.monotonic() + timeout_s
    while (served := serving_config(endpoint_url, endpoint)) != config_name:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the local endpoint server still serves {served} for {endpoint}, not {config_name}, "
                f"after {timeout_s:.0f}s: see its log"
            )
        time.sleep(0.2)


def resolve_endpoint(
    sagemaker, endpoint: str, previous: Resolution | None = None, registry: ModelRegistry | None = None
) -> Resolution:
    """Ask the control plane what ``endpoint`` serves: its config's variants, their models, the capture.

    Endpoint configs and models are immutable (an endpoint keeps what its config said when it was
    created or updated), so when the endpoint still names ``previous``'s config and has not been
    modified since, ``previous`` is returned after one ``DescribeEndpoint``.

    With a ``registry``, every model artefact must belong to an Approved model package version, checked
    on every call (an approval, or its withdrawal, is seen at the next refresh): else a ValidationError.
    """
    resolution = _resolve_endpoint(sagemaker, endpoint, previous)
    return resolution if registry is None else registry.check(resolution, endpoint)


def _resolve_endpoint(sagemaker, endpoint: str, previous: Resolution | None) -> Resolution:
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if has_code(exc, "ValidationException", "ValidationError", "ResourceNotFound"):
            raise validation_error(f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.") from None
        raise
    if described.get("EndpointStatus") not in ("InService", "Updating"):
        raise validation_error(f"Endpoint {endpoint} is {described.get('EndpointStatus')}, not InService.")
    config_name = described["EndpointConfigName"]
    # UpdateEndpointWeightsAndCapacities changes the endpoint's CurrentWeight, not its config (nor, on the
    # control plane, its LastModifiedTime): the live weights are part of what was resolved
    live = {
        v["VariantName"]: float(v["CurrentWeight"])
        for v in described.get("ProductionVariants") or []
        if v.get("CurrentWeight") is not None
    }
    version = f"{config_name}@{described.get('LastModifiedTime')}@{sorted(live.items())}"
    if previous is not None and previous.version == version:
        return previous
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except ClientError as exc:
        raise validation_error(f"endpoint config {config_name} of endpoint {endpoint}: {exc}") from None
    variants = tuple(
        Variant(
            v["VariantName"],
            v["ModelName"],
            live.get(v["VariantName"], float(v.get("InitialVariantWeight", 1.0))),
        )
        for v in config.get("ProductionVariants", [])
    )
    sources: dict[str, ModelSource] = {}
    for variant in variants:
        try:
            model = sagemaker.describe_model(ModelName=variant.model_name)
        except ClientError as exc:
            raise validation_error(f"model {variant.model_name} of endpoint {endpoint}: {exc}") from None
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        url = container.get("ModelDataUrl")
        if not url:
            raise model_error(f"model {variant.model_name} has no ModelDataUrl", variant.name)
        environment = container.get("Environment") or {}
        builtin = is_builtin_xgboost_model(container)
        workers = environment.get("SAGEMAKER_MODEL_SERVER_WORKERS")
        sources[variant.name] = ModelSource(
            url,
            builtin,
            builtin and bool(environment.get("SAGEMAKER_BATCH")),
            container.get("Image"),
            int(workers) if str(workers or "").isdigit() else None,
        )
    capture = data_capture.parse_config(config.get("DataCaptureConfig"))
    return Resolution(config_name, variants, sources, capture, version)


@dataclass
class _Entry:
    """A cached resolution (or the error resolving it gave) and when it was last used."""

    resolution: Resolution | None
    error: InvocationError | None
    used_at: float


class EndpointResolver:
    """Endpoint name → :class:`Resolution`, resolved on first use and refreshed every ``ttl`` seconds in
    the background (never on the request path).

    ``prepare`` is called with a changed resolution before it replaces the old one (loading its models),
    so a switch of model never makes a request wait or fail. An endpoint not used for ``idle`` seconds is
    forgotten. A refresh the control plane fails (not an AWS error) keeps the last resolution.
    """

    def __init__(
        self,
        resolve: Callable[[str, Resolution | None], Resolution],
        ttl: float = RESOLVE_TTL_SECONDS,
        prepare: Callable[[Resolution], None] | None = None,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self._resolve, self.ttl, self._prepare, self.idle = resolve, ttl, prepare, idle
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._first: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, endpoint: str) -> Resolution:
        entry = self._entries.get(endpoint)
        if entry is None:
            with self._lock:
                lock = self._first.setdefault(endpoint, threading.Lock())
            with lock:  # concurrent first requests resolve once
                entry = self._entries.get(endpoint)
                if entry is None:
                    entry = self._fetch(endpoint, time.monotonic(), None)
                    with self._lock:
                        self._entries[endpoint] = entry
            self._start()
        entry.used_at = time.monotonic()
        if entry.error is not None:
            raise entry.error
        return entry.resolution

    def _fetch(self, endpoint: str, now: float, previous: Resolution | None) -> _Entry:
        try:
            return _Entry(self._resolve(endpoint, previous), None, now)
        except InvocationError as error:
            return _Entry(None, error, now)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="endpoint-resolver", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl):
            self.refresh()

    def refresh(self) -> None:
        """Re-resolve every endpoint in use; forget idle ones."""
        now = time.monotonic()
        for endpoint, entry in list(self._entries.items()):
            if now - entry.used_at > self.idle:
                with self._lock:
                    self._entries.pop(endpoint, None)
                continue
            try:
                fresh = self._fetch(endpoint, entry.used_at, entry.resolution)
            except Exception as exc:  # control plane unreachable: keep serving what we know
                log.warning("refreshing endpoint %s failed (%s): serving its last resolution", endpoint, exc)
                continue
            changed = fresh.resolution is not None and (
                entry.resolution is None or fresh.resolution.sources != entry.resolution.sources
            )
            if changed and self._prepare is not None:
                try:
                    self._prepare(fresh.resolution)
                except InvocationError as error:  # the new model fails: its requests will say so
                    log.warning("endpoint %s: preparing %s failed: %s", endpoint, fresh.resolution, error)
            fresh.used_at = entry.used_at
            with self._lock:
                if endpoint in self._entries:
                    self._entries[endpoint] = fresh
            if changed and entry.resolution is not None:
                log.info("endpoint %s now serves config %s", endpoint, fresh.resolution.config_name)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class EndpointServer(ThreadingHTTPServer):
    """ThreadingHTTPServer holding the endpoint resolver, the model cache, the capture writer and the
    variant RNG."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        sagemaker_client,
        models: ModelCache,
        seed: int = 0,
        resolve_ttl: float = RESOLVE_TTL_SECONDS,
        capture: data_capture.CaptureWriter | None = None,
        metrics: endpoint_metrics.MetricsPublisher | None = None,
    ) -> None:
        super().__init__(address, InvocationHandler)
        self.sagemaker = sagemaker_client
        self.models = models
        self.registry = ModelRegistry(sagemaker_client)  # only approved models are served
        self.resolver = EndpointResolver(
            lambda endpoint, previous: resolve_endpoint(self.sagemaker, endpoint, previous, self.registry),
            resolve_ttl,
            self._prepare,
        )
        self.capture = capture or data_capture.CaptureWriter(self._put_capture)
        self.metrics = metrics  # per-variant CloudWatch metrics (None: not published)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _prepare(self, resolution: Resolution) -> None:
        """Load a new resolution's models before requests are sent to them."""
        for source in resolution.sources.values():
            self.models.source(source)

    def _put_capture(self, bucket: str, key: str, body: bytes) -> None:
        self.models.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/jsonl")

    def pick(self, variants: tuple[Variant, ...] | list[Variant], target: str | None) -> Variant:
        with self._rng_lock:
            return choose_variant(list(variants), self._rng, target)

    def resolve(self, endpoint: str, target: str | None) -> tuple[Variant, ModelSource]:
        """Endpoint name → (chosen variant, its model source), from the resolver's cache."""
        variant, source, _ = self._route(endpoint, target)
        return variant, source

    def _route(self, endpoint: str, target: str | None):
        resolution = self.resolver.get(endpoint)
        variant = self.pick(resolution.variants, target)
        return variant, resolution.sources[variant.name], resolution.capture

    def invoke(self, endpoint: str, body: bytes, content_type: str, accept: str, target: str | None):
        """Run one invocation; returns ``(response body, content type, variant name)``."""
        when = datetime.now(UTC)
        variant, source, capture = self._route(endpoint, target)
        started = time.perf_counter()
        try:
            payload, response_type = self._predict(variant, source, body, content_type, accept)
        except InvocationError as error:
            if self.metrics is not None:
                self.metrics.record(endpoint, variant.name, error.status, time.perf_counter() - started)
            raise
        if self.metrics is not None:
            self.metrics.record(endpoint, variant.name, 200, time.perf_counter() - started)
        if capture is not None and data_capture.sampled(capture):
            record = data_capture.capture_record(
                capture,
                request=body,
                request_type=content_type,
                response=payload,
                response_type=response_type,
                when=when,
            )
            self.capture.add(capture, endpoint, variant.name, record, when)
        return payload, response_type, variant.name

    def _predict(self, variant: Variant, source: ModelSource, body: bytes, content_type: str, accept: str):
        loaded = self.models.source(source)
        if loaded.worker is not None:
            try:
                payload, response_type = loaded.worker.invoke(body, content_type, accept)
            except InvocationError as error:
                raise model_error(error.extra["OriginalMessage"], variant.name) from None
            return payload, response_type or JSON
        if loaded.builtin_xgboost:
            try:
                payload = predict_builtin_xgboost(loaded.model, body, content_type, source.batch)
            except InvocationError as error:
                raise model_error(error.extra["OriginalMessage"], variant.name) from None
            except Exception as exc:
                raise model_error(f"{type(exc).__name__}: {exc}", variant.name) from None
            return payload, CSV
        module = loaded.module
        try:
            data = module.input_fn(body, content_type)
            prediction = module.predict_fn(data, loaded.model)
            result = module.output_fn(prediction, accept)
            payload, response_type = result if isinstance(result, tuple) else (result, accept)
            payload = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        except Exception as exc:
            raise model_error(f"{type(exc).__name__}: {exc}", variant.name) from None
        return payload, response_type or JSON

    def start(self) -> EndpointServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="endpoint-server", daemon=True
        )
        self._thread.start()
        return self

    def shutdown(self) -> None:
        super().shutdown()
        self.server_close()
        self.resolver.close()
        self.capture.close()
        if self.metrics is not None:
            self.metrics.close()
        self.models.close()


class InvocationHandler(BaseHTTPRequestHandler):
    """``POST /endpoints/{name}/invocations`` and ``GET /ping``; HTTP/1.1 with kept-alive connections,
    each response written in one send with Nagle off (no delayed-ACK stall)."""

    server: EndpointServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_request(self, code: Any = "-", size: Any = "-") -> None:  # one line per request is ours
        pass

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Status line, headers and body in one write."""
        reason = self.responses.get(status, ("",))[0]
        lines = [
            f"{self.protocol_version} {status} {reason}",
            f"Server: {self.version_string()}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"x-amzn-RequestId: {uuid.uuid4()}",
        ]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _send_error(self, error: InvocationError) -> None:
        body = json.dumps(
            {"__type": error.code, "message": error.message, "Message": error.message, **error.extra}
        )
        self._send(error.status, body.encode(), JSON, {"x-amzn-ErrorType": error.code})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/ping":
            self._send(200, b"", "text/plain")
        elif path.startswith("/endpoints/") and path.count("/") == 2:  # local only: what is served now
            try:
                resolution = self.server.resolver.get(path.rsplit("/", 1)[1])
            except InvocationError as error:
                self._send_error(error)
                return
            self._send(200, json.dumps({"EndpointConfigName": resolution.config_name}).encode(), JSON)
        else:
            self._send_error(
                InvocationError(404, "UnknownOperationException", f"no route for GET {self.path}")
            )
        log.debug("GET %s %d", self.path, 200 if self.path == "/ping" else 404)

    def _read_body(self) -> bytes:
        """The request body; a ValidationError (and the connection closed) when it cannot be read."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise validation_error("chunked request bodies are not supported: send a Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True  # where the next request starts is unknown
            raise validation_error(f"invalid Content-Length {self.headers.get('Content-Length')!r}")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would corrupt a kept-alive connection
            raise validation_error(f"request body is {length} bytes, more than the {MAX_BODY_BYTES} allowed")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise validation_error(f"request body ended after {len(body)} of {length} bytes")
        return body

    def do_POST(self) -> None:
        started = time.monotonic()
        parts = urlsplit(self.path).path.strip("/").split("/")
        endpoint, variant, status = "", "-", 200
        try:
            body = self._read_body()
            if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
                raise InvocationError(404, "UnknownOperationException", f"no route for POST {self.path}")
            endpoint = unquote(parts[1])
            payload, content_type, variant = self.server.invoke(
                endpoint,
                body,
                self.headers.get("Content-Type") or JSON,
                self.headers.get("Accept") or JSON,
                self.headers.get("X-Amzn-SageMaker-Target-Variant"),
            )
            self._send(200, payload, content_type, {"x-Amzn-Invoked-Production-Variant": variant})
        except InvocationError as error:
            status = error.status
            self._send_error(error)
        except Exception as exc:  # control plane down or a bug here: not the caller's fault
            status = 500
            log.exception("invocation of %s failed", endpoint)
            self._send_error(InvocationError(500, "InternalFailure", f"{type(exc).__name__}: {exc}"))
        if log.isEnabledFor(logging.INFO):
            log.info(
                "POST %s endpoint=%s variant=%s status=%d %.3fs",
                self.path,
                endpoint,
                variant,
                status,
                time.monotonic() - started,
            )


def serving_interpreter(framework_envs: bool | None = None) -> Interpreter | None:
    """What serves each model: its framework environment (:func:`framework_python`), or this process
    (``framework_envs`` false; ``None``: the ``SAGELAKE_LOCAL_FRAMEWORK_ENVS`` setting)."""
    enabled = local_framework_envs() if framework_envs is None else framework_envs
    return framework_python if enabled else None


def serve(
    host: str,
    port: int,
    control_plane_url: str,
    cache_dir: str | Path,
    region: str = "us-east-1",
    seed: int = 0,
    framework_envs: bool | None = None,
    resolve_ttl: float = RESOLVE_TTL_SECONDS,
    model_workers: int = DEFAULT_MODEL_WORKERS,
    metrics_flush_seconds: float = endpoint_metrics.FLUSH_SECONDS,
) -> EndpointServer:
    """Start the endpoint server in a background thread; call ``.shutdown()`` to stop it (it flushes the
    buffered data capture and metrics).

    ``framework_envs``: serve each model on its image's framework environment (true), or every model in
    this process (false); ``None``: as ``SAGELAKE_LOCAL_FRAMEWORK_ENVS`` says (default true).
    ``resolve_ttl``: how often (s) an endpoint's config and models are re-read (a switch is seen within
    it, plus the new model's load). ``model_workers``: worker processes per framework-env model unless
    its container sets ``SAGEMAKER_MODEL_SERVER_WORKERS``. ``metrics_flush_seconds``: how often the
    per-variant CloudWatch metrics (:mod:`sagelake.local.endpoint_metrics`) are put to the control plane.
    """
    session = boto3.session.Session(region_name=region)
    sagemaker = session.client("sagemaker", endpoint_url=control_plane_url)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    cloudwatch = session.client("cloudwatch", endpoint_url=control_plane_url)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    models = ModelCache(s3, Path(cache_dir), serving_interpreter(framework_envs), model_workers)
    metrics = endpoint_metrics.MetricsPublisher(
        lambda namespace, data: cloudwatch.put_metric_data(Namespace=namespace, MetricData=data),
        metrics_flush_seconds,
    )
    return EndpointServer((host, port), sagemaker, models, seed, resolve_ttl, metrics=metrics).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--control-plane-url", default="http://127.0.0.1:4566")
    parser.add_argument("--cache-dir", default=".local/endpoint-cache")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    parser.add_argument("--resolve-ttl", type=float, default=RESOLVE_TTL_SECONDS)
    parser.add_argument("--model-workers", type=int, default=DEFAULT_MODEL_WORKERS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = serve(
        args.host,
        args.port,
        args.control_plane_url,
        args.cache_dir,
        args.region,
        resolve_ttl=args.resolve_ttl,
        model_workers=args.model_workers,
    )
    host, port = server.server_address[:2]
    where = "their framework environments" if server.models.interpreter else "the server's Python"
    print(
        f"endpoint server listening on http://{host}:{port} (control plane {args.control_plane_url}; "
        f"models served on {where})",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()


if __name__ == "__main__":
    main()
