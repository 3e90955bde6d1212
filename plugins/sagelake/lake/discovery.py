"""Discovery of what lands in ``raw/``: the Glue crawler as code, and its findings against the contracts.

* :func:`crawler_config` is the crawler's definition (the ``config`` of the provider's crawler operators):
  one S3 target ``s3://<bucket>/raw/``, one table per dataset folder, named ``crawled_<folder>`` so it never
  touches the contract-defined ``raw_*`` tables of :mod:`sagelake.lake.catalog`.
* :func:`schema_drift` compares a crawled table's columns with its dataset's contract (added, missing and
  type-changed columns); :func:`drift_records` does it for a whole catalog listing, matching crawled tables
  to contracts by S3 location. The records are JSON lines under ``metrics/crawler_drift/dt=<dt>/``,
  registered as partition ``dt`` of the table ``crawler_drift`` (:func:`write_drift`).

Plain functions over boto3 clients; no Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake import catalog
from sagelake.lake.contracts import Contract, load_contracts
from sagelake.lake.layout import Lake, check_dt

CRAWLED_TABLE_PREFIX = "crawled_"
RAW_PREFIX = "raw/"
DRIFT_TABLE = "crawler_drift"
DRIFT_PREFIX = "metrics/crawler_drift/"
DRIFT_FILE = "drift.jsonl"
DRIFT_COLUMNS: list[tuple[str, str]] = [
    ("dataset", "string"),
    ("crawled_table", "string"),
    ("location", "string"),
    ("status", "string"),
    ("added", "string"),
    ("missing", "string"),
    ("type_changed", "string"),
    ("columns_differing", "bigint"),
    ("crawler", "string"),
    ("crawled_at", "string"),
]
# Record status: both sides compared / files without a contract / a contract without files.
COMPARED, NO_CONTRACT, NOT_CRAWLED = "compared", "no_contract", "not_crawled"

_INTEGERS = ("tinyint", "smallint", "int", "bigint")
_FRACTIONS = ("float", "double")


def table_level(path: str) -> int:
    """AWS's ``TableLevelConfiguration`` of the tables one folder below ``path`` (the bucket is level 1)."""
    key = path.removeprefix("s3://").strip("/")
    return len(key.split("/")) + 1


def crawler_config(
    *,
    name: str,
    role: str,
    database: str,
    bucket: str,
    prefix: str = RAW_PREFIX,
    table_prefix: str = CRAWLED_TABLE_PREFIX,
) -> dict[str, Any]:
    """The Glue ``CreateCrawler`` request of the crawler over ``s3://<bucket>/<prefix>``.

    One table per dataset folder (``TableLevelConfiguration``), compatible schemas combined; schema changes
    update the catalog, a vanished folder is only logged (a crawler never drops a table readers use); every
    run re-crawls everything (the local crawler needs it, and a changed schema in an old partition shows).
    """
    if not table_prefix:
        raise ValueError("table_prefix must not be empty: crawled tables would collide with the raw_* tables")
    path = f"s3://{bucket}/{prefix.strip('/')}/"
    configuration = {
        "Version": 1.0,
        "Grouping": {
            "TableGroupingPolicy": "CombineCompatibleSchemas",
            "TableLevelConfiguration": table_level(path),
        },
    }
    return {
        "Name": name,
        "Role": role,
        "DatabaseName": database,
        "Description": f"Discovers the datasets landing under {path} (sagelake discovery).",
        "Targets": {"S3Targets": [{"Path": path, "Exclusions": ["**/_*", "**/.*"]}]},
        "TablePrefix": table_prefix,
        "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"},
        "Configuration": json.dumps(configuration, sort_keys=True),
    }


def type_satisfies(crawled: str, contract: str, classification: str = "") -> bool:
    """Whether values the crawler typed ``crawled`` load into a contract column of type ``contract``.

    Same type; anything into ``string``; an integer into any integer, fraction or decimal (a crawler
    reads ``7`` as ``bigint``); a fraction into ``float``/``double``/``decimal``; a ``date`` into a
    ``timestamp``; and, JSON having no date type, a JSON ``string`` into ``date``/``timestamp``.
    """
    crawled, contract = crawled.lower(), contract.lower()
    fractional = (*_FRACTIONS, "decimal")
    if crawled == contract or contract == "string":
        return True
    if crawled in _INTEGERS:
        return contract in _INTEGERS or contract.startswith(fractional)
    if crawled.startswith(fractional):
        return contract.startswith(fractional)
    if crawled == "date":
        return contract == "timestamp"
    return classification == "json" and crawled == "string" and contract in ("date", "timestamp")


@dataclass(frozen=True)
class SchemaDrift:
    """How a crawled table's columns differ from its dataset's contract."""

    dataset: str
    added: tuple[str, ...]  # in the files, not in the contract
    missing: tuple[str, ...]  # in the contract, not in the files
    type_changed: tuple[tuple[str, str, str], ...]  # (column, contract type, crawled type)

    @property
    def columns_differing(self) -> int:
        return len(self.added) + len(self.missing) + len(self.type_changed)

    def describe(self) -> str:
        parts = [f"added {', '.join(self.added)}"] if self.added else []
        parts += [f"missing {', '.join(self.missing)}"] if self.missing else []
        parts += [f"{c} {a}→{b}" for c, a, b in self.type_changed]
        return "; ".join(parts) or "no difference"


def schema_drift(
    contract: Contract, crawled: Iterable[tuple[str, str]], classification: str = ""
) -> SchemaDrift:
    """Compare crawled ``(name, type)`` columns with ``contract`` (names case-insensitively)."""
    found = {name.lower(): type_ for name, type_ in crawled}
    declared = {column.name.lower(): column.type for column in contract.columns}
    return SchemaDrift(
        dataset=contract.dataset,
        added=tuple(name for name in found if name not in declared),
        missing=tuple(name for name in declared if name not in found),
        type_changed=tuple(
            (name, type_, found[name])
            for name, type_ in declared.items()
            if name in found and not type_satisfies(found[name], type_, classification)
        ),
    )


def contract_locations(lake: Lake, contracts: Mapping[str, Contract]) -> dict[str, Contract]:
    """Each contract keyed by its raw table's S3 location (``s3://b/raw/customers/``)."""
    inputs = catalog.table_inputs(lake, contracts)
    return {
        inputs[name]["StorageDescriptor"]["Location"].rstrip("/") + "/": contract
        for name, contract in contracts.items()
        if name in inputs
    }


def _columns(table: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table.get("StorageDescriptor", {}).get("Columns", [])]


def drift_records(
    tables: Iterable[Mapping[str, Any]],
    lake: Lake,
    *,
    crawler: str,
    crawled_at: str,
    contracts: Mapping[str, Contract] | None = None,
    table_prefix: str = CRAWLED_TABLE_PREFIX,
) -> list[dict[str, Any]]:
    """One record per dataset: every crawled table (``tables``: Glue ``GetTables`` entries; only those
    named ``<table_prefix>…``) against the contract at its location, and every contract nothing was
    crawled for."""
    contracts = contracts if contracts is not None else load_contracts()
    by_location = contract_locations(lake, contracts)
    records, seen = [], set()
    for table in sorted(tables, key=lambda t: t["Name"]):
        if not table["Name"].startswith(table_prefix):
            continue
        location = table.get("StorageDescriptor", {}).get("Location", "").rstrip("/") + "/"
        contract = by_location.get(location)
        record = {
            "crawled_table": table["Name"],
            "location": location,
            "crawler": crawler,
            "crawled_at": crawled_at,
        }
        if contract is None:
            records.append(record | _empty(None, NO_CONTRACT))
            continue
        seen.add(contract.dataset)
        classification = (table.get("Parameters") or {}).get("classification", "")
        drift = schema_drift(contract, _columns(table), classification)
        records.append(
            record
            | {
                "dataset": contract.dataset,
                "status": COMPARED,
                "added": ",".join(drift.added),
                "missing": ",".join(drift.missing),
                "type_changed": ",".join(f"{c}:{a}->{b}" for c, a, b in drift.type_changed),
                "columns_differing": drift.columns_differing,
            }
        )
    for location, contract in sorted(by_location.items()):
        if contract.dataset not in seen:
            records.append(
                {"crawled_table": None, "location": location, "crawler": crawler, "crawled_at": crawled_at}
                | _empty(contract.dataset, NOT_CRAWLED)
            )
    return records


def _empty(dataset: str | None, status: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "status": status,
        "added": "",
        "missing": "",
        "type_changed": "",
        "columns_differing": 0,
    }


def drift_table_input(lake: Lake) -> dict[str, Any]:
    """The Glue ``TableInput`` of ``crawler_drift`` (JSON lines, partitioned by ``dt``)."""
    return {
        "Name": DRIFT_TABLE,
        "Description": "What the raw-data crawler found that differs from the dataset contracts, per day.",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "json"},
        "PartitionKeys": [dict(key) for key in catalog.PARTITION_KEYS],
        "StorageDescriptor": {
            "Columns": catalog.glue_columns(DRIFT_COLUMNS),
            "Location": lake.uri(DRIFT_PREFIX),
            "InputFormat": catalog.TEXT_INPUT_FORMAT,
            "OutputFormat": catalog.TEXT_OUTPUT_FORMAT,
            "SerdeInfo": {"SerializationLibrary": catalog.JSON_SERDE, "Parameters": {}},
            "Compressed": False,
            "StoredAsSubDirectories": False,
        },
    }


def drift_key(dt: str) -> str:
    """The S3 key of the drift record of day ``dt``."""
    return f"{DRIFT_PREFIX}dt={check_dt(dt)}/{DRIFT_FILE}"


def write_drift(
    s3: Any, glue: Any, database: str, bucket: str, dt: str, records: list[dict[str, Any]]
) -> str:
    """Write the records of day ``dt`` (replacing that day's) and register them as partition ``dt`` of
    ``crawler_drift`` (table created or updated); returns the object's URI. Idempotent."""
    key = drift_key(dt)
    body = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson")
    catalog.ensure_database(glue, database)
    table = drift_table_input(Lake(bucket))
    try:
        glue.create_table(DatabaseName=database, TableInput=table)
    except ClientError as error:
        if not has_code(error, "AlreadyExistsException"):
            raise
        glue.update_table(DatabaseName=database, TableInput=table)
    catalog.register_partition(glue, database, DRIFT_TABLE, dt)
    return f"s3://{bucket}/{key}"
