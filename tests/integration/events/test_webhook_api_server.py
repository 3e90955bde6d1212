"""The EventBridge webhook inside the real Airflow API server app (plugin loading, metadata DB, uvicorn).

The app is Airflow's own ``create_app()``: the webhook is mounted by the ``sagelake_webhook`` plugin found in
the plugins folder, exactly as ``airflow api-server`` does it, and served over HTTP by uvicorn.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.support import sample_events
from tests.support.network import free_port
from tests.support.pipeline import migrate_metadata_db

API_KEY = "test-webhook-key-0123456789"


@pytest.fixture(scope="module")
def server():
    """Migrated metadata DB with the project's DAGs, and Airflow's API server app on a free port."""
    import uvicorn

    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_EVENTBRIDGE_WEBHOOK", json.dumps({"conn_type": "generic", "password": API_KEY}))
    migrate_metadata_db()
    from airflow.api_fastapi.app import create_app
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        assert not bag.import_errors
        sync_bag_to_db(bag, bundle.name, bundle.version)

    port = free_port()
    config = uvicorn.Config(create_app(apps="core"), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}/webhooks/eventbridge"
    uv.should_exit = True
    thread.join(10)
    mp.undo()


def s3_event(key: str = "raw/events/dt=2026-11-26/events.jsonl", bucket: str = "sagelake-lake") -> dict:
    return sample_events.s3_event(key, bucket)


def post(url: str, body: bytes | dict, key: str | None = API_KEY) -> tuple[int, dict]:
    from devstack.webhook_client import post_event

    return post_event(url, body, key)


def runs(run_id_prefix: str = "eventbridge__") -> dict[str, object]:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.scalars(select(DagRun).where(DagRun.run_id.startswith(run_id_prefix))).all()
        return {r.run_id: (r.dag_id, r.conf, r.logical_date, r.triggering_user_name) for r in found}


def test_s3_object_created_event_starts_one_run_with_the_event_as_conf(server) -> None:
    event = s3_event()
    status, body = post(server, event)
    assert status == 202, body
    run_id = f"eventbridge__{event['id']}"
    assert body == {"dag_id": "churn_prepare", "dag_run_id": run_id, "state": "queued", "duplicate": False}
    dag_id, conf, logical_date, user = runs(run_id)[run_id]
    assert dag_id == "churn_prepare" and logical_date is None and user == "eventbridge-webhook"
    assert conf["dt"] == "2026-11-26"
    assert conf["event"] | {"time": None} == {
        "id": event["id"],
        "source": "aws.s3",
        "detail_type": "Object Created",
        "bucket": "sagelake-lake",
        "key": "raw/events/dt=2026-11-26/events.jsonl",
        "time": None,
    }
    assert conf["event"]["time"] == event["time"]

    again, body = post(server, event)  # EventBridge redelivers: same run, nothing new
    assert (again, body["dag_run_id"], body["duplicate"]) == (200, run_id, True)
    assert len(runs(run_id)) == 1


def test_training_requested_custom_event_starts_the_training_dag(server) -> None:
    event = sample_events.training_event()
    status, body = post(server, event)
    assert status == 202, body
    dag_id, conf, _, _ = runs(body["dag_run_id"])[body["dag_run_id"]]
    assert (dag_id, conf["dt"]) == ("churn_train_deploy", event["detail"]["dt"])


@pytest.mark.parametrize(
    ("body", "key", "status"),
    [
        (s3_event(), None, 401),
        (s3_event(), "wrong-key", 401),
        (b'{"id": "x", ', API_KEY, 400),
        ({"id": "only-an-id"}, API_KEY, 400),
        (s3_event(bucket="someone-elses-bucket"), API_KEY, 422),
        (s3_event(key="curated/churn_features/dt=2026-11-26/part-0.parquet"), API_KEY, 422),
        (s3_event(key="raw/events/no-partition/events.jsonl"), API_KEY, 422),
    ],
    ids=["no-key", "wrong-key", "not-json", "not-an-event", "other-bucket", "not-raw", "no-dt"],
)
def test_rejections_answer_their_status_and_create_nothing(server, body, key, status) -> None:
    before = runs()
    answer, detail = post(server, body, key)
    assert answer == status, detail
    assert "error" in detail
    assert runs() == before


def test_a_body_over_1mib_is_refused_from_its_headers_alone(server) -> None:
    """413 before a single body byte is sent: the server reads no further than the declared length.

    (Sending the body too would race with the server closing the connection on the unread bytes.)
    """
    url = urlsplit(server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("POST", url.path)
    for name, value in {"x-api-key": API_KEY, "Content-Type": "application/json"}.items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(1024 * 1024 + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert "1048576" in json.loads(response.read())["error"]
    conn.close()


def test_twenty_concurrent_replays_of_one_event_create_one_run(server) -> None:
    event = s3_event()
    barrier = threading.Barrier(20)

    def deliver(_: int) -> tuple[int, str]:
        barrier.wait()
        status, body = post(server, event)
        return status, body.get("dag_run_id", "")

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(deliver, range(20)))
    run_id = f"eventbridge__{event['id']}"
    assert Counter(status for status, _ in answers) == {202: 1, 200: 19}
    assert {rid for _, rid in answers} == {run_id}
    assert list(runs(run_id)) == [run_id]


def test_burst_of_200_distinct_events_is_fully_accounted_for(server) -> None:
    """180 routable + 20 unroutable events, 16 at a time: every one is a run or a 422, none is lost."""
    routable = [s3_event(key=f"raw/events/dt=2026-10-{1 + i % 28:02d}/events-{i}.jsonl") for i in range(180)]
    unroutable = [s3_event(key=f"landing/elsewhere/file-{i}.csv") for i in range(20)]
    events = routable + unroutable

    def deliver(event: dict) -> tuple[str, int, float]:
        from devstack.webhook_client import deliver as deliver_with_retries

        started = time.perf_counter()
        status, _ = deliver_with_retries(server, event, API_KEY)  # 429/5xx retried, like EventBridge
        return event["id"], status, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(deliver, events))
    elapsed = time.perf_counter() - started
    status_of = {event_id: status for event_id, status, _ in answers}
    assert Counter(status_of.values()) == {202: 180, 422: 20}
    created = runs()
    assert {f"eventbridge__{e['id']}" for e in routable} <= set(created)
    assert not {f"eventbridge__{e['id']}" for e in unroutable} & set(created)
    latencies = sorted(seconds for _, _, seconds in answers)
    print(
        f"\nburst: 200 events in {elapsed:.2f}s ({200 / elapsed:.0f}/s), statuses "
        f"{dict(Counter(status_of.values()))}, latency p50 {latencies[100] * 1000:.0f} ms "
        f"p95 {latencies[190] * 1000:.0f} ms"
    )
