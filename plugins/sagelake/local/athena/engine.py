"""Runs one Athena statement on DuckDB over S3, tables resolved through the Glue Data Catalog.

:meth:`LocalAthenaEngine.execute` parses the statement, creates a DuckDB view per referenced Glue table,
transpiles the statement to DuckDB and runs it. ``CREATE TABLE ... WITH (format, external_location) AS
SELECT`` writes Parquet and registers the table in Glue, like Athena.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
from sqlglot import exp

from sagelake.lake.catalog import parquet_storage
from sagelake.local import duckdb_s3
from sagelake.local.athena.errors import (
    AthenaEngineError,
    AthenaTableNotFoundError,
    UnsupportedAthenaFeatureError,
)
from sagelake.local.athena.sql import (
    KeyCondition,
    athena_semantics,
    ctas_plan,
    hive_type,
    ident,
    literal,
    name_unnamed_columns,
    parse_statement,
    partition_conditions,
    qualify,
    referenced_tables,
)
from sagelake.local.athena.views import data_glob, reads, select_partitions, table_format, view_sql
from sagelake.local.aws_session import AwsAccess
from sagelake.local.duckdb_s3 import check_endpoint


@dataclass
class QueryResult:
    """Column names and rows of a finished query, and the data files it read.

    ``bytes_scanned`` is the size of those files: the partitions left after pruning, every file of each.
    Athena reads only the needed column chunks of Parquet files, so for Parquet this is an upper bound of
    Athena's ``DataScannedInBytes``; for CSV and JSON (read whole) it is the same figure.
    """

    columns: list[str]
    rows: list[tuple]
    files_read: dict[str, int] = field(default_factory=dict)  # data file URI → size in bytes

    @property
    def bytes_scanned(self) -> int:
        return sum(self.files_read.values())

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


class BytesScannedLimitError(AthenaEngineError):
    """The statement would read more than the workgroup's per-query limit (Athena cancels such queries)."""


class LocalAthenaEngine:
    """Runs Athena SQL on DuckDB over S3 (moto or AWS), resolving tables through a Glue client.

    ``bytes_scanned_cutoff`` is the workgroup's ``BytesScannedCutoffPerQuery``: a statement whose
    partitions hold more data fails before it runs, as Athena cancels it once it has read that much.
    """

    def __init__(
        self,
        glue_client: Any,
        *,
        s3_endpoint_url: str | None,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        bytes_scanned_cutoff: int | None = None,
    ) -> None:
        self.glue = glue_client
        self.bytes_scanned_cutoff = bytes_scanned_cutoff
        self.s3_endpoint_url = s3_endpoint_url
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token
        check_endpoint(s3_endpoint_url)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._files_read: dict[str, int] = {}  # of the statement running now (under the lock)

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
        access = AwsAccess(
            self.region,
            self._access_key_id,
            self._secret_access_key,
            self._session_token,
            {"s3": self.s3_endpoint_url},
        )
        con = duckdb_s3.connect(access)
        con.execute("SET integer_division = true")  # Presto: int / int is an integer
        return con

    def get_table(self, database: str, table: str) -> dict[str, Any]:
        """The Glue table, or :class:`AthenaTableNotFoundError` naming ``database.table``."""
        try:
            return self.glue.get_table(DatabaseName=database, Name=table)["Table"]
        except self.glue.exceptions.EntityNotFoundException as exc:
            raise AthenaTableNotFoundError(
                f"TABLE_NOT_FOUND: table {database}.{table} does not exist in the Glue Data Catalog"
            ) from exc

    def get_partitions(self, database: str, table: str) -> list[dict[str, Any]]:
        """Every registered partition of the Glue table ``database.table``."""
        pages = self.glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
        return [partition for page in pages for partition in page.get("Partitions", [])]

    @staticmethod
    def _has_files(con: duckdb.DuckDBPyConnection, pattern: str) -> bool:
        return bool(con.execute(f"SELECT count(*) FROM glob({literal(pattern)})").fetchone()[0])

    @staticmethod
    def _file_sizes(con: duckdb.DuckDBPyConnection, pattern: str) -> dict[str, int]:
        """Every data file matching ``pattern`` and its size (listed, not read)."""
        rows = con.execute(f"SELECT filename, size FROM read_blob({literal(pattern)})").fetchall()
        return {name: int(size) for name, size in rows}

    def _file_columns(
        self, con: duckdb.DuckDBPyConnection, table: dict[str, Any], location: str
    ) -> set[str] | None:
        """The columns the data files in and below ``location`` hold (None: no data files there).

        Parquet: the union of every file's columns; CSV and JSON are read by the catalog's columns.
        """
        pattern = data_glob(table, location)
        files = self._file_sizes(con, pattern)
        if not files:
            return None
        self._files_read.update(files)
        if table_format(table) != "parquet":
            return {c["Name"] for c in table["StorageDescriptor"].get("Columns", [])}
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({literal(pattern)}, "
            "union_by_name = true, hive_partitioning = false)"
        ).fetchall()
        return {row[0] for row in described}

    def _view_sql(
        self,
        con: duckdb.DuckDBPyConnection,
        database: str,
        name: str,
        references: list[list[KeyCondition]] | None,
    ) -> str:
        """The view of ``database.name`` over the partitions the statement's references to it may read."""
        table = self.get_table(database, name)
        partitions = self.get_partitions(database, name) if table.get("PartitionKeys") else []
        partitions = select_partitions(table, partitions, references)
        file_columns: dict[str, set[str] | None] = {}
        for read in reads(table, partitions):
            if read.location in file_columns:
                continue
            try:
                file_columns[read.location] = self._file_columns(con, table, read.location)
            except duckdb.Error as exc:
                raise AthenaEngineError(
                    f"cannot read table {database}.{name} at {read.location}: {str(exc).splitlines()[0]}"
                ) from exc
        return view_sql(table, partitions, file_columns)

    def _create_views(self, con: duckdb.DuckDBPyConnection, query: exp.Expression, database: str) -> None:
        conditions = partition_conditions(query, database)
        for database_name, name in referenced_tables(query, database):
            body = self._view_sql(con, database_name, name, conditions.get((database_name, name)))
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(database_name)}")
                con.execute(f"CREATE OR REPLACE VIEW {ident(database_name)}.{ident(name)} AS {body}")
            except duckdb.Error as exc:
                raise AthenaEngineError(
                    f"cannot read table {database_name}.{name}: {str(exc).splitlines()[0]}"
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
            self._files_read = {}
            if is_ctas:
                return self._ctas(self._con, statement, database)
            return self._run(self._con, self._prepare(self._con, statement, database))

    def _prepare(self, con: duckdb.DuckDBPyConnection, query: exp.Expression, database: str) -> str:
        """Create the views the query reads and return it as DuckDB SQL."""
        self._create_views(con, query, database)
        query = query.copy()
        qualify(query, database)
        name_unnamed_columns(query)
        scanned = sum(self._files_read.values())
        if self.bytes_scanned_cutoff is not None and scanned > self.bytes_scanned_cutoff:
            raise BytesScannedLimitError(
                f"Query cancelled: it would scan {scanned} bytes, more than the workgroup's limit of "
                f"{self.bytes_scanned_cutoff} bytes per query (BytesScannedCutoffPerQuery); "
                "filter on the partition key dt to read fewer partitions"
            )
        return athena_semantics(query).sql(dialect="duckdb")

    def _run(self, con: duckdb.DuckDBPyConnection, duck_sql: str) -> QueryResult:
        try:
            cursor = con.execute(duck_sql)
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns=columns, rows=cursor.fetchall(), files_read=dict(self._files_read))
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
            con, f"COPY ({select_sql}) TO {literal(target)} (FORMAT parquet, COMPRESSION {plan.compression})"
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
        count = int(copied.rows[0][0]) if copied.rows else 0
        return QueryResult(columns=["rows"], rows=[(count,)], files_read=copied.files_read)
