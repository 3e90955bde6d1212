"""The local tuning engine against the local control plane: real trials of include/training/train.py.

One tuning job of 4 trials, 2 at a time, over a generated dataset; every assertion recomputes what it checks
from the trials' own logs (CloudWatch Logs) and artefacts (S3), never from what moto hard-codes.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.credentials import Credentials

from sagelake.local.tuning_runner import TuningRunResult, available_cores, run_tuning_job
from sagelake.ml.aws_requests import xgboost_training_request
from sagelake.ml.tuning import tuning_request
from tests.support.constants import SAGEMAKER_ROLE_ARN
from tests.support.pipeline import validate
from tests.support.tuning import RANGES, Lake, churn_tuning, evaluation_of, log_of, make_lake

CREDENTIALS = Credentials("testing", "testing")
AUC_LINE = re.compile(r"validation:auc=(\S+)")  # the test's own reading of train.py's log


@dataclass
class Tuned:
    lake: Lake
    request: dict
    result: TuningRunResult


def run(lake: Lake, request: dict, work: Path) -> TuningRunResult:
    lake.sagemaker.create_hyper_parameter_tuning_job(**request)
    return run_tuning_job(
        request, sagemaker=lake.sagemaker, s3=lake.s3, logs=lake.logs, credentials=CREDENTIALS, work_dir=work
    )


@pytest.fixture(scope="module")
def tuned(control_plane_url: str, tmp_path_factory: pytest.TempPathFactory) -> Tuned:
    lake = make_lake(control_plane_url)
    request = churn_tuning(lake, f"hpo-{uuid.uuid4().hex[:8]}")
    validate("sagemaker", "CreateHyperParameterTuningJob", request)
    return Tuned(lake, request, run(lake, request, tmp_path_factory.mktemp("tuning")))


def trials_of(tuned: Tuned, **kwargs: Any) -> list[dict]:
    name = tuned.request["HyperParameterTuningJobName"]
    return tuned.lake.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, **kwargs
    )["TrainingJobSummaries"]


def test_every_trial_is_a_training_job_with_its_own_hyperparameters(tuned: Tuned) -> None:
    name = tuned.request["HyperParameterTuningJobName"]
    arn = tuned.lake.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "HyperParameterTuningJobArn"
    ]
    summaries = trials_of(tuned, SortBy="Name", SortOrder="Ascending")
    assert [re.fullmatch(rf"{name}-(\d{{3}})-[0-9a-f]{{8}}", s["TrainingJobName"])[1] for s in summaries] == [
        "001",
        "002",
        "003",
        "004",
    ]
    seen = set()
    for summary in summaries:
        job = tuned.lake.sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        tuned_values = summary["TunedHyperParameters"]
        assert set(tuned_values) == set(RANGES)
        assert job["TuningJobArn"] == arn and job["TrainingJobStatus"] == "Completed"
        trained = (job["TrainingEndTime"] - job["TrainingStartTime"]).total_seconds()
        assert abs(job["TrainingTimeInSeconds"] - trained) <= 1  # the trial's own wall time
        assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]  # no spot discount locally
        assert {k: job["HyperParameters"][k] for k in RANGES} == tuned_values
        assert job["HyperParameters"]["seed"] == "5"  # a static hyperparameter reaches every trial
        assert 20 <= int(tuned_values["max_iter"]) <= 80 and 2 <= int(tuned_values["max_depth"]) <= 5
        assert 0.02 <= float(tuned_values["learning_rate"]) <= 0.3
        used = evaluation_of(tuned.lake, job)["hyperparameters"]  # what the script really trained with
        assert (used["max_iter"], used["max_depth"]) == (
            int(tuned_values["max_iter"]),
            int(tuned_values["max_depth"]),
        )
        assert math.isclose(used["learning_rate"], float(tuned_values["learning_rate"]))
        seen.add(tuple(sorted(tuned_values.items())))
    assert len(seen) == 4


def test_the_best_trial_has_the_best_objective_parsed_from_the_logs(tuned: Tuned) -> None:
    name = tuned.request["HyperParameterTuningJobName"]
    objectives = {}
    for summary in trials_of(tuned):
        job = tuned.lake.sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        from_log = float(AUC_LINE.findall(log_of(tuned.lake, summary["TrainingJobName"]))[-1])
        assert from_log == pytest.approx(evaluation_of(tuned.lake, job)["metrics"]["auc"], abs=1e-6)
        assert summary["FinalHyperParameterTuningJobObjectiveMetric"] == {
            "Type": "Maximize",
            "MetricName": "validation:auc",
            "Value": pytest.approx(from_log),
        }
        assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}["validation:auc"] == (
            pytest.approx(from_log)
        )
        objectives[summary["TrainingJobName"]] = from_log
    assert len(set(objectives.values())) > 1, "trials with different values should score differently"
    best = max(objectives, key=objectives.get)

    described = tuned.lake.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["BestTrainingJob"]["TrainingJobName"] == best
    assert described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == (
        pytest.approx(objectives[best])
    )
    assert described["TrainingJobStatusCounters"]["Completed"] == 4
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    assert "Fake" not in json.dumps(described, default=str)
    assert tuned.result.best.name == best

    artefact = tuned.lake.sagemaker.describe_training_job(TrainingJobName=best)["ModelArtifacts"]
    bucket, key = artefact["S3ModelArtifacts"][5:].split("/", 1)
    assert key == f"models/churn/{best}/output/model.tar.gz"
    assert tuned.lake.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_trials_ran_at_most_max_parallel_at_a_time(tuned: Tuned) -> None:
    expected = min(2, available_cores())
    assert tuned.result.parallelism == expected
    intervals = [(t.start_time, t.end_time) for t in tuned.result.trials]
    overlap = max(sum(start <= moment < end for start, end in intervals) for moment, _ in intervals)
    assert overlap == expected


def test_trials_sort_by_objective_and_filter_by_status(tuned: Tuned) -> None:
    ranked = trials_of(tuned, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in ranked]
    assert values == sorted(values, reverse=True) and len(values) == 4
    assert trials_of(tuned, StatusEquals="Failed") == []
    assert len(trials_of(tuned, MaxResults=3)) == 3


def test_failed_trials_are_recorded_and_never_best(control_plane_url: str, tmp_path: Path) -> None:
    lake = make_lake(control_plane_url, n=300)
    ranges = {**RANGES, "validation_fraction": {"type": "Categorical", "values": ["0.3", "1.5"]}}
    request = churn_tuning(lake, f"hpo-{uuid.uuid4().hex[:8]}", ranges=ranges, random_seed=3)
    result = run(lake, request, tmp_path)

    by_name = {t.name: t for t in result.trials}
    kinds = {t.hyperparameters["validation_fraction"] for t in result.trials}
    assert kinds == {"0.3", "1.5"}, "the seed must give both a good and a bad trial"
    for summary in lake.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=request["HyperParameterTuningJobName"]
    )["TrainingJobSummaries"]:
        job = lake.sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        if summary["TunedHyperParameters"]["validation_fraction"] == "1.5":  # train.py refuses it
            assert job["TrainingJobStatus"] == summary["TrainingJobStatus"] == "Failed"
            assert "validation_fraction=1.5 must be between 0 and 1" in job["FailureReason"]
            assert summary["ObjectiveStatus"] == "Failed"
        else:
            assert job["TrainingJobStatus"] == "Completed"
            assert by_name[summary["TrainingJobName"]].objective is not None
    described = lake.sagemaker.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=request["HyperParameterTuningJobName"]
    )
    assert described["BestTrainingJob"]["TunedHyperParameters"]["validation_fraction"] == "0.3"
    failed = sum(t.status == "Failed" for t in result.trials)
    assert described["TrainingJobStatusCounters"]["NonRetryableError"] == failed
    assert described["ObjectiveStatusCounters"]["Failed"] == failed


XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def test_built_in_xgboost_is_tuned_on_the_algorithms_own_metrics(
    control_plane_url: str, tmp_path: Path
) -> None:
    lake = make_lake(control_plane_url, n=10)
    rng = np.random.default_rng(0)
    channels = {}
    for channel, n in (("train", 800), ("validation", 200)):
        x = rng.normal(size=(n, 4))
        y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=n) > 0).astype(int)
        body = "\n".join(
            ",".join([str(label), *(f"{v:.5f}" for v in row)]) for label, row in zip(y, x, strict=True)
        )
        lake.s3.put_object(Bucket=lake.bucket, Key=f"csv/{channel}/part.csv", Body=body.encode())
        channels[channel] = f"s3://{lake.bucket}/csv/{channel}/"
    training = xgboost_training_request(
        job_name="unused",
        role=SAGEMAKER_ROLE_ARN,
        image_uri=XGBOOST_IMAGE,
        channels=channels,
        output_uri=f"s3://{lake.bucket}/models/xgb/",
        instance_type="ml.m5.large",
        hyperparameters={"num_round": 20, "objective": "binary:logistic"},
    )
    request = tuning_request(
        job_name=f"xgb-{uuid.uuid4().hex[:8]}",
        training=training,
        objective_metric="validation:auc",  # the algorithm's own metric: no MetricDefinitions in the request
        ranges={
            "eta": {"type": "Continuous", "min": 0.05, "max": 0.5, "scaling": "Logarithmic"},
            "max_depth": {"type": "Integer", "min": 1, "max": 6},
        },
        strategy="Bayesian",
        max_jobs=3,
        max_parallel=2,
        random_seed=1,
    )
    result = run(lake, request, tmp_path)

    objectives = {}
    for trial in result.trials:
        job = lake.sagemaker.describe_training_job(TrainingJobName=trial.name)
        assert job["HyperParameters"]["_tuning_objective_metric"] == "validation:auc"
        assert job["HyperParameters"]["eta"] == trial.hyperparameters["eta"]
        objectives[trial.name] = float(re.findall(r"validation-auc:([0-9.]+)", log_of(lake, trial.name))[-1])
        assert trial.objective == pytest.approx(objectives[trial.name])
    described = lake.sagemaker.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=request["HyperParameterTuningJobName"]
    )
    assert described["BestTrainingJob"]["TrainingJobName"] == max(objectives, key=objectives.get)
