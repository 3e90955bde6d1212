"""The endpoint server routes by the endpoint's live weights: ``CurrentWeight`` (what
UpdateEndpointWeightsAndCapacities sets, without a new config or a new LastModifiedTime) over the config's
``InitialVariantWeight``; a weight change is a new resolution, an unchanged endpoint is not."""

from __future__ import annotations

import random
from collections import Counter

from sagelake.local.endpoint_server import choose_variant, resolve_endpoint


class FakeSageMaker:
    """An endpoint on a two-variant config (90/10), as DescribeEndpoint / DescribeEndpointConfig say."""

    def __init__(self) -> None:
        self.endpoint = {
            "EndpointName": "e",
            "EndpointConfigName": "ab",
            "EndpointStatus": "InService",
            "LastModifiedTime": "t1",
            "ProductionVariants": [
                {"VariantName": "champion", "CurrentWeight": 0.9},
                {"VariantName": "challenger", "CurrentWeight": 0.1},
            ],
        }
        self.config = {
            "ProductionVariants": [
                {"VariantName": "champion", "ModelName": "m1", "InitialVariantWeight": 0.9},
                {"VariantName": "challenger", "ModelName": "m2", "InitialVariantWeight": 0.1},
            ]
        }

    def describe_endpoint(self, EndpointName: str) -> dict:  # noqa: N803 (boto3's argument names)
        return {**self.endpoint, "ProductionVariants": [dict(v) for v in self.endpoint["ProductionVariants"]]}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict:  # noqa: N803
        return self.config

    def describe_model(self, ModelName: str) -> dict:  # noqa: N803
        return {"PrimaryContainer": {"Image": "img", "ModelDataUrl": f"s3://b/{ModelName}.tar.gz"}}


def weights(resolution) -> dict[str, float]:
    return {v.name: v.weight for v in resolution.variants}


def test_a_weight_shift_is_a_new_resolution_routed_by_the_current_weights() -> None:
    client = FakeSageMaker()
    first = resolve_endpoint(client, "e")
    assert weights(first) == {"champion": 0.9, "challenger": 0.1}
    assert resolve_endpoint(client, "e", first) is first  # nothing changed
    for variant, weight in zip(client.endpoint["ProductionVariants"], (0.0, 1.0), strict=True):
        variant["CurrentWeight"] = weight  # UpdateEndpointWeightsAndCapacities: same config, same time
    shifted = resolve_endpoint(client, "e", first)
    assert shifted is not first and shifted.config_name == "ab"
    assert weights(shifted) == {"champion": 0.0, "challenger": 1.0}
    rng = random.Random(0)
    assert Counter(choose_variant(list(shifted.variants), rng).name for _ in range(200)) == {
        "challenger": 200
    }


def test_without_current_weights_the_configs_initial_weights_route() -> None:
    client = FakeSageMaker()
    for variant in client.endpoint["ProductionVariants"]:
        del variant["CurrentWeight"]
    client.config["ProductionVariants"][0]["InitialVariantWeight"] = 0.25
    assert weights(resolve_endpoint(client, "e")) == {"champion": 0.25, "challenger": 0.1}
