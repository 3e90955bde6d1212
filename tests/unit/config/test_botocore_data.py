"""Every botocore session of a process shares one data loader; what is per session stays per session."""

from __future__ import annotations

import boto3
import pytest

import sagelake  # noqa: F401 - importing the package shares the loader
from sagelake.config import botocore_data


def loader(session: boto3.Session):
    return session._session.get_component("data_loader")


def test_sessions_share_the_parsed_data_but_not_region_or_credentials() -> None:
    first = boto3.Session(region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="1")
    second = boto3.Session(region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="2")
    assert loader(first) is loader(second)
    first_s3, second_s3 = first.client("s3"), second.client("s3")
    assert (first_s3.meta.region_name, second_s3.meta.region_name) == ("eu-west-1", "us-east-1")
    assert first_s3.meta.endpoint_url != second_s3.meta.endpoint_url
    assert first.get_credentials().access_key == "a" and second.get_credentials().access_key == "b"
    # a service model is parsed once: both clients describe their operations from the same object
    assert first_s3.meta.service_model._service_description is (
        second_s3.meta.service_model._service_description
    )


def test_another_data_path_gets_a_loader_of_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    default = boto3.Session(region_name="us-east-1")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    other = boto3.Session(region_name="us-east-1")
    assert loader(other) is not loader(default)
    assert str(tmp_path) in loader(other).search_paths


def test_sharing_is_registered_once() -> None:
    import botocore

    botocore_data.share_loaders()
    botocore_data.share_loaders()
    botocore.unregister_initializer(botocore_data._use_shared_loader)
    try:
        with pytest.raises(ValueError):  # it was there once only
            botocore.unregister_initializer(botocore_data._use_shared_loader)
        assert loader(boto3.Session()) is not loader(boto3.Session())  # without it: one loader per session
    finally:
        botocore.register_initializer(botocore_data._use_shared_loader)
    assert loader(boto3.Session()) is loader(boto3.Session())
