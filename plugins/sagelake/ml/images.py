"""Container image URIs, looked up with the SageMaker Python SDK (imported lazily: it is slow to import)."""

from __future__ import annotations

from sagelake.ml.aws_requests import SKLEARN_FRAMEWORK_VERSION


def sklearn_image_uri(region: str, instance_type: str, version: str = SKLEARN_FRAMEWORK_VERSION) -> str:
    """ECR URI of the SageMaker scikit-learn container for ``region`` (no network call)."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(
        "sklearn", region=region, version=version, py_version="py3", instance_type=instance_type
    )
