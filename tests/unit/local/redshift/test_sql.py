"""Redshift SQL → DuckDB: what is translated (and means the same), what is dropped, what is refused."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from sagelake.config.settings import WAREHOUSE_SQL_DIR
from sagelake.local.redshift.errors import RedshiftSyntaxError, UnsupportedRedshiftFeatureError
from sagelake.local.redshift.sql import external_schema, external_tables, parse_statement, to_duckdb


def duck(sql: str, schemas: tuple[str, ...] = ("spectrum",), parameters: dict | None = None) -> str:
    return to_duckdb(parse_statement(sql), schemas, parameters)


def test_physical_design_is_dropped_and_lengths_are_kept() -> None:
    out = duck(
        "CREATE TABLE IF NOT EXISTS public.w (id VARCHAR(8) NOT NULL ENCODE zstd, note VARCHAR, "
        "fee DECIMAL, amount DECIMAL(10,2)) DISTSTYLE KEY DISTKEY(id) SORTKEY(id) BACKUP NO"
    )
    for dropped in ("DIST", "SORTKEY", "ENCODE", "BACKUP"):
        assert dropped not in out.upper()
    con = duckdb.connect()
    con.execute("CREATE SCHEMA public")
    con.execute(out)
    con.execute("INSERT INTO public.w VALUES ('12345678', NULL, 1.6, 1.234)")
    assert con.execute("SELECT fee, amount FROM public.w").fetchone() == (
        Decimal(2),
        Decimal("1.23"),
    )  # (18,0)
    with pytest.raises(duckdb.ConstraintException):  # VARCHAR(8) is 8 bytes, as on Redshift
        con.execute("INSERT INTO public.w VALUES ('123456789', NULL, 1, 1)")
    with pytest.raises(duckdb.ConstraintException):  # VARCHAR without a length is VARCHAR(256)
        con.execute(f"INSERT INTO public.w VALUES ('a', '{'x' * 257}', 1, 1)")
    with pytest.raises(duckdb.ConstraintException):  # bytes, not characters
        con.execute("INSERT INTO public.w VALUES ('ééééé', NULL, 1, 1)")


def test_functions_translate_with_redshift_meaning() -> None:
    con = duckdb.connect()
    con.execute("SET integer_division = true")  # as the engine's connection
    out = duck(
        "SELECT NVL(NULL, 7) / 2, LEN('abc'), DATEADD(day, 1, '2026-02-28'::DATE), "
        "TO_CHAR('2026-03-01'::DATE, 'YYYY-MM-DD')"
    )
    row = con.execute(out).fetchone()
    assert row[0] == 3 and row[1] == 3 and str(row[2]).startswith("2026-03-01") and row[3] == "2026-03-01"


def test_avg_of_integers_is_an_integer_as_on_redshift() -> None:
    con = duckdb.connect()
    con.execute("SET integer_division = true")
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES (1, 1.0, 'a'), (2, 2.5, 'a'), (NULL, NULL, 'b')) v(i, d, g)"
    )
    out = duck(
        "SELECT g, AVG(i), AVG(d), AVG(DISTINCT i), AVG(i) OVER (), ROUND(AVG(d::FLOAT8), 2) "
        "FROM t GROUP BY g, i ORDER BY g LIMIT 1"
    )
    assert "AVG" not in out.upper()
    assert duck("SELECT AVG(i) FROM t") and con.execute(duck("SELECT AVG(i), AVG(d) FROM t")).fetchone() == (
        1,
        1.75,
    )
    assert con.execute(duck("SELECT AVG(i) FROM t WHERE g = 'b'")).fetchone() == (None,)
    windowed = con.execute(
        duck("SELECT i, AVG(i) OVER (PARTITION BY g) FROM t ORDER BY i NULLS LAST")
    ).fetchall()
    assert windowed == [(1, 1), (2, 1), (None, None)]


def test_external_tables_become_temporary_views_and_parameters_literals() -> None:
    sql = (
        "SELECT f.plan, spectrum.churn_features.dt FROM spectrum.churn_features f "
        "JOIN w ON w.id = f.id WHERE f.dt = :dt"
    )
    statement = parse_statement(sql)
    assert external_tables(statement, {"spectrum"}) == [("spectrum", "churn_features")]
    out = to_duckdb(statement, {"spectrum"}, {"dt": "2026-01-01"})
    assert 'temp.main."spectrum.churn_features" AS f' in out
    assert "f.dt = '2026-01-01'" in out
    unaliased = duck("SELECT churn_features.dt FROM spectrum.churn_features")
    assert 'temp.main."spectrum.churn_features" AS churn_features' in unaliased


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("COPY t FROM 's3://b/k' IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS PARQUET", "COPY"),
        ("UNLOAD ('SELECT 1') TO 's3://b/k' IAM_ROLE 'arn:aws:iam::1:role/r'", "UNLOAD"),
        ("BEGIN", "BEGIN"),
        ("COMMIT", "COMMIT"),
        ("VACUUM t", "VACUUM"),
        ("GRANT SELECT ON t TO u", "GRANT"),
        ("SELECT made_up_fn(a) FROM t", "MADE_UP_FN"),
        ("CREATE TABLE t (a CHAR(2))", "CHAR"),
        ("CREATE TABLE t (a SUPER)", "SUPER"),
        ("CREATE TABLE t (a INT IDENTITY(1,1))", "IDENTITY"),
        ("INSERT INTO spectrum.churn_features SELECT * FROM t", "external table spectrum.churn_features"),
        ("DELETE FROM spectrum.churn_features", "external table spectrum.churn_features"),
        ("DROP TABLE spectrum.churn_features", "external table spectrum.churn_features"),
        ("TRUNCATE spectrum.churn_features", "external table spectrum.churn_features"),
        ("CREATE SCHEMA spectrum", 'external schema "spectrum" already exists'),
        ("SELECT * FROM dev.public.t", "cross-database name dev.public.t"),
        ("SELECT * FROM t WHERE dt = :dt", "parameter :dt"),
        (
            "CREATE EXTERNAL TABLE spectrum.x (a INT) STORED AS PARQUET LOCATION 's3://b/x/'",
            "CREATE EXTERNAL TABLE",
        ),
    ],
)
def test_what_cannot_be_translated_faithfully_is_refused_by_name(sql: str, named: str) -> None:
    with pytest.raises(
        UnsupportedRedshiftFeatureError, match="not supported locally|has no value|already exists"
    ) as refused:
        duck(sql)
    assert named in str(refused.value)


def test_one_statement_per_execute() -> None:
    with pytest.raises(RedshiftSyntaxError, match="exactly one SQL statement, got 2"):
        parse_statement("SELECT 1; SELECT 2")
    with pytest.raises(RedshiftSyntaxError, match="syntax error"):
        parse_statement("SELEC 1 FROM")


def test_external_schema_statement() -> None:
    declared = external_schema(
        "-- Spectrum\nCREATE EXTERNAL SCHEMA IF NOT EXISTS Lake FROM DATA CATALOG DATABASE 'sagelake' "
        "IAM_ROLE 'arn:aws:iam::1:role/spectrum';"
    )
    assert (declared.schema, declared.database, declared.iam_role, declared.if_not_exists) == (
        "lake",
        "sagelake",
        "arn:aws:iam::1:role/spectrum",
        True,
    )
    assert external_schema("CREATE SCHEMA lake") is None
    for sql, named in [
        ("CREATE EXTERNAL SCHEMA s FROM POSTGRES DATABASE 'x' URI 'h'", "FROM POSTGRES"),
        (
            "CREATE EXTERNAL SCHEMA s FROM DATA CATALOG DATABASE 'x' REGION 'us-east-1' IAM_ROLE default",
            "REGION",
        ),
        (
            "CREATE EXTERNAL SCHEMA s FROM DATA CATALOG DATABASE 'x' IAM_ROLE default "
            "CREATE EXTERNAL DATABASE IF NOT EXISTS",
            "CREATE",
        ),
    ]:
        with pytest.raises(UnsupportedRedshiftFeatureError, match=named):
            external_schema(sql)


@pytest.mark.parametrize("name", sorted(p.name for p in WAREHOUSE_SQL_DIR.glob("*.sql")))
def test_the_warehouse_sql_translates(name: str) -> None:
    import jinja2

    load = {"dt": "2026-11-27", "dt_from": "2026-11-21", "version": "v1", "iam_role": "arn:aws:iam::1:role/r"}
    sql = jinja2.Template((WAREHOUSE_SQL_DIR / name).read_text(), undefined=jinja2.StrictUndefined).render(
        ti=type("TI", (), {"xcom_pull": staticmethod(lambda task_ids: load)}),
        params={"glue_database": "sagelake"},
        warehouse={"spectrum_schema": "spectrum", "warehouse_table": "wh"},
    )
    if external_schema(sql) is None:
        assert duck(sql)
