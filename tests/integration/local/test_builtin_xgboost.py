"""SageMaker's built-in XGBoost algorithm run locally: channels from published days, a real model, the
container's metric lines, the control-plane record, and the algorithm's ``text/csv`` inference over HTTP."""

from __future__ import annotations

import io
import re
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from botocore.config import Config
from botocore.exceptions import ClientError
from sklearn.metrics import roc_auc_score

from devstack.stack import aws_connection
from sagelake.local.endpoint_server import serve
from sagelake.local.training_runner import TrainingJobFailedError, TrainingRequestError, run_training_job
from sagelake.ml.images import xgboost_image_uri
from sagelake.ml.training_data import CSV_FEATURE_COLUMNS, prepare_channels, serving_csv
from sagelake.operators.sagemaker import SagelakeTrainingOperator
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN
from tests.support.serving import register_version
from tests.support.training_data import synthetic_features

DAYS = ("2024-01-01", "2024-01-02", "2024-01-03")
# SageMaker's own definitions for the built-in algorithm: the container's validation regex (its
# sagemaker_xgboost_container.algorithm_mode.metrics) and the train regex DescribeTrainingJob lists.
SAGEMAKER_REGEX = {
    "validation:auc": r".*\[[0-9]+\].*#011validation-auc:(\S+)",
    "train:auc": r".*\[[0-9]+\].*#011train-auc:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*",
}
HYPERPARAMETERS = {
    "num_round": "25",
    "max_depth": "3",
    "eta": "0.3",
    "subsample": "0.9",
    "min_child_weight": "1",
    "gamma": "0",
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "seed": "7",
}


def publish_days(s3, bucket: str, rows: int = 300) -> dict[str, str]:
    """Three published partitions of curated features (Parquet in a version folder, as Glue writes)."""
    published = {}
    for seed, dt in enumerate(DAYS, start=1):
        location = f"s3://{bucket}/curated/churn_features/dt={dt}/version=v{seed}/"
        prefix = location[len(f"s3://{bucket}/") :]
        body = io.BytesIO()
        synthetic_features(rows, seed).to_parquet(body, index=False)
        s3.put_object(Bucket=bucket, Key=f"{prefix}part-00000.snappy.parquet", Body=body.getvalue())
        s3.put_object(Bucket=bucket, Key=f"{prefix}_SUCCESS", Body=b"")
        published[dt] = location
    return published


def xgboost_request(job: str, bucket: str, channels: dict[str, str], **hyperparameters: str) -> dict:
    """A CreateTrainingJob request for the built-in algorithm, as the SageMaker console or SDK sends it."""
    return {
        "TrainingJobName": job,
        "RoleArn": SAGEMAKER_ROLE_ARN,
        "AlgorithmSpecification": {"TrainingImage": xgboost_image_uri(REGION), "TrainingInputMode": "File"},
        "HyperParameters": {**HYPERPARAMETERS, **hyperparameters},
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
            }
            for name, uri in channels.items()
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models/churn-xgb/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def channels_for(s3, bucket: str) -> dict[str, str]:
    channel_set = prepare_channels(
        s3, publish_days(s3, bucket), f"s3://{bucket}/training/churn/dt={DAYS[-1]}/", days=3
    )
    return channel_set.uris


def read_object(s3, uri: str) -> bytes:
    bucket, key = uri[5:].split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def load_booster(s3, model_uri: str, into: Path) -> xgb.Booster:
    with tarfile.open(fileobj=io.BytesIO(read_object(s3, model_uri))) as tar:
        assert tar.getnames() == ["xgboost-model"]
        tar.extractall(into, filter="data")
    booster = xgb.Booster()
    booster.load_model(bytearray((into / "xgboost-model").read_bytes()))
    return booster


def test_builtin_job_logs_the_auc_of_the_model_it_saves(s3, bucket: str, tmp_path: Path) -> None:
    channels = channels_for(s3, bucket)
    result = run_training_job(xgboost_request("xgb-2024-01-03", bucket, channels), s3, tmp_path / "work")

    prefix = f"s3://{bucket}/models/churn-xgb/xgb-2024-01-03/output"
    assert (result.model_artifacts, result.output_data) == (
        f"{prefix}/model.tar.gz",
        f"{prefix}/output.tar.gz",
    )
    booster = load_booster(s3, result.model_artifacts, tmp_path / "model")
    assert booster.num_features() == len(CSV_FEATURE_COLUMNS)

    validation = pd.read_csv(
        io.BytesIO(read_object(s3, channels["validation"] + "validation.csv")), header=None
    )
    assert len(validation) == 300  # the newest day, held out whole
    labels, features = validation[0].to_numpy(), validation.drop(columns=[0]).to_numpy()
    recomputed = roc_auc_score(labels, booster.predict(xgb.DMatrix(features)))
    assert recomputed > 0.7  # the planted signal was learnt
    assert result.metrics["validation:auc"] == pytest.approx(recomputed, abs=5.1e-6)  # logged with 5 decimals
    assert result.metrics["validation:auc"] == float(f"{recomputed:.5f}")

    train = pd.read_csv(io.BytesIO(read_object(s3, channels["train"] + "train.csv")), header=None)
    assert len(train) == 600
    train_auc = roc_auc_score(train[0], booster.predict(xgb.DMatrix(train.drop(columns=[0]).to_numpy())))
    assert result.metrics["train:auc"] == float(f"{train_auc:.5f}")

    stdout = (tmp_path / "work" / "output" / "stdout.log").read_text().splitlines()
    rounds = [line for line in stdout if re.match(r"^\[\d+\]#011", line)]
    assert [int(line[1 : line.index("]")]) for line in rounds] == list(range(25))
    for name, regex in SAGEMAKER_REGEX.items():
        values = [float(m.group(1)) for line in rounds if (m := re.match(regex, line))]
        assert len(values) == 25, name  # SageMaker's regex parses every round's line
        assert values[-1] == result.metrics[name]


def test_training_job_is_recorded_in_the_control_plane(
    s3, bucket: str, aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    job = f"xgb-{uuid.uuid4().hex[:8]}"
    request = xgboost_request(job, bucket, channels_for(s3, bucket))
    described = SagelakeTrainingOperator(task_id="train", config=request).execute({})["Training"]

    assert described["TrainingJobName"] == job
    assert described["AlgorithmSpecification"]["TrainingImage"] == xgboost_image_uri(REGION)
    assert described["HyperParameters"] == request["HyperParameters"]
    booster = load_booster(s3, described["ModelArtifacts"]["S3ModelArtifacts"], tmp_path / "model")
    assert booster.num_boosted_rounds() == 25


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"learning_rate": "0.1"}, "learning_rate: not a hyperparameter of the built-in XGBoost algorithm"),
        ({"eta": "2"}, r"eta='2': must be in \[0, 1\]"),
        ({"num_round": "ten"}, "num_round='ten': cannot be parsed"),
        ({"lambda_bias": "0.1"}, "lambda_bias: accepted by the container but not runnable locally"),
        ({"eval_metric": "auc", "objective": "reg:squarederror"}, "auc needs a binary: or rank: objective"),
    ],
)
def test_bad_hyperparameters_are_refused_before_anything_runs(
    s3, bucket: str, tmp_path: Path, change: dict, message: str
) -> None:
    request = xgboost_request("bad-hps", bucket, {"train": f"s3://{bucket}/nowhere/"}, **change)
    with pytest.raises(TrainingRequestError, match=message):
        run_training_job(request, s3, tmp_path / "work")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="models/")


def test_channels_must_be_csv_and_numeric(s3, bucket: str, tmp_path: Path) -> None:
    channels = channels_for(s3, bucket)
    request = xgboost_request("no-content-type", bucket, channels)
    del request["InputDataConfig"][0]["ContentType"]
    with pytest.raises(TrainingRequestError, match="reads a channel without ContentType as libsvm"):
        run_training_job(request, s3, tmp_path / "work")

    s3.put_object(Bucket=bucket, Key="headed/train/train.csv", Body=b"churned,age\n1,30\n0,40\n")
    request = xgboost_request("headed", bucket, {"train": f"s3://{bucket}/headed/train/"})
    failed = r"(?s)headed failed \(exit 1\).*non-numeric CSV.*no header"
    with pytest.raises(TrainingJobFailedError, match=failed):
        run_training_job(request, s3, tmp_path / "work")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="models/")


def test_script_mode_on_the_xgboost_image_is_not_builtin(s3, bucket: str, tmp_path: Path) -> None:
    request = xgboost_request("script", bucket, {"train": f"s3://{bucket}/nowhere/"})
    request["HyperParameters"]["sagemaker_program"] = '"train.py"'
    with pytest.raises(TrainingRequestError, match="sagemaker_submit_directory"):  # script mode's own check
        run_training_job(request, s3, tmp_path / "work")


# --- serving -------------------------------------------------------------------------------------------


@pytest.fixture()
def runtime(aws_env: str, tmp_path: Path) -> Iterator:
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION)
    host, port = server.server_address[:2]
    yield boto3.client(
        "sagemaker-runtime",
        endpoint_url=f"http://{host}:{port}",
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
    )
    server.shutdown()


def deploy(sagemaker, model_url: str, environment: dict[str, str] | None = None) -> str:
    tag = uuid.uuid4().hex[:8]
    container = {"Image": xgboost_image_uri(REGION), "ModelDataUrl": model_url}
    if environment:
        container["Environment"] = environment
    register_version(sagemaker, container["Image"], model_url)  # served: approved
    sagemaker.create_model(
        ModelName=f"xgb-{tag}", ExecutionRoleArn=SAGEMAKER_ROLE_ARN, PrimaryContainer=container
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"xgb-{tag}",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"xgb-{tag}",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=f"xgb-{tag}", EndpointConfigName=f"xgb-{tag}")
    return f"xgb-{tag}"


def test_endpoint_serves_the_trained_model_with_the_csv_contract(
    s3, bucket: str, aws_env: str, runtime, tmp_path: Path
) -> None:
    result = run_training_job(
        xgboost_request("xgb-serve", bucket, channels_for(s3, bucket)), s3, tmp_path / "w"
    )
    booster = load_booster(s3, result.model_artifacts, tmp_path / "model")
    sagemaker = boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)
    endpoint = deploy(sagemaker, result.model_artifacts)

    fresh = synthetic_features(7, 99)
    body = serving_csv(fresh)
    response = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=body
    )
    assert response["ContentType"] == "text/csv"
    answer = response["Body"].read().decode()
    assert "\n" not in answer  # a real-time endpoint answers on one line, comma-separated
    expected = booster.predict(xgb.DMatrix(np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2)))
    assert [float(v) for v in answer.split(",")] == expected.tolist()
    assert len(set(expected.tolist())) > 1

    batch = deploy(sagemaker, result.model_artifacts, {"SAGEMAKER_BATCH": "true"})
    lines = runtime.invoke_endpoint(EndpointName=batch, ContentType="text/csv", Body=body)["Body"].read()
    assert [float(v) for v in lines.decode().splitlines()] == expected.tolist()  # batch: one per line

    for content_type, payload, text in (
        ("text/csv", b"1,2,3\n", "Feature size of csv inference data 3 is not consistent"),
        ("application/json", b'{"instances": []}', "Content-type application/json not supported"),
        ("text/csv", b"1,a\n", "please ensure data is in csv format"),
    ):
        with pytest.raises(ClientError) as error:
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType=content_type, Body=payload)
        assert error.value.response["Error"]["Code"] == "ModelError"
        assert text in error.value.response["Error"]["Message"]
    # the endpoint still serves after refusing bad requests
    again = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)["Body"].read()
    assert again.decode() == answer
