"""Declarative data-quality checks: one ``.sql`` file each, a header saying what to expect.

A check file starts with header comments, then one Athena query (a Jinja template rendered by Airflow)
returning exactly one row with a column ``value``::

    -- description: Curated partition has enough customers to train on
    -- severity: error
    -- expect: value >= 500
    SELECT count(*) AS value FROM {{ params.glue_database }}.churn_features WHERE dt = '{{ params.dt or ds }}'

``severity`` is ``error`` (a failure stops the pipeline) or ``warn`` (logged only); ``expect`` is
``value <op> N`` with op in ``>= > <= < == !=``, or ``value between A and B`` (inclusive).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SEVERITIES = ("error", "warn")
HEADER_KEYS = ("description", "severity", "expect")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_COMPARISON = re.compile(rf"^value\s*(>=|<=|==|!=|>|<)\s*({_NUMBER})$")
_BETWEEN = re.compile(rf"^value\s+between\s+({_NUMBER})\s+and\s+({_NUMBER})$", re.IGNORECASE)
_HEADER = re.compile(r"^--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")


class QualityCheckError(ValueError):
    """A check file, expectation or query result is malformed."""


@dataclass(frozen=True)
class Expectation:
    """``value <op> bound`` or ``value between low and high``."""

    text: str
    op: str
    bounds: tuple[float, ...]

    def holds(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.op == "between":
            low, high = self.bounds
            return low <= value <= high
        return _OPERATORS[self.op](value, self.bounds[0])


@dataclass(frozen=True)
class CheckSpec:
    """One check: its name (file stem), header fields and the query template."""

    name: str
    description: str
    severity: str
    expectation: Expectation
    sql: str
    path: str


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one value."""

    name: str
    value: float
    expectation: str
    passed: bool
    severity: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_expectation(text: str) -> Expectation:
    """Parse ``value >= 500`` or ``value between 0.03 and 0.6``; else raise :class:`QualityCheckError`."""
    cleaned = " ".join(text.split())
    match = _COMPARISON.match(cleaned)
    if match:
        return Expectation(cleaned, match.group(1), (float(match.group(2)),))
    match = _BETWEEN.match(cleaned)
    if match:
        low, high = float(match.group(1)), float(match.group(2))
        if low > high:
            raise QualityCheckError(
                f"expectation {text!r}: lower bound {low:g} is above upper bound {high:g}"
            )
        return Expectation(cleaned, "between", (low, high))
    raise QualityCheckError(
        f"expectation {text!r} is not understood: write 'value <op> N' (op one of >= > <= < == !=) "
        "or 'value between A and B'"
    )


def load_check(path: str | Path) -> CheckSpec:
    """Read one check file; malformed or missing headers raise naming the file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    header: dict[str, tuple[str, int]] = {}
    body_start = len(lines)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            body_start = number - 1
            break
        match = _HEADER.match(line)
        if not match:
            raise QualityCheckError(f"{path}:{number}: header line must be '-- key: value', got {line!r}")
        key, value = match.group(1).lower(), match.group(2)
        if key not in HEADER_KEYS:
            raise QualityCheckError(
                f"{path}:{number}: unknown header key {key!r} (expected one of {HEADER_KEYS})"
            )
        if key in header:
            raise QualityCheckError(f"{path}:{number}: header {key!r} given twice")
        if not value:
            raise QualityCheckError(f"{path}:{number}: header {key!r} has no value")
        header[key] = (value, number)
    missing = [key for key in HEADER_KEYS if key not in header]
    if missing:
        raise QualityCheckError(
            f"{path}:{body_start + 1}: missing header(s) {', '.join(missing)} before the query "
            "(need '-- description: ...', '-- severity: error|warn', '-- expect: value ...')"
        )
    severity, severity_line = header["severity"]
    if severity.lower() not in SEVERITIES:
        raise QualityCheckError(f"{path}:{severity_line}: severity {severity!r} must be 'error' or 'warn'")
    expect, expect_line = header["expect"]
    try:
        expectation = parse_expectation(expect)
    except QualityCheckError as exc:
        raise QualityCheckError(f"{path}:{expect_line}: {exc}") from exc
    sql = "\n".join(lines[body_start:]).strip().rstrip(";").strip()
    if not sql:
        raise QualityCheckError(f"{path}:{len(lines) + 1}: no query after the header")
    return CheckSpec(
        name=path.stem,
        description=header["description"][0],
        severity=severity.lower(),
        expectation=expectation,
        sql=sql,
        path=str(path),
    )


def load_checks(directory: str | Path) -> list[CheckSpec]:
    """Every ``*.sql`` check in ``directory``, sorted by name; an empty or missing directory raises."""
    directory = Path(directory)
    if not directory.is_dir():
        raise QualityCheckError(f"quality check directory {directory} does not exist")
    specs = [load_check(path) for path in sorted(directory.glob("*.sql"))]
    if not specs:
        raise QualityCheckError(f"no quality checks (*.sql) in {directory}: add at least one check file")
    return specs


def value_from_result(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> float:
    """The single numeric ``value`` of a check query's result (values may be Athena's strings)."""
    lowered = [str(column).lower() for column in columns]
    if "value" not in lowered:
        raise QualityCheckError(
            f"check query must return a column named 'value', got columns {list(columns)}"
        )
    if len(rows) != 1:
        raise QualityCheckError(f"check query must return exactly one row, got {len(rows)}")
    raw = rows[0][lowered.index("value")]
    if raw is None or raw == "":
        raise QualityCheckError("check query returned NULL as value: make the query return a number")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise QualityCheckError(f"check query returned a non-numeric value {raw!r}") from exc
    if math.isnan(value):
        raise QualityCheckError("check query returned NaN as value: make the query return a number")
    return value


def evaluate(spec: CheckSpec, value: float) -> CheckResult:
    """Compare one value to the check's expectation."""
    return CheckResult(
        name=spec.name,
        value=value,
        expectation=spec.expectation.text,
        passed=spec.expectation.holds(value),
        severity=spec.severity,
    )
