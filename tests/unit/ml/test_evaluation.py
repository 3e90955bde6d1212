"""The evaluation step's requests: a valid CreateProcessingJob (botocore's model) with and without a
champion, the container image for each pair of model kinds, the report's place in the lake, and
ModelMetrics valid for CreateModelPackage."""

from __future__ import annotations

import pytest
from botocore.exceptions import ParamValidationError

from sagelake.ml.evaluation import (
    EVALUATION_SCRIPT,
    EvaluationImageError,
    evaluation_image_uri,
    evaluation_request,
    model_metrics,
    output_files_to_xcom,
    publish_evaluation_code,
    report_files,
    report_prefix,
)
from sagelake.ml.images import (
    is_xgboost_image,
    sklearn_image_uri,
    xgboost_image_uri,
)
from tests.support.constants import SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.pipeline import DT, validate

REPORT = report_prefix("sagelake-lake", DT, "churn-eval-20261126-abcd1234")
CHALLENGER = "s3://sagelake-lake/models/churn/churn-20261126-abcd1234/output/model.tar.gz"
CHAMPION = "s3://sagelake-lake/models/churn/churn-20261125-0000ffff/output/model.tar.gz"
CODE = "s3://sagelake-lake/code/evaluation/0123456789abcdef/evaluate.py"
HOLDOUT = "s3://sagelake-lake/curated/churn_features/dt=2026-11-26/version=v1/"


def request(**overrides) -> dict:
    return evaluation_request(
        job_name="churn-eval-20261126-abcd1234",
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        code_uri=CODE,
        challenger_model_uri=CHALLENGER,
        holdout_uri=HOLDOUT,
        report_uri=REPORT,
        instance_type="ml.m5.large",
        **overrides,
    )


def test_report_lives_in_the_lake_by_partition_and_job() -> None:
    assert REPORT == "s3://sagelake-lake/reports/evaluation/dt=2026-11-26/churn-eval-20261126-abcd1234/"
    assert report_files(REPORT)["model_quality"] == REPORT + "model_quality.json"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        report_prefix("b", "26-11-2026", "job")


def test_request_with_a_champion_is_valid_and_scores_both_models() -> None:
    config = request(champion_model_uri=CHAMPION, threshold=0.4)
    validate("sagemaker", "CreateProcessingJob", config)
    inputs = {i["InputName"]: i["S3Input"] for i in config["ProcessingInputs"]}
    assert {name: (i["S3Uri"], i["LocalPath"]) for name, i in inputs.items()} == {
        "code": (CODE, "/opt/ml/processing/input/code"),
        "challenger": (CHALLENGER, "/opt/ml/processing/input/challenger"),
        "champion": (CHAMPION, "/opt/ml/processing/input/champion"),
        "holdout": (HOLDOUT, "/opt/ml/processing/input/holdout"),
    }
    app = config["AppSpecification"]
    assert app["ImageUri"] == SKLEARN_IMAGE_URI
    assert app["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/evaluate.py"]
    args = app["ContainerArguments"]
    assert args[args.index("--champion") + 1] == "/opt/ml/processing/input/champion"
    assert args[args.index("--threshold") + 1] == "0.4"
    (output,) = config["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"] == {
        "S3Uri": REPORT.rstrip("/"),
        "LocalPath": "/opt/ml/processing/output/report",
        "S3UploadMode": "EndOfJob",
    }


def test_request_without_a_champion_has_no_champion_input_or_argument() -> None:
    config = request()
    validate("sagemaker", "CreateProcessingJob", config)
    assert [i["InputName"] for i in config["ProcessingInputs"]] == ["code", "challenger", "holdout"]
    assert "--champion" not in config["AppSpecification"]["ContainerArguments"]


def test_the_request_is_strict_about_what_it_is_given() -> None:
    with pytest.raises(ValueError, match="must name the evaluation script"):
        evaluation_request(**{**base_kwargs(), "code_uri": "s3://b/code/evaluation/"})
    with pytest.raises(ValueError, match="champion_model_uri .* is not a SageMaker"):
        request(champion_model_uri="s3://b/models/x/")
    with pytest.raises(ParamValidationError):  # the validator itself is not vacuous
        validate("sagemaker", "CreateProcessingJob", {**request(), "ProcessingResources": {}})


def base_kwargs() -> dict:
    return {
        "job_name": "j",
        "role": SAGEMAKER_ROLE_ARN,
        "image_uri": SKLEARN_IMAGE_URI,
        "code_uri": CODE,
        "challenger_model_uri": CHALLENGER,
        "holdout_uri": HOLDOUT,
        "report_uri": REPORT,
        "instance_type": "ml.m5.large",
    }


def test_model_metrics_point_to_the_challengers_statistics_and_are_a_valid_package_field() -> None:
    metrics = model_metrics(REPORT)
    assert metrics == {
        "ModelQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": REPORT + "model_quality.json"}
        }
    }
    validate(
        "sagemaker",
        "CreateModelPackage",
        {
            "ModelPackageGroupName": "sagelake-churn",
            "InferenceSpecification": {
                "Containers": [{"Image": SKLEARN_IMAGE_URI, "ModelDataUrl": CHALLENGER}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "ModelMetrics": metrics,
        },
    )


def test_output_files_to_xcom_names_the_report_output() -> None:
    (entry,) = output_files_to_xcom()
    assert entry["output_name"] == request()["ProcessingOutputConfig"]["Outputs"][0]["OutputName"]
    assert entry["file_name"] == "metrics.json"


class RecordingS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        self.objects[(Bucket, Key)] = Body


def test_the_script_is_published_content_addressed_and_idempotently() -> None:
    s3 = RecordingS3()
    uri = publish_evaluation_code(s3, "sagelake-lake")
    assert publish_evaluation_code(s3, "sagelake-lake") == uri
    assert uri.startswith("s3://sagelake-lake/code/evaluation/") and uri.endswith("/evaluate.py")
    assert list(s3.objects.values()) == [EVALUATION_SCRIPT.read_bytes()]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
@pytest.mark.parametrize("champion", [None, False])
def test_script_mode_models_are_evaluated_in_the_scikit_learn_container(region, champion) -> None:
    uri = evaluation_image_uri(
        region, "ml.m5.large", challenger_builtin_xgboost=False, champion_builtin_xgboost=champion
    )
    assert uri == sklearn_image_uri(region, "ml.m5.large") and f".{region}." in uri
    assert not is_xgboost_image(uri)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
@pytest.mark.parametrize("champion", [None, True])
def test_builtin_xgboost_models_are_evaluated_in_the_xgboost_container(region, champion) -> None:
    uri = evaluation_image_uri(
        region, "ml.m5.large", challenger_builtin_xgboost=True, champion_builtin_xgboost=champion
    )
    assert uri == xgboost_image_uri(region) and uri.endswith(":1.7-1") and f".{region}." in uri
    assert is_xgboost_image(uri)


@pytest.mark.parametrize(
    ("challenger", "champion", "builtin", "script"),
    [(True, False, "challenger", "champion"), (False, True, "champion", "challenger")],
)
def test_a_mixed_pair_is_refused_on_aws_naming_the_fix(challenger, champion, builtin, script) -> None:
    with pytest.raises(EvaluationImageError) as raised:
        evaluation_image_uri(
            "us-east-1",
            "ml.m5.large",
            challenger_builtin_xgboost=challenger,
            champion_builtin_xgboost=champion,
        )
    message = str(raised.value)
    assert f"the {builtin} is a built-in XGBoost model and the {script} a script-mode" in message
    assert "scikit-learn 1.4" in message and "Fix: train the challenger the way the champion" in message


def test_a_mixed_pair_runs_locally_where_one_interpreter_has_both() -> None:
    for challenger, champion in ((True, False), (False, True)):
        uri = evaluation_image_uri(
            "us-east-1",
            "ml.m5.large",
            challenger_builtin_xgboost=challenger,
            champion_builtin_xgboost=champion,
            local=True,
        )
        assert uri == xgboost_image_uri("us-east-1")
