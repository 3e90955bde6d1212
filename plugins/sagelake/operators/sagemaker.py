"""SageMaker: training that runs locally for real, idempotent registration, policy approval, deployment."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerRegisterModelVersionOperator,
    SageMakerTrainingOperator,
)
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.config.params import param
from sagelake.config.target import is_local
from sagelake.ml.approval import (
    APPROVED,
    REJECTED,
    STATUS,
    models_from_report,
    person_description,
    policy_description,
    record,
)
from sagelake.ml.naming import free_name
from sagelake.ml.policy import ASK, REJECT, Decision, Policy, decide, limit_to_newest

if TYPE_CHECKING:
    from airflow.sdk import Context

# What SageMaker (and moto, hence the local control plane) answers a Describe* call for an unknown name.
NOT_FOUND_CODE = "ValidationException"


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
    """The name to create training job ``base`` under: ``base`` if free, else ``base-r2``, ``base-r3``… (or
    :class:`JobNameTakenError`); ``describe(name)`` is ``DescribeTrainingJob``."""
    return free_name(
        base, describe, fail_if_exists=fail_if_exists, kind="training job", error=JobNameTakenError
    )


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


def decide_by_policy(
    sagemaker: Any,
    package_arn: str,
    report: dict[str, Any],
    *,
    dt: str,
    newest_published_dt: str | None,
    policy: Policy,
    serving_model: str | None = None,
) -> Decision:
    """The policy's decision on a package version from its evaluation report, written to the registry.

    :func:`sagelake.ml.policy.decide` on the report's challenger and champion, limited to the newest
    published partition (:func:`sagelake.ml.policy.limit_to_newest`); the version becomes ``Approved``
    or ``Rejected``, or stays ``PendingManualApproval`` when a person must decide. ``serving_model``: the
    model production serves; when the report did not score it (no container runs both kinds of model),
    nothing compares the two and a person decides.
    """
    challenger, champion = models_from_report(report)
    if serving_model and champion is None:
        decision = decide(challenger, {}, policy)  # a champion without metrics: never approved
        if decision.outcome != REJECT:
            unscored = f"production serves {serving_model}, which the evaluation did not score: compare"
            decision = Decision(ASK, [f"{unscored} the two models' reports"])
    else:
        decision = decide(challenger, champion, policy)
    decision = limit_to_newest(decision, dt, newest_published_dt)
    record(sagemaker, package_arn, STATUS[decision.outcome], policy_description(decision))
    return decision


class ModelApprovalOperator(AwsBaseOperator[SageMakerHook]):
    """Approve, reject or ask a person about a model package version, by the approval policy.

    Not a provider operator: an ``AwsBaseOperator`` on the provider's ``SageMakerHook``, identical on both
    targets. Reads the evaluation report (challenger and champion scored on the same held-out rows), applies
    the deployment's policy (:func:`sagelake.ml.policy.policy_from_airflow`: the Airflow Variable
    ``sagelake_approval_policy`` over ``SAGELAKE_APPROVAL_*``, never run params) and the newest-partition
    rule, and records the outcome in the registry (:func:`decide_by_policy`). Returns
    ``{"outcome": "approve"|"reject"|"ask", "reasons", "model_package_arn", "challenger", "champion"}``;
    the DAG routes on ``outcome``.

    :param model_package_arn: ARN of the model package version to decide on. (templated)
    :param report_uri: S3 folder of the evaluation report (its ``metrics.json``). (templated)
    :param dt: the partition the run trained for. (templated)
    :param database: Glue database whose ``table`` partitions say which day is the newest published.
        (templated)
    :param endpoint_name: the production endpoint; the model it serves is the champion the report must
        have scored, else a person decides. (templated)
    :param table: the curated table the model trains on.
    """

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = aws_template_fields(
        "model_package_arn", "report_uri", "dt", "database", "endpoint_name"
    )

    def __init__(
        self,
        *,
        model_package_arn: str,
        report_uri: str,
        dt: str,
        database: str,
        endpoint_name: str,
        table: str = "churn_features",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_package_arn = model_package_arn
        self.report_uri = report_uri
        self.dt = dt
        self.database = database
        self.endpoint_name = endpoint_name
        self.table = table

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

        from sagelake.lake.publish import published_partitions
        from sagelake.ml.evaluation import read_report
        from sagelake.ml.policy import policy_from_airflow
        from sagelake.ml.serving import serving_model

        policy = policy_from_airflow()
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        glue = GlueCatalogHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        report = read_report(s3, self.report_uri)
        newest = max(published_partitions(glue, self.database, self.table), default=None)
        serving = serving_model(self.hook.conn, self.endpoint_name)
        decision = decide_by_policy(
            self.hook.conn,
            self.model_package_arn,
            report,
            dt=self.dt,
            newest_published_dt=newest,
            policy=policy,
            serving_model=serving.model_url if serving else None,
        )
        self.log.info("%s: %s", self.model_package_arn, decision.summary())
        challenger, champion = models_from_report(report)
        return {
            "outcome": decision.outcome,
            "reasons": decision.reasons,
            "model_package_arn": self.model_package_arn,
            "challenger": challenger,
            "champion": champion,
        }


class PersonApprovalOperator(ApprovalOperator):
    """The standard provider's human-in-the-loop ``ApprovalOperator``, writing the answer to the registry.

    Extends :class:`airflow.providers.standard.operators.hitl.ApprovalOperator`: the request appears on the
    Airflow UI's Required Actions page with a ``reason`` field; when the answer (or, after
    ``response_timeout``, the default: ``Reject``) arrives, the package version becomes ``Approved`` or
    ``Rejected`` with who answered and why (:func:`sagelake.ml.approval.person_description`), then
    ``Reject`` skips the deployment as the provider's operator does.

    :param model_package_arn: ARN of the model package version the person decides on. (templated)
    :param aws_conn_id: the AWS connection of the registry.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "model_package_arn")
    template_fields_renderers = {"body": "md"}

    def __init__(
        self, *, model_package_arn: str, aws_conn_id: str | None = "aws_default", **kwargs: Any
    ) -> None:
        kwargs.setdefault("defaults", ApprovalOperator.REJECT)
        kwargs.setdefault(
            "params", {"reason": param("", type="string", description="Why: written to the model registry.")}
        )
        super().__init__(**kwargs)
        self.model_package_arn = model_package_arn
        self.aws_conn_id = aws_conn_id

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if "error" not in event:
            chosen = (event.get("chosen_options") or [self.REJECT])[0]
            reason = (event.get("params_input") or {}).get("reason")
            description = person_description(
                chosen, event.get("responded_by_user"), reason, timed_out=bool(event.get("timedout"))
            )
            status = APPROVED if chosen == self.APPROVE and not event.get("timedout") else REJECTED
            record(
                SageMakerHook(aws_conn_id=self.aws_conn_id).conn, self.model_package_arn, status, description
            )
            self.log.info("%s: %s (%s)", self.model_package_arn, status, description)
        return super().execute_complete(context, event)


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
    """The provider's create-or-update endpoint deployment, safe to retry, verified and reversible.

    Extends :class:`airflow.providers.amazon.aws.operators.sagemaker.SageMakerEndpointOperator` and adds no
    argument: a ``Model`` or ``EndpointConfig`` of ``config`` that a previous attempt already created is
    reused, not created again (:func:`drop_existing_resources`); a new endpoint config is tagged with the
    config the endpoint serves now (what a failed smoke test rolls back to); variants registered for
    autoscaling that the update would move to another instance type are deregistered first; once the
    endpoint is in service, it must serve the new config: SageMaker's automatic rollback (the
    ``DeploymentConfig`` alarms fired) fails the task, without retries. Identical on both targets, but
    the local branch does not defer (the control plane reports ``InService`` at once); it waits instead
    until the endpoint server has loaded the new model and routes to it.
    """

    def execute(self, context: Context) -> dict[str, dict]:
        from sagelake.ml.deployment import live_config, tag_previous

        for name in drop_existing_resources(self.config, self.hook.conn):
            self.log.info("%s exists already; reusing it", name)
        endpoint = self.config.get("Endpoint", self.config)
        previous = live_config(self.hook.conn, endpoint["EndpointName"])
        if "EndpointConfig" in self.config:
            tag_previous(self.config["EndpointConfig"], previous)
        if previous and previous != endpoint["EndpointConfigName"]:
            self._release_autoscaling(endpoint["EndpointName"], previous)
        if is_local():  # InService at once: deferring would only add a trip through the triggerer
            self.deferrable = False
        return self._verified(super().execute(context))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, dict]:
        return self._verified(super().execute_complete(context, event))

    def _release_autoscaling(self, endpoint_name: str, previous: str) -> None:
        from sagelake.ml.deployment import deregister_autoscaling, variants_to_deregister

        new = self.config.get("EndpointConfig") or self.hook.describe_endpoint_config(
            self.config["Endpoint"]["EndpointConfigName"]
        )
        variants = variants_to_deregister(self.hook.describe_endpoint_config(previous), new)
        if not variants:
            return
        autoscaling = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="application-autoscaling").conn
        for variant in variants:
            if deregister_autoscaling(autoscaling, endpoint_name, variant):
                self.log.info("deregistered %s/%s from autoscaling before the update", endpoint_name, variant)

    def _verified(self, result: dict[str, dict]) -> dict[str, dict]:
        from sagelake.ml.deployment import RolledBackError, check_live

        expected = self.config.get("Endpoint", self.config)["EndpointConfigName"]
        try:
            check_live(result["Endpoint"], expected)
        except RolledBackError as error:
            raise AirflowFailException(str(error)) from None
        if is_local():  # the control plane says InService at once; the endpoint server switches after
            from sagelake.local.endpoint_server import wait_until_serving

            runtime = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="sagemaker-runtime").conn
            wait_until_serving(runtime.meta.endpoint_url, result["Endpoint"]["EndpointName"], expected)
        self.log.info("%s serves %s", result["Endpoint"]["EndpointName"], expected)
        return result
