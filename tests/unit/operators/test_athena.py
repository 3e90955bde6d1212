"""Unit tests of the small plain modules: target, lake layout, approval policy, lifecycle helpers."""

from __future__ import annotations

from sagelake.operators.athena import rows_from_athena_results


def test_rows_from_athena_results() -> None:
    response = {
        "ResultSet": {"Rows": [{"Data": [{"VarCharValue": "value"}]}, {"Data": [{"VarCharValue": "42"}]}]}
    }
    assert rows_from_athena_results(response) == (["value"], [("42",)])
    assert rows_from_athena_results({"ResultSet": {"Rows": []}}) == ([], [])
