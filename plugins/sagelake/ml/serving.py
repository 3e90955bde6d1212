"""The model production serves: what a production endpoint's first variant runs (the champion)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.ml.images import is_builtin_xgboost_model


@dataclass(frozen=True)
class ServingModel:
    """The SageMaker Model an endpoint serves, and how it is served."""

    endpoint_name: str
    model_name: str
    image: str
    model_url: str
    builtin_xgboost: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def serving_model(sagemaker: Any, endpoint_name: str) -> ServingModel | None:
    """The model ``endpoint_name`` serves (its first variant's); ``None`` when there is no such endpoint."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if has_code(error, "ValidationException"):
            return None
        raise
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    name = config["ProductionVariants"][0]["ModelName"]
    model = sagemaker.describe_model(ModelName=name)
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return ServingModel(
        endpoint_name=endpoint_name,
        model_name=name,
        image=str(container.get("Image", "")),
        model_url=str(container.get("ModelDataUrl", "")),
        builtin_xgboost=is_builtin_xgboost_model(container),
    )
