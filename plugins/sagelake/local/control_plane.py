"""The local AWS control plane: moto's server, plus the few SageMaker calls moto lacks.

moto records state and computes nothing; the local engines in this package do the work.
Two gaps matter to the pipeline and are closed here, in one place, instead of in DAG code:

* ``CreateEndpoint`` on an existing name must fail like AWS does ("Cannot create already
  existing endpoint ...") so the provider's create-or-update fallback takes the update path;
* ``UpdateEndpoint`` (absent from moto) switches an endpoint to a new endpoint config;
* S3 conditional writes (``If-None-Match: *``, ``If-Match``) must be atomic, as on S3: moto checks the
  condition and then writes, so two concurrent requests could both pass; they are serialised here (the
  partition lock of ``sagelake.lake.partition_lock`` relies on it).
* Glue crawler runs stay ``RUNNING`` until the local crawler records them, then read as on AWS
  (``SUCCEEDED``, metrics); ``UpdateCrawler`` and ``GetCrawlerMetrics`` exist (``glue_crawls``).
* In a versioned bucket (the lake set-up enables versioning), ``ListObjectsV2`` with a delimiter lists
  only "folders" that hold a current object, as S3 does; moto also lists folders whose objects are all
  deleted (delete markers), so ``churn_prepare`` would find the version folders it deleted again.
* ``UpdateModelPackage`` keeps what the request leaves out — the approval status and the
  ``CustomerMetadataProperties`` — as AWS does (moto blanks them on every update, e.g. an approval, losing
  the version's lineage).
* Athena ``UpdateWorkGroup`` (absent from moto) updates the recorded configuration, so the lake set-up
  can correct a drifted workgroup as on AWS.

With ``--state-dir`` the state persists across restarts and crashes (:mod:`sagelake.local.state_store`).

Run as ``python -m sagelake.local.control_plane --port 4566 [--state-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import Any

from moto.athena.responses import AthenaResponse
from moto.core.utils import utcnow
from moto.s3.models import FakeDeleteMarker, S3Backend
from moto.s3.responses import S3Response
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

DEFAULT_SNAPSHOT_INTERVAL_S = 10.0

_original_create_endpoint = SageMakerModelBackend.create_endpoint
_original_update_model_package = SageMakerModelBackend.update_model_package


def _create_endpoint(
    self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str, tags: Any
) -> FakeEndpoint:
    if endpoint_name in self.endpoints:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
    return _original_create_endpoint(self, endpoint_name, endpoint_config_name, tags)


def _update_endpoint(
    self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str
) -> FakeEndpoint:
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    config = self.endpoint_configs.get(endpoint_config_name)
    if config is None:
        raise ValidationError(message=f"Could not find endpoint configuration '{endpoint_config_name}'.")
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
    endpoint.data_capture_config = config.data_capture_config
    endpoint.endpoint_status = "InService"
    endpoint.last_modified_time = utcnow()
    return endpoint


def _update_endpoint_response(self: SageMakerResponse) -> Any:
    from moto.core.responses import ActionResult

    endpoint = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
    )
    return ActionResult({"EndpointArn": endpoint.arn})


_CONDITIONAL_WRITES = threading.Lock()


def _serialised(method: Any) -> Any:
    """Run an S3 write that carries a condition under one lock, so check-then-write is atomic."""

    def write(self: S3Response) -> Any:
        if self.headers.get("If-None-Match") or self.headers.get("If-Match"):
            with _CONDITIONAL_WRITES:
                return method(self)
        return method(self)

    write.__wrapped__ = method  # type: ignore[attr-defined]
    return write


_original_list_objects = S3Backend.list_objects


def _list_objects(
    self: S3Backend, bucket: Any, prefix: Any, delimiter: Any, marker: Any, max_keys: Any
) -> Any:
    """moto's listing, without the common prefixes whose every object is deleted (a delete marker)."""
    keys, folders, truncated, next_marker = _original_list_objects(
        self, bucket, prefix, delimiter, marker, max_keys
    )
    if delimiter and folders:
        live = [name for name, key in bucket.keys.items() if not isinstance(key, FakeDeleteMarker)]
        folders = [folder for folder in folders if any(name.startswith(folder) for name in live)]
    return keys, folders, truncated, next_marker


def _update_work_group(self: AthenaResponse) -> Any:
    """``UpdateWorkGroup``: ``ConfigurationUpdates`` merged into the recorded configuration."""
    name = self._get_param("WorkGroup")
    group = self.athena_backend.work_groups.get(name)
    if group is None:
        return self.error(f"WorkGroup {name} is not found.", 400)
    updates = dict(self._get_param("ConfigurationUpdates") or {})
    results = updates.pop("ResultConfigurationUpdates", None)
    if results is not None:
        group.configuration["ResultConfiguration"] = {
            **group.configuration.get("ResultConfiguration", {}),
            **results,
        }
    if updates.pop("RemoveBytesScannedCutoffPerQuery", False):
        group.configuration.pop("BytesScannedCutoffPerQuery", None)
    group.configuration.update(updates)
    if self._get_param("Description") is not None:
        group.description = self._get_param("Description")
    if self._get_param("State") is not None:
        group.state = self._get_param("State")
    return json.dumps({})


def _update_model_package(
    self: SageMakerModelBackend,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str],
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    """AWS's UpdateModelPackage: what the request leaves out is kept (status, its description, metadata);
    given metadata is added to (or replaces keys of) the existing metadata."""
    name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
    package = self.model_packages.get(name)
    kept = dict(getattr(package, "customer_metadata_properties", None) or {}) if package else {}
    if package is not None and model_approval_status is None:
        model_approval_status = package.model_approval_status
        approval_description = approval_description or package.approval_description
    return _original_update_model_package(
        self,
        model_package_arn,
        model_approval_status,
        approval_description,
        {**kept, **(customer_metadata_properties or {})},
        customer_metadata_properties_to_remove,
        additional_inference_specifications_to_add,
    )


def install_extensions() -> None:
    """Patch moto with AWS-faithful endpoint create/update and atomic S3 conditional writes (idempotent)."""
    for name in ("put_object", "delete_object"):
        current = getattr(S3Response, name)
        if not hasattr(current, "__wrapped__"):
            setattr(S3Response, name, _serialised(current))
    SageMakerModelBackend.create_endpoint = _create_endpoint  # type: ignore[method-assign]
    SageMakerModelBackend.update_model_package = _update_model_package  # type: ignore[method-assign]
    SageMakerModelBackend.update_endpoint = _update_endpoint  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = _update_endpoint_response  # type: ignore[attr-defined]
    S3Backend.list_objects = _list_objects  # type: ignore[method-assign]
    AthenaResponse.update_work_group = _update_work_group  # type: ignore[attr-defined]
    # Glue crawler runs recorded as AWS records them (sagelake.local.glue_crawls, the local crawler's)
    from sagelake.local import glue_crawls

    glue_crawls.install()
    # tuning jobs answer from the trials the local tuning runner recorded (sagemaker_tuning_records)
    from sagelake.local import sagemaker_tuning_records

    sagemaker_tuning_records.install()


class ControlPlaneServer:
    """moto's threaded server with the extensions and, given a state dir, its state kept on disk
    (:mod:`sagelake.local.state_store`): restored before it serves, snapshotted while it runs and on
    :meth:`stop`."""

    def __init__(self, host: str, port: int, store: Any = None) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.store = store
        self._server: Any = None
        self._ready = threading.Event()

        def serve() -> None:  # as moto's ThreadedMotoServer serves, with the app wrapped
            app: Any = DomainDispatcherApplication(create_backend_app)
            if store is not None:
                app = store.wsgi(app)
            self._server = make_server(host, port, app, True, request_handler=MotoRequestHandler)
            self._ready.set()
            self._server.serve_forever()

        self._thread = threading.Thread(target=serve, name="control-plane", daemon=True)

    def start(self) -> None:
        if self.store is not None:
            self.store.restore()
        self._thread.start()
        self._ready.wait()
        if self.store is not None:
            self.store.start()

    def stop(self) -> None:
        """Stop serving; then, with a state dir, take the last snapshot."""
        if self._server is not None:
            self._server.shutdown()
        self._thread.join()
        if self.store is not None:
            saved = self.store.close()
            print(f"state: saved {saved.backends} backends to {saved.path} ({saved.size} bytes)", flush=True)


def start(
    host: str = "127.0.0.1",
    port: int = 4566,
    state_dir: Path | None = None,
    snapshot_interval_s: float = DEFAULT_SNAPSHOT_INTERVAL_S,
) -> ControlPlaneServer:
    """Start the control plane (call ``.stop()``); with ``state_dir``, its state persists there."""
    from sagelake.local.state_store import StateStore

    install_extensions()
    log = lambda line: print(line, flush=True)  # noqa: E731
    store = StateStore(state_dir, snapshot_interval_s, log=log) if state_dir is not None else None
    server = ControlPlaneServer(host, port, store)
    server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--state-dir", type=Path, help="keep the state here (restored on start); else in memory"
    )
    parser.add_argument(
        "--snapshot-interval",
        type=float,
        default=DEFAULT_SNAPSHOT_INTERVAL_S,
        help="seconds between snapshots while the state changes (the most a crash loses)",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = start(args.host, args.port, args.state_dir, args.snapshot_interval)
    print(f"control plane listening on http://{args.host}:{args.port}", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
