"""The model production serves: found through the endpoint, its kind known."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from sagelake.ml.images import xgboost_image_uri
from sagelake.ml.serving import serving_model
from tests.support.constants import REGION, SKLEARN_IMAGE_URI


class FakeSageMaker:
    def __init__(self, container: dict | None) -> None:
        self.container = container

    def describe_endpoint(self, EndpointName: str) -> dict:
        if self.container is None:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "no"}}, "DescribeEndpoint")
        return {"EndpointName": EndpointName, "EndpointConfigName": f"{EndpointName}-config"}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict:
        return {
            "ProductionVariants": [{"VariantName": "primary", "ModelName": f"{EndpointConfigName}-model"}]
        }

    def describe_model(self, ModelName: str) -> dict:
        return {"ModelName": ModelName, "PrimaryContainer": self.container}


def test_the_serving_model_is_the_endpoints_and_knows_its_kind() -> None:
    assert serving_model(FakeSageMaker(None), "prod") is None
    script = {
        "Image": SKLEARN_IMAGE_URI,
        "ModelDataUrl": "s3://b/m/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
    }
    model = serving_model(FakeSageMaker(script), "prod")
    assert (model.model_name, model.model_url, model.builtin_xgboost) == (
        "prod-config-model",
        "s3://b/m/model.tar.gz",
        False,
    )
    builtin = serving_model(
        FakeSageMaker({"Image": xgboost_image_uri(REGION), "ModelDataUrl": "s3://b/x"}), "p"
    )
    assert builtin.builtin_xgboost
    assert json.loads(json.dumps(builtin.to_dict()))["image"] == xgboost_image_uri(REGION)
