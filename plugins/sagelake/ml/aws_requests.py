"""Builders of the AWS API requests the pipeline sends, as plain functions of the run.

The same request goes to real AWS or to the local control plane; names come from
:mod:`sagelake.ml.naming`.
"""

from __future__ import annotations

import json
from typing import Any

from sagelake.ml.spot import SpotSettings, spot_request_fields

SKLEARN_FRAMEWORK_VERSION = "1.4-2"


def glue_job_kwargs() -> dict[str, Any]:
    """``create_job_kwargs`` for the Glue job definition (Glue 5.0 = Spark 3.5, Python 3.11)."""
    return {"GlueVersion": "5.0", "WorkerType": "G.1X", "NumberOfWorkers": 2, "Timeout": 60}


def training_request(
    *,
    job_name: str,
    role: str,
    image_uri: str,
    train_uri: str,
    output_uri: str,
    source_uri: str,
    instance_type: str,
    hyperparameters: dict[str, Any],
    program: str = "train.py",
    max_runtime_s: int = 3600,
    spot: SpotSettings | None = None,
) -> dict[str, Any]:
    """A CreateTrainingJob request for script mode in the SageMaker scikit-learn container.

    ``spot`` (enabled): a managed spot job that checkpoints to ``s3://<bucket>/checkpoints/<job_name>/``
    (:func:`sagelake.ml.spot.spot_request_fields`); None or disabled: on-demand, no checkpoints.
    """
    hps = {key: json.dumps(value) for key, value in hyperparameters.items()}
    hps["sagemaker_program"] = json.dumps(program)
    hps["sagemaker_submit_directory"] = json.dumps(source_uri)
    request = {
        "TrainingJobName": job_name,
        "RoleArn": role,
        "AlgorithmSpecification": {"TrainingImage": image_uri, "TrainingInputMode": "File"},
        "HyperParameters": hps,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": train_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "application/x-parquet",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
    }
    request.update(spot_request_fields(spot, job_name=job_name, max_runtime_s=max_runtime_s))
    return request


def model_package_extras(
    *, evaluation_uri: str, metrics: dict[str, float], dt: str, run_id: str, training_job: str
) -> dict[str, Any]:
    """Extra CreateModelPackage fields: the evaluation report and run lineage as metadata."""
    metadata = {f"metric_{k}": f"{v:.6f}" for k, v in metrics.items()}
    metadata.update({"dt": dt, "airflow_run_id": run_id[:256], "training_job": training_job})
    return {
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}
        },
        "CustomerMetadataProperties": metadata,
    }


def endpoint_request(
    *,
    model_name: str,
    endpoint_config_name: str,
    endpoint_name: str,
    role: str,
    image_uri: str,
    model_data_url: str,
    instance_type: str,
    variant_name: str = "primary",
    data_capture_uri: str | None = None,
    data_capture_percentage: int = 100,
    instance_count: int = 1,
    deployment_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Model + EndpointConfig + Endpoint requests, as the provider's SageMakerEndpointOperator takes them.

    A model on the XGBoost image is served by the built-in algorithm (no inference script); any other
    (the scikit-learn container) runs ``code/inference.py`` from the model artefact (script mode).
    ``data_capture_uri``: capture ``data_capture_percentage`` % of the invocations (request and answer,
    CSV/JSON as text) under that S3 prefix (``DataCaptureConfig``); None: no capture.
    ``deployment_config``: how an update of an existing endpoint shifts traffic and rolls back
    (:func:`sagelake.ml.deployment.deployment_config`); None: SageMaker's default (all at once).
    """
    from sagelake.ml.images import is_xgboost_image  # images imports this module

    container: dict[str, Any] = {"Image": image_uri, "ModelDataUrl": model_data_url}
    if not is_xgboost_image(image_uri):
        container["Environment"] = {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        }
    endpoint_config: dict[str, Any] = {
        "EndpointConfigName": endpoint_config_name,
        "ProductionVariants": [
            {
                "VariantName": variant_name,
                "ModelName": model_name,
                "InitialInstanceCount": instance_count,
                "InstanceType": instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
    }
    if data_capture_uri:
        endpoint_config["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": int(data_capture_percentage),
            "DestinationS3Uri": data_capture_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": ["text/csv"],
                "JsonContentTypes": ["application/json"],
            },
        }
    endpoint: dict[str, Any] = {"EndpointName": endpoint_name, "EndpointConfigName": endpoint_config_name}
    if deployment_config:
        endpoint["DeploymentConfig"] = deployment_config
    return {
        "Model": {"ModelName": model_name, "ExecutionRoleArn": role, "PrimaryContainer": container},
        "EndpointConfig": endpoint_config,
        "Endpoint": endpoint,
    }


def xgboost_training_request(
    *,
    job_name: str,
    role: str,
    image_uri: str,
    channels: dict[str, str],
    output_uri: str,
    instance_type: str,
    hyperparameters: dict[str, Any],
    max_runtime_s: int = 3600,
    spot: SpotSettings | None = None,
) -> dict[str, Any]:
    """A CreateTrainingJob request for SageMaker's built-in XGBoost algorithm on ``text/csv`` channels
    (label first, no header: :func:`sagelake.ml.training_data.prepare_channels`).

    ``spot`` as for :func:`training_request`: the algorithm writes ``xgboost-checkpoint.<round>`` files to
    the checkpoint dir and resumes from the newest one.
    """

    def text(value: Any) -> str:  # the built-in algorithm takes plain strings, not JSON
        return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)

    request = {
        "TrainingJobName": job_name,
        "RoleArn": role,
        "AlgorithmSpecification": {"TrainingImage": image_uri, "TrainingInputMode": "File"},
        "HyperParameters": {key: text(value) for key, value in hyperparameters.items()},
        "InputDataConfig": [
            {
                "ChannelName": name,
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for name, uri in channels.items()
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
    }
    request.update(spot_request_fields(spot, job_name=job_name, max_runtime_s=max_runtime_s))
    return request
