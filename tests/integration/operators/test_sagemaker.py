"""sagelake's SageMaker operators against the local control plane: registration is idempotent, the
approval policy approves, rejects or asks from the evaluation report and the catalog, deployment creates
then updates, retry-safe."""

from __future__ import annotations

import json

import boto3
import pytest

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


def decision_setup(s3, aws_env: str, bucket: str, report: dict, days: list[str]) -> tuple[str, str]:
    """A published table with ``days``, a report under the bucket and a package; (report URI, database)."""
    from sagelake.lake import catalog
    from sagelake.lake.layout import Lake
    from tests.support.lake_days import features, publish_day

    glue = boto3.client("glue", endpoint_url=aws_env, region_name=REGION)
    database, lake = f"db_{bucket.replace('-', '_')}", Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    for seed, dt in enumerate(days, start=1):
        publish_day(s3, glue, database, lake, dt, features(20, seed))
    s3.put_object(Bucket=bucket, Key="metrics/evaluation/job/metrics.json", Body=json.dumps(report).encode())
    return f"s3://{bucket}/metrics/evaluation/job/", database


@pytest.mark.parametrize(
    ("challenger_auc", "dt", "outcome", "status"),
    [
        (0.81, "2026-11-21", "approve", "Approved"),
        (0.62, "2026-11-21", "reject", "Rejected"),
        (0.81, "2026-11-20", "ask", "PendingManualApproval"),  # a backfill of an older day
    ],
)
def test_the_policy_decides_from_the_report_and_the_catalog(
    sagemaker, s3, aws_env, bucket, monkeypatch, challenger_auc, dt, outcome, status
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_SAGELAKE_APPROVAL_POLICY", json.dumps({"floor": 0.75}))
    report = {"models": {"challenger": {"auc": challenger_auc, "log_loss": 0.4, "recall": 0.5}}}
    report_uri, database = decision_setup(s3, aws_env, bucket, report, ["2026-11-20", "2026-11-21"])
    arn = register(f"g-{bucket}", f"s3://{bucket}/m/model.tar.gz", challenger_auc)

    result = ModelApprovalOperator(
        task_id="decide",
        model_package_arn=arn,
        report_uri=report_uri,
        dt=dt,
        database=database,
        endpoint_name=f"none-{bucket}",  # no production endpoint yet: no champion
    ).execute({})
    assert result["outcome"] == outcome
    assert result["challenger"]["auc"] == challenger_auc and result["champion"] is None
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == status
    assert package["ApprovalDescription"].startswith(f"policy {outcome}: ")


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


def test_deploy_creates_then_updates_and_survives_retries(sagemaker, bucket, monkeypatch) -> None:
    # the aws branch on the control plane: no endpoint server to wait for (tests/integration/ml/
    # test_deployment.py deploys to a real one)
    monkeypatch.setenv("SAGELAKE_TARGET", "aws")
    first = deploy(bucket, f"m1-{bucket}")
    assert first["Endpoint"]["EndpointConfigName"] == f"m1-{bucket}"
    assert deploy(bucket, f"m1-{bucket}")["Endpoint"]["EndpointConfigName"] == f"m1-{bucket}"  # a retry

    second = deploy(bucket, f"m2-{bucket}")  # a new model: the endpoint is updated in place
    assert second["Endpoint"]["EndpointConfigName"] == f"m2-{bucket}"
    endpoint = sagemaker.describe_endpoint(EndpointName=f"ep-{bucket}")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == f"m2-{bucket}"
