"""The two training algorithms as requests: channels, static hyperparameters, tuning ranges, objective."""

from __future__ import annotations

import json

import pytest

from sagelake.ml.algorithms import (
    ALGORITHMS,
    OBJECTIVE_METRIC,
    UnknownAlgorithmError,
    algorithm,
    training_definition,
    tuning_config,
)
from sagelake.ml.images import is_builtin_xgboost_training
from sagelake.ml.spot import SpotSettings
from sagelake.ml.tuning import metric_definitions_of, ranges_of
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN

CHANNELS = {
    "sklearn": {"train": "s3://lake/t/train/"},
    "xgboost": {"train": "s3://lake/t/train/", "validation": "s3://lake/t/validation/"},
}


def definition(name: str, **kwargs) -> dict:
    return training_definition(
        algorithm(name),
        job_name="churn-20261120-abcd1234",
        role=SAGEMAKER_ROLE_ARN,
        region=REGION,
        instance_type="ml.m5.large",
        channels=CHANNELS[name],
        output_uri="s3://lake/models/",
        source_uri="s3://lake/code/sourcedir.tar.gz" if name == "sklearn" else None,
        **kwargs,
    )


def test_script_mode_reads_one_parquet_channel_in_the_sklearn_container() -> None:
    request = definition("sklearn")
    assert ":1.4-2-cpu-py3" in request["AlgorithmSpecification"]["TrainingImage"]
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train"]
    assert json.loads(request["HyperParameters"]["sagemaker_program"]) == "train.py"
    assert not is_builtin_xgboost_training(request)


def test_builtin_xgboost_reads_csv_train_and_validation() -> None:
    request = definition("xgboost")
    assert is_builtin_xgboost_training(request)
    assert {c["ChannelName"]: c["ContentType"] for c in request["InputDataConfig"]} == {
        "train": "text/csv",
        "validation": "text/csv",
    }
    assert request["HyperParameters"]["objective"] == "binary:logistic"


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_tuning_searches_the_ranges_and_maximises_validation_auc(name: str) -> None:
    spec = algorithm(name)
    config = tuning_config(
        spec, job_name="churn-20261120-abcd1234", training=definition(name), max_jobs=3, max_parallel=2
    )
    objective = config["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"Type": "Maximize", "MetricName": OBJECTIVE_METRIC}
    assert sorted(r.name for r in ranges_of(config)) == sorted(spec.ranges)
    static = config["TrainingJobDefinition"]["StaticHyperParameters"]
    assert not set(spec.ranges) & set(static)  # a tuned hyperparameter is never also fixed
    assert OBJECTIVE_METRIC in [d["Name"] for d in metric_definitions_of(config["TrainingJobDefinition"])]
    limits = config["HyperParameterTuningJobConfig"]["ResourceLimits"]
    assert limits == {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2}


def test_unknown_algorithm_and_missing_script_are_refused() -> None:
    with pytest.raises(UnknownAlgorithmError, match="sklearn, xgboost"):
        algorithm("lightgbm")
    with pytest.raises(ValueError, match="source_uri"):
        training_definition(
            algorithm("sklearn"),
            job_name="j",
            role=SAGEMAKER_ROLE_ARN,
            region=REGION,
            instance_type="ml.m5.large",
            channels=CHANNELS["sklearn"],
            output_uri="s3://lake/models/",
        )


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_spot_trials_checkpoint_under_the_tuning_job(name: str) -> None:
    spot = SpotSettings(enabled=True, max_wait_s=7200, checkpoint_bucket="lake")
    config = tuning_config(
        algorithm(name),
        job_name="churn-20261120-abcd1234",
        training=definition(name, spot=spot),
        max_jobs=2,
        max_parallel=1,
    )
    shared = config["TrainingJobDefinition"]
    assert shared["EnableManagedSpotTraining"] is True
    assert shared["StoppingCondition"]["MaxWaitTimeInSeconds"] == 7200
    assert shared["CheckpointConfig"]["S3Uri"] == "s3://lake/checkpoints/churn-20261120-abcd1234/"
    assert "EnableManagedSpotTraining" not in definition(name)  # off unless the deployment turns it on
