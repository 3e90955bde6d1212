"""The local control plane's SageMaker extensions behave like AWS for create/update endpoint."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.constants import SAGEMAKER_ROLE_ARN


@pytest.fixture()
def sagemaker(aws_env):
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name="us-east-1")


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
