"""Athena SQL (Trino/Presto dialect) executed for real on DuckDB, tables resolved through Glue.

Each :meth:`LocalAthenaEngine.execute` parses one statement with sqlglot (``read="athena"``), looks up
every referenced table in the Glue Data Catalog, creates a DuckDB view per table over the table's S3
Location (Parquet / CSV / JSON lines, Hive-partitioned so ``WHERE dt = ...`` prunes files), transpiles
the statement to DuckDB and runs it. ``CREATE TABLE ... WITH (format, external_location) AS SELECT``
writes Parquet and registers the table in Glue, like Athena.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from sagelake.lake.catalog import parquet_storage

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


class AthenaEngineError(RuntimeError):
    """A statement failed; the message is what Athena would put in the query's StateChangeReason."""


class AthenaSyntaxError(AthenaEngineError):
    """The SQL does not parse as one Athena statement."""


class AthenaTableNotFoundError(AthenaEngineError):
    """A referenced table is not in the Glue Data Catalog."""


class UnsupportedAthenaFeatureError(AthenaEngineError):
    """The statement uses an Athena feature the local engine does not implement."""


@dataclass
class QueryResult:
    """Column names and rows of a finished query."""

    columns: list[str]
    rows: list[tuple]

    def to_csv(self) -> bytes:
        """Athena's result-file format: header, every value double-quoted, NULL as an empty field."""
        lines = [",".join(_quote(name) for name in self.columns)]
        for row in self.rows:
            lines.append(",".join("" if value is None else _quote(_athena_text(value)) for value in row))
        return ("\n".join(lines) + "\n").encode("utf-8")


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _athena_text(value: Any) -> str:
    """Render one value as Athena prints it in result files."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, dt.date | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def httpfs_extension_path() -> Path:
    """The httpfs extension shipped by the ``duckdb_extension_httpfs`` package for this DuckDB version."""
    import duckdb_extension_httpfs

    path = (
        Path(duckdb_extension_httpfs.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "httpfs.duckdb_extension"
    )
    if not path.is_file():
        raise AthenaEngineError(
            f"DuckDB httpfs extension not found at {path}: "
            f"install duckdb-extension-httpfs=={duckdb.__version__}"
        )
    return path


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
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


def _struct(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in mapping.items()) + "}"


def table_format(table: dict[str, Any]) -> str:
    """``parquet`` | ``csv`` | ``json`` from a Glue table's StorageDescriptor."""
    storage = table.get("StorageDescriptor", {})
    serde = storage.get("SerdeInfo", {}).get("SerializationLibrary", "").lower()
    input_format = storage.get("InputFormat", "").lower()
    if "parquet" in serde or "parquet" in input_format:
        return "parquet"
    if "json" in serde:
        return "json"
    if "lazysimpleserde" in serde or "opencsvserde" in serde:
        return "csv"
    name = f"{table.get('DatabaseName')}.{table.get('Name')}"
    raise UnsupportedAthenaFeatureError(
        f"table {name}: storage format (serde {serde or 'none'}) is not supported"
    )


_GLOBS = {"parquet": "**/*.parquet", "json": "**/*.json*", "csv": "**/*.csv"}


def data_glob(table: dict[str, Any]) -> str:
    """The glob of the table's data files (hidden ``_SUCCESS``-style markers excluded)."""
    return table["StorageDescriptor"]["Location"].rstrip("/") + "/" + _GLOBS[table_format(table)]


def _empty_view(columns: list[dict[str, str]]) -> str:
    cols = ", ".join(f"CAST(NULL AS {duckdb_type(c['Type'])}) AS {_ident(c['Name'])}" for c in columns)
    return f"SELECT {cols} WHERE false"


def view_sql(table: dict[str, Any], file_columns: set[str] | None) -> str:
    """The SELECT behind the DuckDB view of a Glue table: Glue columns, then partition keys.

    ``file_columns`` is None when the location holds no data files (→ an empty, typed view); for Parquet
    it names the columns present in the files, and Glue columns absent from them read as NULL (as Athena).
    """
    storage = table["StorageDescriptor"]
    columns = storage.get("Columns", [])
    keys = table.get("PartitionKeys", [])
    if file_columns is None:
        return _empty_view(columns + keys)
    fmt = table_format(table)
    pattern = _literal(data_glob(table))
    hive = f"hive_partitioning = {'true' if keys else 'false'}"
    if keys:
        hive += ", hive_types = " + _struct({k["Name"]: duckdb_type(k["Type"]) for k in keys})
    key_cols = [_ident(k["Name"]) for k in keys]
    if fmt == "parquet":
        source = f"read_parquet({pattern}, {hive})"
        select = [
            f"CAST({_ident(c['Name']) if c['Name'].lower() in file_columns else 'NULL'} "
            f"AS {duckdb_type(c['Type'])}) AS {_ident(c['Name'])}"
            for c in columns
        ]
    elif fmt == "json":
        types = _struct({c["Name"]: duckdb_type(c["Type"]) for c in columns})
        source = f"read_json({pattern}, format = 'newline_delimited', columns = {types}, {hive})"
        select = [_ident(c["Name"]) for c in columns]
    else:
        source = _csv_source(table, pattern, columns, hive)
        select = [
            f"TRY_CAST({_ident(c['Name'])} AS {duckdb_type(c['Type'])}) AS {_ident(c['Name'])}"
            for c in columns
        ]
    return f"SELECT {', '.join(select + key_cols)} FROM {source}"


def _csv_source(table: dict[str, Any], pattern: str, columns: list[dict[str, str]], hive: str) -> str:
    """read_csv() with Hive text-SerDe semantics: all text, header lines skipped, bad values → NULL."""
    serde = table["StorageDescriptor"].get("SerdeInfo", {})
    params = serde.get("Parameters", {}) or {}
    skip = (table.get("Parameters") or {}).get("skip.header.line.count") or params.get(
        "skip.header.line.count"
    )
    if "opencsvserde" in serde.get("SerializationLibrary", "").lower():
        delim = params.get("separatorChar", ",")
        quote = params.get("quoteChar", '"')
        nulls = ""
    else:
        delim = params.get("field.delim", params.get("serialization.format", ","))
        quote = '"'
        nulls = params.get("serialization.null.format", "\\N")
    names = _struct({c["Name"]: "VARCHAR" for c in columns})
    return (
        f"read_csv({pattern}, header = false, skip = {int(skip or 0)}, "
        f"delim = {_literal(delim)}, quote = {_literal(quote)}, nullstr = {_literal(nulls)}, "
        f"columns = {names}, {hive})"
    )


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


def _qualify(statement: exp.Expression, database: str) -> None:
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


def _athena_semantics(statement: exp.Expression) -> exp.Expression:
    """Rewrite what transpiles but means something else on DuckDB (count_if over no rows is NULL there)."""

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.CountIf):
            return exp.Count(this=exp.Case(ifs=[exp.If(this=node.this, true=exp.Literal.number(1))]))
        return node

    return statement.transform(rewrite)


def _name_unnamed_columns(query: exp.Expression) -> None:
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


def parse_statement(sql: str) -> exp.Expression:
    """Parse exactly one Athena statement or raise :class:`AthenaSyntaxError`."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except ParseError as exc:
        details = [
            f"line {e.get('line')}:{e.get('col')}: {e.get('description')}"
            for e in exc.errors
            if e.get("description")
        ]
        message = "; ".join(details) or _ANSI.sub("", str(exc)).splitlines()[0]
        raise AthenaSyntaxError(f"SYNTAX_ERROR: {message}") from exc
    if len(statements) != 1:
        raise AthenaSyntaxError(
            f"expected exactly one SQL statement, got {len(statements)}: submit one statement per query"
        )
    return statements[0]


class LocalAthenaEngine:
    """Runs Athena SQL on DuckDB over S3 (moto or AWS), resolving tables through a Glue client."""

    def __init__(
        self,
        glue_client: Any,
        *,
        s3_endpoint_url: str | None,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
    ) -> None:
        self.glue = glue_client
        self.s3_endpoint_url = s3_endpoint_url
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token
        if s3_endpoint_url:
            url = urlparse(s3_endpoint_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError(f"s3_endpoint_url={s3_endpoint_url!r} is not an http(s)://host:port URL")
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the DuckDB connection (the engine reconnects if used again)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> LocalAthenaEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A new in-memory DuckDB connection with httpfs loaded and S3 credentials configured."""
        con = duckdb.connect(":memory:")
        con.execute(f"LOAD {_literal(str(httpfs_extension_path()))}")
        con.execute("SET integer_division = true")  # Presto: int / int is an integer
        options = [
            "TYPE s3",
            f"KEY_ID {_literal(self._access_key_id)}",
            f"SECRET {_literal(self._secret_access_key)}",
            f"REGION {_literal(self.region)}",
        ]
        if self._session_token:
            options.append(f"SESSION_TOKEN {_literal(self._session_token)}")
        if self.s3_endpoint_url:
            url = urlparse(self.s3_endpoint_url)
            options += [
                f"ENDPOINT {_literal(url.netloc)}",
                "URL_STYLE 'path'",
                f"USE_SSL {'true' if url.scheme == 'https' else 'false'}",
            ]
        con.execute(f"CREATE SECRET sagelake_s3 ({', '.join(options)})")
        return con

    def get_table(self, database: str, table: str) -> dict[str, Any]:
        """The Glue table, or :class:`AthenaTableNotFoundError` naming ``database.table``."""
        try:
            return self.glue.get_table(DatabaseName=database, Name=table)["Table"]
        except self.glue.exceptions.EntityNotFoundException as exc:
            raise AthenaTableNotFoundError(
                f"TABLE_NOT_FOUND: table {database}.{table} does not exist in the Glue Data Catalog"
            ) from exc

    @staticmethod
    def _has_files(con: duckdb.DuckDBPyConnection, pattern: str) -> bool:
        return bool(con.execute(f"SELECT count(*) FROM glob({_literal(pattern)})").fetchone()[0])

    def _file_columns(self, con: duckdb.DuckDBPyConnection, table: dict[str, Any]) -> set[str] | None:
        pattern = data_glob(table)
        if not self._has_files(con, pattern):
            return None
        if table_format(table) != "parquet":
            return {c["Name"].lower() for c in table["StorageDescriptor"].get("Columns", [])}
        # the first file's schema, like the scan itself (reading every footer would defeat partition pruning)
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({_literal(pattern)}, hive_partitioning = false)"
        )
        described = described.fetchall()
        return {row[0].lower() for row in described}

    def _create_views(self, con: duckdb.DuckDBPyConnection, tables: list[tuple[str, str]]) -> None:
        for database, name in tables:
            table = self.get_table(database, name)
            try:
                body = view_sql(table, self._file_columns(con, table))
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(database)}")
                con.execute(f"CREATE OR REPLACE VIEW {_ident(database)}.{_ident(name)} AS {body}")
            except duckdb.Error as exc:
                raise AthenaEngineError(
                    f"cannot read table {database}.{name}: {str(exc).splitlines()[0]}"
                ) from exc

    def execute(self, sql: str, database: str) -> QueryResult:
        """Run one Athena statement (a query or a Parquet CTAS) with ``database`` as the default schema."""
        statement = parse_statement(sql)
        is_ctas = (
            isinstance(statement, exp.Create)
            and str(statement.args.get("kind", "")).upper() == "TABLE"
            and isinstance(statement.expression, exp.Query)
        )
        if not is_ctas and not isinstance(statement, exp.Query):
            kind = " ".join(filter(None, [statement.key.upper(), str(statement.args.get("kind") or "")]))
            raise UnsupportedAthenaFeatureError(
                f"{kind} statements are not supported locally: "
                "only SELECT queries and CTAS (CREATE TABLE ... AS SELECT)"
            )
        with self._lock:  # one DuckDB connection (httpfs loaded once); its views are rebuilt per statement
            if self._con is None:
                self._con = self.connect()
            if is_ctas:
                return self._ctas(self._con, statement, database)
            return self._run(self._con, self._prepare(self._con, statement, database))

    def _prepare(self, con: duckdb.DuckDBPyConnection, query: exp.Expression, database: str) -> str:
        """Create the views the query reads and return it as DuckDB SQL."""
        self._create_views(con, referenced_tables(query, database))
        query = query.copy()
        _qualify(query, database)
        _name_unnamed_columns(query)
        return _athena_semantics(query).sql(dialect="duckdb")

    def _run(self, con: duckdb.DuckDBPyConnection, duck_sql: str) -> QueryResult:
        try:
            cursor = con.execute(duck_sql)
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns=columns, rows=cursor.fetchall())
        except duckdb.Error as exc:
            raise AthenaEngineError(f"query failed: {str(exc).splitlines()[0]}") from exc

    def _ctas(self, con: duckdb.DuckDBPyConnection, statement: exp.Create, database: str) -> QueryResult:
        plan = ctas_plan(statement, database)
        try:
            self.glue.get_database(Name=plan.database)
        except self.glue.exceptions.EntityNotFoundException as exc:
            raise AthenaEngineError(f"SCHEMA_NOT_FOUND: database {plan.database} does not exist") from exc
        try:
            self.glue.get_table(DatabaseName=plan.database, Name=plan.table)
        except self.glue.exceptions.EntityNotFoundException:
            pass
        else:
            if plan.if_not_exists:
                return QueryResult(columns=["rows"], rows=[(0,)])
            raise AthenaEngineError(f"ALREADY_EXISTS: table {plan.database}.{plan.table} already exists")
        if self._has_files(con, plan.location + "**"):
            raise AthenaEngineError(
                f"HIVE_PATH_ALREADY_EXISTS: target location {plan.location} "
                f"for table {plan.database}.{plan.table} "
                "already has objects: empty it or choose another external_location"
            )
        select_sql = self._prepare(con, statement.expression, database)
        try:
            described = con.execute(f"DESCRIBE {select_sql}").fetchall()
        except duckdb.Error as exc:
            raise AthenaEngineError(f"query failed: {str(exc).splitlines()[0]}") from exc
        columns = [{"Name": row[0].lower(), "Type": hive_type(row[1])} for row in described]
        target = f"{plan.location}{uuid.uuid4().hex}.parquet"
        copied = self._run(
            con, f"COPY ({select_sql}) TO {_literal(target)} (FORMAT parquet, COMPRESSION {plan.compression})"
        )
        self.glue.create_table(
            DatabaseName=plan.database,
            TableInput={
                "Name": plan.table,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {
                    "EXTERNAL": "TRUE",
                    "classification": "parquet",
                    "has_encrypted_data": "false",
                },
                "PartitionKeys": [],
                "StorageDescriptor": parquet_storage(columns, plan.location),
            },
        )
        return QueryResult(columns=["rows"], rows=[(int(copied.rows[0][0]) if copied.rows else 0,)])
