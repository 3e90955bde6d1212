"""SageMaker endpoint data capture: the endpoint config's ``DataCaptureConfig``, the capture record and
its S3 layout, and a buffered writer.

SageMaker writes one JSON line per captured invocation::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "1,2,3", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "0.5", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-11-27T21:40:58Z"},
     "eventVersion": "0"}

to ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl`` (UTC hour of the
invocation). ``encoding`` is ``CSV`` / ``JSON`` (``data`` as text) for the content types the
``CaptureContentTypeHeader`` lists, else ``BASE64`` (without that header everything is base64, as the
API reference says). ``InitialSamplingPercentage`` of the invocations are captured.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sagelake.local.flusher import PeriodicFlusher

log = logging.getLogger(__name__)

FLUSH_SECONDS = 2.0
# put(bucket, key, body): writes one capture file
Put = Callable[[str, str, bytes], None]


@dataclass(frozen=True)
class CaptureConfig:
    """The parts of an endpoint config's ``DataCaptureConfig`` that shape the capture."""

    destination: str
    sampling_percentage: float
    capture_input: bool
    capture_output: bool
    csv_types: tuple[str, ...] = ()
    json_types: tuple[str, ...] = ()


def parse_config(data_capture: dict[str, Any] | None) -> CaptureConfig | None:
    """``DataCaptureConfig`` as DescribeEndpointConfig returns it → a :class:`CaptureConfig`; ``None``
    when absent or ``EnableCapture`` is false (it defaults to enabled)."""
    if not data_capture or not data_capture.get("EnableCapture", True):
        return None
    modes = {str(o.get("CaptureMode", "")).lower() for o in data_capture.get("CaptureOptions") or []}
    headers = data_capture.get("CaptureContentTypeHeader") or {}
    return CaptureConfig(
        destination=str(data_capture["DestinationS3Uri"]).rstrip("/"),
        sampling_percentage=float(data_capture.get("InitialSamplingPercentage", 0)),
        capture_input=bool(modes & {"input", "inputandoutput"}),
        capture_output=bool(modes & {"output", "inputandoutput"}),
        csv_types=tuple(headers.get("CsvContentTypes") or ()),
        json_types=tuple(headers.get("JsonContentTypes") or ()),
    )


def sampled(config: CaptureConfig, rng: random.Random | None = None) -> bool:
    """Whether to capture one invocation: ``sampling_percentage`` of them."""
    if config.sampling_percentage >= 100:
        return True
    return (rng or random).random() * 100 < config.sampling_percentage


def encode(payload: bytes, content_type: str, config: CaptureConfig) -> tuple[str, str]:
    """``(data, encoding)``: text for the configured CSV/JSON content types, else base64."""
    kind = (content_type or "").split(";")[0].strip().lower()
    for encoding, types in (("CSV", config.csv_types), ("JSON", config.json_types)):
        if kind in {t.lower() for t in types}:
            try:
                return payload.decode("utf-8"), encoding
            except UnicodeDecodeError:
                break
    return base64.b64encode(payload).decode("ascii"), "BASE64"


def capture_record(
    config: CaptureConfig,
    *,
    request: bytes,
    request_type: str,
    response: bytes,
    response_type: str,
    when: datetime,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One captured invocation in SageMaker's data-capture format."""
    data: dict[str, Any] = {}
    if config.capture_input:
        text, encoding = encode(request, request_type, config)
        data["endpointInput"] = {
            "observedContentType": request_type,
            "mode": "INPUT",
            "data": text,
            "encoding": encoding,
        }
    if config.capture_output:
        text, encoding = encode(response, response_type, config)
        data["endpointOutput"] = {
            "observedContentType": response_type,
            "mode": "OUTPUT",
            "data": text,
            "encoding": encoding,
        }
    return {
        "captureData": data,
        "eventMetadata": {
            "eventId": event_id or str(uuid.uuid4()),
            "inferenceTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "eventVersion": "0",
    }


def capture_prefix(destination: str, endpoint: str, variant: str, when: datetime) -> str:
    """``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/`` for the UTC hour of ``when``."""
    hour = when.astimezone(UTC).strftime("%Y/%m/%d/%H")
    return f"{destination.rstrip('/')}/{endpoint}/{variant}/{hour}/"


def capture_uri(destination: str, endpoint: str, variant: str, when: datetime, file_id: str) -> str:
    """A capture file's URI: ``<prefix><mm-ss-mmm>-<file_id>.jsonl`` (``when``: its first record)."""
    utc = when.astimezone(UTC)
    stamp = f"{utc:%M-%S}-{utc.microsecond // 1000:03d}"
    return f"{capture_prefix(destination, endpoint, variant, when)}{stamp}-{file_id}.jsonl"


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` (or ``https://bucket/key``, as the API allows) → ``(bucket, key)``."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


class CaptureWriter(PeriodicFlusher):
    """Buffers capture records per file (destination, endpoint, variant, UTC hour) and writes each
    buffer as a new ``.jsonl`` object every ``flush_seconds`` and on :meth:`close`."""

    thread_name = "data-capture"

    def __init__(self, put: Put, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__(flush_seconds)
        self._put = put
        self._buffers: dict[tuple[str, str, str, str], tuple[datetime, list[str]]] = {}

    def add(self, config: CaptureConfig, endpoint: str, variant: str, record: dict, when: datetime) -> None:
        """Buffer one record (written at the next flush)."""
        line = json.dumps(record, separators=(",", ":"))
        key = (config.destination, endpoint, variant, when.astimezone(UTC).strftime("%Y%m%d%H"))
        with self._lock:
            first, lines = self._buffers.setdefault(key, (when, []))
            lines.append(line)
        self._ensure_started()

    def flush(self) -> int:
        """Write every buffered file; returns how many records were written."""
        with self._lock:
            buffers, self._buffers = self._buffers, {}
        written = 0
        for (destination, endpoint, variant, _), (first, lines) in buffers.items():
            uri = capture_uri(destination, endpoint, variant, first, uuid.uuid4().hex)
            try:
                self._put(*split_uri(uri), ("\n".join(lines) + "\n").encode())
                written += len(lines)
            except Exception:  # capture never fails an invocation: log and drop, as SageMaker does
                log.exception("writing %d captured records to %s failed", len(lines), uri)
        return written
