"""Redshift SQL → DuckDB SQL with sqlglot: what is translated, what is dropped, what is refused.

Dropped (no effect on results): the physical-design clauses ``DISTSTYLE``, ``DISTKEY``, ``SORTKEY``,
``BACKUP`` and column ``ENCODE``. Translated with Redshift's meaning: ``VARCHAR``/``TEXT`` columns keep
their byte-length limit (a ``CHECK``; no length means Redshift's 256), bare ``DECIMAL`` is
``DECIMAL(18,0)``, ``int / int`` is integer division (a connection setting of the engine) and so is
``AVG`` of integers (``SUM / COUNT``), Data API ``:name`` parameters are string literals. Refused, with
the construct named: ``COPY``, ``UNLOAD`` and every other statement sqlglot only knows as a command,
transaction control inside a statement or batch, writes to external tables, cross-database names,
functions sqlglot does not know, types DuckDB has no faithful equivalent for (``CHAR``/``NCHAR``/
``BPCHAR`` blank padding, ``SUPER``, ``VARBYTE``, spatial), ``IDENTITY`` columns, and anything sqlglot
reports it cannot write for DuckDB.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from sagelake.local.athena.sql import parse_error_message
from sagelake.local.redshift.errors import RedshiftSyntaxError, UnsupportedRedshiftFeatureError

DEFAULT_SCHEMA = "public"
DEFAULT_VARCHAR_BYTES = 256  # Redshift's VARCHAR / TEXT without a length
MAX_VARCHAR_BYTES = 65535  # VARCHAR(MAX)
_PHYSICAL = (exp.DistStyleProperty, exp.DistKeyProperty, exp.SortKeyProperty, exp.BackupProperty)
_STATEMENTS = (
    exp.Query,
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.TruncateTable,
)
_REFUSED_TYPES = {
    exp.DataType.Type.CHAR: "CHAR (blank-padded comparison semantics)",
    exp.DataType.Type.NCHAR: "NCHAR (blank-padded comparison semantics)",
    exp.DataType.Type.BPCHAR: "BPCHAR (blank-padded comparison semantics)",
    exp.DataType.Type.SUPER: "SUPER (semi-structured PartiQL values)",
    exp.DataType.Type.VARBINARY: "VARBYTE",
    exp.DataType.Type.GEOMETRY: "GEOMETRY",
    exp.DataType.Type.GEOGRAPHY: "GEOGRAPHY",
}
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.TruncateTable)
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_EXTERNAL_SCHEMA = re.compile(
    rf"^\s*CREATE\s+EXTERNAL\s+SCHEMA\s+(?P<exists>IF\s+NOT\s+EXISTS\s+)?(?P<schema>{_IDENT})\s+"
    rf"FROM\s+(?P<source>.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_DATA_CATALOG = re.compile(
    r"^DATA\s+CATALOG\s+DATABASE\s+'(?P<database>[^']+)'\s*(?P<options>.*)$", re.IGNORECASE | re.DOTALL
)
_IAM_ROLE = re.compile(r"^IAM_ROLE\s+(?P<role>'[^']*'|default)\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)


@dataclass(frozen=True)
class ExternalSchema:
    """``CREATE EXTERNAL SCHEMA [IF NOT EXISTS] <s> FROM DATA CATALOG DATABASE '<db>' IAM_ROLE …``."""

    schema: str
    database: str
    iam_role: str
    if_not_exists: bool


def _identifier(text: str) -> str:
    """Redshift folds unquoted identifiers to lower case (and, by default, quoted ones too)."""
    if text.startswith('"'):
        text = text[1:-1].replace('""', '"')
    return text.lower()


def external_schema(sql: str) -> ExternalSchema | None:
    """The external schema a ``CREATE EXTERNAL SCHEMA`` statement declares; None for any other statement.

    Only ``FROM DATA CATALOG DATABASE '…' IAM_ROLE …`` is supported (Spectrum over the Glue Data Catalog);
    other sources and options are refused by name.
    """
    match = _EXTERNAL_SCHEMA.match(_LEADING_COMMENTS.sub("", sql, count=1))
    if match is None:
        return None
    source = _DATA_CATALOG.match(match["source"])
    if source is None:
        kind = " ".join(match["source"].split()[:2]).upper()
        raise UnsupportedRedshiftFeatureError(
            f"CREATE EXTERNAL SCHEMA … FROM {kind} is not supported locally: "
            "only FROM DATA CATALOG (Redshift Spectrum over the Glue Data Catalog)"
        )
    role = _IAM_ROLE.match(source["options"])
    if role is None:
        found = source["options"].split()[0].upper() if source["options"].strip() else "nothing"
        raise UnsupportedRedshiftFeatureError(
            f"CREATE EXTERNAL SCHEMA needs IAM_ROLE right after DATABASE '…' locally (found {found}); "
            "REGION, CATALOG_ROLE, CATALOG_ID and CREATE EXTERNAL DATABASE are not supported"
        )
    rest = role["rest"].strip().rstrip(";").strip()
    if rest:
        raise UnsupportedRedshiftFeatureError(
            f"CREATE EXTERNAL SCHEMA option {rest.split()[0].upper()} is not supported locally "
            "(supported: IAM_ROLE)"
        )
    return ExternalSchema(
        schema=_identifier(match["schema"]),
        database=source["database"],
        iam_role=role["role"].strip("'"),
        if_not_exists=bool(match["exists"]),
    )


def parse_statement(sql: str) -> exp.Expression:
    """Parse exactly one Redshift statement or raise :class:`RedshiftSyntaxError`."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="redshift") if s is not None]
    except ParseError as exc:
        raise RedshiftSyntaxError(f"syntax error: {parse_error_message(exc)}") from exc
    if len(statements) != 1:
        raise RedshiftSyntaxError(
            f"expected exactly one SQL statement, got {len(statements)}: "
            "the Data API runs one statement per ExecuteStatement (use BatchExecuteStatement for several)"
        )
    return statements[0]


def _statement_name(statement: exp.Expression) -> str:
    if isinstance(statement, exp.Transaction):
        return "BEGIN"
    if isinstance(statement, exp.Command):
        words = [str(statement.this)] + str(statement.expression or "").strip("'").split()[:1]
        return " ".join(w for w in words if w).upper()
    kind = statement.args.get("kind")
    return " ".join(filter(None, [statement.key.upper(), str(kind).upper() if kind else None]))


def _refuse_statement(statement: exp.Expression) -> None:
    if isinstance(statement, exp.Copy):
        raise UnsupportedRedshiftFeatureError(
            "COPY is not supported locally (it loads from S3 with Redshift's IAM-authorised loader): "
            "INSERT … SELECT from an external (Spectrum) table instead"
        )
    if isinstance(statement, exp.Command) and str(statement.this).upper() == "UNLOAD":
        raise UnsupportedRedshiftFeatureError(
            "UNLOAD is not supported locally (it writes to S3 with an IAM role)"
        )
    if isinstance(statement, exp.Transaction | exp.Commit | exp.Rollback):
        raise UnsupportedRedshiftFeatureError(
            f"{_statement_name(statement)} is not supported locally: each ExecuteStatement is its own "
            "transaction and a BatchExecuteStatement runs all its statements in one"
        )
    if not isinstance(statement, _STATEMENTS):
        raise UnsupportedRedshiftFeatureError(
            f"{_statement_name(statement)} statements are not supported locally (supported: SELECT, "
            "INSERT, UPDATE, DELETE, CREATE/DROP TABLE|VIEW|SCHEMA, TRUNCATE, CREATE EXTERNAL SCHEMA)"
        )
    if isinstance(statement, exp.Create):
        if statement.find(exp.ExternalProperty):
            raise UnsupportedRedshiftFeatureError(
                "CREATE EXTERNAL TABLE is not supported locally: define the table in the Glue Data Catalog "
                "and read it through an external schema"
            )
        kind = str(statement.args.get("kind") or "").upper()
        if kind not in ("TABLE", "VIEW", "SCHEMA"):
            raise UnsupportedRedshiftFeatureError(f"CREATE {kind} is not supported locally")


def _refuse_nodes(statement: exp.Expression, parameters: Mapping[str, str] | None) -> None:
    for node in statement.walk():
        if isinstance(node, exp.Anonymous):
            raise UnsupportedRedshiftFeatureError(
                f"function {node.name.upper()} is not supported locally (no faithful DuckDB translation)"
            )
        if isinstance(node, exp.DataType) and node.this in _REFUSED_TYPES:
            raise UnsupportedRedshiftFeatureError(
                f"type {_REFUSED_TYPES[node.this]} is not supported locally: use VARCHAR or another type"
            )
        if isinstance(node, exp.GeneratedAsIdentityColumnConstraint):
            raise UnsupportedRedshiftFeatureError("IDENTITY columns are not supported locally")
        if isinstance(node, exp.Placeholder):
            if node.name and parameters is not None and node.name in parameters:
                continue
            raise UnsupportedRedshiftFeatureError(
                f"parameter :{node.name or '?'} has no value: pass it in the statement's parameters"
            )
        if isinstance(node, exp.Table) and node.catalog:
            raise UnsupportedRedshiftFeatureError(
                f"cross-database name {node.sql(dialect='redshift')} is not supported locally"
            )


def external_tables(statement: exp.Expression, schemas: Collection[str]) -> list[tuple[str, str]]:
    """``(schema, table)`` of every table of an external schema the statement references."""
    found: list[tuple[str, str]] = []
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or not table.db:
            continue
        name = (table.db.lower(), table.name.lower())
        if name[0] in schemas and name not in found:
            found.append(name)
    return found


def view_name(schema: str, table: str) -> str:
    """The DuckDB temporary view (in ``temp.main``) that reads external table ``schema.table``."""
    return f"{schema}.{table}"


def _refuse_external_writes(statement: exp.Expression, schemas: Collection[str]) -> None:
    if not isinstance(statement, _WRITES):
        return
    if str(statement.args.get("kind") or "").upper() == "SCHEMA":
        name = statement.this.db or statement.this.name if isinstance(statement.this, exp.Table) else ""
        if isinstance(statement, exp.Create) and name.lower() in schemas:
            raise UnsupportedRedshiftFeatureError(
                f'CREATE SCHEMA {name.lower()}: an external schema "{name.lower()}" already exists'
            )
        return  # the engine handles DROP SCHEMA of an external schema (it unregisters it)
    targets = statement.args.get("tables") or (
        statement.expressions if isinstance(statement, exp.TruncateTable) else [statement.this]
    )
    for target in targets:
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table) and target.db and target.db.lower() in schemas:
            raise UnsupportedRedshiftFeatureError(
                f"{_statement_name(statement)} on external table {target.db.lower()}.{target.name.lower()} "
                "is not supported locally: external (Spectrum) tables are read-only here"
            )


def _column_length_check(column: exp.ColumnDef) -> exp.Expression | None:
    """A ``CHECK (strlen(col) <= n)`` enforcing a Redshift VARCHAR column's byte length (None: not text)."""
    kind = column.args.get("kind")
    if not isinstance(kind, exp.DataType) or kind.this not in (
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.TEXT,
    ):
        return None
    size = DEFAULT_VARCHAR_BYTES
    if kind.expressions:
        text = kind.expressions[0].sql().upper()
        size = MAX_VARCHAR_BYTES if text == "MAX" else int(text)
    kind.set("this", exp.DataType.Type.VARCHAR)
    kind.set("expressions", [])
    check = exp.LTE(
        this=exp.func("strlen", exp.column(column.name, quoted=True)), expression=exp.Literal.number(size)
    )
    return exp.ColumnConstraint(kind=exp.CheckColumnConstraint(this=check))


def _translate(
    node: exp.Expression, schemas: Collection[str], parameters: Mapping[str, str]
) -> exp.Expression:
    if (
        isinstance(node, _PHYSICAL)
        or isinstance(node, exp.ColumnConstraint)
        and isinstance(node.args.get("kind"), exp.EncodeColumnConstraint)
    ):
        return None  # type: ignore[return-value]  # sqlglot's transform removes the node
    if isinstance(node, exp.ColumnDef):
        check = _column_length_check(node)
        if check is not None:
            node.append("constraints", check)
        return node
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.DECIMAL and not node.expressions:
        return exp.DataType.build("DECIMAL(18, 0)")
    if isinstance(node, exp.Placeholder):
        return exp.Literal.string(parameters[node.name])
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Avg):
        total, count = node.copy(), node.copy()
        total.set("this", exp.Sum(this=node.this.this.copy()))
        count.set("this", exp.Count(this=node.this.this.copy()))
        return exp.Paren(this=exp.Div(this=total, expression=count))
    if isinstance(node, exp.Avg):  # Redshift: AVG of integers is an integer (truncated)
        arg = node.this
        return exp.Paren(this=exp.Div(this=exp.Sum(this=arg.copy()), expression=exp.Count(this=arg.copy())))
    if (
        isinstance(node, exp.Table)
        and node.db
        and node.db.lower() in schemas
        and isinstance(node.this, exp.Identifier)
    ):
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name.lower()))
        return exp.Table(
            this=exp.to_identifier(view_name(node.db.lower(), node.name.lower()), quoted=True),
            db=exp.to_identifier("main"),
            catalog=exp.to_identifier("temp"),
            alias=alias,
        )
    if isinstance(node, exp.Column) and node.args.get("db") and str(node.db).lower() in schemas:
        node.set("db", None)
        return node
    return node


def to_duckdb(
    statement: exp.Expression,
    external_schemas: Collection[str] = (),
    parameters: Mapping[str, str] | None = None,
) -> str:
    """The DuckDB SQL of one parsed Redshift statement; refuses what it cannot translate faithfully.

    Tables of ``external_schemas`` become the temporary views of :func:`view_name` (the engine creates
    them); ``parameters`` are the Data API's named parameters (``:name`` → string literal).
    """
    schemas = {s.lower() for s in external_schemas}
    _refuse_statement(statement)
    _refuse_nodes(statement, parameters)
    _refuse_external_writes(statement, schemas)
    translated = statement.copy().transform(_translate, schemas, dict(parameters or {}))
    try:
        return translated.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise UnsupportedRedshiftFeatureError(
            f"{_statement_name(statement)}: {_ANSI.sub('', str(exc)).splitlines()[0]} (not supported locally)"
        ) from exc
