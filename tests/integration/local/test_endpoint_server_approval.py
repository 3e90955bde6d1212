"""The endpoint server serves only approved models: an endpoint whose model artefact belongs to no Approved
model package version is refused (ValidationError naming the versions' status; nothing of the artefact is
downloaded or imported), and an approval or its withdrawal is seen within a few resolution refreshes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sagelake.local.endpoint_server import serve
from sagelake.ml.artifacts import package_source_dir
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.serving import put, register_version

# Writes a marker file when imported: proof that a refused model's code never ran.
INFERENCE = """
import pathlib
pathlib.Path(__file__).with_name("IMPORTED").write_text("imported")

def model_fn(model_dir):
    return "ok"

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return model

def output_fn(prediction, accept):
    return prediction, "text/plain"
"""


@pytest.fixture()
def sagemaker(aws_env: str):
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def server(aws_env: str, tmp_path: Path) -> Iterator:
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION, framework_envs=False, resolve_ttl=0.2)
    yield server
    server.shutdown()


@pytest.fixture()
def runtime(server):
    host, port = server.server_address[:2]
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=f"http://{host}:{port}",
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
    )


def model_url(s3, bucket: str, tmp_path: Path) -> str:
    model_dir = tmp_path / f"model-{uuid.uuid4().hex[:6]}"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "inference.py").write_text(INFERENCE)
    return put(s3, bucket, f"models/{model_dir.name}/model.tar.gz", package_source_dir(model_dir))


def endpoint_for(sagemaker, url: str) -> str:
    tag = uuid.uuid4().hex[:8]
    container = {"Image": SKLEARN_IMAGE_URI, "ModelDataUrl": url}
    sagemaker.create_model(
        ModelName=f"m-{tag}", ExecutionRoleArn=SAGEMAKER_ROLE_ARN, PrimaryContainer=container
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": f"m-{tag}",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sagemaker.create_endpoint_config(EndpointConfigName=f"c-{tag}", ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=f"e-{tag}", EndpointConfigName=f"c-{tag}")
    return f"e-{tag}"


def invoke(runtime, endpoint: str) -> bytes:
    return runtime.invoke_endpoint(EndpointName=endpoint, Body=b"x", ContentType="text/plain")["Body"].read()


def refusal(runtime, endpoint: str) -> ClientError:
    with pytest.raises(ClientError) as caught:
        invoke(runtime, endpoint)
    return caught.value


def eventually(check, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except (AssertionError, ClientError, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def nothing_loaded(server) -> bool:
    """No model archive was extracted (so no inference code could be imported)."""
    return not any(server.models.cache_dir.iterdir()) if server.models.cache_dir.exists() else True


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_a_model_of_an_unapproved_package_version_is_refused(
    sagemaker, s3, bucket: str, tmp_path: Path, server, runtime, status: str
) -> None:
    url = model_url(s3, bucket, tmp_path)
    arn = register_version(sagemaker, SKLEARN_IMAGE_URI, url, status)
    endpoint = endpoint_for(sagemaker, url)

    error = refusal(runtime, endpoint)
    assert error.response["Error"]["Code"] == "ValidationError"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = error.response["Error"]["Message"]
    assert url in message and f"{arn} is {status}" in message and "Approved" in message
    assert nothing_loaded(server)


def test_a_model_no_package_registers_is_refused(sagemaker, s3, bucket: str, tmp_path: Path, server, runtime):
    url = model_url(s3, bucket, tmp_path)
    error = refusal(runtime, endpoint_for(sagemaker, url))
    assert "no model package version registers it" in error.response["Error"]["Message"]
    assert nothing_loaded(server)


def test_an_approved_model_is_served_and_approval_changes_are_seen(
    sagemaker, s3, bucket: str, tmp_path: Path, server, runtime
) -> None:
    url = model_url(s3, bucket, tmp_path)
    arn = register_version(sagemaker, SKLEARN_IMAGE_URI, url, "PendingManualApproval")
    endpoint = endpoint_for(sagemaker, url)
    assert "PendingManualApproval" in refusal(runtime, endpoint).response["Error"]["Message"]

    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    assert eventually(lambda: invoke(runtime, endpoint)) == b"ok"

    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    assert "Rejected" in eventually(lambda: refusal(runtime, endpoint)).response["Error"]["Message"]


def test_one_approved_version_of_the_artefact_is_enough(
    sagemaker, s3, bucket: str, tmp_path: Path, server, runtime
) -> None:
    url = model_url(s3, bucket, tmp_path)
    register_version(sagemaker, SKLEARN_IMAGE_URI, url, "Rejected")
    register_version(sagemaker, SKLEARN_IMAGE_URI, url, "Approved")
    assert invoke(runtime, endpoint_for(sagemaker, url)) == b"ok"
