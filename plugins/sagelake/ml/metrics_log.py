"""Final metrics from a training log, as SageMaker computes them from ``MetricDefinitions``.

Each definition's regex is searched on every log line; its first group is the value and the last match
wins (SageMaker reports that as the final metric and the tuning objective). Without definitions, the
training scripts' own ``name:part=value`` lines (e.g. ``validation:auc=0.8123``) are the metrics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

# "validation:auc=0.8123" — a metric name with a colon, '=', a number.
DEFAULT_METRIC_LINE = re.compile(
    r"^\s*([A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-:]+)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


def last_value(lines: Iterable[str], pattern: re.Pattern[str], *, finite_only: bool = False) -> float | None:
    """The first group of ``pattern``'s last match in ``lines`` that is a number (else None).

    ``finite_only`` also skips NaN and infinities (what a tuning objective must be)."""
    value = None
    for line in lines:
        match = pattern.search(line)
        if not match:
            continue
        try:
            number = float(match.group(1))
        except (IndexError, TypeError, ValueError):
            continue
        if not finite_only or math.isfinite(number):
            value = number
    return value


def final_metrics(
    lines: Iterable[str], definitions: Iterable[Mapping[str, str]] | None = None
) -> dict[str, float]:
    """Every metric found in ``lines``, by name: the definitions' regexes, else ``name:part=value`` lines."""
    lines = list(lines)
    compiled = [(d["Name"], re.compile(d["Regex"])) for d in definitions or ()]
    if compiled:
        found = {name: last_value(lines, regex) for name, regex in compiled}
        return {name: value for name, value in found.items() if value is not None}
    metrics: dict[str, float] = {}
    for line in lines:
        match = DEFAULT_METRIC_LINE.match(line)
        if match:
            metrics[match.group(1)] = float(match.group(2))
    return metrics
