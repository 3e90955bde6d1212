"""The project's custom CloudWatch metrics: one namespace, ``sagelake``, documented dimensions.

Builders turn what the pipeline computed into ``PutMetricData`` items (plain functions, no Airflow, no
AWS): :func:`publish_metrics` (the ETL record of a published partition), :func:`check_metrics` (quality
verdicts), :func:`freshness_metrics` (the catalog's published days), :func:`model_metrics` (the evaluation
report); drift's items come from :func:`sagelake.ml.drift.metric_data`. :func:`put_metrics` sends any of
them in batches. The readers take boto3 clients. See docs/monitoring.md for every metric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.quality.checks import SEVERITIES
from sagelake.quality.results import result_uri

NAMESPACE = "sagelake"
FEATURES = "churn_features"  # the dataset churn_prepare publishes
EVENTS = "processed_events"
MAX_ITEMS_PER_CALL = 1000  # PutMetricData's limit of metric data per request

Datum = dict[str, Any]


def datum(name: str, value: float, unit: str, dimensions: Mapping[str, str], timestamp: datetime) -> Datum:
    """One ``MetricData`` item; dimensions in the order given."""
    return {
        "MetricName": name,
        "Dimensions": [{"Name": key, "Value": str(val)} for key, val in dimensions.items()],
        "Timestamp": timestamp,
        "Value": float(value),
        "Unit": unit,
    }


def _number(value: Any) -> float | None:
    """``value`` as a finite float, else None (CloudWatch refuses NaN and infinities)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# --- publish: rows published and quarantined --------------------------------------------------------------


def quarantine_ratio(etl: Mapping[str, Any]) -> float:
    """Quarantined rows over landed rows (customers and events) of one day's input; 0 when nothing landed."""
    landed = int(etl.get("customers_landed") or 0) + int(etl.get("events_landed") or 0)
    return int(etl.get("quarantined") or 0) / landed if landed else 0.0


def publish_metrics(etl: Mapping[str, Any], *, timestamp: datetime) -> list[Datum]:
    """From the ETL record of the published version (``etl_metrics``): ``RowsPublished`` per ``Dataset``
    (``churn_features``: feature rows, ``processed_events``: cleaned events), and for ``churn_features``
    ``RowsQuarantined`` and ``QuarantineRatio`` (quarantined / landed rows)."""
    features = {"Dataset": FEATURES}
    return [
        datum("RowsPublished", etl["features_rows"], "Count", features, timestamp),
        datum("RowsPublished", etl["events_cleaned"], "Count", {"Dataset": EVENTS}, timestamp),
        datum("RowsQuarantined", etl["quarantined"], "Count", features, timestamp),
        datum("QuarantineRatio", quarantine_ratio(etl), "None", features, timestamp),
    ]


def read_etl_record(s3: Any, location: str) -> dict[str, Any]:
    """The one-line JSON record the Glue job wrote under ``location`` (an ``etl_metrics`` version)."""
    bucket, prefix = split_s3_uri(location)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for key in sorted(o["Key"] for page in pages for o in page.get("Contents", [])):
        if key.endswith(".json"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8").strip()
            if body:
                return json.loads(body.splitlines()[0])
    raise FileNotFoundError(f"no ETL metrics record under {location}")


# --- quality checks: verdicts -------------------------------------------------------------------------------


def check_metrics(
    verdicts: Iterable[Mapping[str, Any]], *, dataset: str = FEATURES, timestamp: datetime
) -> list[Datum]:
    """From ``quality_results`` rows (``check_name``, ``severity``, ``verdict``, ``value``): per check
    ``CheckFailed`` (1 or 0; ``Dataset``, ``Check``, ``Severity``) and ``CheckValue`` (``Dataset``,
    ``Check``; when finite), and ``FailedChecks`` per ``Severity`` (``Dataset``, ``Severity``: how many of
    these verdicts failed, 0 included, so the metric's Sum over a period counts the period's failures)."""
    items: list[Datum] = []
    failed = dict.fromkeys(SEVERITIES, 0)
    for row in verdicts:
        severity, is_failed = row["severity"], row["verdict"] != "pass"
        failed[severity] = failed.get(severity, 0) + int(is_failed)
        check = {"Dataset": dataset, "Check": row["check_name"]}
        items.append(
            datum("CheckFailed", int(is_failed), "Count", {**check, "Severity": severity}, timestamp)
        )
        value = _number(row.get("value"))
        if value is not None:
            items.append(datum("CheckValue", value, "None", check, timestamp))
    items += [
        datum("FailedChecks", count, "Count", {"Dataset": dataset, "Severity": severity}, timestamp)
        for severity, count in failed.items()
    ]
    return items


def read_verdict(s3: Any, lake: Lake, dt: str, *, dag_id: str, run_id: str, check: str) -> dict | None:
    """The ``quality_results`` row of ``check`` in this run, or None if the check recorded none."""
    uri = result_uri(lake, dt, {"dag_id": dag_id, "run_id": run_id, "check_name": check})
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


# --- freshness: the newest published day -------------------------------------------------------------------


def hours_since(dt: str, now: datetime) -> float:
    """Hours from the end of day ``dt`` (UTC midnight after it) to ``now``; 0 while the day lasts."""
    end = datetime.combine(date.fromisoformat(dt) + timedelta(days=1), time(), tzinfo=UTC)
    return max(0.0, (now - end).total_seconds() / 3600)


def freshness_metrics(published: Mapping[str, str], *, dataset: str = FEATURES, now: datetime) -> list[Datum]:
    """``HoursSinceLastPublish`` (``Dataset``): hours since the end of the newest published day of
    ``published`` (dt → location, :func:`sagelake.lake.publish.published_partitions`); no item when
    nothing is published (the freshness alarm counts missing data as stale)."""
    if not published:
        return []
    newest = max(published)
    return [datum("HoursSinceLastPublish", hours_since(newest, now), "None", {"Dataset": dataset}, now)]


# --- model: the evaluation of the challenger (and the champion) -------------------------------------------


def model_metrics(
    models: Mapping[str, Mapping[str, Any]], *, model_package_group: str, timestamp: datetime
) -> list[Datum]:
    """``ModelQuality`` per candidate (``challenger``, ``champion``) and measure of the evaluation report's
    ``models``: dimensions ``ModelPackageGroup``, ``Candidate``, ``Metric``; non-numbers are left out."""
    return [
        datum(
            "ModelQuality",
            value,
            "None",
            {"ModelPackageGroup": model_package_group, "Candidate": candidate, "Metric": name},
            timestamp,
        )
        for candidate, measures in models.items()
        for name, raw in (measures or {}).items()
        if (value := _number(raw)) is not None
    ]


# --- sending -----------------------------------------------------------------------------------------------


def put_metrics(cloudwatch: Any, namespace: str, data: list[Datum]) -> int:
    """``PutMetricData`` of ``data`` into ``namespace``, at most 1,000 items a call; returns how many."""
    for start in range(0, len(data), MAX_ITEMS_PER_CALL):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + MAX_ITEMS_PER_CALL])
    return len(data)
