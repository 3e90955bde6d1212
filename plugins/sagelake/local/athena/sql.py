"""Athena SQL → DuckDB SQL with sqlglot: parsing, table references, Athena semantics, CTAS, types."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from sagelake.local.athena.errors import AthenaSyntaxError, UnsupportedAthenaFeatureError

DEFAULT_CATALOG = "awsdatacatalog"
_COMPRESSIONS = {"snappy": "snappy", "gzip": "gzip", "zstd": "zstd", "lz4": "lz4_raw", "none": "uncompressed"}
_HIVE_TYPES = {  # DuckDB types without a Hive spelling
    "VARCHAR": "string",
    "HUGEINT": "decimal(38,0)",
    "UHUGEINT": "decimal(38,0)",
    "UBIGINT": "decimal(20,0)",
    "UINTEGER": "bigint",
    "USMALLINT": "int",
    "UTINYINT": "smallint",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "BLOB": "binary",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def literal(text: str) -> str:
    """``text`` as a single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def duckdb_type(hive_type: str) -> str:
    """A Glue/Hive column type in DuckDB spelling."""
    try:
        return exp.DataType.build(hive_type, dialect="hive").sql("duckdb")
    except Exception as exc:
        raise UnsupportedAthenaFeatureError(f"column type {hive_type!r} is not supported locally") from exc


def hive_type(duck_type: str) -> str:
    """A DuckDB result type in Glue/Hive spelling."""
    upper = duck_type.upper()
    if upper in _HIVE_TYPES:
        return _HIVE_TYPES[upper]
    try:
        return exp.DataType.build(duck_type, dialect="duckdb").sql("hive").lower().replace(" ", "")
    except Exception as exc:
        raise UnsupportedAthenaFeatureError(f"result type {duck_type} has no Glue equivalent") from exc


def _split_name(table: exp.Table, database: str) -> tuple[str, str]:
    catalog = table.catalog
    if catalog and catalog.lower() != DEFAULT_CATALOG:
        raise UnsupportedAthenaFeatureError(f"catalog {catalog!r} is not supported (only {DEFAULT_CATALOG})")
    return (table.db or database).lower(), table.name.lower()


def referenced_tables(statement: exp.Expression, database: str) -> list[tuple[str, str]]:
    """``(database, table)`` of every catalog table the statement reads, unqualified → ``database``."""
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    target = statement.this if isinstance(statement, exp.Create) else None
    found: list[tuple[str, str]] = []
    for table in statement.find_all(exp.Table):
        if table is target or not isinstance(table.this, exp.Identifier):
            continue
        if not table.db and table.name.lower() in ctes:
            continue
        name = _split_name(table, database)
        if name not in found:
            found.append(name)
    return found


def qualify(statement: exp.Expression, database: str) -> None:
    """Point every catalog table at its DuckDB schema (named like the Glue database)."""
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        if not table.db and table.name.lower() in ctes:
            continue
        db, name = _split_name(table, database)
        table.set("catalog", None)
        table.set("db", exp.to_identifier(db, quoted=True))
        table.set("this", exp.to_identifier(name, quoted=True))


def athena_semantics(statement: exp.Expression) -> exp.Expression:
    """Rewrite what transpiles but means something else on DuckDB (count_if over no rows is NULL there)."""

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.CountIf):
            return exp.Count(this=exp.Case(ifs=[exp.If(this=node.this, true=exp.Literal.number(1))]))
        return node

    return statement.transform(rewrite)


def name_unnamed_columns(query: exp.Expression) -> None:
    """Athena names unaliased expressions ``_col0``, ``_col1``, ... by position."""
    while isinstance(query, exp.SetOperation):
        query = query.this
    if not isinstance(query, exp.Select):
        return
    named = []
    for index, projection in enumerate(query.expressions):
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star):
            projection = exp.alias_(projection, f"_col{index}", quoted=True)
        named.append(projection)
    query.set("expressions", named)


@dataclass(frozen=True)
class CtasPlan:
    """What a CTAS asks for: the new table, where its Parquet goes, and how it is compressed."""

    database: str
    table: str
    location: str
    compression: str
    if_not_exists: bool


def ctas_plan(statement: exp.Create, database: str) -> CtasPlan:
    """Validate the ``WITH (...)`` properties of an Athena CTAS; anything unsupported raises."""
    fmt, location, compression = "parquet", None, "snappy"
    properties = statement.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.FileFormatProperty):
            name, value = "format", prop.this
        elif type(prop) is exp.Property:
            name, value = prop.name.lower(), prop.args.get("value")
        else:
            raise UnsupportedAthenaFeatureError(
                f"CTAS property {prop.sql(dialect='athena')!r} is not supported locally "
                "(supported: format, external_location, write_compression)"
            )
        text = value.name if isinstance(value, exp.Literal | exp.Var | exp.Identifier) else None
        if name == "format" and text is not None:
            fmt = text.lower()
        elif name == "external_location" and text is not None:
            location = text
        elif name == "write_compression" and text is not None and text.lower() in _COMPRESSIONS:
            compression = _COMPRESSIONS[text.lower()]
        else:
            raise UnsupportedAthenaFeatureError(
                f"CTAS property {name}={value.sql(dialect='athena') if value else ''} is not supported "
                "(supported: format='PARQUET', external_location='s3://...', write_compression)"
            )
    if fmt != "parquet":
        raise UnsupportedAthenaFeatureError(
            f"CTAS format={fmt!r} is not supported locally: use format='PARQUET'"
        )
    if not location or not location.startswith("s3://"):
        raise UnsupportedAthenaFeatureError("CTAS needs external_location='s3://bucket/prefix/' locally")
    db, name = _split_name(statement.this, database)
    return CtasPlan(db, name, location.rstrip("/") + "/", compression, bool(statement.args.get("exists")))


def parse_error_message(exc: ParseError) -> str:
    """sqlglot's parse errors as ``line L:C: description; …`` (its own text, uncoloured, if it has none)."""
    details = [
        f"line {e.get('line')}:{e.get('col')}: {e.get('description')}"
        for e in exc.errors
        if e.get("description")
    ]
    return "; ".join(details) or _ANSI.sub("", str(exc)).splitlines()[0]


def parse_statement(sql: str) -> exp.Expression:
    """Parse exactly one Athena statement or raise :class:`AthenaSyntaxError`."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except ParseError as exc:
        raise AthenaSyntaxError(f"SYNTAX_ERROR: {parse_error_message(exc)}") from exc
    if len(statements) != 1:
        raise AthenaSyntaxError(
            f"expected exactly one SQL statement, got {len(statements)}: submit one statement per query"
        )
    return statements[0]


_COMPARISONS: dict[type[exp.Expression], tuple[str, str]] = {  # node → (column op literal, literal op column)
    exp.EQ: ("=", "="),
    exp.GT: (">", "<"),
    exp.GTE: (">=", "<="),
    exp.LT: ("<", ">"),
    exp.LTE: ("<=", ">="),
}


@dataclass(frozen=True)
class KeyCondition:
    """``column op 'literal'`` (or ``column IN ('a', 'b')``) on one table reference, strings only."""

    column: str
    op: str
    values: tuple[str, ...]

    def admits(self, value: str) -> bool:
        """Whether a row whose ``column`` is the string ``value`` can satisfy the condition."""
        if self.op == "in":
            return value in self.values
        bound = self.values[0]
        return {
            "=": value == bound,
            ">": value > bound,
            ">=": value >= bound,
            "<": value < bound,
            "<=": value <= bound,
        }[self.op]


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _string(node: exp.Expression | None) -> str | None:
    return node.this if isinstance(node, exp.Literal) and node.is_string else None


def _key_conditions(conjunct: exp.Expression, is_mine) -> list[KeyCondition]:
    """The string conditions ``conjunct`` puts on a column that ``is_mine`` accepts (else none)."""
    ops = _COMPARISONS.get(type(conjunct))
    if ops is not None:
        for column, other, op in (
            (conjunct.this, conjunct.expression, ops[0]),
            (conjunct.expression, conjunct.this, ops[1]),
        ):
            value = _string(other)
            if is_mine(column) and value is not None:
                return [KeyCondition(column.name.lower(), op, (value,))]
        return []
    if isinstance(conjunct, exp.In) and is_mine(conjunct.this):
        if conjunct.args.get("query") or conjunct.args.get("unnest") or conjunct.args.get("field"):
            return []
        values = [_string(value) for value in conjunct.expressions]
        if values and all(value is not None for value in values):
            return [KeyCondition(conjunct.this.name.lower(), "in", tuple(values))]
        return []
    if isinstance(conjunct, exp.Between) and is_mine(conjunct.this) and not conjunct.args.get("symmetric"):
        low, high = _string(conjunct.args.get("low")), _string(conjunct.args.get("high"))
        if low is not None and high is not None:
            name = conjunct.this.name.lower()
            return [KeyCondition(name, ">=", (low,)), KeyCondition(name, "<=", (high,))]
    return []


def _reference_conditions(table: exp.Table, database: str) -> list[KeyCondition]:
    """The conditions the WHERE of the SELECT reading ``table`` directly (FROM or JOIN) puts on its columns.

    Only top-level ``AND`` conjuncts count: every row of that SELECT carries a row of the table that meets
    them (an outer join's NULL-extended rows fail them too), so rows that cannot meet them never matter.
    """
    source = table.parent
    select = source.parent if isinstance(source, exp.From | exp.Join) else None
    where = select.args.get("where") if isinstance(select, exp.Select) else None
    alias = table.args.get("alias")
    if where is None or (alias is not None and alias.columns):
        return []
    db, _ = _split_name(table, database)
    name = table.alias_or_name.lower()
    only_source = (
        isinstance(source, exp.From) and not select.args.get("joins") and not select.args.get("laterals")
    )

    def is_mine(column: exp.Expression) -> bool:
        if not isinstance(column, exp.Column) or not isinstance(column.this, exp.Identifier):
            return False
        if not column.table:
            return only_source
        if column.db and (alias is not None or column.db.lower() != db):
            return False
        return column.table.lower() == name

    return [
        condition for conjunct in _conjuncts(where.this) for condition in _key_conditions(conjunct, is_mine)
    ]


def partition_conditions(
    statement: exp.Expression, database: str
) -> dict[tuple[str, str], list[list[KeyCondition]]]:
    """Per catalog table the statement reads: per reference to it, the string conditions on its columns.

    A reference with no conditions (``[]``) may read any row of the table. A row that no reference's
    conditions admit cannot change the statement's result, which is what partition pruning relies on.
    """
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    target = statement.this if isinstance(statement, exp.Create) else None
    found: dict[tuple[str, str], list[list[KeyCondition]]] = {}
    for table in statement.find_all(exp.Table):
        if table is target or not isinstance(table.this, exp.Identifier):
            continue
        if not table.db and table.name.lower() in ctes:
            continue
        found.setdefault(_split_name(table, database), []).append(_reference_conditions(table, database))
    return found
