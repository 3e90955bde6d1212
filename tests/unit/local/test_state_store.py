"""The snapshot file format and the pickling of what moto holds, without a server (nothing registered in
moto's backends: the objects are built directly)."""

from __future__ import annotations

import io
import json
import pickle
import threading
from pathlib import Path

import pytest
from moto.s3.models import FakeKey
from moto.s3.utils import _VersionedKeyStore

from sagelake.local.state_store import (
    PREVIOUS,
    SnapshotError,
    StateStore,
    decode,
    dumps,
    encode,
    may_change,
    request_action,
    write_atomically,
)

ACCOUNT, REGION = "123456789012", "us-east-1"


def key(name: str, body: bytes, version: str) -> FakeKey:
    return FakeKey(name, body, account_id=ACCOUNT, region_name=REGION, version_id=version)


def test_a_bucket_key_store_keeps_every_version_of_every_key() -> None:
    store = _VersionedKeyStore()
    store["a.csv"] = key("a.csv", b"first", "v1")
    store["a.csv"] = key("a.csv", b"second", "v2")
    store["b.csv"] = key("b.csv", bytes(range(256)), "v1")

    restored = pickle.loads(dumps(store))

    assert type(restored) is _VersionedKeyStore
    assert [(k.version_id, k.value) for k in restored.getlist("a.csv")] == [
        ("v1", b"first"),
        ("v2", b"second"),
    ]
    assert restored["a.csv"].value == b"second" and restored["b.csv"].value == bytes(range(256))
    # plain pickle loses the older versions: why the store has its own reducer
    assert len(pickle.loads(pickle.dumps(store)).getlist("a.csv")) == 1


def test_locks_come_back_new_and_free() -> None:
    held = {"lock": threading.Lock(), "rlock": threading.RLock(), "condition": threading.Condition()}
    for lock in held.values():
        lock.acquire()

    restored = pickle.loads(dumps(held))

    for name, lock in restored.items():
        assert type(lock) is type(held[name])
        assert lock.acquire(blocking=False), name
        lock.release()


def snapshot(tmp_path: Path, backends: dict | None = None) -> Path:
    path = tmp_path / "moto-state.pickle"
    write_atomically(path, encode(backends or {("m", "b", ACCOUNT, REGION): b"blob"}, saved_at=1.0))
    return path


def test_a_snapshot_reads_back_and_the_one_it_replaces_is_kept(tmp_path: Path) -> None:
    first = snapshot(tmp_path, {("m", "b", ACCOUNT, REGION): b"one"})
    write_atomically(first, encode({("m", "b", ACCOUNT, REGION): b"two"}, saved_at=2.0), previous=PREVIOUS)

    assert decode(first)["backends"] == {("m", "b", ACCOUNT, REGION): b"two"}
    assert decode(tmp_path / PREVIOUS)["backends"] == {("m", "b", ACCOUNT, REGION): b"one"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:-7], "is truncated"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "checksum does not match"),
        (lambda data: b"PK\x03\x04" + data, "not a control-plane snapshot"),
        (lambda data: data.split(b"\n", 1)[0][:30] + b"\n" + data.split(b"\n", 1)[1], "damaged header"),
    ],
)
def test_a_damaged_snapshot_is_refused_with_the_reason(tmp_path: Path, damage, message: str) -> None:
    path = snapshot(tmp_path)
    path.write_bytes(damage(path.read_bytes()))

    with pytest.raises(SnapshotError, match=message):
        decode(path)


def environ(method: str = "POST", target: str = "", path: str = "/", query: str = "", form: str = "") -> dict:
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if target:
        env["HTTP_X_AMZ_TARGET"] = target
    body = form.encode()
    env["wsgi.input"] = io.BytesIO(body)
    if form:
        env.update(
            CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8", CONTENT_LENGTH=str(len(body))
        )
    return env


@pytest.mark.parametrize(
    ("request_environ", "action", "changes"),
    [
        (environ("GET", path="/lake/key"), None, False),  # S3 reads
        (environ("PUT", path="/lake/key"), None, True),  # S3 writes: REST, no action
        (environ(target="SageMaker.DescribeEndpoint"), "DescribeEndpoint", False),
        (environ(target="AWSGlue.GetPartitions"), "GetPartitions", False),
        (environ(target="AWSGlue.BatchGetPartition"), "BatchGetPartition", False),
        (environ(target="SageMaker.CreateEndpoint"), "CreateEndpoint", True),
        (environ(target="AWSGlue.SagelakeRecordCrawl"), "SagelakeRecordCrawl", True),  # the extensions
        (
            environ(path="/service/GraniteServiceVersion20100801/operation/GetMetricData"),
            "GetMetricData",
            False,
        ),
        (
            environ(path="/service/GraniteServiceVersion20100801/operation/PutMetricData"),
            "PutMetricData",
            True,
        ),
        (environ("PUT", path="/lake/reports/service/x/operation/GetReport"), None, True),  # an S3 key
        (environ(form="Action=GetRole&RoleName=glue&Version=2010-05-08"), "GetRole", False),
        (environ(form="Action=CreateRole&RoleName=glue"), "CreateRole", True),
        (environ(query="Action=ListQueues"), "ListQueues", False),
        (environ(), None, True),  # nothing says what it does: counted as a change
    ],
)
def test_only_requests_that_may_change_state_call_for_a_snapshot(request_environ, action, changes) -> None:
    form = request_environ["wsgi.input"].getvalue()
    assert request_action(request_environ) == action
    assert may_change(request_environ["REQUEST_METHOD"], action) is changes
    assert request_environ["wsgi.input"].read() == form  # a form body read for its Action is put back


@pytest.mark.parametrize(
    ("answer", "changes"),
    [
        (b"{}", False),
        (json.dumps({"Messages": []}).encode(), False),
        (b"<ReceiveMessageResponse><ReceiveMessageResult/></ReceiveMessageResponse>", False),
        (json.dumps({"Messages": [{"MessageId": "1", "Body": "event"}]}).encode(), True),
        (b"<ReceiveMessageResponse><ReceiveMessageResult><Message><Body>e</Body></Message>", True),
        (b"\x00 not an answer", True),
    ],
)
def test_a_receive_calls_for_a_snapshot_only_when_it_returned_a_message(
    tmp_path: Path, answer: bytes, changes: bool
) -> None:
    store = StateStore(tmp_path)
    started: list[str] = []

    def app(env: dict, start_response) -> list[bytes]:
        start_response("200 OK", [])
        return [answer[:5], answer[5:]]

    wrapped = store.wsgi(app)
    body = wrapped(environ(target="AmazonSQS.ReceiveMessage"), lambda status, headers: started.append(status))
    assert b"".join(body) == answer and started == ["200 OK"]  # the answer passes through whole
    assert store.changed is changes
