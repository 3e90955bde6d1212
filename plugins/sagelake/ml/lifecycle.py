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
from sagelake.ml.artifacts import package_source_dir


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


SWITCH_WAIT_S = 10.0  # how long an endpoint update may take to serve the new model


def _invoke_switched(runtime: Any, **request: Any) -> dict[str, Any]:
    """``InvokeEndpoint``, retried on ``ModelError`` for :data:`SWITCH_WAIT_S`: right after an update the
    previous model may still answer (blue/green), in a protocol the new one does not share."""
    import time

    from botocore.exceptions import ClientError

    from sagelake.aws_errors import has_code

    deadline = time.monotonic() + SWITCH_WAIT_S
    while True:
        try:
            return runtime.invoke_endpoint(**request)
        except ClientError as error:
            if not has_code(error, "ModelError") or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def invoke_with_rows(
    sagemaker: Any, runtime: Any, s3: Any, endpoint_name: str, rows_uri: str, n: int = 3
) -> dict[str, Any]:
    """Invoke ``endpoint_name`` with the first ``n`` feature rows under ``rows_uri`` in the protocol of the
    model it serves (built-in XGBoost: ``text/csv``; script mode: JSON instances); check the answer."""
    from sagelake.ml.serving import serving_model

    model = serving_model(sagemaker, endpoint_name)
    if model is None:
        raise ValueError(f"endpoint {endpoint_name} does not exist: nothing to smoke-test")
    instances = sample_instances(s3, rows_uri, n)
    if model.builtin_xgboost:
        import pandas as pd

        from sagelake.ml.training_data import serving_csv

        response = _invoke_switched(
            runtime,
            EndpointName=endpoint_name,
            ContentType="text/csv",
            Body=serving_csv(pd.DataFrame(instances)),
        )
        text = response["Body"].read().decode()
        scores = [float(v) for v in text.replace("\n", ",").split(",") if v.strip()]
        predictions = check_predictions(
            {"predictions": [{"churn_probability": v} for v in scores]}, len(instances)
        )
    else:
        response = _invoke_switched(
            runtime,
            EndpointName=endpoint_name,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps({"instances": instances}),
        )
        predictions = check_predictions(json.loads(response["Body"].read()), len(instances))
    return {
        "endpoint": endpoint_name,
        "model": model.model_url,
        "instance": instances[0],
        "prediction": predictions[0],
        "variant": response.get("InvokedProductionVariant"),
    }


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
