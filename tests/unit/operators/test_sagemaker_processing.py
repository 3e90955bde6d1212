"""``SagelakeProcessingOperator`` without SageMaker: on AWS the provider's deferrable path, locally the
processing runner with a free job name, the job recorded, and the provider's return value."""

from __future__ import annotations

import datetime
import json
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from botocore.exceptions import ClientError

from sagelake.local import processing_runner
from sagelake.local.processing_runner import ProcessingRunResult
from sagelake.ml.evaluation import evaluation_request, output_files_to_xcom
from sagelake.operators.sagemaker_processing import (
    ProcessingJobNameTakenError,
    SagelakeProcessingOperator,
    processing_job_name,
    read_output_files,
)
from tests.support.constants import SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI

OK = {"ResponseMetadata": {"HTTPStatusCode": 200}}
JOB = "churn-eval-20261126-abcd1234"
REPORT = f"s3://lake/reports/evaluation/dt=2026-11-26/{JOB}/"


def not_found(name: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ValidationException", "Message": f"Could not find {name}"}}, "Describe"
    )


class FakeSageMaker:
    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}

    def create_processing_job(self, **request: Any) -> dict:
        self.jobs[request["ProcessingJobName"]] = {
            **request,
            "ProcessingJobStatus": "InProgress",
            "CreationTime": datetime.datetime(2026, 11, 26, 3, 0, tzinfo=datetime.UTC),
        }
        return OK

    def describe_processing_job(self, ProcessingJobName: str) -> dict:
        if ProcessingJobName not in self.jobs:
            raise not_found(ProcessingJobName)
        return self.jobs[ProcessingJobName]


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict:
        if f"{Bucket}/{Key}" not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
        return {"Body": mock.Mock(read=lambda: self.objects[f"{Bucket}/{Key}"])}


@pytest.fixture()
def sagemaker() -> Any:
    fake = FakeSageMaker()
    with mock.patch.object(SageMakerHook, "conn", new_callable=mock.PropertyMock, return_value=fake):
        yield fake


def config() -> dict[str, Any]:
    return evaluation_request(
        job_name=JOB,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        code_uri="s3://lake/code/evaluation/abc/evaluate.py",
        challenger_model_uri="s3://lake/models/churn/a/output/model.tar.gz",
        holdout_uri="s3://lake/curated/churn_features/dt=2026-11-26/version=v1/",
        report_uri=REPORT,
        instance_type="ml.m5.large",
    )


def evaluate(**kwargs: Any) -> SagelakeProcessingOperator:
    return SagelakeProcessingOperator(
        **{"task_id": "evaluate", "config": config(), "deferrable": True, "check_interval": 30, **kwargs}
    )


def test_processing_job_name_keeps_a_free_name_numbers_a_taken_one_or_fails() -> None:
    fake = FakeSageMaker()

    def describe(name: str) -> dict:
        return fake.describe_processing_job(ProcessingJobName=name)

    assert processing_job_name(JOB, describe, fail_if_exists=False) == JOB
    fake.create_processing_job(ProcessingJobName=JOB)
    assert processing_job_name(JOB, describe, fail_if_exists=False) == f"{JOB}-r2"
    with pytest.raises(ProcessingJobNameTakenError, match="already exists"):
        processing_job_name(JOB, describe, fail_if_exists=True)
    assert issubclass(ProcessingJobNameTakenError, AirflowFailException)

    def denied(name: str) -> dict:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": ""}}, "Describe")

    with pytest.raises(ClientError, match="AccessDenied"):
        processing_job_name(JOB, denied, fail_if_exists=False)


def test_on_aws_it_is_the_providers_deferrable_operator(sagemaker, aws_target, context) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        evaluate().execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerTrigger)
    assert (trigger.job_name, trigger.job_type, trigger.waiter_delay) == (JOB, "Processing", 30)
    assert list(sagemaker.jobs) == [JOB]


@pytest.fixture()
def local_runs(monkeypatch, sagemaker, aws_target) -> list[dict]:
    """The local target with the runner replaced by a recorder; the report's metrics.json in S3."""
    monkeypatch.setenv("SAGELAKE_TARGET", "local")
    runs: list[dict] = []

    def run_processing_job(request: dict, s3: Any, work: Any) -> ProcessingRunResult:
        runs.append(dict(request))
        return ProcessingRunResult(
            request["ProcessingJobName"], {"report": REPORT.rstrip("/")}, {"report": 9}
        )

    def record(client: Any, request: dict) -> dict:
        client.create_processing_job(**request)
        client.jobs[request["ProcessingJobName"]]["ProcessingJobStatus"] = "Completed"
        return client.describe_processing_job(ProcessingJobName=request["ProcessingJobName"])

    monkeypatch.setattr(processing_runner, "run_processing_job", run_processing_job)
    monkeypatch.setattr(processing_runner, "record_processing_job", record)
    s3 = FakeS3({f"lake/reports/evaluation/dt=2026-11-26/{JOB}/metrics.json": json.dumps({"n": 3}).encode()})
    with mock.patch.object(S3Hook, "get_conn", return_value=s3):
        yield runs


def test_local_runs_the_request_records_it_and_returns_what_the_provider_returns(
    local_runs, sagemaker, context
) -> None:
    sagemaker.create_processing_job(ProcessingJobName=JOB)  # a first attempt's job
    result = evaluate(output_files_to_xcom=output_files_to_xcom()).execute(context)  # no deferral locally

    assert [run["ProcessingJobName"] for run in local_runs] == [f"{JOB}-r2"]
    assert set(sagemaker.jobs) == {JOB, f"{JOB}-r2"}
    assert result["Processing"]["ProcessingJobName"] == f"{JOB}-r2"
    assert isinstance(result["Processing"]["CreationTime"], str)  # JSON-safe for XCom, as the provider's
    assert result["OutputFiles"] == {"Evaluation": {"n": 3}}


def test_local_fail_if_the_job_exists(local_runs, sagemaker, context) -> None:
    sagemaker.create_processing_job(ProcessingJobName=JOB)
    with pytest.raises(ProcessingJobNameTakenError):
        evaluate(action_if_job_exists="fail").execute(context)
    assert local_runs == []


def test_read_output_files_like_the_provider() -> None:
    s3 = FakeS3({f"lake/reports/evaluation/dt=2026-11-26/{JOB}/metrics.json": b'{"auc": 0.8}'})
    wanted = output_files_to_xcom()
    assert read_output_files(s3, config(), wanted) == {"OutputFiles": {"Evaluation": {"auc": 0.8}}}
    assert read_output_files(s3, config(), None) == {}
    missing = [{"output_name": "report", "file_name": "nope.json", "result_name": "x"}]
    assert read_output_files(s3, config(), missing) == {}
    assert read_output_files(s3, config(), [{**wanted[0], "output_name": "other"}]) == {}
    with pytest.raises(ValueError, match="missing required keys"):
        read_output_files(s3, config(), [{"output_name": "report"}])


def test_template_fields(render) -> None:
    op = render(
        evaluate(config={**config(), "ProcessingJobName": "eval-{{ params.dt }}"}), params={"dt": "20261126"}
    )
    assert op.config["ProcessingJobName"] == "eval-20261126"
