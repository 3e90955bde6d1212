"""The evaluation step for real on the local target: ``SagelakeProcessingOperator``'s local branch runs the
CreateProcessingJob request the DAG builds — two real models scored on the same held-out rows by
``include/evaluation/evaluate.py`` — uploads the report to the lake and records the job ``Completed``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest

from devstack.stack import aws_connection
from sagelake.ml.evaluation import (
    evaluation_request,
    model_metrics,
    output_files_to_xcom,
    publish_evaluation_code,
    report_files,
    report_prefix,
)
from sagelake.operators.sagemaker_processing import SagelakeProcessingOperator
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.evaluation import expected_metrics, holdout_frame, model_probabilities, train_model

DT = "2026-11-26"
HOLDOUT_PREFIX = f"curated/churn_features/dt={DT}/version=v1/"
IMAGES = ["roc.png", "precision_recall.png", "confusion_challenger.png", "calibration.png"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("models")
    return {
        "challenger": train_model(base / "a", seed=21, max_iter=60),
        "champion": train_model(base / "b", seed=22, n=150, max_iter=10, max_depth=1),
    }


@pytest.fixture()
def sagemaker(aws_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def lake(s3, bucket: str, models: dict[str, bytes]) -> dict[str, str]:
    """The lake as the DAG finds it: two trained models, the held-out day, the published script."""
    uris = {}
    for name, job in (("challenger", "churn-20261126-aaaa1111"), ("champion", "churn-20261125-bbbb2222")):
        key = f"models/churn/{job}/output/model.tar.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=models[name])
        uris[name] = f"s3://{bucket}/{key}"
    body = io.BytesIO()
    holdout_frame().to_parquet(body, index=False)
    s3.put_object(Bucket=bucket, Key=f"{HOLDOUT_PREFIX}part-00000.snappy.parquet", Body=body.getvalue())
    s3.put_object(Bucket=bucket, Key=f"{HOLDOUT_PREFIX}_SUCCESS", Body=b"")
    uris["holdout"] = f"s3://{bucket}/{HOLDOUT_PREFIX}"
    uris["code"] = publish_evaluation_code(s3, bucket)
    return uris


def evaluate(bucket: str, lake: dict[str, str], job: str, *, champion: bool) -> tuple[dict, str]:
    report = report_prefix(bucket, DT, job)
    config = evaluation_request(
        job_name=job,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        code_uri=lake["code"],
        challenger_model_uri=lake["challenger"],
        champion_model_uri=lake["champion"] if champion else None,
        holdout_uri=lake["holdout"],
        report_uri=report,
        instance_type="ml.m5.large",
        max_runtime_s=600,
    )
    operator = SagelakeProcessingOperator(
        task_id="evaluate", config=config, output_files_to_xcom=output_files_to_xcom(), deferrable=True
    )
    return operator.execute({}), report


def read_json(s3, uri: str) -> dict:
    bucket, key = uri[5:].split("/", 1)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def keys_under(s3, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"].removeprefix(prefix) for o in listed)


def test_challenger_and_champion_scored_on_the_same_held_out_rows(
    sagemaker, s3, bucket, lake, models, tmp_path: Path
) -> None:
    job = f"churn-eval-{bucket}"
    result, report = evaluate(bucket, lake, job, champion=True)

    metrics = read_json(s3, report_files(report)["metrics"])
    frame = holdout_frame()
    truth = frame["churned"].to_numpy()
    for name in ("challenger", "champion"):
        proba = model_probabilities(models[name], frame, tmp_path / name)
        expected = expected_metrics(truth, proba)
        assert {k: metrics["models"][name][k] for k in expected} == pytest.approx(expected, abs=1e-12), name
    assert metrics["models"]["challenger"]["auc"] != metrics["models"]["champion"]["auc"]  # two models
    assert metrics["difference"]["auc"] == pytest.approx(
        metrics["models"]["challenger"]["auc"] - metrics["models"]["champion"]["auc"]
    )

    prefix = report.removeprefix(f"s3://{bucket}/")
    files = keys_under(s3, bucket, prefix)
    assert set(files) >= {
        *IMAGES,
        "confusion_champion.png",
        "report.html",
        "metrics.json",
        "model_quality.json",
    }
    for image in IMAGES:
        png = s3.get_object(Bucket=bucket, Key=prefix + image)["Body"].read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", image
    page = s3.get_object(Bucket=bucket, Key=prefix + "report.html")["Body"].read().decode()
    assert all(f'src="{image}"' in page for image in IMAGES)

    described = sagemaker.describe_processing_job(ProcessingJobName=job)
    assert described["ProcessingJobStatus"] == "Completed"
    assert described["ProcessingEndTime"] >= described["CreationTime"]
    assert described["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == report.rstrip("/")
    assert result["Processing"]["ProcessingJobName"] == job
    assert result["Processing"]["ProcessingJobStatus"] == "Completed"
    assert result["OutputFiles"]["Evaluation"] == metrics  # the provider's output_files_to_xcom

    quality = read_json(s3, model_metrics(report)["ModelQuality"]["Statistics"]["S3Uri"])
    assert quality["binary_classification_metrics"]["auc"]["value"] == metrics["models"]["challenger"]["auc"]
    sagemaker.create_model_package_group(ModelPackageGroupName=f"g-{bucket}")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=f"g-{bucket}",
        InferenceSpecification={
            "Containers": [{"Image": SKLEARN_IMAGE_URI, "ModelDataUrl": lake["challenger"]}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics=model_metrics(report),
    )["ModelPackageArn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["ModelMetrics"] == model_metrics(report)


def test_without_a_champion_only_the_challenger_is_reported_and_a_retry_gets_a_new_name(
    sagemaker, s3, bucket, lake
) -> None:
    job = f"churn-eval-solo-{bucket}"
    first, report = evaluate(bucket, lake, job, champion=False)
    metrics = read_json(s3, report_files(report)["metrics"])
    assert list(metrics["models"]) == ["challenger"] and metrics["difference"] is None
    assert "confusion_champion.png" not in keys_under(s3, bucket, report.removeprefix(f"s3://{bucket}/"))

    retry, _ = evaluate(bucket, lake, job, champion=False)  # a retry: job names are never reused
    assert retry["Processing"]["ProcessingJobName"] == f"{job}-r2"
    assert first["Processing"]["ProcessingJobName"] == job
    assert (
        sagemaker.describe_processing_job(ProcessingJobName=f"{job}-r2")["ProcessingJobStatus"] == "Completed"
    )
