"""The local tuning engine's rules without servers: how many trials run at once, which requests it refuses,
how a trial's log lands in CloudWatch Logs."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest

from sagelake.local import tuning_runner
from sagelake.local.tuning_runner import (
    TRAINING_LOG_GROUP,
    check_runnable,
    parallelism,
    trial_threads,
    write_trial_log,
)
from sagelake.ml.tuning import SCRIPT_METRIC_DEFINITIONS, TuningSpecError, tuning_request
from tests.support.constants import SAGEMAKER_ROLE_ARN
from tests.support.pipeline import training


def request(**kwargs: Any) -> dict:
    return tuning_request(
        job_name="churn-hpo-20261126-ab12cd34",
        training={**training(), "RoleArn": SAGEMAKER_ROLE_ARN},
        objective_metric="validation:auc",
        ranges={"max_depth": {"type": "Integer", "min": 2, "max": 6}},
        metric_definitions=SCRIPT_METRIC_DEFINITIONS,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("max_parallel", "cores", "limit", "expected"),
    [(2, 8, None, 2), (4, 2, None, 2), (4, 8, 3, 3), (1, 8, None, 1)],
)
def test_parallelism_is_bounded_by_the_request_and_the_cores(max_parallel, cores, limit, expected) -> None:
    built = request(max_jobs=4, max_parallel=max_parallel)
    assert parallelism(built, cores=cores, limit=limit) == expected


def test_a_runnable_request_gives_its_trial_count_and_strategy() -> None:
    assert check_runnable(request(max_jobs=5, max_parallel=2, strategy="Random")) == (5, "Random")


def test_early_stopping_auto_runs_every_trial_and_says_so(caplog) -> None:
    assert check_runnable(request(early_stopping="Auto")) == (4, "Bayesian")
    assert "runs every trial to its end locally" in caplog.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Hyperband"), "does not run locally"),
        (lambda r: r.update(WarmStartConfig={"WarmStartType": "TransferLearning"}), "WarmStartConfig"),
        (
            lambda r: r.update(TrainingJobDefinitions=[r["TrainingJobDefinition"]]),
            "one TrainingJobDefinition",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ResourceLimits"].pop("MaxNumberOfTrainingJobs"),
            ">= 1",
        ),
        (lambda r: r["HyperParameterTuningJobConfig"].pop("ParameterRanges"), "no ParameterRanges"),
        (
            lambda r: r["TrainingJobDefinition"]["AlgorithmSpecification"].pop("MetricDefinitions"),
            "no Metric",
        ),
    ],
)
def test_what_does_not_run_locally_is_refused_by_name(change, message) -> None:
    built = copy.deepcopy(request())
    change(built)
    with pytest.raises(TuningSpecError, match=message):
        check_runnable(built)


class FakeLogs:
    def __init__(self) -> None:
        self.groups: set[str] = set()
        self.streams: dict[str, list[dict]] = {}

    def create_log_group(self, logGroupName: str) -> None:
        self.groups.add(logGroupName)

    def create_log_stream(self, logGroupName: str, logStreamName: str) -> None:
        assert logGroupName in self.groups
        self.streams[logStreamName] = []

    def put_log_events(self, logGroupName: str, logStreamName: str, logEvents: list[dict]) -> None:
        assert len(logEvents) <= 10_000  # the API's limit per call
        self.streams[logStreamName] += logEvents


def test_a_trial_log_lands_where_sagemaker_writes_it() -> None:
    logs = FakeLogs()
    text = "\n".join(["trained on 8 rows", "", *[f"validation:auc=0.{i:04d}" for i in range(12_000)]])
    stream = write_trial_log(logs, "hpo-001-abcdef12", text, start=1_700_000_000.5)
    assert TRAINING_LOG_GROUP == "/aws/sagemaker/TrainingJobs"
    assert stream == "hpo-001-abcdef12/algo-1-1700000000"
    events = logs.streams[stream]
    assert [e["message"] for e in events] == [line for line in text.splitlines() if line]  # order kept
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert (
        write_trial_log(logs, "empty", "\n \n", start=1.0) is None
        and write_trial_log(None, "x", "a", 1.0) is None
    )


def test_parallel_trials_share_the_cores_and_the_environment_is_restored(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(tuning_runner, "available_cores", lambda: 8)
    with trial_threads(3) as threads:
        assert threads == os.environ["OMP_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in os.environ
    with trial_threads(16) as threads:
        assert threads == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # set by the operator of the machine: kept
    with trial_threads(2) as threads:
        assert threads == "5"
    assert os.environ["OMP_NUM_THREADS"] == "5"
