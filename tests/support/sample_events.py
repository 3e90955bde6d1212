"""Events for tests, built from the shipped samples (include/events/samples/, AWS's documented shape)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from tests.support.constants import ROOT

SAMPLES = ROOT / "include" / "events" / "samples"
_S3 = json.loads((SAMPLES / "s3-object-created.json").read_text())
_TRAINING = json.loads((SAMPLES / "training-requested.json").read_text())


def s3_event(key: str, bucket: str, event_id: str | None = None) -> dict[str, Any]:
    """The sample S3 "Object Created" event for ``bucket``/``key``, with a fresh (or the given) id."""
    event = copy.deepcopy(_S3)
    event["id"] = event_id or str(uuid.uuid4())
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    return event


def training_event(detail: dict[str, Any] | None = None, event_id: str | None = None) -> dict[str, Any]:
    """The sample custom ``Training Requested`` event, with a fresh (or the given) id and ``detail``."""
    event = copy.deepcopy(_TRAINING)
    event["id"] = event_id or str(uuid.uuid4())
    if detail is not None:
        event["detail"] = detail
    return event
