"""Baselines on the local control plane: a training window's baseline written as Model Monitor's files,
and the baseline chosen for drift — the serving model's, else the newest."""

from __future__ import annotations

import uuid

import boto3
import pandas as pd
import pytest

from sagelake.ml import drift_store
from sagelake.ml.drift import Thresholds, statistics
from sagelake.ml.naming import resource_name
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.lake_days import features, put_parquet


@pytest.fixture()
def sagemaker(aws_env: str):
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)


def serve(sagemaker, model_name: str) -> str:
    """An endpoint serving ``model_name`` (the control plane records it; nothing is started)."""
    sagemaker.create_model(
        ModelName=model_name,
        ExecutionRoleArn=SAGEMAKER_ROLE_ARN,
        PrimaryContainer={"Image": SKLEARN_IMAGE_URI, "ModelDataUrl": "s3://x/model.tar.gz"},
    )
    config = f"cfg-{uuid.uuid4().hex[:8]}"
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": model_name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    endpoint = f"churn-{uuid.uuid4().hex[:8]}"
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    return endpoint


def write_window(s3, bucket: str, baseline: str, seeds: list[int]) -> dict:
    window = {}
    for i, seed in enumerate(seeds):
        location = f"s3://{bucket}/curated/churn_features/dt=2026-09-0{i + 1}/version=v1/"
        put_parquet(s3, location + "part-00000.parquet", features(200, seed))
        window[f"2026-09-0{i + 1}"] = location
    return drift_store.write_training_baseline(
        s3, bucket, baseline, window, Thresholds(psi=0.25), run_id="r1"
    )


def test_a_training_baseline_is_written_as_model_monitor_files(s3, bucket: str) -> None:
    written = write_window(s3, bucket, "churn-20260902-0000aaaa", [1, 2])
    assert (
        written["statistics"] == f"s3://{bucket}/monitoring/baseline/churn-20260902-0000aaaa/statistics.json"
    )
    stats = drift_store.get_json(s3, written["statistics"])
    both = pd.concat([features(200, 1), features(200, 2)], ignore_index=True)
    assert stats == statistics(both)  # the window's rows, every partition read
    constraints = drift_store.get_json(s3, written["constraints"])
    assert constraints["sagelake"]["psi_threshold"] == 0.25
    manifest = drift_store.get_json(s3, written["manifest"])
    assert manifest["train_days"] == ["2026-09-01", "2026-09-02"] and manifest["rows"] == 400


def test_the_serving_models_baseline_is_chosen_over_a_newer_one(s3, sagemaker, bucket: str) -> None:
    served = resource_name("churn", "2026-09-02", "run-a")
    write_window(s3, bucket, served, [1])
    write_window(s3, bucket, resource_name("churn", "2026-09-03", "run-b"), [2])  # newer
    endpoint = serve(sagemaker, resource_name("churn", "2026-09-02", "run-a", "v1"))
    chosen = drift_store.resolve_baseline(s3, sagemaker, bucket, endpoint)
    assert chosen["baseline_id"] == served and chosen["how"].startswith("serving")
    assert chosen["statistics"] == drift_store.baseline_uri(bucket, served) + "statistics.json"


def test_without_a_serving_baseline_the_newest_is_chosen(s3, sagemaker, bucket: str) -> None:
    with pytest.raises(LookupError, match="no drift baseline"):
        drift_store.resolve_baseline(s3, sagemaker, bucket, "no-such-endpoint")
    write_window(s3, bucket, resource_name("churn", "2026-09-02", "run-c"), [1])
    newest = resource_name("churn", "2026-09-01", "run-d")  # an older day, written last
    write_window(s3, bucket, newest, [2])
    chosen = drift_store.resolve_baseline(s3, sagemaker, bucket, "no-such-endpoint")
    assert chosen["baseline_id"] == newest and chosen["how"].startswith("newest")
    endpoint = serve(sagemaker, "hand-made-model")  # serves a model no training run wrote a baseline for
    assert drift_store.resolve_baseline(s3, sagemaker, bucket, endpoint)["baseline_id"] == newest
