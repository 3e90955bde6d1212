"""A built-in XGBoost model evaluated for real on the local target: a window of published days becomes CSV
channels, the local built-in XGBoost runner trains a booster on them, and the evaluation job (the request
``evaluation_request`` builds, run by the local processing engine) scores it against a script-mode champion
on the held-out day, with the same metrics as the booster gives for rows encoded by sagelake itself."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from sagelake.local.processing_runner import run_processing_job
from sagelake.local.training_runner import run_training_job
from sagelake.ml.evaluation import (
    evaluation_image_uri,
    evaluation_request,
    publish_evaluation_code,
    read_report,
    report_prefix,
)
from sagelake.ml.images import is_xgboost_image, xgboost_image_uri
from sagelake.ml.training_data import prepare_channels, serving_csv
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN
from tests.support.evaluation import expected_metrics, model_probabilities, train_model
from tests.support.training_data import synthetic_features

DAYS = ("2026-11-24", "2026-11-25", "2026-11-26")
HYPERPARAMETERS = {
    "num_round": "30",
    "max_depth": "3",
    "eta": "0.2",
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "seed": "7",
}


def put_parquet(s3, bucket: str, prefix: str, frame: pd.DataFrame) -> str:
    body = io.BytesIO()
    frame.to_parquet(body, index=False)
    s3.put_object(Bucket=bucket, Key=f"{prefix}part-00000.snappy.parquet", Body=body.getvalue())
    s3.put_object(Bucket=bucket, Key=f"{prefix}_SUCCESS", Body=b"")
    return f"s3://{bucket}/{prefix}"


def builtin_training_request(job: str, bucket: str, channels: dict[str, str]) -> dict:
    return {
        "TrainingJobName": job,
        "RoleArn": SAGEMAKER_ROLE_ARN,
        "AlgorithmSpecification": {"TrainingImage": xgboost_image_uri(REGION), "TrainingInputMode": "File"},
        "HyperParameters": HYPERPARAMETERS,
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
                "ContentType": "text/csv",
            }
            for name, uri in channels.items()
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models/churn-xgb/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def read_object(s3, uri: str) -> bytes:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def booster_of(model_tar: bytes) -> xgb.Booster:
    with tarfile.open(fileobj=io.BytesIO(model_tar)) as tar:
        (member,) = tar.getmembers()
        assert member.name == "xgboost-model"  # the built-in layout: no code/inference.py
        body = tar.extractfile(member).read()
    booster = xgb.Booster()
    booster.load_model(bytearray(body))
    return booster


def serving_probabilities(booster: xgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """The booster's answer to the ``text/csv`` rows sagelake sends a built-in endpoint for ``frame``."""
    rows = np.loadtxt(io.StringIO(serving_csv(frame).decode()), delimiter=",", ndmin=2)
    return booster.predict(xgb.DMatrix(rows, missing=np.nan)).astype("float64")


def test_a_builtin_challenger_is_evaluated_against_a_script_mode_champion(s3, bucket: str, tmp_path: Path):
    frames = {dt: synthetic_features(300, seed) for seed, dt in enumerate(DAYS, start=1)}
    published = {
        dt: put_parquet(s3, bucket, f"curated/churn_features/dt={dt}/version=v1/", frame)
        for dt, frame in frames.items()
    }
    channels = prepare_channels(s3, published, f"s3://{bucket}/training/churn/dt={DAYS[-1]}/", days=3)
    assert channels.window.newest == DAYS[-1] and DAYS[-1] not in channels.window.train
    trained = run_training_job(
        builtin_training_request("churn-xgb-20261126", bucket, channels.uris), s3, tmp_path / "train"
    )
    champion_key = "models/churn/churn-20261125-0000ffff/output/model.tar.gz"
    champion_tar = train_model(tmp_path / "champion", seed=8, max_iter=30)
    s3.put_object(Bucket=bucket, Key=champion_key, Body=champion_tar)

    image = evaluation_image_uri(
        REGION, "ml.m5.large", challenger_builtin_xgboost=True, champion_builtin_xgboost=False, local=True
    )
    assert is_xgboost_image(image)
    report_uri = report_prefix(bucket, DAYS[-1], "churn-eval-20261126")
    config = evaluation_request(
        job_name="churn-eval-20261126",
        role=SAGEMAKER_ROLE_ARN,
        image_uri=image,
        code_uri=publish_evaluation_code(s3, bucket),
        challenger_model_uri=trained.model_artifacts,
        champion_model_uri=f"s3://{bucket}/{champion_key}",
        holdout_uri=published[DAYS[-1]],
        report_uri=report_uri,
        instance_type="ml.m5.large",
        max_runtime_s=600,
    )
    result = run_processing_job(config, s3, tmp_path / "evaluate")
    assert "challenger: built-in XGBoost model" in result.log_tail
    assert "champion: script mode model" in result.log_tail
    report = read_report(s3, report_uri)

    holdout = frames[DAYS[-1]]
    truth = holdout["churned"].to_numpy()
    booster = booster_of(read_object(s3, trained.model_artifacts))
    expected = {
        "challenger": expected_metrics(truth, serving_probabilities(booster, holdout)),
        "champion": expected_metrics(
            truth, model_probabilities(champion_tar, holdout, tmp_path / "unpacked")
        ),
    }
    for name, metrics in expected.items():
        got = report["models"][name]
        assert {k: got[k] for k in metrics} == pytest.approx(metrics, abs=1e-12), name
    assert report["models"]["challenger"]["auc"] > 0.6  # a real model of the planted signal, not noise
    assert report["difference"]["auc"] == pytest.approx(
        report["models"]["challenger"]["auc"] - report["models"]["champion"]["auc"]
    )
