"""Who may call the webhook (``sagelake.events.webhook_auth``): API key, optional HMAC signature, settings."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest
from starlette.datastructures import Headers

from sagelake.events.webhook_auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Unauthorized,
    WebhookNotConfigured,
    WebhookSettings,
    authenticate,
    cached,
    settings_from_connection,
    sign,
)

KEY = "key-" + secrets.token_hex(16)
SECRET = "hmac-" + secrets.token_hex(16)
NOW = 1_800_000_000.0
BODY = b'{"id": "e-1", "source": "aws.s3"}'


def key_only() -> WebhookSettings:
    return WebhookSettings(api_key=KEY)


def with_hmac(tolerance_s: int = 300) -> WebhookSettings:
    return WebhookSettings(api_key=KEY, hmac_secret=SECRET, tolerance_s=tolerance_s)


def signed(timestamp: float | str = NOW, body: bytes = BODY, secret: str = SECRET) -> Headers:
    stamp = str(int(timestamp)) if isinstance(timestamp, float | int) else timestamp
    return Headers({"x-api-key": KEY, TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, body)})


def test_the_right_key_passes() -> None:
    authenticate(key_only(), Headers({"x-api-key": KEY}), BODY, NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": ""},
        {"x-api-key": "wrong"},
        {"x-api-key": KEY[:-1]},
        {"x-api-key": KEY + "x"},
        {"x-api-key": KEY.upper()},
        {"x-api-key": " " + KEY},
        {"authorization": KEY},
    ],
    ids=["absent", "empty", "wrong", "prefix", "longer", "upper-case", "leading space", "other header"],
)
def test_a_missing_or_wrong_key_is_unauthorized(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized) as caught:
        authenticate(key_only(), Headers(headers), BODY, NOW)
    assert KEY not in str(caught.value) and KEY[:-1] not in str(caught.value)


def test_header_name_is_case_insensitive() -> None:
    authenticate(key_only(), Headers({"X-API-Key": KEY}), BODY, NOW)
    authenticate(key_only(), Headers(raw=[(b"x-api-key", KEY.encode())]), BODY, NOW)


def test_header_name_is_configurable() -> None:
    settings = settings_from_connection(KEY, {"api_key_header": "X-Sagelake-Key"})
    assert settings.header == "x-sagelake-key"
    authenticate(settings, Headers({"X-SAGELAKE-KEY": KEY}), BODY, NOW)
    with pytest.raises(Unauthorized, match="x-sagelake-key"):
        authenticate(settings, Headers({"x-api-key": KEY}), BODY, NOW)


def test_a_valid_signature_passes() -> None:
    authenticate(with_hmac(), signed(), BODY, NOW)


def test_signature_is_the_documented_hmac_sha256_of_timestamp_dot_body() -> None:
    """The contract a sender in any language implements (see the module docstring)."""
    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1800000000", BODY) == "sha256=" + expected


def test_key_is_still_required_with_hmac() -> None:
    headers = dict(signed())
    headers["x-api-key"] = "wrong"
    with pytest.raises(Unauthorized):
        authenticate(with_hmac(), Headers(headers), BODY, NOW)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_missing_signature_headers_are_unauthorized(missing: str) -> None:
    headers = {k: v for k, v in signed().items() if k != missing}
    with pytest.raises(Unauthorized, match="missing"):
        authenticate(with_hmac(), Headers(headers), BODY, NOW)


def test_a_signature_with_another_secret_is_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="signature"):
        authenticate(with_hmac(), signed(secret="not-" + SECRET), BODY, NOW)


def test_a_tampered_body_is_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="signature"):
        authenticate(with_hmac(), signed(), BODY.replace(b"e-1", b"e-2"), NOW)


def test_a_replayed_signature_with_a_fresh_timestamp_is_unauthorized() -> None:
    headers = dict(signed(NOW - 3600))
    headers[TIMESTAMP_HEADER] = str(int(NOW))
    with pytest.raises(Unauthorized, match="signature"):
        authenticate(with_hmac(), Headers(headers), BODY, NOW)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_within_tolerance_pass(offset: int) -> None:
    authenticate(with_hmac(), signed(NOW + offset), BODY, NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
def test_stale_or_future_timestamps_are_unauthorized(offset: int) -> None:
    with pytest.raises(Unauthorized, match="window"):
        authenticate(with_hmac(), signed(NOW + offset), BODY, NOW)


def test_tolerance_comes_from_the_connection() -> None:
    settings = settings_from_connection(KEY, {"hmac_secret": SECRET, "tolerance_seconds": "60"})
    authenticate(settings, signed(NOW - 60), BODY, NOW)
    with pytest.raises(Unauthorized, match="60s"):
        authenticate(settings, signed(NOW - 61), BODY, NOW)


@pytest.mark.parametrize("stamp", ["yesterday", "1.8e9", "1800000000.5", "0x6b49d200", "9" * 5000])
def test_non_numeric_timestamps_are_unauthorized(stamp: str) -> None:
    with pytest.raises(Unauthorized):
        authenticate(with_hmac(), signed(stamp), BODY, NOW)


def test_an_absurdly_large_timestamp_is_unauthorized() -> None:
    """A numeric timestamp too large for a float must be a 401, not an OverflowError (a 500)."""
    with pytest.raises(Unauthorized):
        authenticate(with_hmac(), signed("1" + "0" * 400), BODY, NOW)


def test_repr_shows_no_secret() -> None:
    for settings in (key_only(), with_hmac(), settings_from_connection(KEY, {"hmac_secret": SECRET})):
        for text in (repr(settings), str(settings), f"{settings}", f"{[settings]}"):
            assert KEY not in text and SECRET not in text
    assert "hmac=on" in repr(with_hmac()) and "hmac=off" in repr(key_only())


def test_settings_from_connection_defaults() -> None:
    settings = settings_from_connection(KEY, {})
    assert (settings.api_key, settings.header, settings.hmac_secret, settings.tolerance_s) == (
        KEY,
        "x-api-key",
        None,
        300,
    )
    assert settings_from_connection(KEY, {"hmac_secret": ""}).hmac_secret is None


@pytest.mark.parametrize("password", [None, ""])
def test_a_connection_without_password_is_not_configured(password: str | None) -> None:
    with pytest.raises(WebhookNotConfigured, match="password"):
        settings_from_connection(password, {"hmac_secret": SECRET})


@pytest.mark.parametrize("tolerance", ["five minutes", None, [300], {}])
def test_a_bad_tolerance_is_not_configured(tolerance: object) -> None:
    with pytest.raises(WebhookNotConfigured, match="tolerance_seconds") as caught:
        settings_from_connection(KEY, {"tolerance_seconds": tolerance, "hmac_secret": SECRET})
    assert KEY not in str(caught.value) and SECRET not in str(caught.value)


def test_load_settings_reads_the_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through Airflow's environment-variable secrets backend (no metadata database needed)."""
    from sagelake.events.webhook_auth import load_settings

    conn = f'{{"conn_type": "http", "password": "{KEY}", "extra": {{"api_key_header": "X-Key"}}}}'
    monkeypatch.setenv("AIRFLOW_CONN_EVENTBRIDGE_WEBHOOK", conn)
    settings = load_settings()
    assert (settings.api_key, settings.header, settings.hmac_secret) == (KEY, "x-key", None)


class CountingLoader:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> WebhookSettings:
        self.calls += 1
        return WebhookSettings(api_key=f"{KEY}-{self.calls}")


def test_cached_loads_once_within_ttl() -> None:
    loader = CountingLoader()
    get = cached(loader, ttl_s=3600)
    values = [get() for _ in range(5)]
    assert loader.calls == 1
    assert {v.api_key for v in values} == {f"{KEY}-1"}


def test_cache_clear_reloads_at_once() -> None:
    loader = CountingLoader()
    get = cached(loader, ttl_s=3600)
    get()
    get.cache_clear()
    assert get().api_key == f"{KEY}-2"
    assert get().api_key == f"{KEY}-2"
    assert loader.calls == 2


def test_cached_reloads_after_ttl() -> None:
    loader = CountingLoader()
    get = cached(loader, ttl_s=0)
    assert [get().api_key for _ in range(3)] == [f"{KEY}-1", f"{KEY}-2", f"{KEY}-3"]


def test_cached_does_not_remember_a_failure() -> None:
    """A webhook started before its connection exists works as soon as the connection is added."""
    answers: list[WebhookSettings | Exception] = [WebhookNotConfigured("no connection"), key_only()]

    def loader() -> WebhookSettings:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    get = cached(loader, ttl_s=3600)
    with pytest.raises(WebhookNotConfigured):
        get()
    assert get().api_key == KEY
