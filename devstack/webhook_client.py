"""Send EventBridge events to the webhook the way an EventBridge API destination does (stdlib only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any


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
