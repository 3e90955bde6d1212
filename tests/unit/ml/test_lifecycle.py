"""Unit tests of the small plain modules: target, lake layout, approval policy, lifecycle helpers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sagelake.ml import artifacts, lifecycle


def test_resolve_dt_prefers_param_then_newest_asset_event() -> None:
    events = [
        SimpleNamespace(extra={"dt": "2026-11-24"}),
        SimpleNamespace(extra={"dt": "2026-11-25"}),
        SimpleNamespace(extra={}),
    ]
    assert lifecycle.resolve_dt("2026-11-01", events) == "2026-11-01"
    assert lifecycle.resolve_dt(None, events) == "2026-11-25"
    with pytest.raises(lifecycle.NoPartitionError, match="trigger with conf"):
        lifecycle.resolve_dt(None, [])
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        lifecycle.resolve_dt("yesterday", [])


def test_artefact_uris_and_versions() -> None:
    assert artifacts.output_tar_uri("s3://b/m/j/output/model.tar.gz") == "s3://b/m/j/output/output.tar.gz"
    with pytest.raises(ValueError, match="model.tar.gz"):
        artifacts.output_tar_uri("s3://b/m/j/output/model.zip")
    assert lifecycle.package_version("arn:aws:sagemaker:us-east-1:1:model-package/churn/12") == 12
    with pytest.raises(ValueError, match="versioned"):
        lifecycle.package_version("arn:aws:sagemaker:us-east-1:1:model-package-group/churn")


def test_check_predictions() -> None:
    good = {"predictions": [{"churn_probability": 0.2, "churned": 0}, {"churn_probability": 1, "churned": 1}]}
    assert len(lifecycle.check_predictions(good, 2)) == 2
    for bad in (
        {"predictions": []},
        {"oops": 1},
        {"predictions": [{"churn_probability": 1.5}]},
        {"predictions": [{"churn_probability": "0.3"}]},
    ):
        with pytest.raises(ValueError):
            lifecycle.check_predictions(bad, 1)
