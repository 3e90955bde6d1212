"""``SagelakeTransformOperator`` without SageMaker: on AWS the provider's deferrable path, locally the
transform runner with a free job name, the job recorded, and the provider's return value."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from botocore.exceptions import ClientError

from sagelake.local import transform_runner
from sagelake.local.transform_runner import TransformRunResult
from sagelake.ml.batch import JSON, transform_request
from sagelake.ml.naming import free_name
from sagelake.operators.sagemaker_transform import (
    SagelakeTransformOperator,
    TransformNameTakenError,
)
from tests.support.constants import SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI

OK = {"ResponseMetadata": {"HTTPStatusCode": 200}}
JOB = "churn-score-20261126-abcd1234"
MODEL = "churn-20261125-0000ffff-v2"
PREFIX = "s3://lake/batch/churn_scores/dt=2026-11-26/run=abcd1234/"


def not_found(name: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationException", "Message": f"Could not find {name}"}}, "D")


class FakeSageMaker:
    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}
        self.models: dict[str, dict] = {MODEL: {"ModelName": MODEL, "PrimaryContainer": {}}}
        self.meta = SimpleNamespace(partition="aws", region_name="us-east-1", client=self)  # the job's link

    def create_transform_job(self, **request: Any) -> dict:
        self.jobs[request["TransformJobName"]] = {
            **request,
            "TransformJobStatus": "InProgress",
            "CreationTime": datetime.datetime(2026, 11, 26, 3, 0, tzinfo=datetime.UTC),
        }
        return OK

    def describe_transform_job(self, TransformJobName: str) -> dict:
        if TransformJobName not in self.jobs:
            raise not_found(TransformJobName)
        return self.jobs[TransformJobName]

    def create_model(self, **request: Any) -> dict:
        self.models[request["ModelName"]] = dict(request)
        return OK

    def describe_model(self, ModelName: str) -> dict:
        if ModelName not in self.models:
            raise not_found(ModelName)
        return self.models[ModelName]


@pytest.fixture()
def sagemaker() -> Any:
    fake = FakeSageMaker()
    with (
        mock.patch.object(SageMakerHook, "conn", new_callable=mock.PropertyMock, return_value=fake),
        mock.patch.object(SageMakerHook, "get_conn", return_value=fake),
        mock.patch.object(SageMakerHook, "check_s3_url", return_value=True),
    ):
        yield fake


def config() -> dict[str, Any]:
    return transform_request(
        job_name=JOB,
        model_name=MODEL,
        input_uri=PREFIX + "input/",
        output_uri=PREFIX + "output/",
        content_type=JSON,
        instance_type="ml.m5.large",
    )


def score(**kwargs: Any) -> SagelakeTransformOperator:
    return SagelakeTransformOperator(
        **{"task_id": "score", "config": config(), "deferrable": True, "check_interval": 30, **kwargs}
    )


def test_free_name_keeps_a_free_name_numbers_a_taken_one_or_fails() -> None:
    fake = FakeSageMaker()

    def describe(name: str) -> dict:
        return fake.describe_transform_job(TransformJobName=name)

    assert (
        free_name(JOB, describe, fail_if_exists=False, kind="transform job", error=TransformNameTakenError)
        == JOB
    )
    fake.create_transform_job(TransformJobName=JOB)
    assert (
        free_name(JOB, describe, fail_if_exists=False, kind="transform job", error=TransformNameTakenError)
        == f"{JOB}-r2"
    )
    with pytest.raises(TransformNameTakenError, match="transform job .* exists"):
        free_name(JOB, describe, fail_if_exists=True, kind="transform job", error=TransformNameTakenError)
    assert issubclass(TransformNameTakenError, AirflowFailException)

    def denied(name: str) -> dict:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": ""}}, "Describe")

    with pytest.raises(ClientError, match="AccessDenied"):
        free_name(JOB, denied, fail_if_exists=False, kind="model", error=TransformNameTakenError)


def test_deferred(sagemaker, aws_target, context) -> None:
    """On AWS it is the provider's operator: creates the job and defers to the transform trigger."""
    with pytest.raises(TaskDeferred) as deferred:
        score().execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerTrigger)
    assert (trigger.job_name, trigger.job_type, trigger.waiter_delay) == (JOB, "Transform", 30)
    assert deferred.value.method_name == "execute_complete"
    assert list(sagemaker.jobs) == [JOB]


@pytest.fixture()
def local_runs(monkeypatch, sagemaker, aws_target) -> list[dict]:
    """The local target with the runner replaced by a recorder."""
    monkeypatch.setenv("SAGELAKE_TARGET", "local")
    runs: list[dict] = []

    def run_transform_job(request: dict, client: Any, s3: Any, work: Any) -> TransformRunResult:
        assert client is sagemaker  # the control plane the job's model is described in
        runs.append(dict(request))
        source = PREFIX + "input/part-0.jsonl"
        return TransformRunResult(
            request["TransformJobName"], {source: PREFIX + "output/part-0.jsonl.out"}, 3, 1
        )

    def record(client: Any, request: dict) -> dict:
        client.create_transform_job(**request)
        client.jobs[request["TransformJobName"]]["TransformJobStatus"] = "Completed"
        return client.describe_transform_job(TransformJobName=request["TransformJobName"])

    monkeypatch.setattr(transform_runner, "run_transform_job", run_transform_job)
    monkeypatch.setattr(transform_runner, "record_transform_job", record)
    with mock.patch.object(S3Hook, "get_conn", return_value=object()):
        yield runs


def test_local_runs_the_request_records_it_and_returns_what_the_provider_returns(
    local_runs, sagemaker, context
) -> None:
    sagemaker.create_transform_job(TransformJobName=JOB)  # a first attempt's job
    result = score().execute(context)  # no deferral locally

    assert [run["TransformJobName"] for run in local_runs] == [f"{JOB}-r2"]
    assert set(sagemaker.jobs) == {JOB, f"{JOB}-r2"}
    assert result["Transform"]["TransformJobName"] == f"{JOB}-r2"
    assert result["Transform"]["TransformJobStatus"] == "Completed"
    assert isinstance(result["Transform"]["CreationTime"], str)  # JSON-safe for XCom, as the provider's
    assert result["Model"]["ModelName"] == MODEL


def test_local_fail_if_the_job_exists(local_runs, sagemaker, context) -> None:
    sagemaker.create_transform_job(TransformJobName=JOB)
    with pytest.raises(TransformNameTakenError):
        score(action_if_job_exists="fail").execute(context)
    assert local_runs == []


def test_local_creates_a_model_given_with_the_job_under_a_free_name(local_runs, sagemaker, context) -> None:
    model = {
        "ModelName": MODEL,  # taken: the serving model
        "ExecutionRoleArn": SAGEMAKER_ROLE_ARN,
        "PrimaryContainer": {"Image": SKLEARN_IMAGE_URI, "ModelDataUrl": "s3://lake/m/model.tar.gz"},
    }
    result = score(config={"Model": model, "Transform": config()}).execute(context)
    assert local_runs[0]["ModelName"] == f"{MODEL}-r2"
    assert sagemaker.models[f"{MODEL}-r2"]["PrimaryContainer"]["ModelDataUrl"] == "s3://lake/m/model.tar.gz"
    assert result["Model"]["ModelName"] == f"{MODEL}-r2"


def test_template_fields(render) -> None:
    op = render(
        score(config={**config(), "TransformJobName": "score-{{ params.dt }}"}), params={"dt": "20261126"}
    )
    assert op.config["TransformJobName"] == "score-20261126"
