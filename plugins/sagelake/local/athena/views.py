"""A Glue catalog table → the SELECT of its DuckDB view, read as Athena reads it.

A partitioned table reads only its registered partitions, each at the partition's own Location (data
files in it and below it), the partition keys being constants from the partition's ``Values``; an
unpartitioned table reads its Location. The columns are the catalog's: Parquet columns are matched by name
(case-insensitively, NULL when a file lacks them), CSV columns by position (Hive text SerDes), JSON by key.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagelake.local.athena.errors import AthenaEngineError, UnsupportedAthenaFeatureError
from sagelake.local.athena.sql import KeyCondition, duckdb_type, ident, literal

_GLOBS = {"parquet": "**/*.parquet", "json": "**/*.json*", "csv": "**/*.csv"}
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_STRING_KEY = re.compile(r"^(string|varchar(\(\s*\d+\s*\))?)$", re.IGNORECASE)


class PartitionMetadataError(AthenaEngineError):
    """A registered partition cannot be read as its table defines (Athena's HIVE_METASTORE_ERROR)."""


@dataclass(frozen=True)
class Read:
    """One location the view reads: a registered partition with its key values, or an unpartitioned table."""

    location: str
    values: tuple[str, ...] = ()


def _struct(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in mapping.items()) + "}"


def _name(table: dict[str, Any]) -> str:
    return f"{table.get('DatabaseName')}.{table.get('Name')}"


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
    raise UnsupportedAthenaFeatureError(
        f"table {_name(table)}: storage format (serde {serde or 'none'}) is not supported"
    )


def data_glob(table: dict[str, Any], location: str | None = None) -> str:
    """The glob of the table's data files in and below ``location`` (default: the table's Location).

    Only files of the table's format match (a job's ``_SUCCESS`` marker is not data).
    """
    location = table["StorageDescriptor"]["Location"] if location is None else location
    return location.rstrip("/") + "/" + _GLOBS[table_format(table)]


def reads(table: dict[str, Any], partitions: Sequence[dict[str, Any]]) -> list[Read]:
    """What the view of ``table`` reads: one :class:`Read` per partition (or the table's Location)."""
    keys = table.get("PartitionKeys", [])
    if not keys:
        return [Read(table["StorageDescriptor"]["Location"])]
    found = []
    for partition in partitions:
        values = tuple(partition.get("Values", []))
        location = partition.get("StorageDescriptor", {}).get("Location")
        if len(values) != len(keys):
            raise PartitionMetadataError(
                f"HIVE_METASTORE_ERROR: table {_name(table)} has {len(keys)} partition keys "
                f"but partition {list(values)} has {len(values)} values"
            )
        if not location:
            raise PartitionMetadataError(
                f"HIVE_METASTORE_ERROR: partition {_spec(keys, values)} of table {_name(table)} "
                "has no Location"
            )
        found.append(Read(location, values))
    return found


def _spec(keys: list[dict[str, str]], values: Sequence[str]) -> str:
    return "/".join(f"{key['Name']}={value}" for key, value in zip(keys, values, strict=True))


def select_partitions(
    table: dict[str, Any],
    partitions: Sequence[dict[str, Any]],
    references: Sequence[Sequence[KeyCondition]] | None,
) -> list[dict[str, Any]]:
    """The partitions some reference to the table may read (pruning), in partition-value order.

    ``references`` holds, per reference of the statement to the table, the string conditions its WHERE
    puts on the table's columns (:func:`~sagelake.local.athena.sql.partition_conditions`); None keeps every
    partition. Only conditions on string-typed partition keys prune; the query still applies its filter.
    """
    keys = table.get("PartitionKeys", [])
    positions = {k["Name"].lower(): i for i, k in enumerate(keys) if _STRING_KEY.match(k["Type"].strip())}

    def admitted(partition: dict[str, Any], conditions: Sequence[KeyCondition]) -> bool:
        values = partition.get("Values", [])
        for condition in conditions:
            position = positions.get(condition.column)
            if position is None or position >= len(values) or values[position] == _HIVE_NULL:
                continue  # not a prunable key (or a NULL key): keep the partition
            if not condition.admits(values[position]):
                return False
        return True

    kept = [p for p in partitions if not references or any(admitted(p, refs) for refs in references)]
    return sorted(kept, key=lambda p: list(p.get("Values", [])))


def _empty_view(columns: list[dict[str, str]]) -> str:
    cols = ", ".join(f"CAST(NULL AS {duckdb_type(c['Type'])}) AS {ident(c['Name'])}" for c in columns)
    return f"SELECT {cols} WHERE false"


def _key_value(key: dict[str, str], value: str) -> str:
    text = "NULL" if value == _HIVE_NULL else literal(value)
    return f"CAST({text} AS {duckdb_type(key['Type'])}) AS {ident(key['Name'])}"


def view_sql(
    table: dict[str, Any],
    partitions: Sequence[dict[str, Any]],
    file_columns: Mapping[str, Collection[str] | None],
) -> str:
    """The SELECT behind the DuckDB view of a Glue table: catalog columns, then partition keys.

    ``partitions`` are the Glue partitions to read (ignored for an unpartitioned table, which reads its
    Location); ``file_columns`` maps each location of :func:`reads` to the column names its data files hold
    (Parquet; for CSV and JSON any non-None value), or to None when the location has no data files. The view
    is the UNION ALL of one SELECT per location with files; with none it is an empty, typed view.
    """
    columns = table["StorageDescriptor"].get("Columns", [])
    keys = table.get("PartitionKeys", [])
    fmt = table_format(table)
    branches = []
    for read in reads(table, partitions):
        present = file_columns[read.location]
        if present is None:
            continue
        pattern = literal(data_glob(table, read.location))
        if fmt == "parquet":
            by_lower: dict[str, str] = {}
            for name in present:
                by_lower.setdefault(name.lower(), name)
            source = f"read_parquet({pattern}, union_by_name = true, hive_partitioning = false)"
            select = [
                f"CAST({ident(by_lower[c['Name'].lower()]) if c['Name'].lower() in by_lower else 'NULL'} "
                f"AS {duckdb_type(c['Type'])}) AS {ident(c['Name'])}"
                for c in columns
            ]
        elif fmt == "json":
            types = _struct({c["Name"]: duckdb_type(c["Type"]) for c in columns})
            source = (
                f"read_json({pattern}, format = 'newline_delimited', columns = {types}, "
                "hive_partitioning = false)"
            )
            select = [ident(c["Name"]) for c in columns]
        else:
            source = _csv_source(table, pattern, columns)
            select = [
                f"TRY_CAST({ident(c['Name'])} AS {duckdb_type(c['Type'])}) AS {ident(c['Name'])}"
                for c in columns
            ]
        select += [_key_value(key, value) for key, value in zip(keys, read.values, strict=True)]
        branches.append(f"SELECT {', '.join(select)} FROM {source}")
    if not branches:
        return _empty_view(columns + keys)
    return "\nUNION ALL\n".join(branches)


def _csv_source(table: dict[str, Any], pattern: str, columns: list[dict[str, str]]) -> str:
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
        f"delim = {literal(delim)}, quote = {literal(quote)}, nullstr = {literal(nulls)}, "
        f"columns = {names}, hive_partitioning = false)"
    )
