"""SageMaker: training that runs locally for real, idempotent registration, policy approval, deployment."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerRegisterModelVersionOperator,
    SageMakerTrainingOperator,
)
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowSkipException
from botocore.exceptions import ClientError

from sagelake.config.target import is_local
from sagelake.ml.approval import decide, metrics_from_metadata


class SagelakeTrainingOperator(SageMakerTrainingOperator):
    """The provider's ``SageMakerTrainingOperator``; locally the training script really runs.

    On the local target the same CreateTrainingJob request is executed by
    :func:`sagelake.local.training_runner.run_training_job` (SageMaker's container contract in a
    subprocess, artefacts uploaded where SageMaker puts them), then recorded in the control plane so
    ``DescribeTrainingJob`` answers as on AWS.
    """

    def execute(self, context: Any) -> dict:
        if not is_local():
            return super().execute(context)
        from sagelake.local.training_runner import run_training_job

        self.preprocess_config()
        name = self._get_unique_job_name(
            self.config["TrainingJobName"],
            self.action_if_job_exists == "fail",
            self.hook.describe_training_job,
        )
        self.config["TrainingJobName"] = name
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        with tempfile.TemporaryDirectory(prefix="sagelake-train-") as work:
            result = run_training_job(self.config, s3, Path(work))
        for metric, value in result.metrics.items():
            self.log.info("metric %s=%s", metric, value)
        self.hook.create_training_job(self.config, wait_for_completion=False)
        return self.serialize_result(name)


def find_model_package(client: Any, group: str, model_url: str) -> str | None:
    """ARN of the package in ``group`` whose model artefact is ``model_url``, if one was registered."""
    try:
        pages = client.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
        for page in pages:
            for summary in page.get("ModelPackageSummaryList", []):
                arn = summary["ModelPackageArn"]
                described = client.describe_model_package(ModelPackageName=arn)
                containers = described.get("InferenceSpecification", {}).get("Containers", [])
                if any(c.get("ModelDataUrl") == model_url for c in containers):
                    return arn
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None
        raise
    return None


class RegisterModelVersionOperator(SageMakerRegisterModelVersionOperator):
    """The provider's registration, made idempotent: a retry returns the version already registered
    for the same model artefact instead of registering a duplicate. ``extras`` is templated."""

    template_fields: Sequence[str] = (*SageMakerRegisterModelVersionOperator.template_fields, "extras")

    def execute(self, context: Any) -> str:
        existing = find_model_package(self.hook.conn, self.package_group_name, self.model_url)
        if existing:
            self.log.info("Model %s is already registered as %s", self.model_url, existing)
            return existing
        return super().execute(context)


class ModelApprovalOperator(AwsBaseOperator[SageMakerHook]):
    """Approve or reject a model package version by policy (its evaluation metric against a minimum).

    The metrics are read from the package's ``CustomerMetadataProperties`` (written at registration).
    A rejected version is marked ``Rejected`` with the reason, and downstream deployment is skipped.
    """

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = aws_template_fields("model_package_arn", "metric", "minimum")

    def __init__(self, *, model_package_arn: str, minimum: float | str, metric: str = "auc", **kwargs: Any):
        super().__init__(**kwargs)
        self.model_package_arn = model_package_arn
        self.metric = metric
        self.minimum = minimum

    def execute(self, context: Any) -> dict[str, Any]:
        conn = self.hook.conn
        package = conn.describe_model_package(ModelPackageName=self.model_package_arn)
        metrics = metrics_from_metadata(package.get("CustomerMetadataProperties", {}))
        decision = decide(metrics, metric=self.metric, minimum=float(self.minimum))
        conn.update_model_package(
            ModelPackageArn=self.model_package_arn,
            ModelApprovalStatus=decision.status,
            ApprovalDescription=decision.reason[:1024],
        )
        self.log.info("%s: %s (%s)", self.model_package_arn, decision.status, decision.reason)
        if not decision.approved:
            raise AirflowSkipException(f"model {self.model_package_arn} rejected: {decision.reason}")
        return {
            "model_package_arn": self.model_package_arn,
            "status": decision.status,
            "reason": decision.reason,
            "metrics": metrics,
        }


class DeployEndpointOperator(SageMakerEndpointOperator):
    """The provider's create-or-update endpoint deployment, safe to retry.

    A Model or EndpointConfig that a previous attempt already created is reused, not created again.
    """

    def execute(self, context: Any) -> dict:
        conn = self.hook.conn
        for key, name_key, describe in (
            ("Model", "ModelName", conn.describe_model),
            ("EndpointConfig", "EndpointConfigName", conn.describe_endpoint_config),
        ):
            if key in self.config and _exists(describe, **{name_key: self.config[key][name_key]}):
                self.log.info("%s %s exists already; reusing it", key, self.config[key][name_key])
                self.config.pop(key)
        return super().execute(context)


def _exists(describe: Any, **kwargs: str) -> bool:
    try:
        describe(**kwargs)
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ValidationException", "ValidationError"):
            return False
        raise
