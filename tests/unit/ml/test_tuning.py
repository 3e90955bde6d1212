"""Tuning as plain functions: the request SageMaker accepts, metrics read as SageMaker reads them, values
sampled inside their ranges, the best trial for either objective type."""

from __future__ import annotations

import math
import random
import re
import statistics

import pytest

from sagelake.ml.tuning import (
    MAX_TUNING_JOB_NAME_LEN,
    SCRIPT_METRIC_DEFINITIONS,
    ParameterRange,
    Sampler,
    Trial,
    TuningSpecError,
    best_training_job_name,
    best_trial,
    objective_of,
    parse_metric,
    parse_metrics,
    ranges_of,
    sample_value,
    seed_of,
    trial_job_name,
    trial_request,
    tuning_job_name,
    tuning_request,
)
from tests.support.constants import SAGEMAKER_ROLE_ARN
from tests.support.pipeline import training as pipeline_training
from tests.support.pipeline import validate
from tests.support.training_data import load_script


def training() -> dict:
    """The pipeline's CreateTrainingJob request, with the role as an ARN (what the operator expands it to)."""
    return {**pipeline_training(), "RoleArn": SAGEMAKER_ROLE_ARN}


RANGES = {
    "max_iter": {"type": "Integer", "min": 50, "max": 300},
    "max_depth": {"type": "Integer", "min": 2, "max": 64, "scaling": "Logarithmic"},
    "learning_rate": {"type": "Continuous", "min": 0.001, "max": 0.5, "scaling": "Logarithmic"},
    "momentum": {"type": "Continuous", "min": 0.9, "max": 0.999, "scaling": "ReverseLogarithmic"},
    "loss": {"type": "Categorical", "values": ["log_loss", "exponential"]},
}


def request(**kwargs) -> dict:
    options = {
        "job_name": "churn-hpo-20261126-ab12cd34",
        "training": training(),
        "objective_metric": "validation:auc",
        "ranges": RANGES,
        "metric_definitions": SCRIPT_METRIC_DEFINITIONS,
        "random_seed": 11,
        **kwargs,
    }
    return tuning_request(**options)


@pytest.mark.parametrize("strategy", ["Bayesian", "Random"])
def test_the_request_is_valid_for_the_sagemaker_api(strategy: str) -> None:
    built = request(strategy=strategy, max_jobs=6, max_parallel=3, early_stopping="Auto")
    validate("sagemaker", "CreateHyperParameterTuningJob", built)
    config = built["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == strategy
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ParameterRanges"] == {
        "IntegerParameterRanges": [
            {"Name": "max_iter", "MinValue": "50", "MaxValue": "300", "ScalingType": "Auto"},
            {"Name": "max_depth", "MinValue": "2", "MaxValue": "64", "ScalingType": "Logarithmic"},
        ],
        "ContinuousParameterRanges": [
            {"Name": "learning_rate", "MinValue": "0.001", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
            {"Name": "momentum", "MinValue": "0.9", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
        ],
        "CategoricalParameterRanges": [{"Name": "loss", "Values": ["log_loss", "exponential"]}],
    }


def test_the_definition_carries_the_training_request_minus_the_tuned_values() -> None:
    source = training()
    definition = request()["TrainingJobDefinition"]
    static = definition["StaticHyperParameters"]
    assert source["HyperParameters"].keys() >= {"max_iter", "learning_rate"}
    assert set(static) == {"sagemaker_program", "sagemaker_submit_directory"}  # tuned ones are not static
    assert static["sagemaker_program"] == source["HyperParameters"]["sagemaker_program"]
    assert (
        definition["AlgorithmSpecification"]["TrainingImage"]
        == source["AlgorithmSpecification"]["TrainingImage"]
    )
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == list(SCRIPT_METRIC_DEFINITIONS)
    for key in ("RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition"):
        assert definition[key] == source[key]
    assert "TrainingJobName" not in definition and "HyperParameters" not in definition


def test_built_in_xgboost_is_tuned_on_its_own_metrics_and_told_the_objective() -> None:
    built_in = training()
    built_in["HyperParameters"] = {"num_round": "100", "objective": "binary:logistic"}
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    built_in["AlgorithmSpecification"] = {"TrainingImage": image, "TrainingInputMode": "File"}
    built = request(training=built_in, metric_definitions=None, ranges={"eta": RANGES["learning_rate"]})
    validate("sagemaker", "CreateHyperParameterTuningJob", built)
    definition = built["TrainingJobDefinition"]
    assert "MetricDefinitions" not in definition["AlgorithmSpecification"]  # the algorithm defines them
    assert definition["StaticHyperParameters"] == {
        "num_round": "100",
        "objective": "binary:logistic",
        "_tuning_objective_metric": "validation:auc",
    }
    _, _, regex = objective_of(built)
    assert (
        parse_metric(
            "[0]#011train-auc:0.90#011validation-auc:0.70\n[9]#011train-auc:0.99#011validation-auc:0.81",
            regex,
        )
        == 0.81
    )
    assert "_tuning_objective_metric" not in request()["TrainingJobDefinition"]["StaticHyperParameters"]
    with pytest.raises(TuningSpecError, match="not in MetricDefinitions"):
        request(training=built_in, metric_definitions=None, objective_metric="validation:bogus")


def test_a_trial_request_is_a_valid_training_job_with_static_and_tuned_values() -> None:
    built = request()
    values = {
        "max_iter": "120",
        "max_depth": "4",
        "learning_rate": "0.05",
        "momentum": "0.95",
        "loss": "log_loss",
    }
    name = trial_job_name(built["HyperParameterTuningJobName"], 3, values)
    trial = trial_request(built, name, values)
    validate("sagemaker", "CreateTrainingJob", trial)
    assert trial["TrainingJobName"] == name
    assert trial["HyperParameters"] == {**built["TrainingJobDefinition"]["StaticHyperParameters"], **values}


def test_each_trial_checkpoints_under_its_own_prefix() -> None:
    built = request()
    built["TrainingJobDefinition"]["EnableManagedSpotTraining"] = True
    built["TrainingJobDefinition"]["CheckpointConfig"] = {
        "S3Uri": "s3://lake/checkpoints/churn-hpo/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    first, second = (trial_request(built, f"churn-hpo-00{i}-abcd", {"max_iter": "9"}) for i in (1, 2))
    assert first["CheckpointConfig"]["S3Uri"] == "s3://lake/checkpoints/churn-hpo/churn-hpo-001-abcd/"
    assert second["CheckpointConfig"]["S3Uri"] == "s3://lake/checkpoints/churn-hpo/churn-hpo-002-abcd/"
    assert built["TrainingJobDefinition"]["CheckpointConfig"]["S3Uri"] == "s3://lake/checkpoints/churn-hpo/"
    validate("sagemaker", "CreateTrainingJob", first)


def test_trial_names_follow_sagemakers_pattern_and_are_stable() -> None:
    values = {"max_iter": "120"}
    name = trial_job_name("churn-hpo-20261126-ab12cd34", 7, values)
    assert re.fullmatch(r"churn-hpo-20261126-ab12cd34-007-[0-9a-f]{8}", name)
    assert name == trial_job_name("churn-hpo-20261126-ab12cd34", 7, dict(values))
    assert name != trial_job_name("churn-hpo-20261126-ab12cd34", 7, {"max_iter": "121"})
    assert len(trial_job_name("a" * MAX_TUNING_JOB_NAME_LEN, 999, values)) <= 63


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"job_name": "x" * 33}, "must be 1-32"),
        ({"strategy": "Hyperband"}, "strategy must be one of"),
        ({"objective_type": "Largest"}, "Maximize or Minimize"),
        ({"early_stopping": "On"}, "Off or Auto"),
        ({"max_jobs": 2, "max_parallel": 3}, "max_parallel"),
        ({"objective_metric": "validation:recall"}, "not in MetricDefinitions"),
        ({"ranges": {}}, "at least one"),
        ({"ranges": {"a": {"type": "Integer", "min": 5, "max": 5}}}, "must be below"),
        ({"ranges": {"a": {"type": "Integer", "min": 1.5, "max": 5}}}, "whole numbers"),
        ({"ranges": {"a": {"type": "Continuous", "min": 0, "max": 1, "scaling": "Logarithmic"}}}, "min > 0"),
        (
            {"ranges": {"a": {"type": "Continuous", "min": 0.5, "max": 1, "scaling": "ReverseLogarithmic"}}},
            "[0, 1)",
        ),
        ({"ranges": {"a": {"type": "Categorical", "values": []}}}, "categorical values"),
        ({"ranges": {"a": {"type": "Ordinal", "values": [1]}}}, "type must be one of"),
        ({"metric_definitions": [{"Name": "validation:auc", "Regex": "auc=.*"}]}, "capture the value"),
        ({"metric_definitions": [{"Name": "validation:auc", "Regex": "auc=(["}]}, "bad regex"),
    ],
)
def test_a_bad_spec_is_refused_with_what_to_change(change: dict, message: str) -> None:
    with pytest.raises(TuningSpecError, match=re.escape(message)):
        request(**change)


def test_ranges_and_objective_read_back_from_the_request() -> None:
    built = request(objective_type="Minimize", objective_metric="validation:log_loss")
    assert [r.name for r in ranges_of(built)] == [
        "max_iter",
        "max_depth",
        "learning_rate",
        "momentum",
        "loss",
    ]
    name, kind, regex = objective_of(built)
    assert (name, kind) == ("validation:log_loss", "Minimize")
    assert parse_metric("validation:log_loss=0.41\n", regex) == 0.41


# --- metrics -----------------------------------------------------------------------------------------------


def test_the_last_match_wins_and_non_numbers_are_ignored() -> None:
    log = "\n".join(
        [
            "epoch 1 validation:auc=0.61",
            "validation:auc=0.75",
            "validation:auc=nan-ish",
            "noise validation:auc=0.8 trailing",
            "validation:auc=0.7712",
        ]
    )
    assert parse_metric(log, r"validation:auc=([0-9.]+)") == 0.7712
    assert parse_metric(log, r"validation:auc=(\S+)") == 0.7712  # "nan-ish" is not a number
    assert parse_metric("validation:auc=0.5\nvalidation:auc=nan-ish", r"validation:auc=(\S+)") == 0.5
    assert parse_metric("nothing here", r"auc=(\S+)") is None
    assert parse_metric("loss=1e-3", r"loss=(\S+)") == 0.001


def test_the_script_definitions_read_what_train_py_prints(capsys, monkeypatch, tmp_path) -> None:
    train = load_script("train")
    evaluation = {
        "metrics": {"auc": 0.81234567, "accuracy": 0.7, "f1": 0.5, "log_loss": 0.43},
        "n_train": 8,
        "n_validation": 2,
    }
    monkeypatch.setattr(train, "run", lambda args: evaluation)
    assert train.main(["--model-dir", str(tmp_path), "--train", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert parse_metrics(printed, SCRIPT_METRIC_DEFINITIONS) == {
        "validation:auc": 0.812346,
        "validation:accuracy": 0.7,
        "validation:f1": 0.5,
        "validation:log_loss": 0.43,
    }


# --- sampling ----------------------------------------------------------------------------------------------


def test_samples_stay_inside_their_ranges_and_match_the_scaling() -> None:
    ranges = ranges_of(request())
    source = random.Random(5)
    draws = {r.name: [sample_value(r, source) for _ in range(3000)] for r in ranges}
    ints = [int(v) for v in draws["max_iter"]]
    assert min(ints) >= 50 and max(ints) <= 300 and {50, 300} <= set(ints)  # bounds reachable
    depths = [int(v) for v in draws["max_depth"]]
    assert min(depths) >= 2 and max(depths) <= 64
    assert statistics.median(depths) < 16  # log scaling: half the draws below the geometric middle (~11.5)
    rates = [float(v) for v in draws["learning_rate"]]
    assert all(0.001 <= r <= 0.5 for r in rates)
    assert math.isclose(statistics.median(rates), math.sqrt(0.001 * 0.5), rel_tol=0.15)
    momenta = [float(v) for v in draws["momentum"]]
    assert all(0.9 <= m <= 0.999 for m in momenta)
    assert statistics.median(momenta) > (0.9 + 0.999) / 2  # reverse-log: dense near 1
    assert set(draws["loss"]) == {"log_loss", "exponential"}


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_proposals_are_seeded_and_inside_the_ranges(strategy: str) -> None:
    ranges = ranges_of(request())

    def proposals(seed: int) -> list[dict]:
        sampler = Sampler(ranges, strategy=strategy, seed=seed)
        finished, out = [], []
        for i in range(6):
            values = sampler.propose(finished, [])
            out.append(values)
            finished.append((values, float(values["max_iter"]) / 300 - i * 0.01))
        return out

    first = proposals(1)
    assert first == proposals(1) and first != proposals(2)
    for values in first:
        assert 50 <= int(values["max_iter"]) <= 300 and 0.001 <= float(values["learning_rate"]) <= 0.5
        assert values["loss"] in {"log_loss", "exponential"}


def test_bayesian_proposals_favour_the_better_region_after_the_initial_points() -> None:
    """On a 1-D objective peaking at x=0.8, later proposals land nearer the peak than random ones do."""
    rng = ParameterRange("x", "Continuous", 0.0, 1.0, "Linear")

    def run(strategy: str) -> list[float]:
        sampler = Sampler([rng], strategy=strategy, seed=3, initial_points=3, exploration=0.05)
        finished: list = []
        for _ in range(12):
            values = sampler.propose(finished, [])
            finished.append((values, -((float(values["x"]) - 0.8) ** 2)))
        return [abs(float(v["x"]) - 0.8) for v, _ in finished[3:]]

    assert statistics.mean(run("Bayesian")) < statistics.mean(run("Random")) / 2


def test_the_seed_comes_from_the_request_or_its_name() -> None:
    assert seed_of(request(random_seed=42)) == 42
    unseeded = request(random_seed=None)
    assert "RandomSeed" not in unseeded["HyperParameterTuningJobConfig"]
    assert seed_of(unseeded) == seed_of(request(random_seed=None))
    assert seed_of(unseeded) != seed_of(request(random_seed=None, job_name="other-name"))


# --- the best trial ----------------------------------------------------------------------------------------


TRIALS = [
    Trial("t-001", {"a": "1"}, "Completed", 0.70),
    Trial("t-002", {"a": "2"}, "Completed", 0.82),
    Trial("t-003", {"a": "3"}, "Failed", 0.99, failure_reason="crashed"),
    Trial("t-004", {"a": "4"}, "Completed", None),
    Trial("t-005", {"a": "5"}, "Completed", 0.65),
    Trial("t-006", {"a": "6"}, "Completed", 0.82),
]


def test_best_trial_for_maximize_and_minimize() -> None:
    assert best_trial(TRIALS, "Maximize").name == "t-002"  # the tie with t-006 goes to the earlier trial
    assert best_trial(TRIALS, "Minimize").name == "t-005"
    assert best_trial([TRIALS[2], TRIALS[3]], "Maximize") is None  # failed or no objective: never best
    with pytest.raises(TuningSpecError):
        best_trial(TRIALS, "Best")


def test_a_taken_tuning_job_name_gets_a_numbered_one_within_32_characters() -> None:
    base = "churn-hpo-20261126-ab12cd34efgh"  # 31 characters
    taken = {base, base[:29] + "-r2"}
    name = tuning_job_name(base, taken.__contains__)
    assert name == base[:29] + "-r3" and len(name) <= MAX_TUNING_JOB_NAME_LEN
    assert tuning_job_name("free", taken.__contains__) == "free"


def test_best_training_job_name_reads_the_operator_result() -> None:
    result = {"Tuning": {"BestTrainingJob": {"TrainingJobName": "t-002"}}}
    assert best_training_job_name(result) == "t-002"
    with pytest.raises(TuningSpecError, match="no best training job"):
        best_training_job_name({"Tuning": {"HyperParameterTuningJobStatus": "Failed"}})
