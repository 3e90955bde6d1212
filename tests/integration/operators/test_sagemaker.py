"""sagelake's SageMaker operators against the local control plane: registration is idempotent, the
approval policy approves or rejects (and skips deployment), deployment creates then updates, retry-safe."""

from __future__ import annotations

import boto3
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from devstack.stack import aws_connection
from sagelake.ml.aws_requests import endpoint_request
from sagelake.operators.sagemaker import (
    DeployEndpointOperator,
    ModelApprovalOperator,
    RegisterModelVersionOperator,
)
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN


@pytest.fixture()
def sagemaker(aws_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)


def register(group: str, model_url: str, auc: float) -> str:
    op = RegisterModelVersionOperator(
        task_id="register",
        image_uri="img",
        model_url=model_url,
        package_group_name=group,
        extras={"CustomerMetadataProperties": {"metric_auc": str(auc)}},
    )
    return op.execute({})


def test_registration_is_idempotent_per_model_artefact(sagemaker, bucket) -> None:
    group = f"g-{bucket}"
    first = register(group, f"s3://{bucket}/a/model.tar.gz", 0.9)
    assert register(group, f"s3://{bucket}/a/model.tar.gz", 0.9) == first  # a retry
    second = register(group, f"s3://{bucket}/b/model.tar.gz", 0.9)
    assert second != first
    listed = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert sorted(p["ModelPackageArn"] for p in listed) == sorted([first, second])


def test_policy_approves_or_rejects_and_skips_deployment(sagemaker, bucket) -> None:
    group = f"g-{bucket}"
    good = register(group, f"s3://{bucket}/good/model.tar.gz", 0.81)
    bad = register(group, f"s3://{bucket}/bad/model.tar.gz", 0.62)

    result = ModelApprovalOperator(task_id="approve", model_package_arn=good, minimum="0.75").execute({})
    assert result["status"] == "Approved" and result["metrics"] == {"auc": 0.81}
    with pytest.raises(AirflowSkipException, match="auc=0.6200 < 0.7500"):
        ModelApprovalOperator(task_id="approve", model_package_arn=bad, minimum=0.75).execute({})
    statuses = {
        arn: sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]
        for arn in (good, bad)
    }
    assert statuses == {good: "Approved", bad: "Rejected"}


def deploy(bucket: str, name: str) -> dict:
    config = endpoint_request(
        model_name=name,
        endpoint_config_name=name,
        endpoint_name=f"ep-{bucket}",
        role=SAGEMAKER_ROLE_ARN,
        image_uri="img",
        model_data_url=f"s3://{bucket}/{name}/model.tar.gz",
        instance_type="ml.m5.large",
    )
    op = DeployEndpointOperator(task_id="deploy", config=config, operation="create", check_interval=1)
    return op.execute({})


def test_deploy_creates_then_updates_and_survives_retries(sagemaker, bucket) -> None:
    first = deploy(bucket, f"m1-{bucket}")
    assert first["Endpoint"]["EndpointConfigName"] == f"m1-{bucket}"
    assert deploy(bucket, f"m1-{bucket}")["Endpoint"]["EndpointConfigName"] == f"m1-{bucket}"  # a retry

    second = deploy(bucket, f"m2-{bucket}")  # a new model: the endpoint is updated in place
    assert second["Endpoint"]["EndpointConfigName"] == f"m2-{bucket}"
    endpoint = sagemaker.describe_endpoint(EndpointName=f"ep-{bucket}")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == f"m2-{bucket}"
