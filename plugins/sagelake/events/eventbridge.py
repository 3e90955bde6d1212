"""EventBridge events → DAG runs: envelope validation and a small routing table, as plain functions.

Shared by the webhook (``sagelake.events.webhook_app``) and the SQS dispatcher DAG (``eventbridge_sqs``),
so an event gets the same run id whichever way it arrives: ``eventbridge__<event id>``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sagelake.lake.layout import check_dt

RUN_ID_PREFIX = "eventbridge__"
S3_SOURCE, S3_OBJECT_CREATED = "aws.s3", "Object Created"
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_DT_IN_KEY = re.compile(r"(?:^|/)dt=([^/]*)/")


class EventRejected(ValueError):
    """An event the pipeline will not run; ``status`` is the HTTP answer the webhook gives."""

    status = 400


class InvalidEvent(EventRejected):
    """Not JSON, or not an EventBridge event of the expected shape."""

    status = 400


class UnroutedEvent(EventRejected):
    """A well-formed event that no route maps to a run."""

    status = 422


@dataclass(frozen=True)
class Envelope:
    """The EventBridge fields sagelake reads from an event."""

    id: str
    source: str
    detail_type: str
    time: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Route:
    """Events of ``source``/``detail_type`` → ``dag_id`` (S3 events: in ``bucket``, key prefix/suffix)."""

    name: str
    dag_id: str
    source: str
    detail_type: str
    bucket: str | None = None
    prefix: str = ""
    suffix: str = ""

    def __post_init__(self) -> None:
        for name in ("name", "dag_id", "source", "detail_type"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"route field {name!r} must be a non-empty string")
        for name in ("prefix", "suffix"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"route field {name!r} must be a string")
        if self.source == S3_SOURCE and not (isinstance(self.bucket, str) and self.bucket):
            raise ValueError(f"route {self.name!r} for S3 events needs a 'bucket' name")


@dataclass(frozen=True)
class RunRequest:
    """The DAG run an event asks for; ``run_id`` is derived from the event id alone."""

    dag_id: str
    run_id: str
    conf: dict[str, Any]
    route: str


def parse_envelope(body: bytes | str) -> Envelope:
    """Validate an EventBridge event (the JSON an API destination or SQS target delivers)."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as error:  # also huge integers, absurd nesting, bad encodings
        raise InvalidEvent(f"body is not JSON: {error}") from None
    if not isinstance(event, dict):
        raise InvalidEvent("body is not a JSON object: expected an EventBridge event")
    for field in ("id", "source", "detail-type", "time"):
        if not isinstance(event.get(field), str) or not event[field]:
            raise InvalidEvent(f"EventBridge field {field!r} is missing or not a non-empty string")
    if not _EVENT_ID.fullmatch(event["id"]):
        raise InvalidEvent("EventBridge field 'id' must be 1-64 letters, digits or '-'")
    try:
        if not _TIME.fullmatch(event["time"]):
            raise ValueError
        datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"EventBridge field 'time' is not ISO 8601: {event['time'][:40]!r}") from None
    if not isinstance(event.get("detail"), dict):
        raise InvalidEvent("EventBridge field 'detail' is missing or not an object")
    return Envelope(event["id"], event["source"], event["detail-type"], event["time"], event["detail"])


def s3_object(envelope: Envelope) -> tuple[str, str]:
    """Bucket and key of an S3 event's ``detail``."""
    bucket, obj = envelope.detail.get("bucket"), envelope.detail.get("object")
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = obj.get("key") if isinstance(obj, dict) else None
    if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
        raise InvalidEvent("S3 event detail needs 'bucket.name' and 'object.key' strings")
    return name, key


def partition_of_key(key: str) -> str:
    """The ``dt=YYYY-MM-DD`` partition an object key belongs to."""
    match = _DT_IN_KEY.search(key)
    if not match:
        raise UnroutedEvent(f"object key {key!r} is in no dt=YYYY-MM-DD partition")
    try:
        return check_dt(match.group(1))
    except ValueError as error:
        raise UnroutedEvent(str(error)) from None


def _matches(route: Route, envelope: Envelope) -> bool:
    if (route.source, route.detail_type) != (envelope.source, envelope.detail_type):
        return False
    if route.source != S3_SOURCE:
        return True
    bucket, key = s3_object(envelope)
    return bucket == route.bucket and key.startswith(route.prefix) and key.endswith(route.suffix)


def route_event(envelope: Envelope, routes: list[Route]) -> RunRequest:
    """The run for ``envelope``: the first matching route; conf carries ``dt`` and the event's facts."""
    route = next((r for r in routes if _matches(r, envelope)), None)
    if route is None:
        where = " object s3://{}/{}".format(*s3_object(envelope)) if envelope.source == S3_SOURCE else ""
        raise UnroutedEvent(
            f"no route for source={envelope.source!r} detail-type={envelope.detail_type!r}{where}"
        )
    facts: dict[str, Any] = {
        "id": envelope.id,
        "source": envelope.source,
        "detail_type": envelope.detail_type,
        "time": envelope.time,
    }
    if route.source == S3_SOURCE:
        bucket, key = s3_object(envelope)
        facts.update(bucket=bucket, key=key)
        dt = partition_of_key(key)
    else:
        dt = envelope.detail.get("dt")
        try:
            dt = check_dt(dt)
        except ValueError as error:
            raise UnroutedEvent(f"route {route.name!r} needs detail.dt: {error}") from None
        facts["detail"] = envelope.detail
    return RunRequest(route.dag_id, RUN_ID_PREFIX + envelope.id, {"dt": dt, "event": facts}, route.name)


def default_routes(bucket: str) -> list[Route]:
    """Raw files landing in the lake → ``churn_prepare``; a ``Training Requested`` event → training."""
    return [
        Route("raw-landing", "churn_prepare", S3_SOURCE, S3_OBJECT_CREATED, bucket=bucket, prefix="raw/"),
        Route("training-requested", "churn_train_deploy", "sagelake", "Training Requested"),
    ]


def load_routes() -> list[Route]:
    """Routes from the JSON file ``SAGELAKE_EVENT_ROUTES`` names (a list of Routes), else the defaults."""
    from sagelake.config.settings import default_params

    path = os.environ.get("SAGELAKE_EVENT_ROUTES", "").strip()
    if not path:
        return default_routes(str(default_params()["bucket"]))
    try:
        entries = json.loads(Path(path).read_text())
        return [Route(**entry) for entry in entries]
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(
            f"SAGELAKE_EVENT_ROUTES={path!r} is not a JSON list of routes "
            f"({', '.join(asdict(default_routes('b')[0]))}): {error}"
        ) from None


def runs_from_messages(
    bodies: list[str], routes: list[Route]
) -> tuple[list[RunRequest], list[dict[str, str]]]:
    """Runs for SQS message bodies (EventBridge events), and each rejected body with its reason."""
    runs: dict[str, RunRequest] = {}
    rejected = []
    for body in bodies:
        try:
            run = route_event(parse_envelope(body), routes)
        except EventRejected as error:
            rejected.append({"reason": str(error), "body": body[:2000]})
            continue
        runs.setdefault(run.run_id, run)  # SQS is at-least-once: one run per event id
    return list(runs.values()), rejected


def message_bodies(asset_event_extras: list[Any]) -> list[str]:
    """The SQS message bodies in the extras of asset events emitted by the provider's ``SqsSensorTrigger``.

    Anything else an asset event may carry (events posted through the REST API can hold any JSON) is
    ignored.
    """
    bodies = []
    for extra in asset_event_extras:
        payload = extra.get("payload") if isinstance(extra, dict) else None
        batch = payload.get("message_batch") if isinstance(payload, dict) else None
        for message in batch if isinstance(batch, list) else []:
            if isinstance(message, dict) and isinstance(message.get("Body"), str):
                bodies.append(message["Body"])
    return bodies
