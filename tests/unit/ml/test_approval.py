"""Unit tests of the small plain modules: target, lake layout, approval policy, lifecycle helpers."""

from __future__ import annotations

import pytest

from sagelake.ml import approval


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
    from sagelake.ml.aws_requests import model_package_extras

    extras = model_package_extras(
        evaluation_uri="s3://b/e.json",
        metrics={"auc": 0.81234, "f1": 0.5},
        dt="2026-11-26",
        run_id="r",
        training_job="j",
    )
    assert approval.metrics_from_metadata(extras["CustomerMetadataProperties"]) == {"auc": 0.81234, "f1": 0.5}
