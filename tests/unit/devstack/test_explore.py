"""The exploration queries as files: each renders for a date range, prunes on dt, and says what it answers."""

from __future__ import annotations

import pytest
import sqlglot

from devstack import explore


def test_every_query_is_described_and_filters_on_the_partition_range() -> None:
    names = explore.queries()
    assert {"churn_by_plan_region", "weekly_trends", "quarantine_reasons", "quality_history"} <= set(names)
    for name, description in names.items():
        assert description and not description.startswith("--"), name
        sql = explore.render(name, "2026-11-01", "2026-11-07", "lakedb")
        parsed = sqlglot.parse_one(sql, read="athena")
        where = parsed.find(sqlglot.exp.Where)
        assert where is not None and "dt BETWEEN '2026-11-01' AND '2026-11-07'" in where.sql("athena"), name
        assert all(t.db == "lakedb" for t in parsed.find_all(sqlglot.exp.Table)), name


def test_human_bytes() -> None:
    assert explore.human_bytes(512) == "512 B"
    assert explore.human_bytes(3 * 1024 * 1024) == "3.0 MiB (3145728 B)"


def test_unknown_target_is_refused() -> None:
    with pytest.raises(explore.ExploreError, match="neither 'local' nor 'aws'"):
        explore.LakeQuery("gcp")


class FakeAthena:
    """Athena answering one query: RUNNING once, then SUCCEEDED, results on two pages."""

    def __init__(self) -> None:
        self.started: dict = {}
        self.polls = 0

    def start_query_execution(self, **kwargs) -> dict:
        self.started = kwargs
        return {"QueryExecutionId": "q-1"}

    def get_query_execution(self, QueryExecutionId: str) -> dict:
        self.polls += 1
        state = "RUNNING" if self.polls == 1 else "SUCCEEDED"
        statistics = {"DataScannedInBytes": 10485760}
        return {"QueryExecution": {"Status": {"State": state}, "Statistics": statistics}}

    def get_paginator(self, name: str):
        info = [{"Name": "plan", "Type": "varchar"}, {"Name": "customers", "Type": "bigint"}]

        def page(rows):
            data = [{"Data": [{"VarCharValue": v} for v in row]} for row in rows]
            return {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": info}, "Rows": data}}

        pages = [page([["plan", "customers"], ["basic", "12"]]), page([["premium", "3"]])]
        return type("P", (), {"paginate": staticmethod(lambda **_: pages)})()


def test_on_aws_the_workgroup_runs_the_query_and_reports_athenas_bytes(monkeypatch) -> None:
    import boto3

    fake = FakeAthena()
    monkeypatch.setattr(boto3, "client", lambda service, **_: fake)
    monkeypatch.setattr(explore.time, "sleep", lambda _: None)
    monkeypatch.setenv("SAGELAKE_ATHENA_WORKGROUP", "analysts")
    result = explore.LakeQuery("aws", "lakedb").sql("SELECT 1")
    assert fake.started == {
        "QueryString": "SELECT 1",
        "QueryExecutionContext": {"Database": "lakedb"},
        "WorkGroup": "analysts",
    }
    assert (result.columns, result.rows) == (["plan", "customers"], [("basic", 12), ("premium", 3)])
    assert (result.bytes_scanned, result.engine) == (10485760, "Athena (analysts)")
