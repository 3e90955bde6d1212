"""The local target's profile job: the statistics a Glue DataBrew profile job computes, with DuckDB, from
the same Parquet files (the published partition's location in S3), in the shape of
:mod:`sagelake.lake.profiles`.

Definitions (the same as the DataBrew conversion's): ``count`` present values, ``missing`` NULL (and NaN
in floating-point columns), ``distinct`` distinct present values; ``stddev`` is the sample standard
deviation (``stddev_samp``, n − 1, as Spark's ``stddev`` that DataBrew runs on); quantiles are exact,
``quantile_cont``: linear interpolation between the two closest ranks (Hyndman–Fan type 7, numpy's and
pandas' default). ``duplicate_rows`` is the row count minus the number of distinct rows (NULLs equal).
The partition is read once into memory, then every statistic is computed from that copy.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb

from sagelake.lake import profiles
from sagelake.lake.profiles import ColumnProfile, ColumnType, Profile
from sagelake.local import duckdb_s3
from sagelake.local.athena.errors import AthenaEngineError
from sagelake.local.athena.sql import ident, literal
from sagelake.local.aws_session import AwsAccess

ENGINE = "local-duckdb"
_TABLE = "profiled"
_INTEGERS = {p + t for p in ("", "U") for t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")}


class EmptyLocationError(AthenaEngineError):
    """The location to profile holds no Parquet file."""


def duckdb_column_type(type_name: str) -> ColumnType:
    """The profile's column type for a DuckDB type name."""
    name = type_name.upper()
    if name in _INTEGERS:
        return "integer"
    if name in ("FLOAT", "DOUBLE", "REAL") or name.startswith("DECIMAL"):
        return "number"
    if name == "VARCHAR":
        return "string"
    if name == "BOOLEAN":
        return "boolean"
    if name == "DATE":
        return "date"
    if name.startswith("TIMESTAMP"):
        return "timestamp"
    return "other"


def connect(access: AwsAccess) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection reading S3 (the control plane's or AWS's) with ``access``'s credentials."""
    return duckdb_s3.connect(access)


def parquet_glob(location: str) -> str:
    """Every Parquet file in and below ``location`` (a job's ``_SUCCESS`` marker is not data)."""
    return location.rstrip("/") + "/**/*.parquet"


def load_location(con: duckdb.DuckDBPyConnection, location: str) -> None:
    """Copy the Parquet files under ``location`` into the in-memory table the profile reads."""
    pattern = parquet_glob(location)
    if not con.execute(f"SELECT count(*) FROM glob({literal(pattern)})").fetchone()[0]:
        raise EmptyLocationError(f"no Parquet file under {location}: nothing to profile")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TABLE} AS SELECT * FROM read_parquet({literal(pattern)}, "
        "union_by_name = true, hive_partitioning = false)"
    )


def _plain(value: Any, kind: ColumnType) -> Any:
    """A JSON-ready Python value: Decimal → float, dates → ISO text."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if kind == "number":
        return float(value)
    return value


def _column(con: duckdb.DuckDBPyConnection, name: str, source_type: str, row_count: int) -> ColumnProfile:
    kind = duckdb_column_type(source_type)
    col = ident(name)
    upper = source_type.upper()
    if upper in ("FLOAT", "DOUBLE", "REAL"):
        value = f"(CASE WHEN isnan({col}) THEN NULL ELSE {col} END)"  # NaN is missing, as in pandas
    elif upper.startswith("DECIMAL"):
        value = f"CAST({col} AS DOUBLE)"
    else:
        value = col
    count, distinct = con.execute(f"SELECT count({value}), count(DISTINCT {value}) FROM {_TABLE}").fetchone()
    stats: dict[str, Any] = {
        "name": name,
        "type": kind,
        "source_type": source_type,
        "count": int(count),
        "missing": row_count - int(count),
        "distinct": int(distinct),
    }
    if kind in profiles.NUMERIC:
        points = list(profiles.QUANTILES.values())
        low, high, mean, stddev, quantiles = con.execute(
            f"SELECT min({value}), max({value}), avg({value}), stddev_samp({value}), "
            f"quantile_cont({value}, {points}) FROM {_TABLE}"
        ).fetchone()
        stats.update(
            min=_plain(low, kind),
            max=_plain(high, kind),
            mean=None if mean is None else float(mean),
            stddev=None if stddev is None else float(stddev),
            quantiles=dict.fromkeys(profiles.QUANTILES)
            if quantiles is None
            else {key: float(q) for key, q in zip(profiles.QUANTILES, quantiles, strict=True)},
        )
    elif kind in ("date", "timestamp"):
        low, high = con.execute(f"SELECT min({value}), max({value}) FROM {_TABLE}").fetchone()
        stats.update(min=_plain(low, kind), max=_plain(high, kind))
    elif kind in profiles.CATEGORICAL:
        rows = con.execute(
            f"SELECT {value}, count(*) AS n FROM {_TABLE} WHERE {value} IS NOT NULL "
            f"GROUP BY 1 ORDER BY n DESC, CAST({value} AS VARCHAR) LIMIT {profiles.TOP_VALUES}"
        ).fetchall()
        stats["top_values"] = profiles.top_values(rows)
    return ColumnProfile(**stats)


def profile_table(
    con: duckdb.DuckDBPyConnection, *, dataset: str, dt: str, version: str, location: str, created_at: str
) -> Profile:
    """The profile of the rows loaded by :func:`load_location`."""
    described = con.execute(f"DESCRIBE {_TABLE}").fetchall()
    row_count = int(con.execute(f"SELECT count(*) FROM {_TABLE}").fetchone()[0])
    distinct_rows = int(con.execute(f"SELECT count(*) FROM (SELECT DISTINCT * FROM {_TABLE})").fetchone()[0])
    return Profile(
        dataset=dataset,
        dt=dt,
        version=version,
        location=location,
        engine=ENGINE,
        created_at=created_at,
        row_count=row_count,
        duplicate_rows=row_count - distinct_rows,
        columns=[_column(con, row[0], row[1], row_count) for row in described],
    )


def profile_location(
    access: AwsAccess, location: str, *, dataset: str, dt: str, version: str, created_at: str
) -> Profile:
    """Profile the Parquet files under the S3 ``location`` (a published partition version)."""
    con = connect(access)
    try:
        load_location(con, location)
        return profile_table(
            con, dataset=dataset, dt=dt, version=version, location=location, created_at=created_at
        )
    finally:
        con.close()
