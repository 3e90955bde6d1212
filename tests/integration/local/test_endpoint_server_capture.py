"""Data capture: an endpoint config with ``DataCaptureConfig`` (built by ``endpoint_request``) has its
invocations written to S3 in SageMaker's format and layout, read back here from the control plane."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from sagelake.local.endpoint_server import serve
from sagelake.ml.artifacts import package_source_dir
from sagelake.ml.aws_requests import endpoint_request
from tests.integration.local.test_endpoint_server import local_probabilities, train_model_dirs
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.serving import register_version
from tests.support.training_data import synthetic_features

KEY = re.compile(
    r"^capture/(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/(\d{4})/(\d\d)/(\d\d)/(\d\d)/[^/]+\.jsonl$"
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model_dirs(tmp_path_factory.mktemp("models"))["v1"]


@pytest.fixture()
def server(aws_env: str, tmp_path: Path) -> Iterator:
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION)
    yield server
    server.shutdown()


def runtime_for(server):
    host, port = server.server_address[:2]
    config = Config(retries={"max_attempts": 1})
    return boto3.client(
        "sagemaker-runtime", endpoint_url=f"http://{host}:{port}", region_name=REGION, config=config
    )


def deploy(aws_env: str, s3, bucket: str, model_dir: Path, percentage: int) -> str:
    """Model + endpoint config (capturing to ``s3://<bucket>/capture``) + endpoint, from endpoint_request."""
    tag = uuid.uuid4().hex[:8]
    key = f"models/churn/job-{tag}/output/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=package_source_dir(model_dir))
    request = endpoint_request(
        model_name=f"model-{tag}",
        endpoint_config_name=f"config-{tag}",
        endpoint_name=f"churn-{tag}",
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        model_data_url=f"s3://{bucket}/{key}",
        instance_type="ml.m5.large",
        data_capture_uri=f"s3://{bucket}/capture",
        data_capture_percentage=percentage,
    )
    sagemaker = boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)
    register_version(sagemaker, SKLEARN_IMAGE_URI, f"s3://{bucket}/{key}")  # served: approved
    sagemaker.create_model(**request["Model"])
    sagemaker.create_endpoint_config(**request["EndpointConfig"])
    sagemaker.create_endpoint(**request["Endpoint"])
    return request["Endpoint"]["EndpointName"]


def captured(s3, bucket: str) -> dict[str, list[dict]]:
    """Capture files under ``capture/``: key → records."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="capture/").get("Contents", [])]
    return {
        key: [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]
        for key in keys
    }


def test_invocations_are_captured_in_sagemakers_format(aws_env, s3, bucket, server, model_dir) -> None:
    endpoint = deploy(aws_env, s3, bucket, model_dir, percentage=100)
    runtime = runtime_for(server)
    frame = synthetic_features(3, 21)
    features = frame.drop(columns=["customer_id", "churned"])
    hours = {datetime.now(UTC).strftime("%Y/%m/%d/%H")}
    sent: list[tuple[str, str, str]] = []  # (content type, request, answer)
    for i in range(3):
        body = json.dumps({"instances": features.iloc[[i]].to_dict(orient="records")})
        answer = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Accept="application/json", Body=body
        )
        sent.append(("application/json", body, answer["Body"].read().decode()))

    # flushed every few seconds while the server runs
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(map(len, captured(s3, bucket).values())) < 3:
        time.sleep(0.5)
    assert sum(map(len, captured(s3, bucket).values())) == 3

    csv_body = features.to_csv(header=False, index=False)
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=csv_body
    )
    sent.append(("text/csv", csv_body, answer["Body"].read().decode()))
    server.shutdown()  # flushes what is buffered
    hours.add(datetime.now(UTC).strftime("%Y/%m/%d/%H"))

    files = captured(s3, bucket)
    records = [record for key in sorted(files) for record in files[key]]
    for key in files:
        match = KEY.match(key)
        assert match, key
        assert (match["endpoint"], match["variant"]) == (endpoint, "primary")
        assert "/".join(match.groups()[2:]) in hours
    assert len(records) == len(sent)
    by_input = {r["captureData"]["endpointInput"]["data"]: r for r in records}
    for content_type, body, answer in sent:
        record = by_input[body]
        encoding = "CSV" if content_type == "text/csv" else "JSON"
        assert record["captureData"]["endpointInput"] == {
            "observedContentType": content_type,
            "mode": "INPUT",
            "data": body,
            "encoding": encoding,
        }
        assert record["captureData"]["endpointOutput"] == {
            "observedContentType": content_type,
            "mode": "OUTPUT",
            "data": answer,
            "encoding": encoding,
        }
        assert record["eventVersion"] == "0"
        assert datetime.strptime(record["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert len({r["eventMetadata"]["eventId"] for r in records}) == len(records)
    # what was captured is what the model answered
    served = [p["churn_probability"] for s in sent[:3] for p in json.loads(s[2])["predictions"]]
    assert served == local_probabilities(model_dir, frame)


def test_sampling_zero_captures_nothing(aws_env, s3, bucket, server, model_dir) -> None:
    endpoint = deploy(aws_env, s3, bucket, model_dir, percentage=0)
    runtime = runtime_for(server)
    body = json.dumps(
        {"instances": synthetic_features(1, 3).drop(columns=["customer_id", "churned"]).to_dict("records")}
    )
    for _ in range(5):
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=body)
    server.shutdown()
    assert captured(s3, bucket) == {}
