"""The CloudWatch metric builders: names, dimensions, units and values from what the pipeline computed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sagelake.monitoring import metrics
from tests.support.pipeline import validate

NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
ETL = {
    "dt": "2026-11-26",
    "customers_landed": 1000,
    "events_landed": 9000,
    "features_rows": 990,
    "events_cleaned": 8900,
    "quarantined": 110,
}


def by_name(items: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Items keyed by (metric name, ((dimension, value), ...))."""
    return {(i["MetricName"], tuple((d["Name"], d["Value"]) for d in i["Dimensions"])): i for i in items}


def test_publish_metrics_are_rows_per_dataset_and_the_quarantine_ratio_of_the_days_input() -> None:
    items = by_name(metrics.publish_metrics(ETL, timestamp=NOW))
    features = (("Dataset", "churn_features"),)
    assert items[("RowsPublished", features)]["Value"] == 990.0
    assert items[("RowsPublished", (("Dataset", "processed_events"),))]["Value"] == 8900.0
    assert items[("RowsQuarantined", features)]["Value"] == 110.0
    ratio = items[("QuarantineRatio", features)]
    assert ratio["Value"] == pytest.approx(110 / 10000) and ratio["Unit"] == "None"
    assert {i["Unit"] for n, i in items.items() if n[0] != "QuarantineRatio"} == {"Count"}
    assert all(i["Timestamp"] == NOW for i in items.values())
    validate(
        "cloudwatch", "PutMetricData", {"Namespace": metrics.NAMESPACE, "MetricData": list(items.values())}
    )


def test_quarantine_ratio_of_an_empty_day_is_zero_not_a_division_error() -> None:
    assert metrics.quarantine_ratio({"customers_landed": 0, "events_landed": 0, "quarantined": 0}) == 0.0


def verdict(name: str, severity: str, passed: bool, value: float | None = 1.0) -> dict[str, Any]:
    return {"check_name": name, "severity": severity, "verdict": "pass" if passed else "fail", "value": value}


def test_check_metrics_flag_each_check_and_count_failures_per_severity() -> None:
    rows = [
        verdict("row_count", "error", False, 60.0),
        verdict("null_share", "error", True, 0.0),
        verdict("churn_rate", "warn", False, 0.9),
        verdict("freshness", "warn", True, float("nan")),
    ]
    items = by_name(metrics.check_metrics(rows, timestamp=NOW))
    ds = ("Dataset", "churn_features")
    assert items[("CheckFailed", (ds, ("Check", "row_count"), ("Severity", "error")))]["Value"] == 1.0
    assert items[("CheckFailed", (ds, ("Check", "null_share"), ("Severity", "error")))]["Value"] == 0.0
    assert items[("CheckValue", (ds, ("Check", "row_count")))]["Value"] == 60.0
    assert ("CheckValue", (ds, ("Check", "freshness"))) not in items  # CloudWatch refuses NaN
    assert items[("FailedChecks", (ds, ("Severity", "error")))]["Value"] == 1.0
    assert items[("FailedChecks", (ds, ("Severity", "warn")))]["Value"] == 1.0
    validate(
        "cloudwatch", "PutMetricData", {"Namespace": metrics.NAMESPACE, "MetricData": list(items.values())}
    )


def test_one_passing_verdict_still_reports_zero_failures_for_every_severity() -> None:
    items = by_name(metrics.check_metrics([verdict("row_count", "error", True)], timestamp=NOW))
    failed = {k[1][1][1]: v["Value"] for k, v in items.items() if k[0] == "FailedChecks"}
    assert failed == {"error": 0.0, "warn": 0.0}  # an alarm on errors sees a 0, not missing data


@pytest.mark.parametrize(
    ("newest", "hours"),
    [("2026-11-26", 6.5), ("2026-11-25", 30.5), ("2026-11-27", 0.0), ("2026-11-28", 0.0)],
)
def test_freshness_is_hours_since_the_end_of_the_newest_published_day(newest: str, hours: float) -> None:
    published = {"2026-11-20": "s3://b/x/", newest: "s3://b/y/"}
    (item,) = metrics.freshness_metrics(published, now=NOW)
    assert item["MetricName"] == "HoursSinceLastPublish"
    assert item["Dimensions"] == [{"Name": "Dataset", "Value": "churn_features"}]
    assert item["Value"] == pytest.approx(hours)


def test_nothing_published_gives_no_freshness_datum() -> None:
    assert metrics.freshness_metrics({}, now=NOW) == []


def test_model_metrics_are_one_datum_per_candidate_and_numeric_measure() -> None:
    models = {
        "challenger": {"roc_auc": 0.91, "f1": 0.7, "confusion": [[1, 2], [3, 4]], "flag": True},
        "champion": {"roc_auc": 0.88, "log_loss": float("inf")},
    }
    items = by_name(metrics.model_metrics(models, model_package_group="g", timestamp=NOW))
    assert {(k[1][1][1], k[1][2][1]): v["Value"] for k, v in items.items()} == {
        ("challenger", "roc_auc"): 0.91,
        ("challenger", "f1"): 0.7,
        ("champion", "roc_auc"): 0.88,
    }
    assert {k[0] for k in items} == {"ModelQuality"}
    assert {k[1][0] for k in items} == {("ModelPackageGroup", "g")}


class RecordingCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **request: Any) -> None:
        self.calls.append(request)


def test_put_metrics_sends_batches_of_at_most_1000_into_the_namespace() -> None:
    data = [metrics.datum("m", i, "Count", {"Dataset": "d"}, NOW) for i in range(2001)]
    cloudwatch = RecordingCloudWatch()
    assert metrics.put_metrics(cloudwatch, "ns", data) == 2001
    assert [len(c["MetricData"]) for c in cloudwatch.calls] == [1000, 1000, 1]
    assert {c["Namespace"] for c in cloudwatch.calls} == {"ns"}
    assert [d for c in cloudwatch.calls for d in c["MetricData"]] == data
    assert metrics.put_metrics(RecordingCloudWatch(), "ns", []) == 0
