"""Who may call the EventBridge webhook: an API-key header and, optionally, an HMAC signature + timestamp.

The key is the password of the Airflow connection ``eventbridge_webhook`` (any secrets backend works).
Its ``extra`` may set ``api_key_header`` (default ``x-api-key``, what EventBridge API-key connections send)
and ``hmac_secret`` to also require ``x-sagelake-timestamp`` (Unix seconds) and ``x-sagelake-signature``
= ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>." + body``, within ``tolerance_seconds`` (default 300).
Comparisons are constant-time; no secret is ever logged or put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

CONN_ID = "eventbridge_webhook"
DEFAULT_HEADER = "x-api-key"
SIGNATURE_HEADER = "x-sagelake-signature"
TIMESTAMP_HEADER = "x-sagelake-timestamp"


class Unauthorized(Exception):
    """The request does not prove it comes from the configured sender (HTTP 401)."""


class WebhookNotConfigured(RuntimeError):
    """No usable API key is configured (HTTP 503: the server, not the caller, must be fixed)."""


@dataclass(frozen=True, repr=False)
class WebhookSettings:
    api_key: str
    header: str = DEFAULT_HEADER
    hmac_secret: str | None = None
    tolerance_s: int = 300

    def __repr__(self) -> str:  # never show the secrets
        return f"WebhookSettings(header={self.header!r}, hmac={'on' if self.hmac_secret else 'off'})"


def settings_from_connection(password: str | None, extra: Mapping[str, Any]) -> WebhookSettings:
    """Settings from the connection's password and extra."""
    if not password:
        raise WebhookNotConfigured(f"connection {CONN_ID!r} has no password (the webhook's API key)")
    try:
        tolerance = int(extra.get("tolerance_seconds", 300))
        if tolerance < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise WebhookNotConfigured(f"connection {CONN_ID!r}: tolerance_seconds is not a number ≥ 0") from None
    secret = extra.get("hmac_secret") or None
    if secret is not None and not isinstance(secret, str):
        raise WebhookNotConfigured(f"connection {CONN_ID!r}: hmac_secret must be a string")
    return WebhookSettings(
        api_key=password,
        header=str(extra.get("api_key_header") or DEFAULT_HEADER).lower(),
        hmac_secret=secret,
        tolerance_s=tolerance,
    )


def load_settings(conn_id: str = CONN_ID) -> WebhookSettings:
    """Read the connection through Airflow's secrets backends (env, metastore, Vault, Secrets Manager…)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise WebhookNotConfigured(f"no Airflow connection {conn_id!r} (password: the API key)") from None
    return settings_from_connection(conn.password, conn.extra_dejson)


def cached(loader: Callable[[], WebhookSettings], ttl_s: float = 30.0) -> Callable[[], WebhookSettings]:
    """``loader`` called at most once per ``ttl_s`` (a rotated key takes effect within that time).

    The returned function has ``cache_clear()`` to forget the value at once.
    """
    state: dict[str, Any] = {"at": 0.0, "value": None}

    def get() -> WebhookSettings:
        now = time.monotonic()
        if state["value"] is None or now - state["at"] >= ttl_s:
            state["value"], state["at"] = loader(), now
        return state["value"]

    get.cache_clear = lambda: state.update(value=None)  # type: ignore[attr-defined]
    return get


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value a sender computes."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def authenticate(settings: WebhookSettings, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Raise ``Unauthorized`` unless the headers carry the key (and a fresh, valid signature if required)."""
    presented = headers.get(settings.header)
    if not presented:
        raise Unauthorized(f"missing {settings.header} header")
    if not hmac.compare_digest(presented.encode(), settings.api_key.encode()):
        raise Unauthorized(f"wrong {settings.header}")
    if settings.hmac_secret is None:
        return
    timestamp, signature = headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not signature:
        raise Unauthorized(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        age = abs(int(now) - int(timestamp))  # integers: no float overflow on absurd values
    except ValueError:
        raise Unauthorized(f"{TIMESTAMP_HEADER} is not Unix seconds") from None
    if age > settings.tolerance_s:
        raise Unauthorized(f"{TIMESTAMP_HEADER} is outside the {settings.tolerance_s}s window")
    if not hmac.compare_digest(signature.encode(), sign(settings.hmac_secret, timestamp, body).encode()):
        raise Unauthorized("signature does not match the body")
