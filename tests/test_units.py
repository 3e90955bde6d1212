"""Unit tests of the small plain modules: target, lake layout, approval policy, lifecycle helpers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sagelake import approval, lifecycle, target
from sagelake.lake import Lake, check_dt, split_s3_uri
from sagelake.operators.athena import rows_from_athena_results


def test_target_defaults_to_local_and_rejects_unknown(monkeypatch) -> None:
    monkeypatch.delenv("SAGELAKE_TARGET", raising=False)
    assert target.current_target() == "local"
    monkeypatch.setenv("SAGELAKE_TARGET", " AWS ")
    assert target.current_target() == "aws" and not target.is_local()
    monkeypatch.setenv("SAGELAKE_TARGET", "azure")
    with pytest.raises(target.UnknownTargetError, match="set it to 'local' or 'aws'"):
        target.current_target()


def test_lake_layout_is_partitioned_by_dt() -> None:
    lake = Lake("b")
    assert lake.raw_events("2026-11-26") == "s3://b/raw/events/dt=2026-11-26/"
    assert lake.curated_features("2026-11-26") == "s3://b/curated/churn_features/dt=2026-11-26/"
    assert split_s3_uri("s3://b/a/c.txt") == ("b", "a/c.txt")
    for bad in ("2026-1-26", "2026/11/26", "2026-13-01", "2026-02-30", "", None):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            check_dt(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="s3://"):
        split_s3_uri("http://b/k")


@pytest.mark.parametrize(
    ("metrics", "status"),
    [
        ({"auc": 0.8}, "Approved"),
        ({"auc": 0.75}, "Approved"),
        ({"auc": 0.7}, "Rejected"),
        ({"accuracy": 0.99}, "Rejected"),
        ({"auc": float("nan")}, "Rejected"),
    ],
)
def test_approval_policy(metrics, status) -> None:
    decision = approval.decide(metrics, metric="auc", minimum=0.75)
    assert decision.status == status
    assert decision.approved is (status == "Approved")
    assert decision.reason


def test_metrics_round_trip_through_package_metadata() -> None:
    from sagelake.aws_requests import model_package_extras

    extras = model_package_extras(
        evaluation_uri="s3://b/e.json",
        metrics={"auc": 0.81234, "f1": 0.5},
        dt="2026-11-26",
        run_id="r",
        training_job="j",
    )
    assert approval.metrics_from_metadata(extras["CustomerMetadataProperties"]) == {"auc": 0.81234, "f1": 0.5}


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
    assert lifecycle.output_tar_uri("s3://b/m/j/output/model.tar.gz") == "s3://b/m/j/output/output.tar.gz"
    with pytest.raises(ValueError, match="model.tar.gz"):
        lifecycle.output_tar_uri("s3://b/m/j/output/model.zip")
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


def test_rows_from_athena_results() -> None:
    response = {
        "ResultSet": {"Rows": [{"Data": [{"VarCharValue": "value"}]}, {"Data": [{"VarCharValue": "42"}]}]}
    }
    assert rows_from_athena_results(response) == (["value"], [("42",)])
    assert rows_from_athena_results({"ResultSet": {"Rows": []}}) == ([], [])
