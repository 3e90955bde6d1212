"""The endpoint server's approval check (``ModelRegistry``) on a stub registry: which artefacts are
approved, each version described once, the refusal's message."""

from __future__ import annotations

import pytest

from sagelake.local.endpoint_server import InvocationError, ModelRegistry, ModelSource, Resolution, Variant


class Registry:
    """Package versions (ARN → (status, model URLs)) behind ListModelPackages / DescribeModelPackage."""

    def __init__(self, versions: dict[str, tuple[str, list[str]]], page_size: int = 2) -> None:
        self.versions, self.page_size = versions, page_size
        self.described: list[str] = []
        self.listed: list[dict] = []

    def get_paginator(self, operation: str):
        assert operation == "list_model_packages"
        registry = self

        class Paginator:
            def paginate(self, **filters):
                registry.listed.append(filters)
                assert filters["ModelPackageType"] == "Versioned"
                wanted = filters.get("ModelApprovalStatus")
                summaries = [
                    {"ModelPackageArn": arn, "ModelApprovalStatus": status}
                    for arn, (status, _) in registry.versions.items()
                    if wanted in (None, status)
                ]
                for start in range(0, max(len(summaries), 1), registry.page_size):
                    yield {"ModelPackageSummaryList": summaries[start : start + registry.page_size]}

        return Paginator()

    def describe_model_package(self, ModelPackageName: str) -> dict:
        self.described.append(ModelPackageName)
        _, urls = self.versions[ModelPackageName]
        return {"InferenceSpecification": {"Containers": [{"ModelDataUrl": url} for url in urls]}}


def resolution(*urls: str) -> Resolution:
    variants = tuple(Variant(f"V{i}", f"model-{i}", 1.0) for i in range(len(urls)))
    return Resolution(
        "config", variants, {v.name: ModelSource(url) for v, url in zip(variants, urls, strict=True)}
    )


def test_approved_urls_span_every_page_and_describe_each_version_once() -> None:
    stub = Registry(
        {
            "arn:g/1": ("Approved", ["s3://b/a.tar.gz"]),
            "arn:g/2": ("Rejected", ["s3://b/r.tar.gz"]),
            "arn:h/1": ("Approved", ["s3://b/h.tar.gz", "s3://b/h2.tar.gz"]),
            "arn:h/2": ("Approved", ["s3://b/h3.tar.gz"]),
        }
    )
    registry = ModelRegistry(stub)
    expected = {"s3://b/a.tar.gz", "s3://b/h.tar.gz", "s3://b/h2.tar.gz", "s3://b/h3.tar.gz"}
    assert registry.approved_urls() == expected
    assert registry.approved_urls() == expected
    assert sorted(stub.described) == ["arn:g/1", "arn:h/1", "arn:h/2"]  # once each, never the rejected one
    assert stub.listed == [{"ModelPackageType": "Versioned", "ModelApprovalStatus": "Approved"}] * 2


def test_an_approved_resolution_passes_unchanged() -> None:
    registry = ModelRegistry(Registry({"arn:g/1": ("Approved", ["s3://b/a.tar.gz"])}))
    served = resolution("s3://b/a.tar.gz", "s3://b/a.tar.gz")
    assert registry.check(served, "e") is served


def test_an_unapproved_variant_is_refused_with_its_versions_status() -> None:
    registry = ModelRegistry(
        Registry(
            {
                "arn:g/1": ("Approved", ["s3://b/a.tar.gz"]),
                "arn:g/2": ("PendingManualApproval", ["s3://b/p.tar.gz"]),
                "arn:g/3": ("Rejected", ["s3://b/p.tar.gz"]),
            }
        )
    )
    with pytest.raises(InvocationError) as caught:
        registry.check(resolution("s3://b/a.tar.gz", "s3://b/p.tar.gz"), "churn")
    error = caught.value
    assert (error.status, error.code) == (400, "ValidationError")
    assert "Endpoint churn: model model-1 serves s3://b/p.tar.gz" in error.message
    assert "arn:g/2 is PendingManualApproval; arn:g/3 is Rejected" in error.message


def test_an_artefact_no_version_registers_is_refused() -> None:
    registry = ModelRegistry(Registry({}))
    with pytest.raises(InvocationError, match="no model package version registers it"):
        registry.check(resolution("s3://b/x.tar.gz"), "e")
