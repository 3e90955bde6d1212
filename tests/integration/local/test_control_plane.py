"""The local control plane's extensions behave like AWS: create/update endpoint, atomic conditional writes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN


@pytest.fixture()
def sagemaker(aws_env):
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)


def make_config(client, name: str) -> None:
    client.create_model(
        ModelName=name,
        ExecutionRoleArn=SAGEMAKER_ROLE_ARN,
        PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://b/{name}/model.tar.gz"},
    )
    client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )


def test_create_existing_endpoint_fails_like_aws_and_update_switches_config(sagemaker) -> None:
    make_config(sagemaker, "cp-a")
    make_config(sagemaker, "cp-b")
    sagemaker.create_endpoint(EndpointName="cp-ep", EndpointConfigName="cp-a")
    with pytest.raises(ClientError, match="Cannot create already existing endpoint"):
        sagemaker.create_endpoint(EndpointName="cp-ep", EndpointConfigName="cp-b")
    assert sagemaker.describe_endpoint(EndpointName="cp-ep")["EndpointConfigName"] == "cp-a"

    sagemaker.update_endpoint(EndpointName="cp-ep", EndpointConfigName="cp-b")
    described = sagemaker.describe_endpoint(EndpointName="cp-ep")
    assert described["EndpointConfigName"] == "cp-b"
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["VariantName"] == "primary"


def test_update_of_unknown_endpoint_or_config_is_a_validation_error(sagemaker) -> None:
    with pytest.raises(ClientError, match="Could not find endpoint"):
        sagemaker.update_endpoint(EndpointName="nope", EndpointConfigName="cp-a")
    make_config(sagemaker, "cp-c")
    sagemaker.create_endpoint(EndpointName="cp-ep2", EndpointConfigName="cp-c")
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sagemaker.update_endpoint(EndpointName="cp-ep2", EndpointConfigName="missing")


def test_conditional_creates_are_atomic_even_when_a_write_is_slow(aws_env, bucket, monkeypatch) -> None:
    """If-None-Match: * lets exactly one of many concurrent writers create a key (moto checks, then writes:
    without the extension's serialisation a slow write lets several pass the check)."""
    from moto.s3.models import S3Backend

    original = S3Backend.put_object

    def slow_put(self, *args, **kwargs):
        time.sleep(0.05)  # widen the window between moto's check and its write
        return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", slow_put)
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name=REGION)

    def create(writer: int) -> bool:
        try:
            s3.put_object(Bucket=bucket, Key="lock", Body=str(writer).encode(), IfNoneMatch="*")
            return True
        except ClientError as error:
            assert error.response["Error"]["Code"] == "PreconditionFailed"
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(create, range(8)))
    assert created.count(True) == 1
    winner = created.index(True)
    assert s3.get_object(Bucket=bucket, Key="lock")["Body"].read() == str(winner).encode()


def test_an_approval_keeps_the_versions_metadata_as_aws_does(sagemaker) -> None:
    import uuid

    group = f"g-{uuid.uuid4().hex[:8]}"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"dt": "2026-11-26", "mlflow_run_id": "r1"},
    )["ModelPackageArn"]
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"reviewer": "ana"})
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == {
        "dt": "2026-11-26",
        "mlflow_run_id": "r1",
        "reviewer": "ana",
    }
