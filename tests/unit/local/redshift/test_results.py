"""The Data API shapes the local Redshift engine answers with, and where its database files live."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from sagelake.local.redshift.engine import Statement, StatementRun, database_path
from sagelake.local.redshift.errors import NoResultSetError


def test_get_statement_result_fields_and_types() -> None:
    statement = Statement(
        "id-1",
        "SELECT …",
        columns=[
            ("n", "BIGINT"),
            ("x", "DOUBLE"),
            ("s", "VARCHAR"),
            ("d", "DATE"),
            ("m", "DECIMAL(18,2)"),
            ("b", "BOOLEAN"),
            ("t", "TIMESTAMP"),
        ],
        rows=[
            (3, 0.5, "a", dt.date(2026, 1, 2), Decimal("1.50"), True, dt.datetime(2026, 1, 2, 3, 4, 5)),
            (None, None, None, None, None, None, None),
        ],
        has_result_set=True,
        result_rows=2,
    )
    result = statement.get_statement_result()
    assert result["TotalNumRows"] == 2
    assert [c["typeName"] for c in result["ColumnMetadata"]] == [
        "int8",
        "float8",
        "varchar",
        "date",
        "numeric",
        "bool",
        "timestamp",
    ]
    assert result["Records"][0] == [
        {"longValue": 3},
        {"doubleValue": 0.5},
        {"stringValue": "a"},
        {"stringValue": "2026-01-02"},
        {"stringValue": "1.50"},
        {"booleanValue": True},
        {"stringValue": "2026-01-02 03:04:05"},
    ]
    assert result["Records"][1] == [{"isNull": True}] * 7


def test_a_batch_describes_its_sub_statements() -> None:
    subs = [
        Statement("b:1", "DELETE …", result_rows=4),
        Statement("b:2", "SELECT 1", [("a", "INTEGER")], [(1,)], True, 1),
    ]
    run = StatementRun("b", subs, batch=True)
    assert run.statement_ids == ["b:1", "b:2"]
    described = run.describe()
    assert described["HasResultSet"] and [s["Id"] for s in described["SubStatements"]] == ["b:1", "b:2"]
    assert StatementRun("one", [subs[1]], batch=False).statement_ids == ["one"]
    with pytest.raises(NoResultSetError, match="b:1 has no result set"):
        subs[0].get_statement_result()


def test_database_path() -> None:
    assert database_path(Path("/s"), "wg", "Dev") == Path("/s/redshift/wg/dev.duckdb")
    for bad in ("", "../x", ".hidden"):
        with pytest.raises(ValueError, match="cannot name a local database file"):
            database_path(Path("/s"), bad, "dev")
