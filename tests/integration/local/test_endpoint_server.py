"""The local sagemaker-runtime endpoint server, driven through boto3 against the local control plane."""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import joblib
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sagelake.local.endpoint_server import Variant, choose_variant, serve
from sagelake.ml.artifacts import package_source_dir
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.serving import BROKEN_INFERENCE, register_version
from tests.support.training_data import load_script, synthetic_features, write_channel


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real models from train.py (different data and hyperparameters) and a broken archive dir."""
    return train_model_dirs(tmp_path_factory.mktemp("models"))


def train_model_dirs(root: Path) -> dict[str, Path]:
    """Models ``v1`` and ``v2`` trained by train.py under ``root``, and ``broken`` (predict fails)."""
    train = load_script("train")
    dirs = {}
    for name, seed, depth in (("v1", 1, "2"), ("v2", 2, "4")):
        channel = write_channel(root / f"data-{name}", {"2024-01-01": synthetic_features(400, seed)})
        args = [
            "--train",
            str(channel),
            "--model-dir",
            str(root / name),
            "--output-data-dir",
            str(root / "out"),
        ]
        assert train.main([*args, "--max_iter", "40", "--max_depth", depth, "--seed", str(seed)]) == 0
        dirs[name] = root / name
    (root / "broken" / "code").mkdir(parents=True)
    (root / "broken" / "code" / "inference.py").write_text(BROKEN_INFERENCE)
    dirs["broken"] = root / "broken"
    return dirs


@pytest.fixture()
def sagemaker(aws_env: str):
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def runtime(aws_env: str, tmp_path: Path) -> Iterator:
    """A sagemaker-runtime client on a fresh endpoint server."""
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION)
    host, port = server.server_address[:2]
    config = Config(retries={"max_attempts": 1})
    yield boto3.client(
        "sagemaker-runtime", endpoint_url=f"http://{host}:{port}", region_name=REGION, config=config
    )
    server.shutdown()


def register(sagemaker, s3, bucket: str, model_dir: Path, variants: int = 1) -> str:
    """Upload model.tar.gz, create model + endpoint config; return the config name."""
    tag = uuid.uuid4().hex[:8]
    key = f"models/churn/job-{tag}/output/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=package_source_dir(model_dir))
    register_version(sagemaker, SKLEARN_IMAGE_URI, f"s3://{bucket}/{key}")  # served: approved
    sagemaker.create_model(
        ModelName=f"model-{tag}",
        ExecutionRoleArn=SAGEMAKER_ROLE_ARN,
        PrimaryContainer={"Image": SKLEARN_IMAGE_URI, "ModelDataUrl": f"s3://{bucket}/{key}"},
    )
    config = f"config-{tag}"
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic" if variants == 1 else f"Variant{i}",
                "ModelName": f"model-{tag}",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
            for i in range(variants)
        ],
    )
    return config


def create_endpoint(sagemaker, config: str) -> str:
    name = f"churn-{uuid.uuid4().hex[:8]}"
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    return name


def eventually(check, timeout_s: float = 30.0) -> bool:
    """Whether ``check()`` becomes true within ``timeout_s`` (polled)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def local_probabilities(model_dir: Path, frame) -> list[float]:
    bundle = joblib.load(model_dir / "model.joblib")
    return bundle["pipeline"].predict_proba(frame[bundle["features"]])[:, 1].tolist()


def invoke_json(runtime, endpoint: str, frame, **kwargs) -> tuple[list[float], dict]:
    instances = frame.drop(columns=["customer_id", "churned"]).to_dict(orient="records")
    response = runtime.invoke_endpoint(
        EndpointName=endpoint,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"instances": instances}),
        **kwargs,
    )
    predictions = json.loads(response["Body"].read())["predictions"]
    return [p["churn_probability"] for p in predictions], response


def test_invoke_serves_the_model_and_follows_updates(sagemaker, s3, bucket, runtime, model_dirs) -> None:
    frame = synthetic_features(8, 42)
    endpoint = create_endpoint(sagemaker, register(sagemaker, s3, bucket, model_dirs["v1"]))

    probabilities, response = invoke_json(runtime, endpoint, frame)
    assert probabilities == local_probabilities(model_dirs["v1"], frame)
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"

    csv_body = frame.drop(columns=["customer_id", "churned"]).to_csv(header=False, index=False)
    response = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=csv_body
    )
    assert response["ContentType"] == "text/csv"
    assert [float(x) for x in response["Body"].read().decode().split()] == probabilities

    sagemaker.update_endpoint(
        EndpointName=endpoint, EndpointConfigName=register(sagemaker, s3, bucket, model_dirs["v2"])
    )
    expected = local_probabilities(model_dirs["v2"], frame)
    assert expected != probabilities
    # the switch is blue/green: the old model answers until the new one is loaded, then the new one
    assert eventually(lambda: invoke_json(runtime, endpoint, frame)[0] == expected)


def test_target_variant_is_honoured(sagemaker, s3, bucket, runtime, model_dirs) -> None:
    endpoint = create_endpoint(sagemaker, register(sagemaker, s3, bucket, model_dirs["v1"], variants=2))
    frame = synthetic_features(2, 7)
    _, response = invoke_json(runtime, endpoint, frame, TargetVariant="Variant1")
    assert response["InvokedProductionVariant"] == "Variant1"
    with pytest.raises(ClientError) as error:
        invoke_json(runtime, endpoint, frame, TargetVariant="Nope")
    assert error.value.response["Error"]["Code"] == "ValidationError"


def test_unknown_endpoint_is_a_validation_error(runtime) -> None:
    with pytest.raises(ClientError) as error:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body=b"1")
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "no-such-endpoint" in error.value.response["Error"]["Message"]


def test_model_failures_are_model_errors(sagemaker, s3, bucket, runtime, model_dirs) -> None:
    endpoint = create_endpoint(sagemaker, register(sagemaker, s3, bucket, model_dirs["v1"]))
    for content_type, body, message in (
        ("application/json", b'{"instances": [{"plan": "basic"}]}', "lacks feature"),
        ("application/x-npy", b"\x93NUMPY", "unsupported content type"),
    ):
        with pytest.raises(ClientError) as error:
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType=content_type, Body=body)
        assert error.value.response["Error"]["Code"] == "ModelError"
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
        assert message in error.value.response["Error"]["Message"]

    broken = create_endpoint(sagemaker, register(sagemaker, s3, bucket, model_dirs["broken"]))
    with pytest.raises(ClientError) as error:
        runtime.invoke_endpoint(EndpointName=broken, ContentType="text/csv", Body=b"1,2")
    assert error.value.response["Error"]["Code"] == "ModelError"
    assert "predictor exploded" in error.value.response["Error"]["Message"]

    # the healthy endpoint still serves after its neighbours failed
    probabilities, _ = invoke_json(runtime, endpoint, synthetic_features(3, 5))
    assert probabilities == local_probabilities(model_dirs["v1"], synthetic_features(3, 5))


def test_ping(runtime) -> None:
    with urllib.request.urlopen(f"{runtime.meta.endpoint_url}/ping") as response:
        assert response.status == 200


def test_choose_variant_by_weight() -> None:
    variants = [Variant("A", "m-a", 3.0), Variant("B", "m-b", 1.0), Variant("C", "m-c", 0.0)]
    rng = random.Random(0)
    picks = [choose_variant(variants, rng).name for _ in range(400)]
    assert "C" not in picks
    assert np.isclose(picks.count("A") / len(picks), 0.75, atol=0.1)
    assert choose_variant(variants, rng, target="C").name == "C"
    assert {
        choose_variant([Variant("A", "m", 0.0), Variant("B", "m", 0.0)], rng).name for _ in range(50)
    } == {
        "A",
        "B",
    }


def test_connections_are_kept_alive_across_answers_and_errors(
    sagemaker, s3, bucket, runtime, model_dirs
) -> None:
    endpoint = create_endpoint(sagemaker, register(sagemaker, s3, bucket, model_dirs["v1"]))
    frame = synthetic_features(2, 9)
    body = json.dumps({"instances": frame.drop(columns=["customer_id", "churned"]).to_dict("records")})
    address = urlsplit(runtime.meta.endpoint_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    sockets, statuses = set(), []
    for method, path, payload in (
        ("POST", f"/endpoints/{endpoint}/invocations", body),
        ("POST", "/endpoints/no-such-endpoint/invocations", body),  # 400
        ("POST", "/nowhere", body),  # 404
        ("POST", f"/endpoints/{endpoint}/invocations", '{"instances": [{"plan": "basic"}]}'),  # 424
        ("GET", "/ping", None),
        ("POST", f"/endpoints/{endpoint}/invocations", body),
    ):
        connection.request(method, path, payload, headers)
        response = connection.getresponse()
        answer = response.read()
        assert not response.will_close
        assert int(response.headers["Content-Length"]) == len(answer)
        statuses.append(response.status)
        sockets.add(id(connection.sock))
    assert statuses == [200, 400, 404, 424, 200, 200]
    assert len(sockets) == 1  # one connection for all of them
    assert (
        json.loads(answer)["predictions"][0]["churn_probability"]
        == local_probabilities(model_dirs["v1"], frame)[0]
    )

    # a body the server will not read, or a client that asks to close: answered, then closed
    connection.putrequest("POST", f"/endpoints/{endpoint}/invocations")
    connection.putheader("Content-Length", str(7 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert (response.status, response.headers["Connection"], response.will_close) == (400, "close", True)
    response.read()
    connection.close()
    connection.request("POST", f"/endpoints/{endpoint}/invocations", body, {**headers, "Connection": "close"})
    response = connection.getresponse()
    assert response.status == 200 and response.will_close
    connection.close()
