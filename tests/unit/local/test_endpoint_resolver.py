"""The endpoint server's resolution cache: resolved once, refreshed in the background, switched only
after the new models are prepared, kept when the control plane fails, forgotten when idle."""

from __future__ import annotations

import pytest

from sagelake.local.endpoint_server import (
    EndpointResolver,
    InvocationError,
    ModelSource,
    Resolution,
    Variant,
    validation_error,
)


def resolution(config: str, url: str) -> Resolution:
    return Resolution(
        config, (Variant("AllTraffic", f"model-{config}", 1.0),), {"AllTraffic": ModelSource(url)}
    )


class ControlPlane:
    """What each endpoint serves (or an exception to raise), and the calls made."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Resolution | Exception] = {}
        self.calls: list[str] = []

    def resolve(self, endpoint: str, previous: Resolution | None = None) -> Resolution:
        self.calls.append(endpoint)
        answer = self.endpoints.get(endpoint, validation_error(f"Endpoint {endpoint} not found."))
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture()
def plane() -> ControlPlane:
    return ControlPlane()


def resolver_for(plane: ControlPlane, prepared: list | None = None, idle: float = 3600) -> EndpointResolver:
    prepare = prepared.append if prepared is not None else None
    return EndpointResolver(plane.resolve, ttl=3600, prepare=prepare, idle=idle)  # refresh() by hand


def test_resolved_once_then_served_from_the_cache(plane) -> None:
    plane.endpoints["e"] = resolution("c1", "s3://b/m1")
    resolver = resolver_for(plane)
    assert [resolver.get("e") for _ in range(5)] == [plane.endpoints["e"]] * 5
    assert plane.calls == ["e"]
    resolver.close()


def test_a_switch_is_prepared_before_it_is_served(plane) -> None:
    plane.endpoints["e"] = resolution("c1", "s3://b/m1")
    prepared: list[Resolution] = []
    resolver = resolver_for(plane, prepared)
    assert resolver.get("e").config_name == "c1"
    resolver.refresh()
    assert prepared == []  # nothing changed: nothing to load
    new = plane.endpoints["e"] = resolution("c2", "s3://b/m2")
    assert resolver.get("e").config_name == "c1"  # not before the refresh
    resolver.refresh()
    assert prepared == [new]
    assert resolver.get("e") is new
    resolver.close()


def test_a_model_that_fails_to_prepare_is_still_switched_to(plane) -> None:
    plane.endpoints["e"] = resolution("c1", "s3://b/m1")

    def prepare(fresh: Resolution) -> None:
        raise InvocationError(424, "ModelError", "cannot load")

    resolver = EndpointResolver(plane.resolve, ttl=3600, prepare=prepare)
    resolver.get("e")
    plane.endpoints["e"] = resolution("c2", "s3://b/broken")
    resolver.refresh()
    assert resolver.get("e").config_name == "c2"  # its requests get the model's error, as on AWS
    resolver.close()


def test_control_plane_failures_keep_the_last_resolution(plane) -> None:
    plane.endpoints["e"] = resolution("c1", "s3://b/m1")
    resolver = resolver_for(plane)
    resolver.get("e")
    plane.endpoints["e"] = ConnectionError("control plane down")
    resolver.refresh()
    assert resolver.get("e").config_name == "c1"
    resolver.close()


def test_unknown_endpoints_are_errors_until_created_and_deleted_ones_become_errors(plane) -> None:
    resolver = resolver_for(plane)
    with pytest.raises(InvocationError) as error:
        resolver.get("e")
    assert error.value.code == "ValidationError"
    plane.endpoints["e"] = resolution("c1", "s3://b/m1")
    resolver.refresh()
    assert resolver.get("e").config_name == "c1"
    del plane.endpoints["e"]
    resolver.refresh()
    with pytest.raises(InvocationError):
        resolver.get("e")
    resolver.close()


def test_idle_endpoints_are_forgotten(plane) -> None:
    plane.endpoints["e"] = resolution("c1", "s3://b/m1")
    resolver = resolver_for(plane, idle=0)
    resolver.get("e")
    resolver.refresh()  # idle for longer than 0 s: dropped, not re-resolved
    assert plane.calls == ["e"]
    resolver.get("e")
    assert plane.calls == ["e", "e"]
    resolver.close()


class FakeSageMaker:
    """describe_* answers from dicts; records the calls."""

    def __init__(self) -> None:
        self.endpoint = {"EndpointName": "e", "EndpointConfigName": "c1", "EndpointStatus": "InService"}
        self.endpoint["LastModifiedTime"] = "t1"
        self.configs = {
            "c1": {
                "ProductionVariants": [{"VariantName": "A", "ModelName": "m1", "InitialVariantWeight": 1.0}]
            },
            "c2": {
                "ProductionVariants": [{"VariantName": "A", "ModelName": "m2", "InitialVariantWeight": 1.0}],
                "DataCaptureConfig": {
                    "InitialSamplingPercentage": 50,
                    "DestinationS3Uri": "s3://b/capture",
                    "CaptureOptions": [{"CaptureMode": "Input"}],
                },
            },
        }
        self.models = {
            "m1": {"PrimaryContainer": {"Image": "img", "ModelDataUrl": "s3://b/m1.tar.gz"}},
            "m2": {
                "PrimaryContainer": {
                    "Image": "img",
                    "ModelDataUrl": "s3://b/m2.tar.gz",
                    "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "3"},
                }
            },
        }
        self.calls: list[str] = []

    def describe_endpoint(self, EndpointName: str) -> dict:  # noqa: N803 (boto3's argument names)
        self.calls.append("endpoint")
        return dict(self.endpoint)

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict:  # noqa: N803
        self.calls.append("config")
        return self.configs[EndpointConfigName]

    def describe_model(self, ModelName: str) -> dict:  # noqa: N803
        self.calls.append("model")
        return self.models[ModelName]


def test_resolve_endpoint_reads_variants_models_and_capture_and_skips_unchanged_endpoints() -> None:
    from sagelake.local.endpoint_server import resolve_endpoint

    client = FakeSageMaker()
    first = resolve_endpoint(client, "e")
    assert (first.config_name, first.sources["A"].url, first.capture) == ("c1", "s3://b/m1.tar.gz", None)
    assert client.calls == ["endpoint", "config", "model"]
    client.calls.clear()
    assert resolve_endpoint(client, "e", first) is first  # same config, not modified: one call
    assert client.calls == ["endpoint"]
    client.endpoint.update(EndpointConfigName="c2", LastModifiedTime="t2")  # UpdateEndpoint
    second = resolve_endpoint(client, "e", first)
    assert second.sources["A"].url == "s3://b/m2.tar.gz" and second.sources["A"].workers == 3
    assert second.capture is not None and second.capture.sampling_percentage == 50
    assert (second.capture.capture_input, second.capture.capture_output) == (True, False)
    client.endpoint["EndpointStatus"] = "Failed"
    with pytest.raises(InvocationError) as error:
        resolve_endpoint(client, "e", second)
    assert error.value.code == "ValidationError"
