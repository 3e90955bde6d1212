"""The asset that asks for a new model: ``churn_drift`` emits an event on it when a partition (or the
endpoint's traffic) drifted from the serving model's training baseline beyond the deployment's thresholds.

Each event's ``extra`` is :func:`request_extra`: ``dt`` (the drifted partition: the day a retraining run
trains up to), ``reasons`` (one line per drifted feature), ``baseline_id`` and ``report`` (the drift report's
S3 prefix). ``churn_train_deploy`` schedules on it (its ``partition`` task reads ``extra["dt"]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.sdk import Asset

from sagelake.config.settings import default_params
from sagelake.lake.layout import check_dt


def retraining_requested() -> Asset:
    """Drift asks for retraining; the URI is where the drift reports that justify it live."""
    bucket = default_params()["bucket"]
    return Asset(name="retraining_requested", uri=f"s3://{bucket}/metrics/drift/")


def request_extra(dt: str, reasons: Iterable[str], *, baseline_id: str, report: str) -> dict[str, Any]:
    """The event's ``extra``: ``{dt, reasons, baseline_id, report}`` (reasons: at least one)."""
    listed = [str(r) for r in reasons]
    if not listed:
        raise ValueError("a retraining request needs at least one reason")
    return {"dt": check_dt(dt), "reasons": listed, "baseline_id": baseline_id, "report": report}
