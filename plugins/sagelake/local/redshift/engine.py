"""Runs Redshift Data API statements on a local DuckDB database file, Spectrum tables read through Glue.

One file per workgroup and database (:func:`database_path`). ``execute_statement`` is ``ExecuteStatement``
(one statement, its own transaction); ``batch_execute_statement`` is ``BatchExecuteStatement``: every
statement in one transaction, all or nothing. External schemas are recorded in the file
(``sagelake_local.external_schemas``); a statement reading ``<schema>.<table>`` of one gets a temporary
DuckDB view over the Glue table's registered partitions at their registered locations, with the catalog's
columns (the local Athena engine's :mod:`~sagelake.local.athena.views`), pruned by its ``dt`` filters.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from sagelake.local.athena.errors import AthenaEngineError
from sagelake.local.athena.sql import ident, literal, partition_conditions
from sagelake.local.athena.views import data_glob, reads, select_partitions, table_format, view_sql
from sagelake.local.aws_session import AwsAccess
from sagelake.local.duckdb_s3 import check_endpoint, load_s3
from sagelake.local.redshift.errors import (
    NoResultSetError,
    RedshiftEngineError,
    UnsupportedRedshiftFeatureError,
)
from sagelake.local.redshift.sql import (
    DEFAULT_SCHEMA,
    ExternalSchema,
    external_schema,
    external_tables,
    parse_statement,
    to_duckdb,
    view_name,
)

META_SCHEMA = "sagelake_local"
_LONG = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_DOUBLE = {"FLOAT", "DOUBLE", "REAL"}
_REDSHIFT_TYPES = {
    "TINYINT": "int2",
    "SMALLINT": "int2",
    "INTEGER": "int4",
    "BIGINT": "int8",
    "HUGEINT": "numeric",
    "FLOAT": "float4",
    "DOUBLE": "float8",
    "BOOLEAN": "bool",
    "VARCHAR": "varchar",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIME": "time",
}


def database_path(state_dir: Path, workgroup: str, database: str) -> Path:
    """``<state>/redshift/<workgroup>/<database>.duckdb``: the local file of one Redshift database."""
    for what, name in (("workgroup", workgroup), ("database", database)):
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"{what} name {name!r} cannot name a local database file")
    return state_dir / "redshift" / workgroup / f"{database.lower()}.duckdb"


def _field(value: Any) -> dict[str, Any]:
    """One value as a Data API ``Field``."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, dt.datetime):
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, dt.date | dt.time | Decimal):
        return {"stringValue": str(value)}
    if isinstance(value, bytes):
        return {"blobValue": value}
    return {"stringValue": str(value)}


def _redshift_type(duck_type: str) -> str:
    upper = duck_type.upper()
    return "numeric" if upper.startswith("DECIMAL") else _REDSHIFT_TYPES.get(upper, upper.lower())


@dataclass
class Statement:
    """One executed statement: what ``DescribeStatement`` and ``GetStatementResult`` answer about it."""

    id: str
    sql: str
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type)
    rows: list[tuple] = field(default_factory=list)
    has_result_set: bool = False
    result_rows: int = -1

    def describe(self) -> dict[str, Any]:
        """The ``DescribeStatement`` fields of a finished statement (or sub-statement)."""
        return {
            "Id": self.id,
            "QueryString": self.sql,
            "Status": "FINISHED",
            "HasResultSet": self.has_result_set,
            "ResultRows": self.result_rows,
        }

    def get_statement_result(self) -> dict[str, Any]:
        """The ``GetStatementResult`` response (one page holding every record), as boto3 returns it."""
        if not self.has_result_set:
            raise NoResultSetError(f"statement {self.id} has no result set (it returns no rows)")
        return {
            "Records": [[_field(value) for value in row] for row in self.rows],
            "ColumnMetadata": [
                {"name": name, "label": name, "typeName": _redshift_type(type_), "nullable": 1}
                for name, type_ in self.columns
            ],
            "TotalNumRows": len(self.rows),
        }


@dataclass
class StatementRun:
    """What ``ExecuteStatement`` or ``BatchExecuteStatement`` ran: its id and, for a batch, sub-statements."""

    id: str
    statements: list[Statement]
    batch: bool

    @property
    def statement_ids(self) -> list[str]:
        """What the provider's operator returns: the sub-statement ids of a batch, else the statement id."""
        return [s.id for s in self.statements] if self.batch else [self.id]

    def describe(self) -> dict[str, Any]:
        """``DescribeStatement`` of the run (``SubStatements`` for a batch)."""
        if not self.batch:
            return self.statements[0].describe()
        return {
            "Id": self.id,
            "Status": "FINISHED",
            "HasResultSet": any(s.has_result_set for s in self.statements),
            "SubStatements": [s.describe() for s in self.statements],
        }


class LocalRedshiftEngine:
    """A Redshift database in a local DuckDB file; external schemas read Glue tables from S3 (or moto)."""

    def __init__(
        self,
        path: Path,
        glue_client: Any,
        *,
        s3_endpoint_url: str | None,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.glue = glue_client
        self.s3_endpoint_url = s3_endpoint_url
        self.region = region
        self._credentials = (access_key_id, secret_access_key, session_token)
        check_endpoint(s3_endpoint_url)

    # -- the Data API ------------------------------------------------------------------------------------

    def execute_statement(self, sql: str, parameters: Mapping[str, str] | None = None) -> StatementRun:
        """``ExecuteStatement``: one statement, in its own transaction."""
        run_id = str(uuid.uuid4())
        return StatementRun(run_id, self._run([(run_id, sql)], parameters), batch=False)

    def batch_execute_statement(
        self, sqls: Sequence[str], parameters: Mapping[str, str] | None = None
    ) -> StatementRun:
        """``BatchExecuteStatement``: the statements in order, in one transaction (all or nothing)."""
        if not sqls:
            raise RedshiftEngineError("BatchExecuteStatement needs at least one SQL statement")
        run_id = str(uuid.uuid4())
        ids = [f"{run_id}:{index}" for index in range(1, len(sqls) + 1)]
        return StatementRun(run_id, self._run(list(zip(ids, sqls, strict=True)), parameters), batch=True)

    def external_schemas(self) -> dict[str, str]:
        """``{external schema: Glue database}`` recorded in the database file."""
        with self._connection() as con:
            return self._external_schemas(con)

    # -- execution ---------------------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The database file, opened by one engine at a time on this machine (a lock file beside it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            con = duckdb.connect(str(self.path))
            try:
                con.execute("SET integer_division = true")  # Redshift: int / int is an integer
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {DEFAULT_SCHEMA}")
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.external_schemas "
                    "(schemaname VARCHAR PRIMARY KEY, databasename VARCHAR NOT NULL, iam_role VARCHAR)"
                )
                con.execute(f"SET schema = {literal(DEFAULT_SCHEMA)}")
                yield con
            finally:
                con.close()

    def _run(
        self, statements: list[tuple[str, str]], parameters: Mapping[str, str] | None
    ) -> list[Statement]:
        done: list[Statement] = []
        with self._connection() as con:
            self._httpfs_loaded = False
            con.execute("BEGIN TRANSACTION")
            try:
                for index, (statement_id, sql) in enumerate(statements, start=1):
                    try:
                        done.append(self._execute(con, statement_id, sql, parameters))
                    except RedshiftEngineError as exc:
                        where = (
                            f"statement {index} of {len(statements)}" if len(statements) > 1 else "statement"
                        )
                        raise type(exc)(f"{where} failed, transaction rolled back: {exc}") from exc
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return done

    def _execute(
        self,
        con: duckdb.DuckDBPyConnection,
        statement_id: str,
        sql: str,
        parameters: Mapping[str, str] | None,
    ) -> Statement:
        declared = external_schema(sql)
        if declared is not None:
            self._create_external_schema(con, declared)
            return Statement(statement_id, sql)
        statement = parse_statement(sql)
        schemas = self._external_schemas(con)
        if self._drops_external_schema(con, statement, schemas):
            return Statement(statement_id, sql)
        duck_sql = to_duckdb(statement, schemas, parameters)
        self._create_views(con, statement, schemas)
        try:
            cursor = con.execute(duck_sql)
            description = cursor.description or []
            rows = cursor.fetchall() if description else []
        except duckdb.Error as exc:
            raise RedshiftEngineError(f"ERROR: {str(exc).splitlines()[0]}") from exc
        if isinstance(statement, exp.Query):
            columns = [(d[0], str(d[1])) for d in description]
            return Statement(statement_id, sql, columns, rows, True, len(rows))
        changed = (
            int(rows[0][0]) if rows and isinstance(statement, exp.Insert | exp.Update | exp.Delete) else 0
        )
        return Statement(statement_id, sql, result_rows=changed)

    # -- external schemas (Spectrum) ---------------------------------------------------------------------

    @staticmethod
    def _external_schemas(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        rows = con.execute(f"SELECT schemaname, databasename FROM {META_SCHEMA}.external_schemas").fetchall()
        return dict(rows)

    def _create_external_schema(self, con: duckdb.DuckDBPyConnection, declared: ExternalSchema) -> None:
        existing = self._external_schemas(con)
        local = con.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", [declared.schema]
        ).fetchone()[0]
        if declared.schema in existing or local:
            if declared.if_not_exists:
                return
            raise RedshiftEngineError(f'ERROR: Schema "{declared.schema}" already exists')
        try:
            self.glue.get_database(Name=declared.database)
        except self.glue.exceptions.EntityNotFoundException as exc:
            raise RedshiftEngineError(
                f"ERROR: database {declared.database!r} does not exist in the Glue Data Catalog"
            ) from exc
        con.execute(
            f"INSERT INTO {META_SCHEMA}.external_schemas VALUES (?, ?, ?)",
            [declared.schema, declared.database, declared.iam_role],
        )

    @staticmethod
    def _drops_external_schema(
        con: duckdb.DuckDBPyConnection, statement: exp.Expression, schemas: Mapping[str, str]
    ) -> bool:
        if not isinstance(statement, exp.Drop) or str(statement.args.get("kind", "")).upper() != "SCHEMA":
            return False
        names = [(t.db or t.name).lower() for t in statement.args.get("tables") or [statement.this] if t]
        external = [name for name in names if name in schemas]
        if not external:
            return False
        if len(external) != len(names):
            raise UnsupportedRedshiftFeatureError(
                "DROP SCHEMA of external and local schemas in one statement is not supported locally"
            )
        for name in external:
            con.execute(f"DELETE FROM {META_SCHEMA}.external_schemas WHERE schemaname = ?", [name])
        return True

    def _connect_s3(self, con: duckdb.DuckDBPyConnection) -> None:
        if getattr(self, "_httpfs_loaded", False):
            return
        key, secret, token = self._credentials
        access = AwsAccess(self.region, key, secret, token, {"s3": self.s3_endpoint_url})
        load_s3(con, access, temporary=True)  # never persisted in the warehouse's file
        self._httpfs_loaded = True

    def _create_views(
        self, con: duckdb.DuckDBPyConnection, statement: exp.Expression, schemas: Mapping[str, str]
    ) -> None:
        """A temporary view per external table the statement reads, over the partitions it may read."""
        referenced = external_tables(statement, schemas)
        if not referenced:
            return
        self._connect_s3(con)
        conditions = partition_conditions(statement, DEFAULT_SCHEMA)
        for schema, name in referenced:
            body = self._view_sql(con, schemas[schema], schema, name, conditions.get((schema, name)))
            try:
                con.execute(f"CREATE OR REPLACE TEMPORARY VIEW {ident(view_name(schema, name))} AS {body}")
            except duckdb.Error as exc:
                raise RedshiftEngineError(
                    f"ERROR: cannot read external table {schema}.{name}: {str(exc).splitlines()[0]}"
                ) from exc

    def _view_sql(
        self, con: duckdb.DuckDBPyConnection, database: str, schema: str, name: str, references: Any
    ) -> str:
        try:
            table = self.glue.get_table(DatabaseName=database, Name=name)["Table"]
        except self.glue.exceptions.EntityNotFoundException as exc:
            raise RedshiftEngineError(
                f'ERROR: relation "{schema}.{name}" does not exist '
                f"(no table {name} in Glue database {database})"
            ) from exc
        partitions: list[dict[str, Any]] = []
        if table.get("PartitionKeys"):
            pages = self.glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name)
            partitions = [p for page in pages for p in page.get("Partitions", [])]
        try:
            partitions = select_partitions(table, partitions, references)
            file_columns: dict[str, set[str] | None] = {}
            for read in reads(table, partitions):
                if read.location not in file_columns:
                    file_columns[read.location] = self._file_columns(con, table, read.location)
            return view_sql(table, partitions, file_columns)
        except (AthenaEngineError, duckdb.Error) as exc:
            raise RedshiftEngineError(
                f"ERROR: cannot read external table {schema}.{name}: {str(exc).splitlines()[0]}"
            ) from exc

    @staticmethod
    def _file_columns(
        con: duckdb.DuckDBPyConnection, table: dict[str, Any], location: str
    ) -> set[str] | None:
        pattern = data_glob(table, location)
        if not con.execute(f"SELECT count(*) FROM glob({literal(pattern)})").fetchone()[0]:
            return None
        if table_format(table) != "parquet":
            return {c["Name"] for c in table["StorageDescriptor"].get("Columns", [])}
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({literal(pattern)}, union_by_name = true, "
            "hive_partitioning = false)"
        ).fetchall()
        return {row[0] for row in described}
