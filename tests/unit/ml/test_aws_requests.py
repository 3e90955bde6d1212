"""The ``aws`` target's requests, built exactly as the DAGs build them, checked against the AWS API models
(botocore's parameter validation) and accepted by the control plane (moto) — AWS exercised without AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sagelake.ml.aws_requests import (
    endpoint_request,
    glue_job_kwargs,
    model_package_extras,
    xgboost_training_request,
)
from tests.support.constants import ROOT, SKLEARN_IMAGE_URI
from tests.support.pipeline import DT, RUN_ID, VERSION, rendered_task, training, validate


def test_training_request_is_a_valid_script_mode_create_training_job() -> None:
    request = training()
    validate("sagemaker", "CreateTrainingJob", {**request, "RoleArn": "arn:aws:iam::111122223333:role/r"})
    hps = request["HyperParameters"]
    assert json.loads(hps["sagemaker_program"]) == "train.py"
    assert json.loads(hps["sagemaker_submit_directory"]).startswith("s3://sagelake-lake/code/training/")
    assert all(isinstance(v, str) for v in hps.values())
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith(f"dt={DT}/")


def test_xgboost_request_is_a_valid_built_in_algorithm_job_on_csv_channels() -> None:
    from sagelake.ml.images import is_builtin_xgboost_training, xgboost_image_uri

    request = xgboost_training_request(
        job_name="churn-xgb-1",
        role="arn:aws:iam::111122223333:role/r",
        image_uri=xgboost_image_uri("us-east-1"),
        channels={"train": "s3://lake/t/train/", "validation": "s3://lake/t/validation/"},
        output_uri="s3://lake/models/",
        instance_type="ml.m5.large",
        hyperparameters={"num_round": 50, "eta": 0.1, "eval_metric": ["auc", "logloss"]},
    )
    validate("sagemaker", "CreateTrainingJob", request)
    assert is_builtin_xgboost_training(request)
    assert request["HyperParameters"] == {"num_round": "50", "eta": "0.1", "eval_metric": "auc,logloss"}
    assert [c["ContentType"] for c in request["InputDataConfig"]] == ["text/csv", "text/csv"]


def test_training_image_is_the_regional_sklearn_container() -> None:
    from sagelake.ml.images import sklearn_image_uri

    uri = sklearn_image_uri("eu-west-1", "ml.m5.large")
    assert uri.endswith("sagemaker-scikit-learn:1.4-2-cpu-py3")
    assert ".eu-west-1." in uri


def test_endpoint_requests_are_valid() -> None:
    request = endpoint_request(
        model_name="churn-20261126-abcd1234-v1",
        endpoint_config_name="churn-20261126-abcd1234-v1",
        endpoint_name="sagelake-churn",
        role="arn:aws:iam::111122223333:role/r",
        image_uri="img",
        model_data_url="s3://b/models/churn/j/output/model.tar.gz",
        instance_type="ml.m5.large",
    )
    validate("sagemaker", "CreateModel", request["Model"])
    validate("sagemaker", "CreateEndpointConfig", request["EndpointConfig"])
    validate("sagemaker", "CreateEndpoint", request["Endpoint"])
    validate("sagemaker", "UpdateEndpoint", request["Endpoint"])


def test_only_script_mode_models_name_an_inference_program() -> None:
    from sagelake.ml.images import is_builtin_xgboost_model, xgboost_image_uri

    def container(image: str) -> dict:
        return endpoint_request(
            model_name="m",
            endpoint_config_name="c",
            endpoint_name="e",
            role="arn:aws:iam::111122223333:role/r",
            image_uri=image,
            model_data_url="s3://b/m/model.tar.gz",
            instance_type="ml.m5.large",
        )["Model"]["PrimaryContainer"]

    script = container(SKLEARN_IMAGE_URI)
    assert script["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert not is_builtin_xgboost_model(script)
    builtin = container(xgboost_image_uri("us-east-1"))
    assert "Environment" not in builtin and is_builtin_xgboost_model(builtin)


def test_model_package_request_is_valid() -> None:
    extras = model_package_extras(
        evaluation_uri="s3://b/e.json", metrics={"auc": 0.9}, dt=DT, run_id=RUN_ID, training_job="j"
    )
    request = {
        "InferenceSpecification": {
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelPackageGroupName": "sagelake-churn",
        "ModelApprovalStatus": "PendingManualApproval",
        **extras,
    }
    validate("sagemaker", "CreateModelPackage", request)
    assert extras["CustomerMetadataProperties"]["metric_auc"] == "0.900000"


def test_glue_job_task_renders_arguments_for_the_run_partition() -> None:
    task = rendered_task("churn_prepare.py", "churn_prepare", "glue_churn_features")
    args = task.script_args
    assert args["--dt"] == DT
    assert args["--input_events"] == f"s3://sagelake-lake/raw/events/dt={DT}/"
    # outputs go to this attempt's version of the partition, never to what readers see
    assert (
        args["--output_features"] == f"s3://sagelake-lake/curated/churn_features/dt={DT}/version={VERSION}/"
    )
    assert all(f"dt={DT}/" in v for k, v in args.items() if k.startswith(("--input_", "--output_")))
    assert all(v.endswith(f"/version={VERSION}/") for k, v in args.items() if k.startswith("--output_"))
    assert Path(task.script_location) == ROOT / "include" / "glue" / "churn_features.py"
    validate("glue", "StartJobRun", {"JobName": task.job_name, "Arguments": args})
    validate(
        "glue",
        "CreateJob",
        {
            "Name": task.job_name,
            "Role": "r",
            "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/s.py"},
            **glue_job_kwargs(),
        },
    )


@pytest.mark.parametrize("task_id", ["glue_churn_features", "check_row_count", "wait_for_raw_files"])
def test_a_run_started_by_an_event_works_on_the_partition_in_its_conf(task_id: str) -> None:
    task = rendered_task("churn_prepare.py", "churn_prepare", task_id, conf={"dt": "2026-10-05"})
    rendered = json.dumps([getattr(task, field) for field in task.template_fields], default=str)
    assert "2026-10-05" in rendered and DT not in rendered
