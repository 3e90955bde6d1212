"""The local endpoint server's per-variant CloudWatch metrics, as SageMaker publishes them.

Namespace ``AWS/SageMaker``, dimensions ``EndpointName`` and ``VariantName``, one-minute aggregates:
``Invocations``, ``Invocation4XXErrors`` and ``Invocation5XXErrors`` (counts; a minute with invocations
publishes all three, zeros included, as SageMaker does) and ``ModelLatency`` (microseconds, as statistic
values: sample count, sum, minimum, maximum). A request only adds to an in-memory aggregate under a lock;
a background thread puts what was aggregated every ``flush_seconds`` (and on :meth:`close`), never on the
request path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sagelake.local.flusher import PeriodicFlusher

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
FLUSH_SECONDS = 10.0
MAX_DATUMS_PER_PUT = 1000  # PutMetricData's limit
# put(namespace, metric data): one PutMetricData call
Put = Callable[[str, list[dict[str, Any]]], None]


@dataclass
class _Minute:
    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_min: float = float("inf")
    latency_max: float = 0.0


def metric_data(endpoint: str, variant: str, minute: datetime, agg: _Minute) -> list[dict[str, Any]]:
    """The ``MetricData`` of one variant's minute."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    data: list[dict[str, Any]] = [
        {
            "MetricName": name,
            "Dimensions": dimensions,
            "Timestamp": minute,
            "Value": float(value),
            "Unit": "None",
        }
        for name, value in (
            ("Invocations", agg.invocations),
            ("Invocation4XXErrors", agg.errors_4xx),
            ("Invocation5XXErrors", agg.errors_5xx),
        )
    ]
    if agg.latency_count:
        data.append(
            {
                "MetricName": "ModelLatency",
                "Dimensions": dimensions,
                "Timestamp": minute,
                "StatisticValues": {
                    "SampleCount": float(agg.latency_count),
                    "Sum": agg.latency_sum,
                    "Minimum": agg.latency_min,
                    "Maximum": agg.latency_max,
                },
                "Unit": "Microseconds",
            }
        )
    return data


class MetricsPublisher(PeriodicFlusher):
    """Aggregates invocations per (endpoint, variant, UTC minute) and puts them every ``flush_seconds``."""

    thread_name = "endpoint-metrics"

    def __init__(self, put: Put, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__(flush_seconds)
        self._put = put
        self._minutes: dict[tuple[str, str, datetime], _Minute] = {}

    def record(self, endpoint: str, variant: str, status: int, latency_s: float | None) -> None:
        """One invocation answered by ``variant`` with HTTP ``status``; ``latency_s``: the model's time."""
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        with self._lock:
            agg = self._minutes.get((endpoint, variant, minute))
            if agg is None:
                agg = self._minutes[(endpoint, variant, minute)] = _Minute()
            agg.invocations += 1
            if status == 424 or status >= 500:  # a ModelError (424) wraps the container's 500
                agg.errors_5xx += 1
            elif status >= 400:
                agg.errors_4xx += 1
            if latency_s is not None:
                micros = latency_s * 1e6
                agg.latency_count += 1
                agg.latency_sum += micros
                agg.latency_min = min(agg.latency_min, micros)
                agg.latency_max = max(agg.latency_max, micros)
        self._ensure_started()

    def flush(self) -> int:
        """Put every aggregate recorded since the last flush; returns how many datums were put."""
        with self._lock:
            minutes, self._minutes = self._minutes, {}
        data = [d for (e, v, m), agg in sorted(minutes.items()) for d in metric_data(e, v, m, agg)]
        for i in range(0, len(data), MAX_DATUMS_PER_PUT):
            try:
                self._put(NAMESPACE, data[i : i + MAX_DATUMS_PER_PUT])
            except Exception:  # metrics never fail serving: log and drop
                log.exception("putting %d endpoint metrics failed", len(data[i : i + MAX_DATUMS_PER_PUT]))
        return len(data)
