"""The Glue Data Catalog as code: the lake's tables and their daily partitions.

Only builds requests and calls a boto3 ``glue`` client, so it works the same against AWS and the local
control plane. Table locations come from :class:`sagelake.lake.Lake` (the table root is the parent of a
``dt=`` partition directory).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake.contracts import Contract, load_contracts
from sagelake.lake.layout import Lake, check_dt

PARTITION_KEYS: list[dict[str, str]] = [{"Name": "dt", "Type": "string"}]

CHURN_FEATURES_COLUMNS: list[tuple[str, str]] = [
    ("customer_id", "string"),
    ("plan", "string"),
    ("region", "string"),
    ("monthly_fee", "double"),
    ("age", "double"),
    ("support_tickets", "int"),
    ("tenure_days", "int"),
    ("n_events", "bigint"),
    ("n_logins", "bigint"),
    ("n_purchases", "bigint"),
    ("total_amount", "double"),
    ("avg_session_s", "double"),
    ("churned", "int"),
]
QUARANTINE_COLUMNS: list[tuple[str, str]] = [("source", "string"), ("reason", "string"), ("record", "string")]
# The scalar fields of the Glue job's metrics JSON (its nested counts stay in the file, unlisted).
ETL_METRICS_COLUMNS: list[tuple[str, str]] = [
    ("job_name", "string"),
    ("customers_landed", "bigint"),
    ("events_landed", "bigint"),
    ("features_rows", "bigint"),
    ("events_cleaned", "bigint"),
    ("quarantined", "bigint"),
    ("duplicates_dropped", "bigint"),
    ("imputed_total", "bigint"),
    ("schema_drift_columns", "bigint"),
]
# One row per check run (sagelake.quality.results), appended by the quality-check tasks.
QUALITY_RESULTS_COLUMNS: list[tuple[str, str]] = [
    ("check_name", "string"),
    ("description", "string"),
    ("value", "double"),
    ("threshold", "string"),
    ("severity", "string"),
    ("verdict", "string"),
    ("dag_id", "string"),
    ("run_id", "string"),
    ("version", "string"),
    ("bytes_scanned", "bigint"),
    ("checked_at", "string"),
]
# Tables written by the Glue job: published by write-audit-publish, each audited through a staged twin.
PUBLISHED_TABLES = ("churn_quarantine", "etl_metrics", "churn_features")
STAGED_SUFFIX = "_staged"

TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
CSV_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

_ANY_DT = "2000-01-01"


def table_root(partition_uri: str) -> str:
    """``s3://b/curated/x/dt=2000-01-01/`` → ``s3://b/curated/x/`` (the table's Location)."""
    stripped = partition_uri.rstrip("/")
    head, _, last = stripped.rpartition("/")
    if not last.startswith("dt="):
        raise ValueError(f"not a dt= partition location: {partition_uri!r}")
    return head + "/"


def glue_columns(columns: list[tuple[str, str]]) -> list[dict[str, str]]:
    """``[(name, hive_type)]`` → Glue ``Columns``."""
    return [{"Name": name, "Type": type_} for name, type_ in columns]


def parquet_storage(columns: list[dict[str, str]], location: str) -> dict[str, Any]:
    """A Glue StorageDescriptor for Parquet files under ``location``."""
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        "Compressed": False,
        "StoredAsSubDirectories": False,
    }


def _text_storage(columns: list[dict[str, str]], location: str, serde: str, params: dict[str, str]):
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": TEXT_INPUT_FORMAT,
        "OutputFormat": TEXT_OUTPUT_FORMAT,
        "SerdeInfo": {"SerializationLibrary": serde, "Parameters": params},
        "Compressed": False,
        "StoredAsSubDirectories": False,
    }


def _table(name: str, description: str, storage: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    return {
        "Name": name,
        "Description": description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", **params},
        "PartitionKeys": copy.deepcopy(PARTITION_KEYS),
        "StorageDescriptor": storage,
    }


def table_inputs(lake: Lake, contracts: Mapping[str, Contract] | None = None) -> dict[str, dict[str, Any]]:
    """Glue ``TableInput`` of every lake table, keyed by table name; raw tables' columns are their
    contracts' (``include/contracts/`` unless given)."""
    contracts = contracts if contracts is not None else load_contracts()
    customers = _text_storage(
        contracts["raw_customers"].glue_columns(),
        table_root(lake.raw_customers(_ANY_DT)),
        CSV_SERDE,
        {"field.delim": ",", "serialization.format": ","},
    )
    events = _text_storage(
        contracts["raw_events"].glue_columns(), table_root(lake.raw_events(_ANY_DT)), JSON_SERDE, {}
    )
    features = parquet_storage(
        glue_columns(CHURN_FEATURES_COLUMNS), table_root(lake.curated_features(_ANY_DT))
    )
    quarantine = parquet_storage(glue_columns(QUARANTINE_COLUMNS), table_root(lake.quarantine(_ANY_DT)))
    metrics = _text_storage(
        glue_columns(ETL_METRICS_COLUMNS), table_root(lake.etl_metrics(_ANY_DT)), JSON_SERDE, {}
    )
    results = _text_storage(
        glue_columns(QUALITY_RESULTS_COLUMNS), table_root(lake.quality_results(_ANY_DT)), JSON_SERDE, {}
    )
    tables = [
        _table(
            "raw_customers",
            "Raw customer snapshot (CSV with a header row), one file per day.",
            customers,
            {"classification": "csv", "skip.header.line.count": "1"},
        ),
        _table(
            "raw_events", "Raw app events (JSON lines), one file per day.", events, {"classification": "json"}
        ),
        _table(
            "churn_features",
            "Curated churn features, one row per customer per day (Glue ETL output).",
            features,
            {"classification": "parquet"},
        ),
        _table(
            "churn_quarantine",
            "Raw records rejected by the Glue ETL, with the reason.",
            quarantine,
            {"classification": "parquet"},
        ),
        _table(
            "etl_metrics",
            "What the Glue ETL counted for a partition (JSON, one object per run).",
            metrics,
            {"classification": "json"},
        ),
        _table(
            "quality_results",
            "Every quality check's verdict: check, value, threshold, severity, verdict, run (JSON lines).",
            results,
            {"classification": "json"},
        ),
    ]
    tables += [staged(table) for table in tables if table["Name"] in PUBLISHED_TABLES]
    return {table["Name"]: table for table in tables}


def staged_table(table: str) -> str:
    """The table the audit reads: ``churn_features`` → ``churn_features_staged``."""
    return table + STAGED_SUFFIX


def staged(table: dict[str, Any]) -> dict[str, Any]:
    """The audit twin of a published table: same columns and format, its partitions are staged versions."""
    twin = copy.deepcopy(table)
    twin["Name"] = staged_table(table["Name"])
    twin["Description"] = (
        f"Staged versions of {table['Name']} under audit (write-audit-publish); not for readers."
    )
    return twin


def ensure_database(glue: Any, database: str) -> None:
    """Create the Glue database unless it exists."""
    try:
        glue.create_database(DatabaseInput={"Name": database, "Description": "sagelake data lake"})
    except ClientError as error:
        if not has_code(error, "AlreadyExistsException"):
            raise


def ensure_tables(glue: Any, database: str, lake: Lake) -> list[str]:
    """Create or update every lake table in ``database``; returns the table names (idempotent)."""
    names = []
    for name, table_input in table_inputs(lake).items():
        try:
            glue.create_table(DatabaseName=database, TableInput=table_input)
        except ClientError as error:
            if not has_code(error, "AlreadyExistsException"):
                raise
            glue.update_table(DatabaseName=database, TableInput=table_input)
        names.append(name)
    return names


def register_partition(
    glue: Any,
    database: str,
    table: str,
    dt: str,
    *,
    location: str | None = None,
    parameters: dict[str, str] | None = None,
) -> str:
    """Create or update partition ``dt`` of ``database.table``; returns its location (idempotent).

    The location defaults to ``<table location>/dt=<dt>/``; a versioned partition passes its own. Updating
    an existing partition is one ``UpdatePartition`` call: readers see the old location or the new one.
    """
    check_dt(dt)
    described = glue.get_table(DatabaseName=database, Name=table)["Table"]
    keys = [key["Name"] for key in described.get("PartitionKeys", [])]
    if keys != ["dt"]:
        raise ValueError(f"table {database}.{table} is partitioned by {keys}, not ['dt']: fix its definition")
    storage = copy.deepcopy(described["StorageDescriptor"])
    location = location or storage["Location"].rstrip("/") + f"/dt={dt}/"
    storage["Location"] = location
    partition_input: dict[str, Any] = {"Values": [dt], "StorageDescriptor": storage}
    if parameters:
        partition_input["Parameters"] = dict(parameters)
    try:
        glue.create_partition(DatabaseName=database, TableName=table, PartitionInput=partition_input)
    except ClientError as error:
        if not has_code(error, "AlreadyExistsException"):
            raise
        glue.update_partition(
            DatabaseName=database, TableName=table, PartitionValueList=[dt], PartitionInput=partition_input
        )
    return location


def register_partitions(glue: Any, database: str, lake: Lake, dt: str, tables: list[str]) -> dict[str, str]:
    """Ensure ``database`` and the lake's tables exist, then create or update partition ``dt`` of ``tables``
    at their default locations. Idempotent (a retry updates what the first attempt created). Returns each
    table's partition location."""
    check_dt(dt)
    ensure_database(glue, database)
    ensure_tables(glue, database, lake)
    return {table: register_partition(glue, database, table, dt) for table in tables}
