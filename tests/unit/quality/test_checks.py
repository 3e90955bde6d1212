"""Declarative quality checks: header parsing, expectations, results and verdicts (no AWS, no Airflow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sagelake.quality import checks as quality
from sagelake.quality.checks import QualityCheckError
from tests.support.constants import CHECKS_DIR

GOOD = """-- description: Enough rows
-- severity: error
-- expect: value >= 500
SELECT count(*) AS value
FROM {{ params.glue_database }}.churn_features
WHERE dt = '{{ ds }}';
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.sql"
    path.write_text(text)
    return path


def test_load_check_parses_header_and_query(tmp_path: Path) -> None:
    spec = quality.load_check(write(tmp_path, "row_count", GOOD))
    assert spec.name == "row_count"
    assert spec.description == "Enough rows"
    assert spec.severity == "error"
    assert spec.expectation == quality.Expectation("value >= 500", ">=", (500.0,))
    assert spec.sql.startswith("SELECT count(*) AS value")
    assert spec.sql.endswith("WHERE dt = '{{ ds }}'")  # trailing semicolon dropped
    assert spec.path == str(tmp_path / "row_count.sql")


def test_header_tolerates_blank_lines_and_case(tmp_path: Path) -> None:
    text = "\n-- Description: Share\n\n--severity:WARN\n-- expect:  value   BETWEEN 0 and 1\n"
    text += "SELECT 0.5 AS value\n"
    spec = quality.load_check(write(tmp_path, "share", text))
    assert (spec.description, spec.severity, spec.expectation.op) == ("Share", "warn", "between")
    assert spec.expectation.bounds == (0.0, 1.0)
    assert spec.sql == "SELECT 0.5 AS value"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("-- severity: error\n-- expect: value > 1\nSELECT 1 AS value", 3, "missing header"),
        ("-- description: d\n-- severity: fatal\n-- expect: value > 1\nSELECT 1 AS value", 2, "severity"),
        (
            "-- description: d\n-- severity: error\n-- expect: value ~ 1\nSELECT 1 AS value",
            3,
            "not understood",
        ),
        (
            "-- description: d\n-- owner: me\n-- severity: error\n-- expect: value > 1\nSELECT 1",
            2,
            "unknown header",
        ),
        ("-- description: d\n-- just a comment\n", 2, "-- key: value"),
        ("-- description: d\n-- description: e\n", 2, "given twice"),
        ("-- description:\n-- severity: error\n-- expect: value > 1\nSELECT 1", 1, "no value"),
        ("-- description: d\n-- severity: error\n-- expect: value > 1\n\n", 5, "no query"),
        (
            "-- description: d\n-- severity: error\n-- expect: value between 2 and 1\nSELECT 1",
            3,
            "lower bound",
        ),
    ],
)
def test_malformed_headers_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "broken", text)
    with pytest.raises(QualityCheckError, match=message) as excinfo:
        quality.load_check(path)
    assert str(excinfo.value).startswith(f"{path}:{line}:")


@pytest.mark.parametrize(
    ("text", "value", "passed"),
    [
        ("value >= 500", 500, True),
        ("value >= 500", 499.9, False),
        ("value > 0", 0, False),
        ("value > 0", 1e-9, True),
        ("value <= 0.2", 0.2, True),
        ("value <= 0.2", 0.21, False),
        ("value < -1", -1, False),
        ("value < -1", -1.5, True),
        ("value == 0", 0, True),
        ("value == 0", 1, False),
        ("value != 0", 0, False),
        ("value != 0", 3, True),
        ("value between 0.03 and 0.6", 0.03, True),
        ("value between 0.03 and 0.6", 0.6, True),
        ("value between 0.03 and 0.6", 0.0299, False),
        ("value between 0.03 and 0.6", 0.61, False),
        ("value between -1e3 and 2.5E1", -1000, True),
        ("value >= 0", float("nan"), False),
    ],
)
def test_expectations(text: str, value: float, passed: bool) -> None:
    assert quality.parse_expectation(text).holds(value) is passed


@pytest.mark.parametrize(
    "text", ["value => 3", "count >= 3", "value >= ", "value between 1", "value >= abc", ""]
)
def test_bad_expectations_raise(text: str) -> None:
    with pytest.raises(QualityCheckError, match="not understood"):
        quality.parse_expectation(text)


def test_value_from_result() -> None:
    assert quality.value_from_result(["value"], [(42,)]) == 42.0
    assert quality.value_from_result(["other", "VALUE"], [("x", "0.25")]) == 0.25  # Athena returns strings
    with pytest.raises(QualityCheckError, match="exactly one row, got 2"):
        quality.value_from_result(["value"], [(1,), (2,)])
    with pytest.raises(QualityCheckError, match="exactly one row, got 0"):
        quality.value_from_result(["value"], [])
    with pytest.raises(QualityCheckError, match="column named 'value'"):
        quality.value_from_result(["_col0"], [(1,)])
    with pytest.raises(QualityCheckError, match="NULL"):
        quality.value_from_result(["value"], [(None,)])
    with pytest.raises(QualityCheckError, match="NULL"):
        quality.value_from_result(["value"], [("",)])
    with pytest.raises(QualityCheckError, match="non-numeric"):
        quality.value_from_result(["value"], [("abc",)])
    with pytest.raises(QualityCheckError, match="NaN"):
        quality.value_from_result(["value"], [(float("nan"),)])


def test_evaluate_gives_a_verdict_with_the_severity(tmp_path: Path) -> None:
    error_spec = quality.load_check(write(tmp_path, "row_count", GOOD))
    warn_spec = quality.load_check(
        write(
            tmp_path,
            "share",
            "-- description: s\n-- severity: warn\n-- expect: value <= 0.2\nSELECT 1 AS value",
        )
    )
    passed = quality.evaluate(error_spec, 600)
    assert passed.as_dict() == {
        "name": "row_count",
        "value": 600,
        "expectation": "value >= 500",
        "passed": True,
        "severity": "error",
    }
    warned = quality.evaluate(warn_spec, 0.5)
    assert not warned.passed and warned.severity == "warn"
    failed = quality.evaluate(error_spec, 12)
    assert not failed.passed and failed.severity == "error"


def test_load_checks_sorted_and_errors(tmp_path: Path) -> None:
    write(tmp_path, "b_check", GOOD)
    write(tmp_path, "a_check", GOOD)
    (tmp_path / "notes.txt").write_text("not a check")
    assert [spec.name for spec in quality.load_checks(tmp_path)] == ["a_check", "b_check"]
    with pytest.raises(QualityCheckError, match="does not exist"):
        quality.load_checks(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(QualityCheckError, match="no quality checks"):
        quality.load_checks(empty)


def test_shipped_checks_parse() -> None:
    specs = quality.load_checks(CHECKS_DIR)
    assert [s.name for s in specs] == sorted(s.name for s in specs)
    assert len(specs) >= 5
    assert any(s.severity == "warn" for s in specs)
    for spec in specs:
        # every check audits a staged version (write-audit-publish), never what readers already see
        assert re.search(r"\{\{ params\.glue_database \}\}\.\w+_staged\b", spec.sql), spec.name
        assert "dt = '{{ params.dt or ds }}'" in spec.sql  # the run's partition: conf dt, else logical date
