"""Steps of the model lifecycle between the provider operators, as plain functions of boto3 clients.

The ``churn_train_deploy`` DAG wraps each in a small ``@task``; tests call them directly.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sagelake.lake.layout import Lake, check_dt, split_s3_uri
from sagelake.ml.artifacts import beside_model, output_tar_uri, package_source_dir, read_evaluation


class NoPartitionError(ValueError):
    """The run does not say which partition to train on."""


def resolve_dt(param_dt: str | None, asset_events: Iterable[Any] = ()) -> str:
    """The partition to train on: the ``dt`` param, else the newest triggering asset event's ``dt``."""
    if param_dt:
        return check_dt(str(param_dt))
    dts = [str(e.extra["dt"]) for e in asset_events if getattr(e, "extra", None) and "dt" in e.extra]
    if not dts:
        raise NoPartitionError(
            'no partition to train on: trigger with conf {"dt": "YYYY-MM-DD"} or let churn_prepare\'s '
            "curated asset event trigger the run"
        )
    return check_dt(max(dts))


def publish_source_dir(s3: Any, lake: Lake, source_dir: Path) -> str:
    """Upload ``source_dir`` as SageMaker's ``sourcedir.tar.gz``, content-addressed; returns its URI."""
    blob = package_source_dir(source_dir)
    uri = lake.code(f"training/sourcedir-{hashlib.sha256(blob).hexdigest()[:16]}.tar.gz")
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=blob)
    return uri


def publish_evaluation(s3: Any, training: dict[str, Any]) -> dict[str, Any]:
    """Read the training job's ``evaluation.json``, store it beside the model, return its summary."""
    model_url = training["ModelArtifacts"]["S3ModelArtifacts"]
    evaluation = read_evaluation(s3, output_tar_uri(model_url))
    uri = beside_model(model_url, "evaluation.json")
    bucket, key = split_s3_uri(uri)
    s3.put_object(
        Bucket=bucket, Key=key, Body=json.dumps(evaluation, indent=2).encode(), ContentType="application/json"
    )
    return {
        "training_job": training["TrainingJobName"],
        "image_uri": training["AlgorithmSpecification"]["TrainingImage"],
        "model_url": model_url,
        "evaluation_uri": uri,
        "metrics": {k: float(v) for k, v in evaluation["metrics"].items()},
    }


def package_container(sagemaker: Any, package_arn: str) -> tuple[dict[str, Any], str]:
    """The first inference container of a model package and the package's approval status."""
    package = sagemaker.describe_model_package(ModelPackageName=package_arn)
    return package["InferenceSpecification"]["Containers"][0], package["ModelApprovalStatus"]


def package_version(package_arn: str) -> int:
    """``arn:…:model-package/group/3`` → 3."""
    tail = package_arn.rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise ValueError(f"not a versioned model package ARN: {package_arn!r}")
    return int(tail)


def sample_instances(s3: Any, location: str, n: int = 3) -> list[dict[str, Any]]:
    """The first ``n`` feature rows (without id and label) of a curated partition's published location."""
    import pyarrow.parquet as pq

    bucket, prefix = split_s3_uri(location.rstrip("/") + "/")
    keys = sorted(
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".parquet")
    )
    if not keys:
        raise FileNotFoundError(f"no Parquet files under {location}")
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()))
    rows = table.slice(0, n).to_pylist()
    return [{k: v for k, v in row.items() if k not in ("customer_id", "churned", "dt")} for row in rows]


def check_predictions(payload: dict[str, Any], expected: int) -> list[dict[str, Any]]:
    """Validate an endpoint's JSON answer: one prediction per instance, probabilities in [0, 1]."""
    predictions = payload.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != expected:
        raise ValueError(f"endpoint returned {payload!r}; expected {expected} predictions")
    for p in predictions:
        prob = p.get("churn_probability")
        if not isinstance(prob, int | float) or not 0.0 <= prob <= 1.0:
            raise ValueError(f"churn_probability {prob!r} is not a probability")
    return predictions
