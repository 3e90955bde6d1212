"""Managed Spot training in the CreateTrainingJob requests the DAGs build (script mode and built-in XGBoost),
checked against the AWS API model."""

from __future__ import annotations

import pytest

from sagelake.ml.aws_requests import training_request, xgboost_training_request
from sagelake.ml.images import xgboost_image_uri
from sagelake.ml.spot import SpotSettings, SpotSettingsError
from tests.support.pipeline import validate

ROLE = "arn:aws:iam::111122223333:role/r"
SPOT = SpotSettings(enabled=True, max_wait_s=None, checkpoint_bucket="lake")


def script_request(**kwargs) -> dict:
    return training_request(
        job_name="churn-2024-01-01",
        role=ROLE,
        image_uri="img",
        train_uri="s3://lake/curated/",
        output_uri="s3://lake/models/",
        source_uri="s3://lake/code/sourcedir.tar.gz",
        instance_type="ml.m5.large",
        hyperparameters={"max_iter": 100},
        max_runtime_s=1200,
        **kwargs,
    )


def xgb_request(**kwargs) -> dict:
    return xgboost_training_request(
        job_name="churn-xgb-1",
        role=ROLE,
        image_uri=xgboost_image_uri("us-east-1"),
        channels={"train": "s3://lake/t/train/"},
        output_uri="s3://lake/models/",
        instance_type="ml.m5.large",
        hyperparameters={"num_round": 50},
        max_runtime_s=1200,
        **kwargs,
    )


@pytest.mark.parametrize("build", [script_request, xgb_request])
def test_default_requests_are_on_demand(build) -> None:
    for request in (
        build(),
        build(spot=None),
        build(spot=SpotSettings(enabled=False, checkpoint_bucket="x")),
    ):
        assert "EnableManagedSpotTraining" not in request
        assert "CheckpointConfig" not in request
        assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 1200}


@pytest.mark.parametrize("build", [script_request, xgb_request])
def test_spot_requests_are_valid_and_checkpoint_under_their_job_name(build) -> None:
    request = build(spot=SPOT)
    validate("sagemaker", "CreateTrainingJob", request)
    job = request["TrainingJobName"]
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 1200, "MaxWaitTimeInSeconds": 2400}
    assert request["CheckpointConfig"] == {
        "S3Uri": f"s3://lake/checkpoints/{job}/",
        "LocalPath": "/opt/ml/checkpoints",
    }


@pytest.mark.parametrize("build", [script_request, xgb_request])
def test_a_wait_below_the_runtime_is_refused(build) -> None:
    with pytest.raises(SpotSettingsError, match="MaxWaitTimeInSeconds=600 is shorter"):
        build(spot=SpotSettings(enabled=True, max_wait_s=600, checkpoint_bucket="lake"))
