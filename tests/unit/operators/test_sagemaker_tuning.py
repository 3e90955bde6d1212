"""The tuning operator without SageMaker: the provider's deferrable path on AWS, the local runner locally,
a completed job returned as it is, an abandoned one re-run under a free name, templated config."""

from __future__ import annotations

import datetime
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from botocore.exceptions import ClientError

from sagelake.local import tuning_runner
from sagelake.local.tuning_runner import TuningRunResult
from sagelake.ml.tuning import SCRIPT_METRIC_DEFINITIONS, tuning_request
from sagelake.operators.sagemaker_tuning import SagelakeTuningOperator
from tests.support.constants import SAGEMAKER_ROLE_ARN
from tests.support.pipeline import training

OK = {"ResponseMetadata": {"HTTPStatusCode": 200}}
NAME = "churn-hpo-20261126-ab12cd34"
CREATED = datetime.datetime(2026, 11, 26, 3, 0, tzinfo=datetime.UTC)


class FakeSageMaker:
    """The SageMaker tuning calls the operator makes, in memory (unknown name: ``ResourceNotFound``)."""

    def __init__(self) -> None:
        self.tuning_jobs: dict[str, dict] = {}

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict:
        name = request["HyperParameterTuningJobName"]
        self.tuning_jobs[name] = {
            **request,
            "HyperParameterTuningJobStatus": "InProgress",
            "CreationTime": CREATED,
        }
        return OK

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict:
        if HyperParameterTuningJobName not in self.tuning_jobs:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFound", "Message": "Could not find"}},
                "DescribeHyperParameterTuningJob",
            )
        return self.tuning_jobs[HyperParameterTuningJobName]


@pytest.fixture()
def sagemaker() -> Any:
    fake = FakeSageMaker()
    with mock.patch.object(SageMakerHook, "conn", new_callable=mock.PropertyMock, return_value=fake):
        yield fake


def config(name: str = NAME) -> dict:
    return tuning_request(
        job_name=name,
        training={**training(), "RoleArn": SAGEMAKER_ROLE_ARN},
        objective_metric="validation:auc",
        ranges={"max_depth": {"type": "Integer", "min": 2, "max": 6}},
        metric_definitions=SCRIPT_METRIC_DEFINITIONS,
        max_jobs=4,
        max_parallel=2,
    )


def tune(**kwargs: Any) -> SagelakeTuningOperator:
    return SagelakeTuningOperator(
        **{"task_id": "tune", "config": config(), "deferrable": True, "check_interval": 30, **kwargs}
    )


@mock.patch.object(SageMakerHook, "check_tuning_config")
def test_deferred(_, sagemaker, aws_target, context) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        tune().execute(context)

    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerTrigger)
    assert (trigger.job_name, trigger.job_type, trigger.waiter_delay) == (NAME, "tuning", 30)
    assert list(sagemaker.tuning_jobs) == [NAME]  # created by the provider's code path
    assert sagemaker.tuning_jobs[NAME]["HyperParameterTuningJobConfig"]["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": 4,
        "MaxParallelTrainingJobs": 2,
    }


def test_execute_complete(sagemaker, context) -> None:
    sagemaker.create_hyper_parameter_tuning_job(**config())
    result = tune().execute_complete(context, {"status": "success", "job_name": NAME})
    assert result["Tuning"]["HyperParameterTuningJobName"] == NAME
    assert isinstance(result["Tuning"]["CreationTime"], str)  # JSON-safe for XCom
    with pytest.raises(AirflowException, match="Error while running job"):
        tune().execute_complete(context, {"status": "error", "message": "Tuning job failed"})


@pytest.fixture()
def local_runs(monkeypatch, sagemaker, aws_target) -> list[dict]:
    """The local target, with the tuning runner replaced by one that completes the job it is given."""
    monkeypatch.setenv("SAGELAKE_TARGET", "local")
    runs: list[dict] = []

    def run_tuning_job(request: dict, **kwargs: Any) -> TuningRunResult:
        runs.append({"request": request, **kwargs})
        job = sagemaker.tuning_jobs[request["HyperParameterTuningJobName"]]
        job.update(
            {"HyperParameterTuningJobStatus": "Completed", "BestTrainingJob": {"TrainingJobName": "best"}}
        )
        return TuningRunResult(request["HyperParameterTuningJobName"], [], None, 2, 1.0)

    monkeypatch.setattr(tuning_runner, "run_tuning_job", run_tuning_job)
    with mock.patch.object(S3Hook, "get_conn"), mock.patch.object(SageMakerHook, "check_tuning_config"):
        yield runs


def test_local_runs_the_trials_and_returns_the_describe_answer(local_runs, sagemaker, context) -> None:
    result = tune().execute(context)  # deferrable=True: no deferral locally

    [run] = local_runs
    assert run["request"]["HyperParameterTuningJobName"] == NAME
    assert run["sagemaker"] is sagemaker and run["credentials"].access_key == "testing"
    assert result["Tuning"]["HyperParameterTuningJobStatus"] == "Completed"
    assert result["Tuning"]["BestTrainingJob"] == {"TrainingJobName": "best"}


def test_local_rerun_of_a_completed_job_trains_nothing(local_runs, sagemaker, context) -> None:
    first = tune().execute(context)
    assert tune().execute(context) == first
    assert len(local_runs) == 1 and list(sagemaker.tuning_jobs) == [NAME]


def test_local_retry_after_an_abandoned_run_uses_a_free_name(local_runs, sagemaker, context) -> None:
    sagemaker.create_hyper_parameter_tuning_job(**config())  # a killed attempt: left InProgress

    result = tune().execute(context)

    assert [run["request"]["HyperParameterTuningJobName"] for run in local_runs] == [f"{NAME}-r2"]
    assert result["Tuning"]["HyperParameterTuningJobName"] == f"{NAME}-r2"
    assert sagemaker.tuning_jobs[NAME]["HyperParameterTuningJobStatus"] == "InProgress"


def test_template_fields(render) -> None:
    templated = {**config(), "HyperParameterTuningJobName": "churn-hpo-{{ params.dt }}"}
    op = render(tune(config=templated), params={"dt": "20261126"})
    assert op.config["HyperParameterTuningJobName"] == "churn-hpo-20261126"
    assert "config" in op.template_fields and op.template_fields_renderers == {"config": "json"}
