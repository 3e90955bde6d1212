"""SageMaker operators without SageMaker: training defers on AWS and picks a free job name locally,
registration is idempotent, approval applies the policy, deployment reuses what a retry finds and defers.

The boto3 client behind ``SageMakerHook`` is a small in-memory fake answering as SageMaker (and moto)
do, ``ValidationException`` for an unknown name; the tests assert what the operators created or decided.
"""

from __future__ import annotations

import datetime
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from botocore.exceptions import ClientError

from sagelake.local import training_runner
from sagelake.local.training_runner import TrainingRunResult
from sagelake.ml.approval import APPROVAL_DESCRIPTION_MAX_LEN, PENDING
from sagelake.ml.aws_requests import endpoint_request, model_package_extras
from sagelake.ml.deployment import PREVIOUS_CONFIG_TAG
from sagelake.ml.policy import Policy
from sagelake.operators.sagemaker import (
    DeployEndpointOperator,
    JobNameTakenError,
    ModelApprovalOperator,
    PersonApprovalOperator,
    RegisterModelVersionOperator,
    SagelakeTrainingOperator,
    decide_by_policy,
    drop_existing_resources,
    find_model_package,
    training_job_name,
)
from tests.support.constants import ACCOUNT_ID, REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.pipeline import DT, RUN_ID, training

OK = {"ResponseMetadata": {"HTTPStatusCode": 200}}
GROUP = "sagelake-churn"
ENDPOINT = "sagelake-churn"


def client_error(code: str, operation: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def not_found(operation: str, name: str) -> ClientError:
    return client_error("ValidationException", operation, f"Could not find {name!r}.")


class FakeSageMaker:
    """The SageMaker client calls the operators make, in memory."""

    def __init__(self) -> None:
        self.training_jobs: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        self.endpoint_configs: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self.groups: set[str] = set()
        self.packages: dict[str, dict] = {}

    def _get(self, store: dict[str, dict], name: str, operation: str) -> dict:
        if name not in store:
            raise not_found(operation, name)
        return store[name]

    # training
    def create_training_job(self, **request: Any) -> dict:
        name = request["TrainingJobName"]
        self.training_jobs[name] = {
            **request,
            "TrainingJobStatus": "InProgress",
            "CreationTime": datetime.datetime(2026, 11, 26, 3, 0, tzinfo=datetime.UTC),
        }
        return OK

    def describe_training_job(self, TrainingJobName: str) -> dict:
        return self._get(self.training_jobs, TrainingJobName, "DescribeTrainingJob")

    # deployment
    def describe_model(self, ModelName: str) -> dict:
        return self._get(self.models, ModelName, "DescribeModel")

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict:
        return self._get(self.endpoint_configs, EndpointConfigName, "DescribeEndpointConfig")

    def describe_endpoint(self, EndpointName: str) -> dict:
        return self._get(self.endpoints, EndpointName, "DescribeEndpoint")

    def create_model(self, **request: Any) -> dict:
        self.models[request["ModelName"]] = request
        return OK

    def create_endpoint_config(self, **request: Any) -> dict:
        self.endpoint_configs[request["EndpointConfigName"]] = request
        return OK

    def create_endpoint(self, **request: Any) -> dict:
        self.endpoints[request["EndpointName"]] = {**request, "EndpointStatus": "Creating"}
        return OK

    # registry
    def create_model_package_group(self, ModelPackageGroupName: str, **_: Any) -> dict:
        if ModelPackageGroupName in self.groups:
            raise client_error(
                "ValidationException", "CreateModelPackageGroup", "Model Package Group already exists"
            )
        self.groups.add(ModelPackageGroupName)
        return {"ModelPackageGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model-package-group/x"}

    def create_model_package(self, **request: Any) -> dict:
        group = request["ModelPackageGroupName"]
        version = sum(p["ModelPackageGroupName"] == group for p in self.packages.values()) + 1
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model-package/{group}/{version}"
        self.packages[arn] = {**request, "ModelPackageArn": arn}
        return {"ModelPackageArn": arn}

    def describe_model_package(self, ModelPackageName: str) -> dict:
        return self._get(self.packages, ModelPackageName, "DescribeModelPackage")

    def update_model_package(self, ModelPackageArn: str, **update: Any) -> dict:
        self.describe_model_package(ModelPackageArn).update(update)
        return {"ModelPackageArn": ModelPackageArn}

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_model_packages"
        fake = self

        class Paginator:
            def paginate(self, ModelPackageGroupName: str):
                arns = [
                    a for a, p in fake.packages.items() if p["ModelPackageGroupName"] == ModelPackageGroupName
                ]
                for start in range(0, max(len(arns), 1), 2):  # two per page, to exercise the pages
                    yield {
                        "ModelPackageSummaryList": [{"ModelPackageArn": a} for a in arns[start : start + 2]]
                    }

        return Paginator()


@pytest.fixture()
def sagemaker() -> Any:
    """The fake client behind every ``SageMakerHook`` of the test."""
    fake = FakeSageMaker()
    with mock.patch.object(SageMakerHook, "conn", new_callable=mock.PropertyMock, return_value=fake):
        yield fake


# --- training --------------------------------------------------------------------------------------


def training_config() -> dict[str, Any]:
    return {**training(), "RoleArn": SAGEMAKER_ROLE_ARN}


BASE = training()["TrainingJobName"]


def train(**kwargs: Any) -> SagelakeTrainingOperator:
    return SagelakeTrainingOperator(
        **{
            "task_id": "train",
            "config": training_config(),
            "wait_for_completion": True,
            "deferrable": True,
            "check_interval": 30,
            "print_log": False,
            **kwargs,
        }
    )


def test_training_job_name_keeps_a_free_name_and_numbers_a_taken_one() -> None:
    sagemaker = FakeSageMaker()

    def describe(name: str) -> dict:
        return sagemaker.describe_training_job(TrainingJobName=name)

    assert training_job_name(BASE, describe, fail_if_exists=False) == BASE
    sagemaker.create_training_job(TrainingJobName=BASE)
    assert training_job_name(BASE, describe, fail_if_exists=False) == f"{BASE}-r2"
    sagemaker.create_training_job(TrainingJobName=f"{BASE}-r2")
    assert training_job_name(BASE, describe, fail_if_exists=False) == f"{BASE}-r3"
    with pytest.raises(JobNameTakenError, match="already exists and its action is 'fail'"):
        training_job_name(BASE, describe, fail_if_exists=True)
    assert issubclass(JobNameTakenError, AirflowFailException)  # retrying cannot free the name


def test_training_job_name_does_not_take_other_errors_for_a_free_name() -> None:
    def describe(name: str) -> dict:
        raise client_error("AccessDeniedException", "DescribeTrainingJob")

    with pytest.raises(ClientError, match="AccessDeniedException"):
        training_job_name(BASE, describe, fail_if_exists=False)


class TestSagelakeTrainingOperator:
    @mock.patch.object(SageMakerHook, "check_training_config")
    def test_deferred(self, _, sagemaker, aws_target, context) -> None:
        with pytest.raises(TaskDeferred) as deferred:
            train().execute(context)

        trigger = deferred.value.trigger
        assert isinstance(trigger, SageMakerTrigger)
        assert (trigger.job_name, trigger.job_type, trigger.waiter_delay) == (BASE, "Training", 30)
        assert list(sagemaker.training_jobs) == [BASE]

    def test_execute_complete(self, sagemaker, aws_target, context) -> None:
        sagemaker.create_training_job(TrainingJobName=f"{BASE}-r2")
        result = train().execute_complete(context, {"status": "success", "job_name": f"{BASE}-r2"})
        assert result["Training"]["TrainingJobName"] == f"{BASE}-r2"  # the job the trigger watched
        assert isinstance(result["Training"]["CreationTime"], str)  # JSON-safe for XCom

        with pytest.raises(AirflowException, match="Error while running job"):
            train().execute_complete(context, {"status": "error", "message": "Training job failed"})

    @pytest.fixture()
    def local_runs(self, monkeypatch, sagemaker, aws_target) -> list[dict]:
        """The local target, with the training runner replaced by a recorder."""
        monkeypatch.setenv("SAGELAKE_TARGET", "local")
        runs: list[dict] = []

        def run_training_job(request: dict, s3: Any, work: Any) -> TrainingRunResult:
            runs.append(dict(request))
            name = request["TrainingJobName"]
            return TrainingRunResult(name, f"s3://lake/models/{name}/output/model.tar.gz", "", {"auc": 0.8})

        monkeypatch.setattr(training_runner, "run_training_job", run_training_job)
        with mock.patch.object(S3Hook, "get_conn"), mock.patch.object(SageMakerHook, "check_training_config"):
            yield runs

    def test_local_retry_finds_its_name_taken_and_trains_as_r2(self, local_runs, sagemaker, context) -> None:
        sagemaker.create_training_job(TrainingJobName=BASE)  # the first attempt's job

        result = train().execute(context)  # deferrable=True: no deferral locally

        assert [run["TrainingJobName"] for run in local_runs] == [f"{BASE}-r2"]
        assert set(sagemaker.training_jobs) == {BASE, f"{BASE}-r2"}  # recorded in the control plane
        assert result["Training"]["TrainingJobName"] == f"{BASE}-r2"

    def test_local_fail_if_the_job_exists(self, local_runs, sagemaker, context) -> None:
        sagemaker.create_training_job(TrainingJobName=BASE)
        with pytest.raises(JobNameTakenError, match=BASE):
            train(action_if_job_exists="fail").execute(context)
        assert local_runs == []
        assert set(sagemaker.training_jobs) == {BASE}

    def test_template_fields(self, render) -> None:
        config = {**training_config(), "TrainingJobName": "churn-{{ params.dt }}"}
        op = render(train(config=config), params={"dt": "20261126"})
        assert op.config["TrainingJobName"] == "churn-20261126"
        assert op.template_fields_renderers == {"config": "json"}


# --- registration ----------------------------------------------------------------------------------


def package_arn(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model-package/{GROUP}/{version}"


def model_url(name: str) -> str:
    return f"s3://lake/models/{name}/output/model.tar.gz"


def register(**kwargs: Any) -> RegisterModelVersionOperator:
    return RegisterModelVersionOperator(
        **{
            "task_id": "register",
            "image_uri": SKLEARN_IMAGE_URI,
            "model_url": model_url("a"),
            "package_group_name": GROUP,
            "extras": {"CustomerMetadataProperties": {"metric_auc": "0.810000"}},
            **kwargs,
        }
    )


def test_find_model_package_matches_the_model_artefact(sagemaker) -> None:
    assert find_model_package(sagemaker, GROUP, model_url("a")) is None  # no group yet
    for name in "abc":
        sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": model_url(name)}]},
        )
    assert find_model_package(sagemaker, GROUP, model_url("c")) == package_arn(3)  # on the second page
    assert find_model_package(sagemaker, GROUP, model_url("z")) is None
    assert find_model_package(sagemaker, "other-group", model_url("a")) is None


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFound"])
def test_find_model_package_treats_an_unknown_group_as_empty(code: str) -> None:
    client = mock.Mock()
    client.get_paginator.return_value.paginate.side_effect = client_error(code, "ListModelPackages")
    assert find_model_package(client, GROUP, model_url("a")) is None


def test_find_model_package_raises_other_errors() -> None:
    client = mock.Mock()
    client.get_paginator.return_value.paginate.side_effect = client_error("ThrottlingException", "List")
    with pytest.raises(ClientError, match="ThrottlingException"):
        find_model_package(client, GROUP, model_url("a"))


class TestRegisterModelVersionOperator:
    def test_a_retry_returns_the_version_already_registered(self, sagemaker, aws_target, context) -> None:
        first = register().execute(context)
        assert register().execute(context) == first == package_arn(1)  # the retry
        assert register(model_url=model_url("b")).execute(context) == package_arn(2)  # a new model
        assert list(sagemaker.packages) == [package_arn(1), package_arn(2)]
        assert sagemaker.packages[first]["CustomerMetadataProperties"] == {"metric_auc": "0.810000"}

    def test_template_fields(self, render) -> None:
        extras = model_package_extras(
            evaluation_uri="s3://lake/eval.json",
            metrics={"auc": 0.81},
            dt=DT,
            run_id=RUN_ID,
            training_job="j",
        )
        op = register(
            package_group_name="{{ params.model_package_group }}",
            package_desc="trained on churn_features dt={{ params.dt }}",
            extras={**extras, "ModelPackageDescription": "{{ params.dt }}"},
        )
        render(op, params={"model_package_group": GROUP, "dt": DT})
        assert (op.package_group_name, op.package_desc) == (GROUP, f"trained on churn_features dt={DT}")
        assert op.extras["ModelPackageDescription"] == DT
        assert "extras" in op.template_fields
        assert op.template_fields_renderers == {"extras": "json"}


# --- approval --------------------------------------------------------------------------------------


def registered(sagemaker: FakeSageMaker) -> str:
    return sagemaker.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus=PENDING)[
        "ModelPackageArn"
    ]


METRICS = {"auc": 0.80, "log_loss": 0.40, "recall": 0.60}


def report(challenger: dict[str, float], champion: dict[str, float] | None = None) -> dict[str, Any]:
    return {"models": {"challenger": challenger, **({"champion": champion} if champion else {})}}


@pytest.mark.parametrize(
    ("challenger", "champion", "dt", "newest", "status", "outcome"),
    [
        (METRICS, None, DT, DT, "Approved", "approve"),  # first model, above the floor
        ({**METRICS, "auc": 0.70}, None, DT, DT, "Rejected", "reject"),  # first model, below the floor
        ({**METRICS, "auc": 0.83}, METRICS, DT, DT, "Approved", "approve"),  # better by the margin
        ({**METRICS, "auc": 0.79}, METRICS, DT, DT, "Rejected", "reject"),  # worse than the champion
        ({**METRICS, "auc": 0.802}, METRICS, DT, DT, "PendingManualApproval", "ask"),  # within the margin
        (METRICS, None, DT, "2026-12-31", "PendingManualApproval", "ask"),  # not the newest partition
    ],
)
def test_the_policy_decision_is_written_to_the_registry(
    sagemaker, challenger, champion, dt, newest, status, outcome
) -> None:
    arn = registered(sagemaker)
    decision = decide_by_policy(
        sagemaker, arn, report(challenger, champion), dt=dt, newest_published_dt=newest, policy=Policy()
    )
    assert decision.outcome == outcome
    package = sagemaker.packages[arn]
    assert package["ModelApprovalStatus"] == status
    assert package["ApprovalDescription"] == f"policy {decision.summary()}"[:APPROVAL_DESCRIPTION_MAX_LEN]


@pytest.mark.parametrize(
    ("challenger", "outcome", "status"),
    [(METRICS, "ask", "PendingManualApproval"), ({**METRICS, "auc": "nan"}, "reject", "Rejected")],
)
def test_a_serving_model_the_report_did_not_score_is_never_replaced_by_policy(
    sagemaker, challenger, outcome, status
) -> None:
    arn = registered(sagemaker)
    decision = decide_by_policy(
        sagemaker,
        arn,
        report({**challenger, "auc": float(challenger["auc"])}),
        dt=DT,
        newest_published_dt=DT,
        policy=Policy(),
        serving_model="s3://lake/models/churn/j/output/model.tar.gz",
    )
    assert decision.outcome == outcome
    assert sagemaker.packages[arn]["ModelApprovalStatus"] == status
    if outcome == "ask":
        assert "production serves s3://lake/models/churn/j/output/model.tar.gz" in decision.reasons[0]


def test_a_report_without_the_challenger_is_refused(sagemaker) -> None:
    arn = registered(sagemaker)
    with pytest.raises(ValueError, match="no challenger metrics"):
        decide_by_policy(sagemaker, arn, {"models": {}}, dt=DT, newest_published_dt=DT, policy=Policy())
    assert sagemaker.packages[arn]["ModelApprovalStatus"] == PENDING  # nothing recorded


class TestModelApprovalOperator:
    def test_template_fields(self, render) -> None:
        op = render(
            ModelApprovalOperator(
                task_id="decide",
                model_package_arn="{{ arn }}",
                report_uri="s3://b/{{ dt }}/",
                dt="{{ dt }}",
                database="{{ db }}",
                endpoint_name="{{ ep }}",
            ),
            arn="arn:x",
            dt=DT,
            db="lake",
            ep="prod",
        )
        rendered = (op.model_package_arn, op.report_uri, op.dt, op.database, op.endpoint_name)
        assert rendered == ("arn:x", f"s3://b/{DT}/", DT, "lake", "prod")


class TestPersonApprovalOperator:
    def op(self) -> PersonApprovalOperator:
        return PersonApprovalOperator(
            task_id="ask_a_person", subject="Deploy?", body="| metric |", model_package_arn="{{ arn }}"
        )

    def event(self, chosen: str, user: dict | None, reason: str = "", timedout: bool = False) -> dict:
        return {
            "chosen_options": [chosen],
            "params_input": {"reason": reason},
            "responded_at": datetime.datetime(2026, 11, 27, tzinfo=datetime.UTC),
            "responded_by_user": user,
            "timedout": timedout,
        }

    def test_template_fields_and_defaults(self, render) -> None:
        op = render(self.op(), arn="arn:x")
        assert op.model_package_arn == "arn:x"
        assert {"subject", "body", "model_package_arn"} <= set(op.template_fields)
        assert op.defaults == ["Reject"]  # what a timeout answers
        assert "reason" in op.params

    @pytest.mark.parametrize(
        ("chosen", "user", "reason", "timedout", "status", "description"),
        [
            ("Approve", {"id": "7", "name": "ana"}, "lift is real", False, "Approved", "approved by ana"),
            ("Reject", {"id": "7", "name": "ana"}, "", False, "Rejected", "rejected by ana"),
            ("Reject", None, "", True, "Rejected", "nobody answered"),
        ],
    )
    def test_the_answer_is_written_to_the_registry(
        self, sagemaker, aws_target, context, chosen, user, reason, timedout, status, description
    ) -> None:
        arn = registered(sagemaker)
        op = self.op()
        op.model_package_arn = arn
        with mock.patch.object(op, "skip"):
            op.execute_complete(context | {"task": op}, self.event(chosen, user, reason, timedout))
        package = sagemaker.packages[arn]
        assert package["ModelApprovalStatus"] == status
        assert description in package["ApprovalDescription"]
        if reason:
            assert package["ApprovalDescription"].endswith(reason)

    def test_a_rejection_skips_the_deployment(self, sagemaker, aws_target, context) -> None:
        op = self.op()
        op.model_package_arn = registered(sagemaker)
        op.downstream_task_ids.add("promote")
        with (
            mock.patch.object(op, "skip") as skip,
            mock.patch.object(op, "get_direct_relatives", return_value=[mock.MagicMock(is_teardown=False)]),
        ):
            op.execute_complete(context | {"task": op}, self.event("Reject", {"id": "1", "name": "bo"}))
        assert skip.called


# --- deployment ------------------------------------------------------------------------------------


def endpoint_config(name: str = "churn-20261126-v1") -> dict[str, Any]:
    return endpoint_request(
        model_name=name,
        endpoint_config_name=name,
        endpoint_name=ENDPOINT,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        model_data_url=model_url(name),
        instance_type="ml.m5.large",
    )


def deploy(**kwargs: Any) -> DeployEndpointOperator:
    return DeployEndpointOperator(
        **{
            "task_id": "deploy",
            "config": endpoint_config(),
            "operation": "create",
            "wait_for_completion": True,
            "deferrable": True,
            "check_interval": 15,
            **kwargs,
        }
    )


def test_drop_existing_resources_keeps_only_what_is_missing(sagemaker) -> None:
    config = endpoint_config()
    assert drop_existing_resources(config, sagemaker) == []
    assert set(config) == {"Model", "EndpointConfig", "Endpoint"}

    sagemaker.create_model(**config["Model"])  # a first attempt created the model, then failed
    assert drop_existing_resources(config, sagemaker) == ["churn-20261126-v1"]
    assert set(config) == {"EndpointConfig", "Endpoint"}


def test_drop_existing_resources_raises_other_errors() -> None:
    client = mock.Mock()
    client.describe_model.side_effect = client_error("AccessDeniedException", "DescribeModel")
    with pytest.raises(ClientError, match="AccessDeniedException"):
        drop_existing_resources(endpoint_config(), client)


class TestDeployEndpointOperator:
    def test_deferred(self, sagemaker, aws_target, context) -> None:
        with pytest.raises(TaskDeferred) as deferred:
            deploy().execute(context)

        trigger = deferred.value.trigger
        assert isinstance(trigger, SageMakerTrigger)
        assert (trigger.job_name, trigger.job_type, trigger.waiter_delay) == (ENDPOINT, "endpoint", 15)
        assert sagemaker.endpoints[ENDPOINT]["EndpointConfigName"] == "churn-20261126-v1"

    def test_a_retry_reuses_the_model_and_config_it_created(self, sagemaker, aws_target, context) -> None:
        config = endpoint_config()
        sagemaker.create_model(**config["Model"])
        sagemaker.create_endpoint_config(**config["EndpointConfig"])
        with (
            mock.patch.object(SageMakerHook, "create_model") as create_model,
            mock.patch.object(SageMakerHook, "create_endpoint_config") as create_endpoint_config,
            pytest.raises(TaskDeferred),
        ):
            deploy().execute(context)
        create_model.assert_not_called()
        create_endpoint_config.assert_not_called()
        assert ENDPOINT in sagemaker.endpoints

    def test_execute_complete(self, sagemaker, aws_target, context) -> None:
        config = endpoint_config()
        sagemaker.create_endpoint_config(**config["EndpointConfig"])
        sagemaker.create_endpoint(**config["Endpoint"])
        sagemaker.endpoints[ENDPOINT]["EndpointStatus"] = "InService"  # what the trigger waited for
        result = deploy().execute_complete(context, {"status": "success", "job_name": ENDPOINT})
        assert result["Endpoint"]["EndpointName"] == ENDPOINT
        assert result["EndpointConfig"]["EndpointConfigName"] == "churn-20261126-v1"  # the one it serves

        with pytest.raises(AirflowException, match="Error while running job"):
            deploy().execute_complete(context, {"status": "error", "message": "Endpoint failed"})

    def test_a_new_config_is_tagged_with_the_one_it_replaces(self, sagemaker, aws_target, context) -> None:
        old = endpoint_config("churn-20261125-v1")
        sagemaker.create_endpoint_config(**old["EndpointConfig"])
        sagemaker.endpoints[ENDPOINT] = {**old["Endpoint"], "EndpointStatus": "InService"}
        with pytest.raises(TaskDeferred):
            deploy().execute(context)
        tags = sagemaker.endpoint_configs["churn-20261126-v1"]["Tags"]
        assert {"Key": PREVIOUS_CONFIG_TAG, "Value": "churn-20261125-v1"} in tags

    def test_a_rollback_by_sagemaker_fails_the_task_without_retries(
        self, sagemaker, aws_target, context
    ) -> None:
        old, new = endpoint_config("churn-20261125-v1"), endpoint_config()
        sagemaker.create_endpoint_config(**old["EndpointConfig"])
        sagemaker.create_endpoint_config(**new["EndpointConfig"])
        # the alarms fired during the canary: SageMaker put the old fleet back, then reports InService
        sagemaker.endpoints[ENDPOINT] = {**old["Endpoint"], "EndpointStatus": "InService"}
        with pytest.raises(AirflowFailException, match="serves churn-20261125-v1 .* not churn-20261126-v1"):
            deploy().execute_complete(context, {"status": "success", "job_name": ENDPOINT})

    def test_template_fields(self, render) -> None:
        config = endpoint_config()
        config["Endpoint"]["EndpointName"] = "{{ params.endpoint_name }}"
        op = render(deploy(config=config), params={"endpoint_name": ENDPOINT})
        assert op.config["Endpoint"] == {"EndpointName": ENDPOINT, "EndpointConfigName": "churn-20261126-v1"}
        assert op.template_fields_renderers == {"config": "json"}
