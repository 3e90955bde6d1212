"""Build S3 events as EventBridge delivers them and send them to the webhook as an API destination does."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from typing import Any

from sagelake.events.eventbridge import S3_OBJECT_CREATED, S3_SOURCE


def post_event(url: str, event: dict[str, Any] | bytes, api_key: str | None) -> tuple[int, dict[str, Any]]:
    """One POST; returns the HTTP status and the JSON answer, whatever the status."""
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    headers = {"Content-Type": "application/json"} | ({"x-api-key": api_key} if api_key is not None else {})
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"{}")
        except ValueError:
            return error.code, {"error": raw.decode(errors="replace")[:300]}


def deliver(url: str, event: dict[str, Any], api_key: str, attempts: int = 8) -> tuple[int, dict[str, Any]]:
    """POST until the answer is final: like EventBridge, retry 429 and 5xx with back-off, never 4xx."""
    for attempt in range(attempts):
        status, body = post_event(url, event, api_key)
        if status != 429 and status < 500:
            break
        time.sleep(min(0.1 * 2**attempt, 10))
    return status, body


def object_created_event(
    bucket: str, key: str, size: int, etag: str, *, region: str, account: str, time: datetime
) -> dict[str, Any]:
    """An S3 "Object Created" event exactly as EventBridge delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": S3_OBJECT_CREATED,
        "source": S3_SOURCE,
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": size,
                "etag": etag.strip('"'),
                "sequencer": f"{int(time.timestamp() * 1e6):016X}",
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }
