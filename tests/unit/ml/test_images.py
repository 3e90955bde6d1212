"""Image URIs from the SageMaker SDK, and telling built-in XGBoost apart from script mode."""

from __future__ import annotations

import re

import pytest

from sagelake.ml.aws_requests import training_request
from sagelake.ml.images import (
    is_builtin_xgboost_model,
    is_builtin_xgboost_training,
    is_xgboost_image,
    sklearn_image_uri,
    xgboost_image_uri,
    xgboost_metric_definitions,
)


@pytest.mark.parametrize(
    ("region", "account"), [("us-east-1", "683313688378"), ("eu-west-1", "141502667606")]
)
def test_xgboost_image_uri_comes_from_the_sdk_table(region: str, account: str) -> None:
    uri = xgboost_image_uri(region)
    assert uri == f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:1.7-1"
    assert is_xgboost_image(uri)
    assert xgboost_image_uri(region, "1.5-1").endswith("/sagemaker-xgboost:1.5-1")


def test_deployment_settings_name_the_images_where_the_sdk_is_missing(monkeypatch) -> None:
    import sys

    sdk = sklearn_image_uri("us-east-1", "ml.m5.large")
    private = "111122223333.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"  # a private copy
    monkeypatch.setenv("SAGELAKE_XGBOOST_IMAGE_URI", private)
    monkeypatch.setenv("SAGELAKE_SKLEARN_IMAGE_URI", sdk)
    monkeypatch.setitem(sys.modules, "sagemaker.core", None)  # as on MWAA: the SDK cannot be imported
    assert xgboost_image_uri("us-east-1") == private and is_xgboost_image(private)
    assert sklearn_image_uri("us-east-1", "ml.m5.large") == sdk
    monkeypatch.delenv("SAGELAKE_XGBOOST_IMAGE_URI")
    with pytest.raises(ImportError):
        xgboost_image_uri("us-east-1")


def test_only_the_xgboost_repository_counts() -> None:
    assert not is_xgboost_image(sklearn_image_uri("us-east-1", "ml.m5.large"))
    assert is_xgboost_image("811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1")  # the legacy image
    assert is_xgboost_image("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost@sha256:ab12")
    assert not is_xgboost_image("123.dkr.ecr.us-east-1.amazonaws.com/my-xgboost-fork:1.7-1")
    assert not is_xgboost_image(None) and not is_xgboost_image("sagemaker-xgboost")


def builtin_request(image: str) -> dict:
    return {
        "TrainingJobName": "j",
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": {"num_round": "10", "objective": "binary:logistic"},
    }


def test_builtin_training_is_the_xgboost_image_without_a_script() -> None:
    image = xgboost_image_uri("us-east-1")
    assert is_builtin_xgboost_training(builtin_request(image))
    script_mode = training_request(
        job_name="j",
        role="arn:aws:iam::123456789012:role/r",
        image_uri=image,
        train_uri="s3://b/train/",
        output_uri="s3://b/out/",
        source_uri="s3://b/code/sourcedir.tar.gz",
        instance_type="ml.m5.large",
        hyperparameters={"num_round": 10},
    )
    assert not is_builtin_xgboost_training(script_mode)  # the XGBoost framework, script mode
    assert not is_builtin_xgboost_training(builtin_request(sklearn_image_uri("us-east-1", "ml.m5.large")))


def test_builtin_model_is_the_xgboost_image_without_an_inference_program() -> None:
    image = xgboost_image_uri("us-east-1")
    assert is_builtin_xgboost_model({"Image": image, "ModelDataUrl": "s3://b/m.tar.gz"})
    assert not is_builtin_xgboost_model(
        {"Image": image, "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}
    )
    assert not is_builtin_xgboost_model({"Image": sklearn_image_uri("us-east-1", "ml.m5.large")})


def test_metric_definitions_parse_the_container_log_line() -> None:
    definitions = {d["Name"]: re.compile(d["Regex"]) for d in xgboost_metric_definitions()}
    line = "[12]#011train-auc:0.91429#011train-logloss:0.30000#011validation-auc:0.80998"
    found = {name: float(r.match(line).group(1)) for name, r in definitions.items() if r.match(line)}
    assert found == {"train:auc": 0.91429, "train:logloss": 0.3, "validation:auc": 0.80998}
    assert definitions["validation:auc"].match("[0]#011validation-auc:1e-05").group(1) == "1e-05"
    assert not definitions["validation:auc"].match("validation-auc:0.5")  # no round number
