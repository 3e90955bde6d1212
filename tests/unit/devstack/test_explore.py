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
