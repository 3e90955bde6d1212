"""SageMaker: training that runs locally for real, idempotent registration, policy approval, deployment."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerRegisterModelVersionOperator,
    SageMakerTrainingOperator,
)
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.config.target import is_local
from sagelake.ml.approval import Decision, decide, metrics_from_metadata
from sagelake.ml.naming import unique_name

if TYPE_CHECKING:
    from airflow.sdk import Context

# What SageMaker (and moto, hence the local control plane) answers a Describe* call for an unknown name.
NOT_FOUND_CODE = "ValidationException"
APPROVAL_DESCRIPTION_MAX_LEN = 1024  # UpdateModelPackage's ApprovalDescription limit


class JobNameTakenError(AirflowFailException):
    """A training job of that name exists and ``action_if_job_exists="fail"`` forbids picking another."""


def _exists(describe: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Whether the SageMaker ``describe_*`` call ``describe(*args, **kwargs)`` finds its resource."""
    try:
        describe(*args, **kwargs)
    except ClientError as error:
        if has_code(error, NOT_FOUND_CODE):
            return False
        raise
    return True


def training_job_name(base: str, describe: Callable[[str], Any], *, fail_if_exists: bool) -> str:
    """The name to create training job ``base`` under: ``base`` if free, else ``base-r2``, ``base-r3``…

    ``describe(name)`` is ``DescribeTrainingJob``. With ``fail_if_exists`` a taken ``base`` raises
    :class:`JobNameTakenError` instead (SageMaker job names can never be reused).
    """

    def taken(name: str) -> bool:
        return _exists(describe, name)

    if not fail_if_exists:
        return unique_name(base, taken)
    if taken(base):
        raise JobNameTakenError(
            f"A SageMaker training job named {base!r} already exists and action_if_job_exists='fail'"
        )
    return base


class SagelakeTrainingOperator(SageMakerTrainingOperator):
    """The provider's ``SageMakerTrainingOperator``; locally the training script really runs.

    Extends :class:`airflow.providers.amazon.aws.operators.sagemaker.SageMakerTrainingOperator` and adds no
    argument. On the ``aws`` target it is the provider's operator unchanged (deferrable as usual).

    On the ``local`` target the same CreateTrainingJob request is executed synchronously by
    :func:`sagelake.local.training_runner.run_training_job` (SageMaker's container contract in a
    subprocess, artefacts uploaded where SageMaker puts them), then recorded in the control plane so
    ``DescribeTrainingJob`` answers as on AWS; ``deferrable`` and ``wait_for_completion`` have no effect.
    A job name already taken (a retry) becomes ``<name>-r2``, ``-r3``… (:func:`training_job_name`) where
    the provider appends a timestamp; with ``action_if_job_exists="fail"`` it raises, like the provider, but
    as a non-retryable failure; with ``check_if_job_exists=False`` the name is used as given.
    """

    def execute(self, context: Context) -> dict[str, dict]:
        if not is_local():
            return super().execute(context)
        from sagelake.local.training_runner import run_training_job

        self.preprocess_config()
        if self.check_if_job_exists:
            self.config["TrainingJobName"] = training_job_name(
                self.config["TrainingJobName"],
                self.hook.describe_training_job,
                fail_if_exists=self.action_if_job_exists == "fail",
            )
        name = self.config["TrainingJobName"]
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        with tempfile.TemporaryDirectory(prefix="sagelake-train-") as work:
            result = run_training_job(self.config, s3, Path(work))
        for metric, value in result.metrics.items():
            self.log.info("metric %s=%s", metric, value)
        # Record only: nothing runs any more, and there are no CloudWatch logs to tail locally (the hook's
        # default print_log=True would sleep check_interval, 30 s, then read an empty log group).
        self.hook.create_training_job(self.config, wait_for_completion=False, print_log=False)
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
        if has_code(error, "ValidationException", "ResourceNotFound"):  # no such group yet
            return None
        raise
    return None


class RegisterModelVersionOperator(SageMakerRegisterModelVersionOperator):
    """The provider's registration, made idempotent.

    Extends :class:`airflow.providers.amazon.aws.operators.sagemaker.SageMakerRegisterModelVersionOperator`:
    a retry returns the version already registered for the same ``model_url`` (:func:`find_model_package`)
    instead of registering a duplicate. Identical on both targets (a control-plane operation).

    :param extras: extra ``CreateModelPackage`` fields (metrics, ``CustomerMetadataProperties``…), as in the
        provider. (templated)
    """

    template_fields: Sequence[str] = aws_template_fields(
        *SageMakerRegisterModelVersionOperator.template_fields, "extras"
    )
    template_fields_renderers = {"extras": "json"}

    def execute(self, context: Context) -> str:
        existing = find_model_package(self.hook.conn, self.package_group_name, self.model_url)
        if existing:
            self.log.info("Model %s is already registered as %s", self.model_url, existing)
            return existing
        return super().execute(context)


def apply_approval_policy(
    client: Any, model_package_arn: str, *, metric: str, minimum: float
) -> tuple[Decision, dict[str, float]]:
    """Decide on a package version from the metrics stored at registration, and record the decision.

    The metrics are the package's ``CustomerMetadataProperties`` ``metric_*`` entries; the version is set
    ``Approved`` or ``Rejected`` with the reason (see :func:`sagelake.ml.approval.decide`).
    """
    package = client.describe_model_package(ModelPackageName=model_package_arn)
    metrics = metrics_from_metadata(package.get("CustomerMetadataProperties", {}))
    decision = decide(metrics, metric=metric, minimum=minimum)
    client.update_model_package(
        ModelPackageArn=model_package_arn,
        ModelApprovalStatus=decision.status,
        ApprovalDescription=decision.reason[:APPROVAL_DESCRIPTION_MAX_LEN],
    )
    return decision, metrics


class ModelApprovalOperator(AwsBaseOperator[SageMakerHook]):
    """Approve or reject a model package version by policy (its evaluation metric against a minimum).

    Not a provider operator: an ``AwsBaseOperator`` on the provider's ``SageMakerHook``, identical on both
    targets. The metrics are read from the package's ``CustomerMetadataProperties`` (written at
    registration). A rejected version is marked ``Rejected`` with the reason and the task is skipped, so
    downstream deployment is skipped too. Returns the decision for an approved version.

    :param model_package_arn: ARN of the model package version to decide on. (templated)
    :param minimum: the lowest acceptable value of ``metric``; a string is converted to a float; None (the
        default): the approval policy's floor from deployment configuration — the Airflow Variable
        ``sagelake_approval_policy``, else ``SAGELAKE_APPROVAL_FLOOR`` / ``SAGELAKE_MIN_AUC`` — never a
        value a run's trigger can choose. (templated)
    :param metric: name of the evaluation metric the policy reads (``metric_<name>`` in the metadata).
        (templated)
    """

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = aws_template_fields("model_package_arn", "metric", "minimum")

    def __init__(
        self,
        *,
        model_package_arn: str,
        minimum: float | str | None = None,
        metric: str = "auc",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_package_arn = model_package_arn
        self.metric = metric
        self.minimum = minimum

    def execute(self, context: Context) -> dict[str, Any]:
        if self.minimum is None:
            from sagelake.ml.policy import policy_from_airflow

            minimum = policy_from_airflow().floor
        else:
            minimum = float(self.minimum)
        decision, metrics = apply_approval_policy(
            self.hook.conn, self.model_package_arn, metric=self.metric, minimum=minimum
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


def drop_existing_resources(config: dict[str, Any], client: Any) -> list[str]:
    """Remove from an endpoint ``config`` the ``Model`` / ``EndpointConfig`` that exist already.

    A previous attempt may have created them before failing; SageMaker refuses to create them twice, and
    they are immutable, so the existing ones are reused. Returns the names removed.
    """
    reused = []
    for key, name_key, describe in (
        ("Model", "ModelName", client.describe_model),
        ("EndpointConfig", "EndpointConfigName", client.describe_endpoint_config),
    ):
        if key in config and _exists(describe, **{name_key: config[key][name_key]}):
            reused.append(config.pop(key)[name_key])
    return reused


class DeployEndpointOperator(SageMakerEndpointOperator):
    """The provider's create-or-update endpoint deployment, safe to retry.

    Extends :class:`airflow.providers.amazon.aws.operators.sagemaker.SageMakerEndpointOperator` and adds no
    argument: a ``Model`` or ``EndpointConfig`` of ``config`` that a previous attempt already created is
    reused, not created again (:func:`drop_existing_resources`). Identical on both targets, deferrable on
    both (the local control plane reports the endpoint ``InService`` at once).
    """

    def execute(self, context: Context) -> dict[str, dict]:
        for name in drop_existing_resources(self.config, self.hook.conn):
            self.log.info("%s exists already; reusing it", name)
        return super().execute(context)
