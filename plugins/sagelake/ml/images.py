"""Container images: URIs looked up with the SageMaker Python SDK (imported lazily: it is slow to import),
unless a deployment setting names them, and which requests and models use SageMaker's built-in XGBoost
algorithm.

``SAGELAKE_SKLEARN_IMAGE_URI`` / ``SAGELAKE_XGBOOST_IMAGE_URI``, when set, are used as they are (for the
deployment's region and instance family): where the SDK cannot be installed (MWAA: its Airflow constraints
exclude every ``sagemaker-core`` 2.x, see docs/mwaa.md) or to pin a private copy of an image.

The XGBoost image serves two modes. A training request with the ``sagemaker_program`` and
``sagemaker_submit_directory`` hyperparameters runs a user script (script mode); without them the image
runs the **built-in algorithm**, which reads CSV/libsvm channels and takes the algorithm's own
hyperparameters (``num_round``, ``eta``...). A model on that image without ``SAGEMAKER_PROGRAM`` in its
environment is served by the algorithm's own inference (``text/csv`` in, scores out).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from sagelake.ml.aws_requests import SKLEARN_FRAMEWORK_VERSION

XGBOOST_FRAMEWORK_VERSION = "1.7-1"
# ECR repositories of the XGBoost algorithm image: the current one and the legacy 0.72 one.
XGBOOST_REPOSITORIES = ("sagemaker-xgboost", "xgboost")
SCRIPT_MODE_HYPERPARAMETERS = ("sagemaker_program", "sagemaker_submit_directory")

# What the built-in algorithm can emit: ``<channel>:<metric>`` for the train and validation channels.
XGBOOST_METRICS = (
    "accuracy",
    "auc",
    "aucpr",
    "error",
    "f1",
    "logloss",
    "mae",
    "map",
    "merror",
    "mlogloss",
    "mse",
    "ndcg",
    "rmse",
)
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_REPOSITORY = re.compile(r"^[^/]+/(?P<repo>[^:@]+)(?:[:@].*)?$")


def sklearn_image_uri(region: str, instance_type: str, version: str = SKLEARN_FRAMEWORK_VERSION) -> str:
    """ECR URI of the SageMaker scikit-learn container for ``region`` (no network call), or
    ``SAGELAKE_SKLEARN_IMAGE_URI``."""
    if override := os.environ.get("SAGELAKE_SKLEARN_IMAGE_URI", "").strip():
        return override
    from sagemaker.core import image_uris

    return image_uris.retrieve(
        "sklearn", region=region, version=version, py_version="py3", instance_type=instance_type
    )


def xgboost_image_uri(region: str, version: str = XGBOOST_FRAMEWORK_VERSION) -> str:
    """ECR URI of the SageMaker XGBoost image (built-in algorithm and framework) for ``region``.

    No network call: the SDK ships the account-per-region table. ``SAGELAKE_XGBOOST_IMAGE_URI`` overrides it.
    """
    if override := os.environ.get("SAGELAKE_XGBOOST_IMAGE_URI", "").strip():
        return override
    from sagemaker.core import image_uris

    return image_uris.retrieve("xgboost", region=region, version=version)


def is_xgboost_image(image_uri: str | None) -> bool:
    """Whether ``image_uri`` names the SageMaker XGBoost image (any account, region, tag or digest)."""
    match = _REPOSITORY.match(image_uri or "")
    return bool(match) and match.group("repo") in XGBOOST_REPOSITORIES


def is_builtin_xgboost_training(request: Mapping[str, Any]) -> bool:
    """Whether a CreateTrainingJob request runs the built-in XGBoost algorithm (not a script-mode job).

    True when the training image is the XGBoost image and no script-mode hyperparameter is set.
    """
    image = (request.get("AlgorithmSpecification") or {}).get("TrainingImage")
    hyperparameters = request.get("HyperParameters") or {}
    return is_xgboost_image(image) and not any(k in hyperparameters for k in SCRIPT_MODE_HYPERPARAMETERS)


def is_builtin_xgboost_model(container: Mapping[str, Any]) -> bool:
    """Whether a model container (``PrimaryContainer`` of CreateModel) is served by the built-in algorithm."""
    environment = container.get("Environment") or {}
    return is_xgboost_image(container.get("Image")) and "SAGEMAKER_PROGRAM" not in environment


def xgboost_metric_definitions() -> list[dict[str, str]]:
    """The built-in algorithm's metric definitions: ``train:auc``, ``validation:auc``...

    SageMaker applies these regexes to the job's CloudWatch log, where the container's tab separators
    appear as ``#011`` (e.g. ``[12]#011train-auc:0.91429#011validation-auc:0.80998``). The value is a
    number, not ``\\S+``: ``#011`` is no whitespace, so ``\\S+`` would swallow the rest of a train line.
    """
    return [
        {"Name": f"{channel}:{metric}", "Regex": rf".*\[[0-9]+\].*#011{channel}-{metric}:{_NUMBER}.*"}
        for channel in ("train", "validation")
        for metric in XGBOOST_METRICS
    ]
