"""EventBridge envelope validation and routing (``sagelake.events.eventbridge``), without Airflow."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from sagelake.events.eventbridge import (
    InvalidEvent,
    Route,
    RunRequest,
    UnroutedEvent,
    default_routes,
    load_routes,
    message_bodies,
    parse_envelope,
    partition_of_key,
    route_event,
    runs_from_messages,
)
from tests.support import sample_events

LAKE = "sagelake-test-lake"
S3, CREATED = "aws.s3", "Object Created"
KEY = "raw/customers/dt=2026-11-25/customers.csv"


def s3_event(key: str = KEY, bucket: str = LAKE, event_id: str | None = None) -> dict[str, Any]:
    return sample_events.s3_event(key, bucket, event_id)


def training_event(detail: dict[str, Any] | None = None, event_id: str | None = None) -> dict[str, Any]:
    default = {"dt": "2026-11-24", "reason": "drift"}
    return sample_events.training_event(default if detail is None else detail, event_id)


def run_for(event: dict[str, Any] | str | bytes, routes: list[Route] | None = None) -> RunRequest:
    body = event if isinstance(event, str | bytes) else json.dumps(event)
    return route_event(parse_envelope(body), default_routes(LAKE) if routes is None else routes)


def test_s3_object_created_becomes_a_prepare_run_for_the_keys_partition() -> None:
    event = s3_event()
    run = run_for(event)
    assert run.dag_id == "churn_prepare"
    assert run.run_id == f"eventbridge__{event['id']}"
    assert run.route == "raw-landing"
    assert run.conf == {
        "dt": "2026-11-25",
        "event": {
            "id": event["id"],
            "source": "aws.s3",
            "detail_type": "Object Created",
            "time": event["time"],
            "bucket": LAKE,
            "key": KEY,
        },
    }
    json.dumps(run.conf)  # the conf goes into the metadata database as JSON


def test_bytes_and_text_bodies_parse_alike() -> None:
    body = json.dumps(s3_event())
    assert parse_envelope(body) == parse_envelope(body.encode())


def test_training_requested_becomes_a_train_deploy_run_for_detail_dt() -> None:
    event = training_event({"dt": "2026-11-24", "reason": "drift"})
    run = run_for(event)
    assert run.dag_id == "churn_train_deploy"
    assert run.run_id == f"eventbridge__{event['id']}"
    assert run.conf["dt"] == "2026-11-24"
    assert run.conf["event"]["source"] == "sagelake"
    assert run.conf["event"]["detail_type"] == "Training Requested"
    assert run.conf["event"]["detail"] == {"dt": "2026-11-24", "reason": "drift"}


def test_same_event_delivered_twice_asks_for_the_same_run() -> None:
    event = s3_event()
    first, again = run_for(event), run_for(copy.deepcopy(event))
    assert first == again
    other = run_for(s3_event(key=KEY))  # same object, new event id: a new run
    assert other.run_id != first.run_id


def test_a_64_character_id_is_accepted() -> None:
    event_id = "a" + "-b" * 31 + "c"
    assert len(event_id) == 64
    assert run_for(s3_event(event_id=event_id)).run_id == "eventbridge__" + event_id


def _without(field: str) -> dict[str, Any]:
    event = s3_event()
    del event[field]
    return event


def _with(path: str, value: Any) -> dict[str, Any]:
    event = s3_event()
    *parents, last = path.split(".")
    target = event
    for name in parents:
        target = target[name]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return event


_DELETE = object()

INVALID = {
    "not json": b"this is not json",
    "empty body": b"",
    "invalid utf-8": b'{"id": "\xff\xfe"}',
    "json array": json.dumps([s3_event()]),
    "json null": "null",
    "json string": json.dumps("Object Created"),
    "missing id": _without("id"),
    "missing source": _without("source"),
    "missing detail-type": _without("detail-type"),
    "missing time": _without("time"),
    "empty id": _with("id", ""),
    "empty source": _with("source", ""),
    "empty detail-type": _with("detail-type", ""),
    "empty time": _with("time", ""),
    "numeric id": _with("id", 12345),
    "list source": _with("source", ["aws.s3"]),
    "id with a space": _with("id", "abc def"),
    "id with a slash": _with("id", "abc/def"),
    "id with underscores": _with("id", "abc__def"),
    "id starting with a dash": _with("id", "-abc"),
    "id over 64 characters": _with("id", "a" * 65),
    "id with a trailing newline": _with("id", "abc\n"),
    "time not a date": _with("time", "yesterday"),
    "time month 13": _with("time", "2026-13-01T00:00:00Z"),
    "time with a trailing NUL": _with("time", "2026-11-26T10:00:00Z\u0000"),
    "an integer over 4300 digits": '{"id": ' + "9" * 5000 + "}",
    "arrays nested 100000 deep": "[" * 100_000 + "]" * 100_000,
    "detail missing": _without("detail"),
    "detail a list": _with("detail", [{"bucket": {"name": LAKE}}]),
    "detail a string": _with("detail", "{}"),
    "S3 detail without bucket": _with("detail.bucket", _DELETE),
    "S3 detail without object": _with("detail.object", _DELETE),
    "S3 detail without key": _with("detail.object.key", _DELETE),
    "S3 key not a string": _with("detail.object.key", ["raw/x"]),
    "S3 bucket name empty": _with("detail.bucket.name", ""),
}


@pytest.mark.parametrize("event", INVALID.values(), ids=INVALID.keys())
def test_malformed_events_are_invalid_400(event: Any) -> None:
    with pytest.raises(InvalidEvent) as caught:
        run_for(event)
    assert caught.value.status == 400
    assert "\n" not in str(caught.value)


UNROUTED = {
    "other bucket": s3_event(bucket="someone-elses-bucket"),
    "key outside raw/": s3_event(key="processed/events/dt=2026-11-25/part-0.parquet"),
    "key without dt=": s3_event(key="raw/customers/customers.csv"),
    "dt= is the file name": s3_event(key="raw/customers/dt=2026-11-25"),
    "impossible date": s3_event(key="raw/customers/dt=2026-02-30/customers.csv"),
    "dt not a date": s3_event(key="raw/customers/dt=latest/customers.csv"),
    "S3 event of another type": {**s3_event(), "detail-type": "Object Deleted"},
    "unknown source": {**training_event(), "source": "aws.ec2"},
    "custom event without dt": training_event({"reason": "drift"}),
    "custom event with a bad dt": training_event({"dt": "24/11/2026"}),
    "custom event with a numeric dt": training_event({"dt": 20261124}),
}


@pytest.mark.parametrize("event", UNROUTED.values(), ids=UNROUTED.keys())
def test_wellformed_events_no_route_takes_are_unrouted_422(event: dict[str, Any]) -> None:
    with pytest.raises(UnroutedEvent) as caught:
        run_for(event)
    assert caught.value.status == 422
    assert not isinstance(caught.value, InvalidEvent)


def test_unrouted_s3_event_names_the_object() -> None:
    with pytest.raises(UnroutedEvent, match=r"s3://someone-elses-bucket/raw/customers/dt=2026-11-25"):
        run_for(s3_event(bucket="someone-elses-bucket"))


@pytest.mark.parametrize(
    ("key", "dt"),
    [
        ("raw/events/dt=2026-11-26/part-0.json", "2026-11-26"),
        ("dt=2026-01-31/x.csv", "2026-01-31"),
        ("raw/a/dt=2024-02-29/b/dt-notes.txt", "2024-02-29"),
    ],
)
def test_partition_of_key(key: str, dt: str) -> None:
    assert partition_of_key(key) == dt


@pytest.mark.parametrize(
    "key", ["raw/events/xdt=2026-11-26/part-0.json", "raw/events/2026-11-26/x", "raw/dt=2025-02-29/x"]
)
def test_keys_outside_a_valid_partition_are_unrouted(key: str) -> None:
    with pytest.raises(UnroutedEvent):
        partition_of_key(key)


def test_first_matching_route_wins() -> None:
    specific = Route("customers", "load_customers", S3, CREATED, bucket=LAKE, prefix="raw/customers/")
    general = Route("any-raw", "churn_prepare", S3, CREATED, bucket=LAKE, prefix="raw/")
    event = s3_event()
    assert run_for(event, [specific, general]).dag_id == "load_customers"
    assert run_for(event, [general, specific]).dag_id == "churn_prepare"
    events = s3_event(key="raw/events/dt=2026-11-25/part-0.json")
    assert run_for(events, [specific, general]).route == "any-raw"


def test_suffix_filters_the_object_key() -> None:
    csv_only = [Route("csv", "churn_prepare", S3, CREATED, bucket=LAKE, prefix="raw/", suffix=".csv")]
    assert run_for(s3_event(key="raw/customers/dt=2026-11-25/c.csv"), csv_only).route == "csv"
    with pytest.raises(UnroutedEvent):
        run_for(s3_event(key="raw/customers/dt=2026-11-25/c.csv.tmp"), csv_only)


def test_a_custom_route_matches_source_and_detail_type_only() -> None:
    routes = [Route("retrain", "churn_train_deploy", "sagelake", "Training Requested")]
    assert run_for(training_event(), routes).route == "retrain"
    with pytest.raises(UnroutedEvent):
        run_for({**training_event(), "detail-type": "Training Cancelled"}, routes)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "'name'"),
        ({"dag_id": None}, "'dag_id'"),
        ({"source": ""}, "'source'"),
        ({"detail_type": 5}, "'detail_type'"),
        ({"prefix": None}, "'prefix'"),
        ({"suffix": 1}, "'suffix'"),
        ({"bucket": None}, "'bucket'"),
        ({"bucket": ""}, "'bucket'"),
    ],
)
def test_route_validation(fields: dict[str, Any], message: str) -> None:
    base = {"name": "r", "dag_id": "d", "source": "aws.s3", "detail_type": "Object Created", "bucket": LAKE}
    with pytest.raises(ValueError, match=message):
        Route(**{**base, **fields})


def test_non_s3_routes_need_no_bucket() -> None:
    assert Route("r", "d", "sagelake", "Training Requested").bucket is None


def test_load_routes_defaults_to_the_lake_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGELAKE_EVENT_ROUTES", raising=False)
    monkeypatch.setenv("SAGELAKE_BUCKET", "my-own-lake")
    assert load_routes() == default_routes("my-own-lake")


def test_load_routes_from_a_json_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "routes.json"
    entries = [
        {"name": "csv", "dag_id": "churn_prepare", "source": S3, "detail_type": CREATED, "bucket": LAKE,
         "prefix": "raw/", "suffix": ".csv"},
        {"name": "retrain", "dag_id": "churn_train_deploy", "source": "sagelake",
         "detail_type": "Training Requested"},
    ]  # fmt: skip
    path.write_text(json.dumps(entries))
    monkeypatch.setenv("SAGELAKE_EVENT_ROUTES", str(path))
    routes = load_routes()
    assert routes == [Route(**entry) for entry in entries]
    assert run_for(s3_event(), routes).route == "csv"
    with pytest.raises(UnroutedEvent):
        run_for(s3_event(key="raw/customers/dt=2026-11-25/c.json"), routes)


BAD_ROUTE_FILES = {
    "not json": "routes: [raw-landing]",
    "an object, not a list": json.dumps({"name": "r", "dag_id": "d", "source": "s", "detail_type": "t"}),
    "a list of strings": json.dumps(["raw-landing"]),
    "an unknown field": json.dumps([{"name": "r", "dag_id": "d", "source": "s", "detail_type": "t", "x": 1}]),
    "a missing dag_id": json.dumps([{"name": "r", "source": "s", "detail_type": "t"}]),
    "an S3 route without bucket": json.dumps(
        [{"name": "r", "dag_id": "d", "source": "aws.s3", "detail_type": "Object Created"}]
    ),
}


@pytest.mark.parametrize("text", BAD_ROUTE_FILES.values(), ids=BAD_ROUTE_FILES.keys())
def test_a_bad_routes_file_is_one_clear_value_error(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "routes.json"
    path.write_text(text)
    monkeypatch.setenv("SAGELAKE_EVENT_ROUTES", str(path))
    with pytest.raises(ValueError, match="SAGELAKE_EVENT_ROUTES") as caught:
        load_routes()
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert path.read_text() == text  # the file is left as it was


def test_a_missing_routes_file_is_a_clear_value_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGELAKE_EVENT_ROUTES", str(tmp_path / "absent.json"))
    with pytest.raises(ValueError, match="SAGELAKE_EVENT_ROUTES.*absent.json"):
        load_routes()


def test_runs_from_messages_dedupes_and_reports_rejects() -> None:
    first, second = s3_event(), training_event()
    foreign = s3_event(bucket="someone-elses-bucket")
    bodies = [json.dumps(first), json.dumps(second), json.dumps(first), "not json", json.dumps(foreign)]
    runs, rejected = runs_from_messages(bodies, default_routes(LAKE))
    assert [run.run_id for run in runs] == [f"eventbridge__{first['id']}", f"eventbridge__{second['id']}"]
    assert [run.dag_id for run in runs] == ["churn_prepare", "churn_train_deploy"]
    assert [entry["body"] for entry in rejected] == ["not json", json.dumps(foreign)]
    assert "not JSON" in rejected[0]["reason"]
    assert "no route" in rejected[1]["reason"]


def test_runs_from_messages_truncates_huge_rejected_bodies() -> None:
    body = "x" * 100_000
    _, rejected = runs_from_messages([body], default_routes(LAKE))
    assert body.startswith(rejected[0]["body"]) and 0 < len(rejected[0]["body"]) < len(body)


POISON = {
    "integer over 4300 digits": '{"id": ' + "9" * 5000 + "}",
    "arrays nested 100000 deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
def test_a_poison_message_is_rejected_not_fatal_to_its_batch(poison: str) -> None:
    """JSON that ``json.loads`` cannot represent is one bad message, not a crash of the whole batch."""
    good = s3_event()
    runs, rejected = runs_from_messages([poison, json.dumps(good)], default_routes(LAKE))
    assert [run.run_id for run in runs] == [f"eventbridge__{good['id']}"]
    assert len(rejected) == 1 and rejected[0]["body"] == poison[:2000]


def _extra(*bodies: Any) -> dict[str, Any]:
    batch = [{"MessageId": str(uuid.uuid4()), "ReceiptHandle": "rh", "Body": body} for body in bodies]
    return {"from_trigger": True, "payload": {"status": "success", "message_batch": batch}}


def test_message_bodies_reads_every_batch_in_order() -> None:
    assert message_bodies([_extra("a", "b"), _extra("c")]) == ["a", "b", "c"]


def test_message_bodies_ignores_junk() -> None:
    extras = [
        {},
        {"from_rest_api": True},
        {"from_trigger": True, "payload": None},
        {"from_trigger": True, "payload": {"status": "success"}},
        {"from_trigger": True, "payload": {"status": "success", "message_batch": None}},
        {"from_trigger": True, "payload": {"status": "success", "message_batch": ["a string", 7, None]}},
        _extra({"not": "a string"}, None, 42),
        {"from_trigger": True, "payload": {"message_batch": [{"MessageId": "m", "ReceiptHandle": "r"}]}},
        _extra("kept"),
    ]
    assert message_bodies(extras) == ["kept"]


def test_message_bodies_ignores_payloads_that_are_not_objects() -> None:
    """Asset events can also come from the REST API, whose ``extra`` is any JSON object."""
    extras = [{"payload": "oops"}, {"payload": ["message_batch"]}, {"payload": 3}, _extra("kept")]
    assert message_bodies(extras) == ["kept"]


def test_sqs_redelivery_makes_one_run() -> None:
    event = json.dumps(s3_event())
    runs, rejected = runs_from_messages(message_bodies([_extra(event), _extra(event)]), default_routes(LAKE))
    assert len(runs) == 1 and rejected == []
