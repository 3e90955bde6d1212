"""Models as production has them, for the batch-inference tests: a script-mode model trained by the local
training runner (on the scikit-learn container's environment, where it is served), deployed with the DAG's
own Model + EndpointConfig + Endpoint requests, and registered as an Approved package version."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

from sagelake.local.training_runner import run_training_job
from sagelake.ml.artifacts import package_source_dir
from sagelake.ml.aws_requests import endpoint_request, training_request
from tests.support.constants import SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI, TRAINING_DIR
from tests.support.training_data import synthetic_features

# an inference script that loads and then fails on every prediction (a model error, not a server one)
BROKEN_INFERENCE = """
def model_fn(model_dir):
    return "no model"

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    raise RuntimeError("predictor exploded")

def output_fn(prediction, accept):
    return prediction
"""


def put(s3: Any, bucket: str, key: str, body: bytes) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def train_script_model(s3: Any, bucket: str, work: Path, job: str, rows: int = 400) -> str:
    """``train.py`` on synthetic rows, run by the training runner; the ``model.tar.gz`` URI."""
    body = io.BytesIO()
    synthetic_features(rows, 1).to_parquet(body, index=False)
    put(s3, bucket, f"training-input/{job}/part-0.parquet", body.getvalue())
    source_uri = put(s3, bucket, f"code/{job}/sourcedir.tar.gz", package_source_dir(TRAINING_DIR))
    request = training_request(
        job_name=job,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        train_uri=f"s3://{bucket}/training-input/{job}/",
        output_uri=f"s3://{bucket}/models/churn/",
        source_uri=source_uri,
        instance_type="ml.m5.large",
        hyperparameters={"max_iter": 40, "max_depth": 3},
        max_runtime_s=600,
    )
    return run_training_job(request, s3, work).model_artifacts


def deploy(sagemaker: Any, name: str, image: str, model_url: str) -> str:
    """The DAG's own Model + EndpointConfig + Endpoint requests (all named ``name``) of ``model_url``,
    registered as an Approved package version; the endpoint's name."""
    request = endpoint_request(
        model_name=name,
        endpoint_config_name=name,
        endpoint_name=name,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=image,
        model_data_url=model_url,
        instance_type="ml.m5.large",
    )
    register_version(sagemaker, image, model_url)  # as the DAG deploys only an Approved version
    sagemaker.create_model(**request["Model"])
    sagemaker.create_endpoint_config(**request["EndpointConfig"])
    sagemaker.create_endpoint(**request["Endpoint"])
    return name


def register_approved(sagemaker: Any, group: str, image: str, model_url: str) -> str:
    """An Approved version of ``model_url`` in package group ``group`` (created); its ARN."""
    return register_version(sagemaker, image, model_url, group=group)


def register_version(
    sagemaker: Any, image: str, model_url: str, status: str = "Approved", group: str | None = None
) -> str:
    """A package version of ``model_url`` with ``ModelApprovalStatus`` ``status`` in package group ``group``
    (created; default a new one) — the endpoint server serves only the artefacts of Approved versions;
    its ARN."""
    group = group or f"served-{uuid.uuid4().hex[:16]}"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    return sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": image, "ModelDataUrl": model_url}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus=status,
    )["ModelPackageArn"]


def local_clients(control_plane_url: str, server: Any) -> dict[str, Any]:
    """boto3 clients on the control plane, and a sagemaker-runtime client (no retries) on the endpoint
    ``server``; ``runtime_url`` is the server's URL (for ``aws_default``'s sagemaker-runtime)."""
    import boto3
    from botocore.config import Config

    from tests.support.constants import REGION

    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    services = {
        "s3": "s3",
        "sagemaker": "sagemaker",
        "cloudwatch": "cloudwatch",
        "autoscaling": "application-autoscaling",
    }
    return {
        **{
            key: boto3.client(name, endpoint_url=control_plane_url, region_name=REGION)
            for key, name in services.items()
        },
        "runtime": boto3.client(
            "sagemaker-runtime",
            endpoint_url=url,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}),
        ),
        "runtime_url": url,
        "server": server,
    }
