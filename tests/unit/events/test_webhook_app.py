"""``POST /eventbridge`` (``sagelake.events.webhook_app``) with a fake trigger that records runs."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sagelake.events.eventbridge import Route, RunRequest, UnroutedEvent, default_routes
from sagelake.events.run_trigger import TriggerOutcome, TriggerUnavailable
from sagelake.events.webhook_app import MAX_BODY, create_app
from sagelake.events.webhook_auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotConfigured,
    WebhookSettings,
    sign,
)
from tests.support import sample_events

LAKE = "sagelake-test-lake"
KEY = "key-" + secrets.token_hex(16)
SECRET = "hmac-" + secrets.token_hex(16)
NEAR_MISSES = [KEY[:-1], KEY + "0", KEY.upper(), KEY[:-1] + ("a" if KEY[-1] != "a" else "b")]
CHUNK = 64 * 1024


def s3_event(key: str = "raw/customers/dt=2026-11-25/customers.csv", bucket: str = LAKE) -> dict[str, Any]:
    return sample_events.s3_event(key, bucket)


class FakeTrigger:
    """Records every RunRequest; a run id seen before is reported as already created."""

    def __init__(self, error: Exception | None = None) -> None:
        self.requests: list[RunRequest] = []
        self.error = error

    def __call__(self, request: RunRequest) -> TriggerOutcome:
        if self.error is not None:
            raise self.error
        created = request.run_id not in {r.run_id for r in self.requests}
        self.requests.append(request)
        return TriggerOutcome(request.run_id, "queued", created=created)


def make_app(
    trigger: FakeTrigger,
    settings: Callable[[], WebhookSettings] = lambda: WebhookSettings(api_key=KEY),
    routes: Callable[[], list[Route]] = lambda: default_routes(LAKE),
) -> FastAPI:
    return create_app(settings, routes, trigger)


@pytest.fixture()
def trigger() -> FakeTrigger:
    return FakeTrigger()


@pytest.fixture()
def client(trigger: FakeTrigger) -> Iterator[TestClient]:
    with TestClient(make_app(trigger), raise_server_exceptions=False) as test_client:
        yield test_client


def post(
    client: TestClient, body: bytes | str | Any, key: str | None = KEY, **headers: str
) -> httpx.Response:
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    sent = {"content-type": "application/json", **headers}
    if key is not None:
        sent["x-api-key"] = key
    return client.post("/eventbridge", content=content, headers=sent)


def padded(event: dict[str, Any], size: int) -> bytes:
    """``event`` as JSON followed by whitespace, exactly ``size`` bytes long."""
    body = json.dumps(event).encode()
    return body + b" " * (size - len(body))


def test_a_new_event_creates_a_run_202(client: TestClient, trigger: FakeTrigger) -> None:
    event = s3_event()
    response = post(client, event)
    assert response.status_code == 202
    assert response.json() == {
        "dag_id": "churn_prepare",
        "dag_run_id": f"eventbridge__{event['id']}",
        "state": "queued",
        "duplicate": False,
    }
    [request] = trigger.requests
    assert (request.dag_id, request.run_id, request.conf["dt"]) == (
        "churn_prepare",
        f"eventbridge__{event['id']}",
        "2026-11-25",
    )
    assert request.conf["event"]["key"] == "raw/customers/dt=2026-11-25/customers.csv"


def test_a_redelivered_event_is_a_duplicate_200(client: TestClient, trigger: FakeTrigger) -> None:
    event = s3_event()
    assert post(client, event).status_code == 202
    again = post(client, event)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["dag_run_id"] == f"eventbridge__{event['id']}"
    assert [r.run_id for r in trigger.requests] == [f"eventbridge__{event['id']}"] * 2


@pytest.mark.parametrize(
    "key",
    [None, "", "wrong", *NEAR_MISSES],
    ids=["none", "empty", "wrong", "last char cut", "char added", "upper case", "last char changed"],
)
def test_a_missing_or_wrong_key_is_401_and_creates_nothing(
    client: TestClient, trigger: FakeTrigger, key: str | None
) -> None:
    response = post(client, s3_event(), key=key)
    assert response.status_code == 401
    assert KEY not in response.text
    assert trigger.requests == []


def test_the_key_header_is_checked_before_the_body_is_parsed(
    client: TestClient, trigger: FakeTrigger
) -> None:
    assert post(client, b"{not json", key="wrong").status_code == 401
    assert post(client, b"{not json", key=None).status_code == 401
    assert trigger.requests == []


def test_a_custom_header_name_is_honoured(trigger: FakeTrigger) -> None:
    app = make_app(trigger, settings=lambda: WebhookSettings(api_key=KEY, header="x-sagelake-key"))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert post(client, s3_event(), key=None, **{"X-Sagelake-Key": KEY}).status_code == 202
        assert post(client, s3_event()).status_code == 401  # the key in x-api-key does not count


def test_hmac_signed_deliveries(trigger: FakeTrigger) -> None:
    app = make_app(trigger, settings=lambda: WebhookSettings(api_key=KEY, hmac_secret=SECRET))
    body = json.dumps(s3_event()).encode()
    stamp = str(int(time.time()))
    signature = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body)}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert post(client, body.replace(b"customers.csv", b"other.csv"), **signature).status_code == 401
        assert post(client, body).status_code == 401  # key alone is not enough
        assert (
            post(client, body, **{TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "sha256=00"}).status_code == 401
        )
        assert trigger.requests == []
        assert post(client, body, **signature).status_code == 202
    assert len(trigger.requests) == 1


@pytest.mark.parametrize("body", [b"{not json", b"", b"[]", b'{"id": "x"}', b"\xff\xfe\x00"])
def test_malformed_bodies_are_400(client: TestClient, trigger: FakeTrigger, body: bytes) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert trigger.requests == []


def test_a_body_declared_over_1_mib_is_413(client: TestClient, trigger: FakeTrigger) -> None:
    response = post(client, padded(s3_event(), MAX_BODY + 1))
    assert response.status_code == 413
    assert trigger.requests == []


def test_a_body_of_exactly_1_mib_is_accepted(client: TestClient, trigger: FakeTrigger) -> None:
    body = padded(s3_event(), MAX_BODY)
    assert len(body) == MAX_BODY
    assert post(client, body).status_code == 202
    assert len(trigger.requests) == 1


def _chunks(body: bytes, sent: list[int]) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK):
        sent.append(len(body[start : start + CHUNK]))
        yield body[start : start + CHUNK]


def test_a_chunked_body_of_exactly_1_mib_is_accepted(client: TestClient, trigger: FakeTrigger) -> None:
    sent: list[int] = []
    body = padded(s3_event(), MAX_BODY)
    response = client.post("/eventbridge", content=_chunks(body, sent), headers={"x-api-key": KEY})
    assert response.status_code == 202
    assert sum(sent) == MAX_BODY


def test_a_chunked_body_over_1_mib_is_413(client: TestClient, trigger: FakeTrigger) -> None:
    sent: list[int] = []
    body = padded(s3_event(), 4 * MAX_BODY)
    response = client.post("/eventbridge", content=_chunks(body, sent), headers={"x-api-key": KEY})
    assert response.status_code == 413
    assert trigger.requests == []


def _stream(trigger: FakeTrigger, total: int, declared: int | None) -> tuple[httpx.Response, int]:
    """POST ``total`` bytes in 64 KiB chunks through httpx's ASGI transport, which (unlike TestClient)
    hands the app one chunk each time it asks; returns the response and how many bytes were pulled."""
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(total // CHUNK):
            sent.append(CHUNK)
            yield b" " * CHUNK

    async def deliver() -> httpx.Response:
        transport = httpx.ASGITransport(app=make_app(trigger), raise_app_exceptions=False)
        headers = {"x-api-key": KEY}
        if declared is not None:
            headers["content-length"] = str(declared)
        async with httpx.AsyncClient(transport=transport, base_url="http://webhook") as client:
            request = client.build_request("POST", "/eventbridge", content=chunks(), headers=headers)
            assert request.headers.get("content-length") == (None if declared is None else str(declared))
            return await client.send(request)

    return asyncio.run(deliver()), sum(sent)


def test_a_chunked_body_over_1_mib_is_not_read_to_the_end(trigger: FakeTrigger) -> None:
    response, pulled = _stream(trigger, total=8 * MAX_BODY, declared=None)
    assert response.status_code == 413
    assert MAX_BODY < pulled <= MAX_BODY + 2 * CHUNK < 8 * MAX_BODY
    assert trigger.requests == []


def test_a_declared_length_over_1_mib_is_refused_unread(trigger: FakeTrigger) -> None:
    response, pulled = _stream(trigger, total=8 * MAX_BODY, declared=8 * MAX_BODY)
    assert response.status_code == 413
    assert pulled == 0
    assert trigger.requests == []


@pytest.mark.parametrize(
    "event",
    [
        s3_event(bucket="someone-elses-bucket"),
        s3_event(key="raw/customers/no-partition.csv"),
        s3_event(key="raw/customers/dt=2026-02-30/customers.csv"),
        {**s3_event(), "source": "aws.ec2"},
    ],
    ids=["other bucket", "no partition", "impossible date", "unknown source"],
)
def test_unrouted_events_are_422(client: TestClient, trigger: FakeTrigger, event: dict[str, Any]) -> None:
    response = post(client, event)
    assert response.status_code == 422
    assert response.json()["error"]
    assert trigger.requests == []


def test_a_run_the_dag_refuses_is_422() -> None:
    trigger = FakeTrigger(UnroutedEvent("DAG 'churn_prepare' refused the run: bad param"))
    with TestClient(make_app(trigger), raise_server_exceptions=False) as client:
        response = post(client, s3_event())
    assert response.status_code == 422
    assert "refused" in response.json()["error"]


def _raise(error: Exception) -> Callable[[], Any]:
    def fail() -> Any:
        raise error

    return fail


@pytest.mark.parametrize(
    "collaborators",
    [
        {"settings": _raise(WebhookNotConfigured("connection 'eventbridge_webhook' has no password"))},
        {"settings": _raise(ValueError("bad settings"))},
        {"routes": _raise(ValueError("SAGELAKE_EVENT_ROUTES='/x.json' is not a JSON list of routes"))},
    ],
    ids=["settings not configured", "settings value error", "bad routes file"],
)
def test_an_unconfigured_webhook_is_503(trigger: FakeTrigger, collaborators: dict[str, Any]) -> None:
    with TestClient(make_app(trigger, **collaborators), raise_server_exceptions=False) as client:
        response = post(client, s3_event())
    assert response.status_code == 503
    assert trigger.requests == []


def test_a_trigger_that_cannot_create_the_run_yet_is_503() -> None:
    trigger = FakeTrigger(TriggerUnavailable("DAG 'churn_prepare' is not known to Airflow (yet)"))
    event = s3_event()
    with TestClient(make_app(trigger), raise_server_exceptions=False) as client:
        response = post(client, event)
    assert response.status_code == 503
    assert response.json()["dag_run_id"] == f"eventbridge__{event['id']}"


def test_logs_never_contain_the_key_or_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    trigger = FakeTrigger()
    hmac_settings = WebhookSettings(api_key=KEY, hmac_secret=SECRET)
    body = json.dumps(s3_event()).encode()
    stamp = str(int(time.time()))
    responses = []
    with TestClient(
        make_app(trigger, settings=lambda: hmac_settings), raise_server_exceptions=False
    ) as client:
        for key in [None, "wrong", *NEAR_MISSES]:
            responses.append(post(client, body, key=key, **{TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "x"}))
        for secret in [SECRET[:-1], SECRET + "0", "wrong"]:
            forged = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, body)}
            responses.append(post(client, body, **forged))
        good = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body)}
        responses += [post(client, body, **good), post(client, body, **good)]
        bad = b"{not json"
        signed_bad = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, bad)}
        responses.append(post(client, bad, **signed_bad))
        responses.append(post(client, padded(s3_event(), MAX_BODY + 1)))
    with TestClient(make_app(trigger), raise_server_exceptions=False) as client:
        responses += [post(client, s3_event(bucket="other")), post(client, b"[]")]
    for settings in [_raise(WebhookNotConfigured(f"{hmac_settings!r} unusable")), _raise(ValueError("x"))]:
        with TestClient(make_app(trigger, settings=settings), raise_server_exceptions=False) as client:
            responses.append(post(client, s3_event()))
    with TestClient(
        make_app(FakeTrigger(TriggerUnavailable("busy"))), raise_server_exceptions=False
    ) as client:
        responses.append(post(client, s3_event()))
    statuses = sorted({r.status_code for r in responses})
    assert statuses == [200, 202, 400, 401, 413, 422, 503]  # every path was taken
    assert caplog.records, "the webhook logs its decisions"
    for text in [caplog.text, *(r.text for r in responses)]:
        for secret in [KEY, SECRET, *NEAR_MISSES, SECRET[:-1]]:
            assert secret not in text


def test_an_absurd_signature_timestamp_is_401(trigger: FakeTrigger) -> None:
    app = make_app(trigger, settings=lambda: WebhookSettings(api_key=KEY, hmac_secret=SECRET))
    body, stamp = json.dumps(s3_event()).encode(), "1" + "0" * 400
    with TestClient(app, raise_server_exceptions=False) as client:
        response = post(
            client, body, **{TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body)}
        )
    assert response.status_code == 401
    assert trigger.requests == []


def _fuzz_bodies() -> list[bytes]:
    rng = random.Random(20261126)
    bodies = [rng.randbytes(rng.randint(1, 4000)) for _ in range(12)]
    bodies += [b"[" * depth + b"]" * depth for depth in (1, 100, 100_000)]
    bodies += [b'{"a":' * 50_000 + b"1" + b"}" * 50_000]
    bodies += [
        b"1" * 5000,
        b"-" + b"9" * 4400,
        b"1e999999",
        b"NaN",
        b"Infinity",
        b"true",
        b"null",
        b'"\\ud800"',
    ]
    wrong_types: list[Any] = [None, 0, 1.5, True, [], {}, "", "x" * 10_000]
    for path in ["id", "source", "detail-type", "time", "detail", "detail.bucket", "detail.object.key"]:
        for value in wrong_types:
            event = s3_event()
            *parents, last = path.split(".")
            target = event
            for name in parents:
                target = target[name]
            target[last] = value
            bodies.append(json.dumps(event).encode())
    for field in ["id", "detail-type", "time"]:  # the field a huge integer, its string moved to "_"
        huge = f'"{field}": {"9" * 5000}, "_":'
        bodies.append(json.dumps(s3_event()).replace(f'"{field}":', huge, 1).encode())
    event = s3_event()
    event["detail"]["object"]["size"] = 0
    bodies.append(json.dumps(event).replace('"size": 0', '"size": ' + "7" * 5000).encode())
    unicode_events = [
        {**s3_event(), "id": "événement-1"},
        {**s3_event(), "id": "١٢٣"},
        {**s3_event(), "source": "☃"},
        {**s3_event(), "time": "２０２６-11-26T10:00:00Z"},
        {**s3_event(), "time": "2026-11-26T10:00:00Z\u0000"},
        s3_event(key="raw/customers/dt=２０２６-１１-２５/c.csv"),
        s3_event(key="raw/customers/dt=2026-11-25\u0000/c.csv"),
        s3_event(key="raw/\ud83d\ude00/dt=2026-11-25\n/c.csv"),
        s3_event(bucket="lake-\u200b"),
    ]
    bodies += [json.dumps(event).encode() for event in unicode_events]
    bodies += [
        json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass") for event in unicode_events
    ]
    bodies += [json.dumps(s3_event(key="raw/\ud800/x")).encode(), b"\xef\xbb\xbf" + json.dumps([1]).encode()]
    bodies += [json.dumps({"id": {"$ne": None}}).encode()]
    return bodies


def test_client_input_never_causes_a_500(client: TestClient, trigger: FakeTrigger) -> None:
    bodies = _fuzz_bodies()
    assert len(bodies) >= 50
    answers = [(body[:80], post(client, body).status_code) for body in bodies]
    unexpected = [(body, status) for body, status in answers if status not in {400, 422}]
    assert not unexpected, "\n".join(f"{status} for {body!r}" for body, status in unexpected)
    assert trigger.requests == []
