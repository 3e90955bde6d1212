"""Deploy safely: an UpdateEndpoint to another model while clients invoke continuously fails no request,
and every client ends up on the new model (and never goes back)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from sagelake.local.endpoint_server import serve
from tests.integration.local.test_endpoint_server import (
    create_endpoint,
    local_probabilities,
    register,
    train_model_dirs,
)
from tests.support.constants import REGION
from tests.support.training_data import synthetic_features

CLIENTS = 4


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return train_model_dirs(tmp_path_factory.mktemp("models"))


@pytest.fixture()
def sagemaker(aws_env: str):
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def server(aws_env: str, tmp_path: Path) -> Iterator:
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION)
    yield server
    server.shutdown()


class Client(threading.Thread):
    """Invokes on one kept-alive connection until stopped; records every answer or failure."""

    def __init__(self, address: tuple[str, int], path: str, body: bytes, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.address, self.path, self.body, self.stop = address, path, body, stop
        self.answers: list[list[float]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection(*self.address, timeout=60)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        while not self.stop.is_set():
            try:
                connection.request("POST", self.path, self.body, headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                continue
            if response.status != 200:
                self.failures.append(f"{response.status}: {payload[:200]!r}")
                continue
            self.answers.append([p["churn_probability"] for p in json.loads(payload)["predictions"]])
        connection.close()


def wait_until(check, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not check():
        time.sleep(0.05)
    return check()


def test_update_endpoint_under_load_fails_nothing_and_switches(
    sagemaker, s3, bucket, server, model_dirs
) -> None:
    frame = synthetic_features(4, 11)
    old, new = (local_probabilities(model_dirs[v], frame) for v in ("v1", "v2"))
    assert old != new
    endpoint = create_endpoint(sagemaker, register(sagemaker, s3, bucket, model_dirs["v1"]))
    second_config = register(sagemaker, s3, bucket, model_dirs["v2"])
    body = json.dumps({"instances": frame.drop(columns=["customer_id", "churned"]).to_dict("records")})
    stop = threading.Event()
    clients = [
        Client(server.server_address[:2], f"/endpoints/{endpoint}/invocations", body.encode(), stop)
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    try:
        assert wait_until(lambda: all(len(c.answers) >= 3 for c in clients), 60), [
            c.failures for c in clients
        ]
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=second_config)
        switched = wait_until(lambda: all(c.answers and c.answers[-1] == new for c in clients), 60)
        seen = [len(c.answers) for c in clients]
        wait_until(lambda: all(len(c.answers) >= n + 3 for c, n in zip(clients, seen, strict=True)), 30)
    finally:
        stop.set()
        for client in clients:
            client.join(60)

    assert [c.failures for c in clients] == [[]] * CLIENTS
    assert switched
    for client in clients:
        assert client.answers[0] == old
        assert all(answer in (old, new) for answer in client.answers)
        first_new = client.answers.index(new)
        assert all(answer == new for answer in client.answers[first_new:])  # no going back
