"""The tuning operator's local branch against the local control plane: real trials, and the provider's
answer (``{"Tuning": DescribeHyperParameterTuningJob}``) naming the real best trial; a re-run trains
nothing."""

from __future__ import annotations

import re
import uuid

import pytest

from devstack.stack import aws_connection
from sagelake.ml.tuning import best_training_job_name
from sagelake.operators.sagemaker_tuning import SagelakeTuningOperator
from tests.support.tuning import churn_tuning, log_of, make_lake

AUC_LINE = re.compile(r"validation:auc=(\S+)")


@pytest.fixture()
def lake(aws_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    return make_lake(aws_env, n=400)


def test_local_branch_returns_the_describe_answer_with_the_real_best_trial(lake) -> None:
    name = f"hpo-op-{uuid.uuid4().hex[:8]}"
    config = churn_tuning(lake, name, max_jobs=3, max_parallel=2, strategy="Bayesian")
    op = SagelakeTuningOperator(task_id="tune", config=config, deferrable=True)

    result = op.execute({})

    summaries = lake.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name
    )["TrainingJobSummaries"]
    assert len(summaries) == 3
    objectives = {
        s["TrainingJobName"]: float(AUC_LINE.findall(log_of(lake, s["TrainingJobName"]))[-1])
        for s in summaries
    }
    best = max(objectives, key=objectives.get)
    tuning = result["Tuning"]
    assert (
        tuning["HyperParameterTuningJobName"] == name
        and tuning["HyperParameterTuningJobStatus"] == "Completed"
    )
    assert best_training_job_name(result) == best
    assert tuning["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        objectives[best]
    )
    assert tuning["TrainingJobStatusCounters"]["Completed"] == 3
    assert isinstance(tuning["CreationTime"], str)  # serialised as the provider serialises it, for XCom

    described = lake.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert described["BestTrainingJob"]["TrainingJobName"] == best
    artefact = lake.sagemaker.describe_training_job(TrainingJobName=best)["ModelArtifacts"][
        "S3ModelArtifacts"
    ]
    assert lake.s3.head_object(Bucket=lake.bucket, Key=artefact.split("/", 3)[3])["ContentLength"] > 0

    again = SagelakeTuningOperator(task_id="tune", config=config).execute({})["Tuning"]
    del again["ResponseMetadata"], tuning["ResponseMetadata"]  # request id and date of each call
    assert again == tuning  # the completed job, as it is
    jobs = lake.sagemaker.list_training_jobs(NameContains=name, MaxResults=100)["TrainingJobSummaries"]
    assert len(jobs) == 3  # nothing trained again
