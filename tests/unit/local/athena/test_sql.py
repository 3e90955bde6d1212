"""Athena SQL → DuckDB translation helpers, checked without servers."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot

from sagelake.local.athena.sql import KeyCondition, duckdb_type, hive_type, partition_conditions


@pytest.mark.parametrize(
    "glue_type",
    ["string", "int", "bigint", "double", "float", "boolean", "date", "timestamp", "decimal(10,2)"]
    + ["array<string>", "map<string,int>", "struct<a:int,b:string>", "smallint", "tinyint", "binary"],
)
def test_glue_types_round_trip_through_duckdb(glue_type: str) -> None:
    con = duckdb.connect()
    described = con.execute(f"DESCRIBE SELECT CAST(NULL AS {duckdb_type(glue_type)}) AS x").fetchall()
    assert hive_type(described[0][1]) == glue_type


def conditions(sql: str) -> dict[tuple[str, str], list[list[tuple[str, str, tuple[str, ...]]]]]:
    found = partition_conditions(sqlglot.parse_one(sql, read="athena"), "lake")
    return {
        table: [[(c.column, c.op, c.values) for c in reference] for reference in references]
        for table, references in found.items()
    }


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE dt = '2026-11-26'", [[("dt", "=", ("2026-11-26",))]]),
        ("SELECT * FROM lake.t WHERE '2026-11-26' = DT", [[("dt", "=", ("2026-11-26",))]]),
        ("SELECT * FROM t WHERE (dt IN ('a', 'b')) AND x > 1", [[("dt", "in", ("a", "b"))]]),
        ("SELECT * FROM t WHERE dt BETWEEN 'a' AND 'c'", [[("dt", ">=", ("a",)), ("dt", "<=", ("c",))]]),
        ("SELECT * FROM t WHERE 'b' < dt", [[("dt", ">", ("b",))]]),
        ("SELECT * FROM t x WHERE x.dt = 'a'", [[("dt", "=", ("a",))]]),
        ("SELECT * FROM lake.t WHERE lake.t.dt = 'a'", [[("dt", "=", ("a",))]]),
        # not provably restricting every row of the reference: no conditions
        ("SELECT * FROM t", [[]]),
        ("SELECT * FROM t WHERE dt = 'a' OR dt = 'b'", [[]]),
        ("SELECT * FROM t WHERE NOT dt = 'a'", [[]]),
        ("SELECT * FROM t WHERE dt NOT IN ('a')", [[]]),
        ("SELECT * FROM t WHERE dt IN (SELECT 'a')", [[]]),
        ("SELECT * FROM t WHERE dt = 20261126", [[]]),
        ("SELECT * FROM t WHERE dt = other", [[]]),
        ("SELECT * FROM t x WHERE y.dt = 'a'", [[]]),
        ("SELECT * FROM otherdb.t WHERE lake.t.dt = 'a'", []),
        ("SELECT * FROM t AS x(a, dt) WHERE dt = 'a'", [[]]),
        ("SELECT * FROM (SELECT * FROM t) WHERE dt = 'a'", [[]]),
        ("SELECT * FROM t JOIN u ON t.k = u.k AND t.dt = 'a'", [[]]),
    ],
)
def test_partition_conditions_of_one_reference(sql: str, expected: list) -> None:
    found = conditions(sql)
    if expected == []:
        assert found == {("otherdb", "t"): [[]]}
    else:
        assert found[("lake", "t")] == expected


def test_partition_conditions_per_reference_and_per_table() -> None:
    found = conditions(
        """
        WITH recent AS (SELECT * FROM t WHERE dt = 'b')
        SELECT * FROM recent r
        JOIN t old ON old.k = r.k
        LEFT JOIN u ON u.k = r.k
        WHERE old.dt = 'a' AND u.dt IN ('a', 'b') AND dt = 'ambiguous'
        UNION ALL SELECT * FROM t WHERE x = 1
        """
    )
    assert sorted(found) == [("lake", "t"), ("lake", "u")]
    assert sorted(found[("lake", "t")]) == [[], [("dt", "=", ("a",))], [("dt", "=", ("b",))]]
    assert found[("lake", "u")] == [[("dt", "in", ("a", "b"))]]
    ctas = sqlglot.parse_one("CREATE TABLE t2 AS SELECT * FROM t WHERE dt = 'a'", read="athena")
    assert partition_conditions(ctas, "lake") == {("lake", "t"): [[KeyCondition("dt", "=", ("a",))]]}


def test_key_condition_admits_string_values() -> None:
    assert KeyCondition("dt", "=", ("b",)).admits("b") and not KeyCondition("dt", "=", ("b",)).admits("B")
    assert KeyCondition("dt", "in", ("a", "c")).admits("c") and not KeyCondition("dt", "in", ("a",)).admits(
        "b"
    )
    assert KeyCondition("dt", "<", ("b",)).admits("a") and not KeyCondition("dt", "<", ("b",)).admits("b")
    assert KeyCondition("dt", "<=", ("b",)).admits("b") and KeyCondition("dt", ">=", ("b",)).admits("b")
    assert KeyCondition("dt", ">", ("2026-11-26",)).admits("2026-11-27")
