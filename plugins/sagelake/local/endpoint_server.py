"""The local endpoint data plane: a sagemaker-runtime ``InvokeEndpoint`` server.

Each request asks the control plane which model the endpoint serves (endpoint → endpoint config →
production variant → model → ``ModelDataUrl``), loads that ``model.tar.gz`` once (its
``code/inference.py`` under a unique module name, ``model_fn`` called once) and runs
``input_fn → predict_fn → output_fn``. Errors carry AWS's codes, so botocore raises
``ValidationError`` / ``ModelError`` as against real SageMaker.

A model on the XGBoost image without ``SAGEMAKER_PROGRAM`` (SageMaker's built-in XGBoost algorithm,
:func:`sagelake.ml.images.is_builtin_xgboost_model`) has no inference script: its ``xgboost-model`` is
loaded with the local xgboost library and served as the algorithm's inference does — ``text/csv`` rows
of features in, one score per row out, comma-separated on one line (``SAGEMAKER_BATCH`` set in the
model's environment: one per line, as in batch transform).

A model whose image is a framework container with a local environment
(:func:`sagelake.local.framework_env.framework_for`: the scikit-learn image) is served by a worker process
on that environment's Python (:mod:`sagelake.local.model_worker`), so it loads and predicts with the
container's versions, not the Airflow venv's; ``main`` does so unless ``SAGELAKE_LOCAL_FRAMEWORK_ENVS`` is
false. Other models (built-in XGBoost, other images) are served in this process.

Run as ``python -m sagelake.local.endpoint_server --port 8085 --control-plane-url http://127.0.0.1:4566``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
from sagelake.local import model_worker
from sagelake.local.framework_env import FrameworkEnvError, framework_python
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


class ModelWorker:
    """A model served by :mod:`sagelake.local.model_worker` on another Python; one request at a time."""

    def __init__(self, python: Path, directory: Path, url: str) -> None:
        argv = [str(python), "-I", model_worker.__file__, str(directory)]
        self.python = python
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=directory)
        self._lock = threading.Lock()
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
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        try:
            self._proc.wait(WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()


@dataclass
class LoadedModel:
    """A model archive extracted on disk and its inference module and model (none for built-in XGBoost),
    or the worker process serving it."""

    url: str
    directory: Path
    module: ModuleType | None
    model: Any
    builtin_xgboost: bool = False
    worker: ModelWorker | None = None


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

    def __init__(self, s3_client, cache_dir: Path, interpreter: Interpreter | None = None) -> None:
        self.s3 = s3_client
        self.cache_dir = Path(cache_dir)
        self.interpreter = interpreter
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, url: str, builtin_xgboost: bool = False, image: str | None = None) -> LoadedModel:
        with self._lock:
            loaded = self._models.get(url)
            if loaded is None or (loaded.worker is not None and not loaded.worker.alive):
                self._models[url] = self._load(url, builtin_xgboost, image)
            return self._models[url]

    def close(self) -> None:
        """Stop the models' worker processes."""
        with self._lock:
            for loaded in self._models.values():
                if loaded.worker is not None:
                    loaded.worker.close()
            self._models.clear()

    def _python_for(self, image: str | None) -> Path | None:
        if self.interpreter is None:
            return None
        try:
            return self.interpreter(image)
        except FrameworkEnvError as exc:
            raise model_error(str(exc)) from None

    def _load(self, url: str, builtin_xgboost: bool = False, image: str | None = None) -> LoadedModel:
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
            worker = ModelWorker(python, directory, url)
            log.info("loaded model %s into %s, served on %s", url, directory, python)
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


class EndpointServer(ThreadingHTTPServer):
    """ThreadingHTTPServer holding the control-plane client, the model cache and the variant RNG."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], sagemaker_client, models: ModelCache, seed: int = 0) -> None:
        super().__init__(address, InvocationHandler)
        self.sagemaker = sagemaker_client
        self.models = models
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def pick(self, variants: list[Variant], target: str | None) -> Variant:
        with self._rng_lock:
            return choose_variant(variants, self._rng, target)

    def resolve(self, endpoint: str, target: str | None) -> tuple[Variant, ModelSource]:
        """Endpoint name → (chosen variant, its model source), asking the control plane every time."""
        try:
            described = self.sagemaker.describe_endpoint(EndpointName=endpoint)
        except ClientError as exc:
            if has_code(exc, "ValidationException", "ValidationError", "ResourceNotFound"):
                raise validation_error(f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.") from None
            raise
        if described.get("EndpointStatus") not in ("InService", "Updating"):
            raise validation_error(
                f"Endpoint {endpoint} is {described.get('EndpointStatus')}, not InService."
            )
        config_name = described["EndpointConfigName"]
        try:
            config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        except ClientError as exc:
            raise validation_error(f"endpoint config {config_name} of endpoint {endpoint}: {exc}") from None
        variants = [
            Variant(v["VariantName"], v["ModelName"], float(v.get("InitialVariantWeight", 1.0)))
            for v in config.get("ProductionVariants", [])
        ]
        variant = self.pick(variants, target)
        try:
            model = self.sagemaker.describe_model(ModelName=variant.model_name)
        except ClientError as exc:
            raise validation_error(f"model {variant.model_name} of endpoint {endpoint}: {exc}") from None
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        url = container.get("ModelDataUrl")
        if not url:
            raise model_error(f"model {variant.model_name} has no ModelDataUrl", variant.name)
        builtin = is_builtin_xgboost_model(container)
        batch = builtin and bool((container.get("Environment") or {}).get("SAGEMAKER_BATCH"))
        return variant, ModelSource(url, builtin, batch, container.get("Image"))

    def invoke(self, endpoint: str, body: bytes, content_type: str, accept: str, target: str | None):
        """Run one invocation; returns ``(response body, content type, variant name)``."""
        variant, source = self.resolve(endpoint, target)
        loaded = self.models.get(source.url, source.builtin_xgboost, source.image)
        if loaded.worker is not None:
            try:
                payload, response_type = loaded.worker.invoke(body, content_type, accept)
            except InvocationError as error:
                raise model_error(error.extra["OriginalMessage"], variant.name) from None
            return payload, response_type or JSON, variant.name
        if loaded.builtin_xgboost:
            try:
                payload = predict_builtin_xgboost(loaded.model, body, content_type, source.batch)
            except InvocationError as error:
                raise model_error(error.extra["OriginalMessage"], variant.name) from None
            except Exception as exc:
                raise model_error(f"{type(exc).__name__}: {exc}", variant.name) from None
            return payload, CSV, variant.name
        module = loaded.module
        try:
            data = module.input_fn(body, content_type)
            prediction = module.predict_fn(data, loaded.model)
            result = module.output_fn(prediction, accept)
            payload, response_type = result if isinstance(result, tuple) else (result, accept)
            payload = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        except Exception as exc:
            raise model_error(f"{type(exc).__name__}: {exc}", variant.name) from None
        return payload, response_type or JSON, variant.name

    def start(self) -> EndpointServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="endpoint-server", daemon=True
        )
        self._thread.start()
        return self

    def shutdown(self) -> None:
        super().shutdown()
        self.server_close()
        self.models.close()


class InvocationHandler(BaseHTTPRequestHandler):
    """``POST /endpoints/{name}/invocations`` and ``GET /ping``."""

    server: EndpointServer
    protocol_version = "HTTP/1.1"

    def log_request(self, code: Any = "-", size: Any = "-") -> None:  # one line per request is ours
        pass

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, error: InvocationError) -> None:
        body = json.dumps(
            {"__type": error.code, "message": error.message, "Message": error.message, **error.extra}
        )
        self._send(error.status, body.encode(), JSON, {"x-amzn-ErrorType": error.code})

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/ping":
            self._send(200, b"", "text/plain")
        else:
            self._send_error(
                InvocationError(404, "UnknownOperationException", f"no route for GET {self.path}")
            )
        log.info("GET %s %d", self.path, 200 if self.path == "/ping" else 404)

    def do_POST(self) -> None:
        started = time.monotonic()
        parts = urlsplit(self.path).path.strip("/").split("/")
        endpoint, variant, status = "", "-", 200
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True  # the unread body would corrupt a kept-alive connection
                raise validation_error(
                    f"request body is {length} bytes, more than the {MAX_BODY_BYTES} allowed"
                )
            body = self.rfile.read(length)
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
) -> EndpointServer:
    """Start the endpoint server in a background thread; call ``.shutdown()`` to stop it.

    ``framework_envs``: serve each model on its image's framework environment (true), or every model in
    this process (false); ``None``: as ``SAGELAKE_LOCAL_FRAMEWORK_ENVS`` says (default true).
    """
    session = boto3.session.Session(region_name=region)
    sagemaker = session.client("sagemaker", endpoint_url=control_plane_url)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    models = ModelCache(s3, Path(cache_dir), serving_interpreter(framework_envs))
    return EndpointServer((host, port), sagemaker, models, seed).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--control-plane-url", default="http://127.0.0.1:4566")
    parser.add_argument("--cache-dir", default=".local/endpoint-cache")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = serve(args.host, args.port, args.control_plane_url, args.cache_dir, args.region)
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
