"""Tuning for tests: a lake with generated features and train.py's source, the churn tuning request, and
readers of what a trial left behind (its CloudWatch log, its evaluation.json)."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from dataclasses import dataclass
from typing import Any

import boto3

from sagelake.local.tuning_runner import TRAINING_LOG_GROUP
from sagelake.ml.artifacts import package_source_dir
from sagelake.ml.aws_requests import training_request
from sagelake.ml.tuning import SCRIPT_METRIC_DEFINITIONS, tuning_request
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI, TRAINING_DIR
from tests.support.training_data import synthetic_features

RANGES = {
    "max_iter": {"type": "Integer", "min": 20, "max": 80},
    "max_depth": {"type": "Integer", "min": 2, "max": 5},
    "learning_rate": {"type": "Continuous", "min": 0.02, "max": 0.3, "scaling": "Logarithmic"},
}


@dataclass
class Lake:
    """A bucket on the control plane holding one day of features and the training source."""

    bucket: str
    s3: Any
    sagemaker: Any
    logs: Any
    train_uri: str
    source_uri: str


def clients(url: str) -> tuple[Any, Any, Any]:
    """S3, SageMaker and CloudWatch Logs clients of the control plane at ``url``."""
    kwargs = {
        "endpoint_url": url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return boto3.client("s3", **kwargs), boto3.client("sagemaker", **kwargs), boto3.client("logs", **kwargs)


def make_lake(url: str, n: int = 600, seed: int = 11) -> Lake:
    """A fresh bucket with ``n`` generated customers (one day) and include/training as sourcedir.tar.gz."""
    s3, sagemaker, logs = clients(url)
    bucket = f"tune-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    body = io.BytesIO()
    synthetic_features(n, seed).to_parquet(body, index=False)
    prefix = "curated/churn_features/dt=2026-11-26/"
    s3.put_object(Bucket=bucket, Key=f"{prefix}part-00000.snappy.parquet", Body=body.getvalue())
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=package_source_dir(TRAINING_DIR))
    return Lake(
        bucket, s3, sagemaker, logs, f"s3://{bucket}/{prefix}", f"s3://{bucket}/code/sourcedir.tar.gz"
    )


def churn_tuning(lake: Lake, name: str, ranges: dict = RANGES, **kwargs: Any) -> dict:
    """The tuning request of the tests: train.py in script mode, objective ``validation:auc`` (Maximize)."""
    training = training_request(
        job_name="unused",
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        train_uri=lake.train_uri,
        output_uri=f"s3://{lake.bucket}/models/churn/",
        source_uri=lake.source_uri,
        instance_type="ml.m5.large",
        hyperparameters={"seed": 5, "max_iter": 100},
        max_runtime_s=600,
    )
    options = {"strategy": "Random", "max_jobs": 4, "max_parallel": 2, "random_seed": 7, **kwargs}
    return tuning_request(
        job_name=name,
        training=training,
        objective_metric="validation:auc",
        ranges=ranges,
        metric_definitions=SCRIPT_METRIC_DEFINITIONS,
        **options,
    )


def log_of(lake: Lake, job: str) -> str:
    """The training job's log as CloudWatch Logs holds it (one stream per job)."""
    streams = lake.logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job}/")
    [stream] = streams["logStreams"]
    events = lake.logs.get_log_events(
        logGroupName=TRAINING_LOG_GROUP, logStreamName=stream["logStreamName"], startFromHead=True
    )["events"]
    return "\n".join(event["message"] for event in events)


def evaluation_of(lake: Lake, job: dict) -> dict:
    """``evaluation.json`` of a described training job, from its output.tar.gz in S3."""
    uri = job["ModelArtifacts"]["S3ModelArtifacts"].replace("model.tar.gz", "output.tar.gz")
    bucket, key = uri[5:].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(lake.s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        return json.loads(tar.extractfile("evaluation.json").read())
