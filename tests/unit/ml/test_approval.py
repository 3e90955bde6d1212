"""Recording decisions in the model registry: statuses, who and why, the person's comparison."""

from __future__ import annotations

import pytest

from sagelake.ml import approval
from sagelake.ml.policy import Decision

CHALLENGER = {"auc": 0.8312, "log_loss": 0.41, "recall": 0.62}
CHAMPION = {"auc": 0.8265, "log_loss": 0.40, "recall": 0.64}


def test_models_come_from_the_report() -> None:
    report = {"models": {"challenger": CHALLENGER, "champion": CHAMPION}}
    assert approval.models_from_report(report) == (CHALLENGER, CHAMPION)
    assert approval.models_from_report({"models": {"challenger": CHALLENGER}}) == (CHALLENGER, None)
    with pytest.raises(approval.ReportError, match="no challenger"):
        approval.models_from_report({"models": {"champion": CHAMPION}})


@pytest.mark.parametrize(
    ("chosen", "user", "reason", "timed_out", "expected"),
    [
        (
            "Approve",
            {"id": "3", "name": "ana"},
            " lift holds ",
            False,
            "approved by ana in the Airflow UI: lift holds",
        ),
        ("Reject", {"id": "3", "name": ""}, "", False, "rejected by 3 in the Airflow UI: no reason given"),
        ("Reject", None, "", True, "rejected: nobody answered before the approval timeout"),
        ("Approve", None, "", False, "rejected: nobody answered before the approval timeout"),
    ],
)
def test_person_description_says_who_and_why(chosen, user, reason, timed_out, expected) -> None:
    assert approval.person_description(chosen, user, reason, timed_out=timed_out).startswith(expected)


def test_descriptions_fit_the_registry_limit() -> None:
    long = approval.person_description("Approve", {"name": "ana"}, "x" * 5000, timed_out=False)
    assert len(long) == approval.APPROVAL_DESCRIPTION_MAX_LEN
    decision = Decision("reject", ["r" * 3000])
    assert len(approval.policy_description(decision)) == approval.APPROVAL_DESCRIPTION_MAX_LEN


class Registry:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def update_model_package(self, **kwargs) -> None:
        self.calls.append(kwargs)


def test_record_writes_a_known_status_only() -> None:
    registry = Registry()
    approval.record(registry, "arn:p/1", approval.PENDING, "asking")
    assert registry.calls == [
        {
            "ModelPackageArn": "arn:p/1",
            "ModelApprovalStatus": "PendingManualApproval",
            "ApprovalDescription": "asking",
        }
    ]
    with pytest.raises(ValueError, match="not Approved, Rejected"):
        approval.record(registry, "arn:p/1", "approve", "no")
    assert len(registry.calls) == 1


def test_the_comparison_shows_both_models_the_reasons_and_the_report() -> None:
    body = approval.comparison_markdown(
        CHALLENGER,
        CHAMPION,
        decision=Decision("ask", ["auc 0.8312 vs champion 0.8265 (+0.0047 better): below the margin 0.0050"]),
        report_url="s3://lake/metrics/evaluation/report.html",
        package_arn="arn:p/2",
        dt="2026-11-20",
    )
    assert "| auc | 0.8312 | 0.8265 |" in body
    assert "| recall | 0.6200 | 0.6400 |" in body
    assert "below the margin" in body and "s3://lake/metrics/evaluation/report.html" in body
    first = approval.comparison_markdown(
        CHALLENGER, None, decision=Decision("ask", ["why"]), report_url="u", package_arn="a", dt="2026-11-20"
    )
    assert "| auc | 0.8312 | — |" in first


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
