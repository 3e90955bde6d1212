"""The local Glue crawler: infers each dataset's schema from its files and writes the Glue Data Catalog.

What an AWS Glue crawler does for an S3 target, over the control plane's S3 and Glue APIs (boto3):

* every folder right under a target path (``s3://<bucket>/raw/<dataset>/``) is one table, named
  ``<TablePrefix><dataset>`` (lower case, other characters as ``_``), located at that folder;
* ``key=value`` folders below it are partitions (keys ``string``; a plain folder is ``partition_<i>``);
* like AWS, the first megabyte of each file is sampled (at most :data:`MAX_FILES_PER_PARTITION` files per
  partition; Parquet: the file's schema): CSV with a header row (values typed ``bigint``, ``double``,
  ``boolean``, ``date``, ``timestamp`` or ``string``), JSON lines (keys in order of first appearance, the
  union of the sampled lines; JSON strings stay ``string``, as AWS's JSON classifier reports them), Parquet
  (``pyarrow``); ``.gz`` files are read through gzip (``compressionType: gzip``); files named ``_*`` or
  ``.*`` and empty objects are ignored;
* each partition keeps the schema of its own files; the table's columns are the union over partitions,
  the latest partition's order first (a re-crawl after a schema change updates the table);
* tables and partitions carry what AWS crawlers write: ``classification``, ``compressionType``,
  ``typeOfData``, ``UPDATED_BY_CRAWLER``, ``objectCount``, ``sizeKey``, CSV's ``delimiter`` and
  ``skip.header.line.count``, and the SerDe / InputFormat of the classification (LazySimpleSerDe or
  OpenCSVSerde when values are quoted, the OpenX JsonSerDe, ParquetHiveSerDe);
* ``SchemaChangePolicy``: ``UpdateBehavior`` ``UPDATE_IN_DATABASE`` or ``LOG``; ``DeleteBehavior`` (a table
  of this crawler whose folder is gone) ``LOG``, ``DEPRECATE_IN_DATABASE`` or ``DELETE_FROM_DATABASE``.
  Re-crawling unchanged files changes nothing.

:func:`run_crawler` runs a crawler defined in the control plane and records the run there as AWS would
(``sagelake.local.glue_crawls``): started, then ``SUCCEEDED`` with its metrics, or ``FAILED``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from fnmatch import fnmatch
from typing import Any

from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake import catalog
from sagelake.lake.layout import split_s3_uri
from sagelake.local.extension_calls import ExtensionCallError, call_extension

log = logging.getLogger(__name__)

SAMPLE_BYTES = 1024 * 1024  # AWS crawlers classify a file from its first megabyte
MAX_FILES_PER_PARTITION = 10
MAX_SAMPLE_ROWS = 1000
RECORD_CRAWL_ACTION = "SagelakeRecordCrawl"  # sagelake.local.glue_crawls.RECORD_CRAWL_ACTION
OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
UPDATE_BEHAVIORS = ("UPDATE_IN_DATABASE", "LOG")
DELETE_BEHAVIORS = ("LOG", "DEPRECATE_IN_DATABASE", "DELETE_FROM_DATABASE")

# A column type while inferring: a Hive primitive, ("struct", ((name, type), ...)), ("array", type) or
# ("map", key, value); None is "only nulls seen so far".
Type = str | tuple | None

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
_INTEGERS = ("tinyint", "smallint", "int", "bigint")
_INT64 = 2**63


class CrawlerError(RuntimeError):
    """The crawler cannot run as configured (the message says what to change)."""


# --- types --------------------------------------------------------------------------------------------


def text_type(value: str) -> str | None:
    """The Hive type of one CSV field (None for an empty field)."""
    text = value.strip()
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return "boolean"
    if _INT.match(text):
        return "bigint" if -_INT64 <= int(text) < _INT64 else "double"
    if _FLOAT.match(text):
        return "double"
    if _DATE.match(text) and _valid(date.fromisoformat, text):
        return "date"
    if _TIMESTAMP.match(text) and _valid(datetime.fromisoformat, text.replace("Z", "+00:00")):
        return "timestamp"
    return "string"


def _valid(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def json_type(value: Any) -> Type:
    """The type of one JSON value (strings stay ``string``, as AWS's JSON classifier reports them)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint" if -_INT64 <= value < _INT64 else "double"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return ("struct", tuple((str(k).lower(), json_type(v)) for k, v in value.items()))
    if isinstance(value, list):
        element: Type = None
        for item in value:
            element = merge_types(element, json_type(item))
        return ("array", element)
    return "string"


def merge_types(a: Type, b: Type) -> Type:
    """The type holding values of both: integers widen, integers and fractions give ``double``, structs
    merge field by field, arrays by element; anything else becomes ``string``."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if isinstance(a, str) and isinstance(b, str):
        if a in _INTEGERS and b in _INTEGERS:
            return max(a, b, key=_INTEGERS.index)
        numeric = (*_INTEGERS, "float", "double")
        if (a in numeric or a.startswith("decimal")) and (b in numeric or b.startswith("decimal")):
            return "double"
        return "string"
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "struct":
        fields = dict(a[1])
        for name, type_ in b[1]:
            fields[name] = merge_types(fields.get(name), type_)
        return ("struct", tuple(fields.items()))
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "array":
        return ("array", merge_types(a[1], b[1]))
    return "string"


def render_type(type_: Type) -> str:
    """Hive/Glue type text; an only-null column is ``string``."""
    if type_ is None:
        return "string"
    if isinstance(type_, str):
        return type_
    if type_[0] == "array":
        return f"array<{render_type(type_[1])}>"
    if type_[0] == "map":
        return f"map<{render_type(type_[1])},{render_type(type_[2])}>"
    return "struct<" + ",".join(f"{name}:{render_type(t)}" for name, t in type_[1]) + ">"


def arrow_type(data_type: Any) -> Type:
    """A ``pyarrow`` type as a Glue type (Parquet schema)."""
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(data_type):
        return arrow_type(data_type.value_type)
    simple = [
        (t.is_boolean, "boolean"),
        (t.is_int8, "tinyint"),
        (t.is_int16, "smallint"),
        (t.is_uint8, "smallint"),
        (t.is_int32, "int"),
        (t.is_uint16, "int"),
        (t.is_int64, "bigint"),
        (t.is_uint32, "bigint"),
        (t.is_uint64, "bigint"),
        (t.is_floating, "double"),
        (t.is_string, "string"),
        (t.is_large_string, "string"),
        (t.is_binary, "binary"),
        (t.is_large_binary, "binary"),
        (t.is_date, "date"),
        (t.is_timestamp, "timestamp"),
        (t.is_null, None),
    ]
    if t.is_float32(data_type):
        return "float"
    for check, name in simple:
        if check(data_type):
            return name
    if t.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    if t.is_list(data_type) or t.is_large_list(data_type):
        return ("array", arrow_type(data_type.value_type))
    if t.is_map(data_type):
        return ("map", arrow_type(data_type.key_type), arrow_type(data_type.item_type))
    if t.is_struct(data_type):
        return ("struct", tuple((f.name.lower(), arrow_type(f.type)) for f in data_type))
    return "string"


def column_name(raw: str, position: int) -> str:
    """Glue lower-cases names; a blank CSV header becomes ``col<position>`` as on AWS."""
    name = raw.strip().lower()
    return name or f"col{position}"


# --- one file ------------------------------------------------------------------------------------------


@dataclass
class FileSchema:
    """What one sampled file holds."""

    classification: str  # csv | json | parquet
    columns: list[tuple[str, Type]]
    compressed: bool = False
    quoted: bool = False
    malformed_lines: int = 0


def _merge_columns(into: dict[str, Type], columns: list[tuple[str, Type]]) -> None:
    for name, type_ in columns:
        into[name] = merge_types(into.get(name), type_) if name in into else type_


def _complete_lines(text: str, truncated: bool) -> list[str]:
    lines = text.splitlines()
    return lines[:-1] if truncated and lines else lines


def infer_csv(text: str, truncated: bool = False) -> FileSchema:
    """Header row and sampled value types of a CSV file's text."""
    lines = _complete_lines(text, truncated)[: MAX_SAMPLE_ROWS + 1]
    rows = list(csv.reader(lines))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError("no header row")
    names = [column_name(cell, i) for i, cell in enumerate(rows[0], start=1)]
    types: list[Type] = [None] * len(names)
    for row in rows[1:]:
        for i, cell in enumerate(row[: len(names)]):
            types[i] = merge_types(types[i], text_type(cell))
    return FileSchema("csv", list(zip(names, types, strict=True)), quoted='"' in "\n".join(lines))


def infer_json_lines(text: str, truncated: bool = False) -> FileSchema:
    """Keys and value types of JSON-lines text: the union of the sampled objects, in first-seen order."""
    columns: dict[str, Type] = {}
    malformed = parsed = 0
    for line in _complete_lines(text, truncated):
        if not line.strip():
            continue
        if parsed >= MAX_SAMPLE_ROWS:
            break
        try:
            record = json.loads(line)
        except ValueError:
            malformed += 1
            continue
        if not isinstance(record, dict):
            malformed += 1
            continue
        parsed += 1
        _merge_columns(columns, [(str(k).lower(), json_type(v)) for k, v in record.items()])
    if not parsed:
        raise ValueError("no JSON object in the sampled lines")
    return FileSchema("json", list(columns.items()), malformed_lines=malformed)


def infer_parquet(body: bytes) -> FileSchema:
    """The columns of a Parquet file (its schema, read with ``pyarrow``)."""
    import pyarrow.parquet as pq

    schema = pq.ParquetFile(io.BytesIO(body)).schema_arrow
    return FileSchema("parquet", [(f.name.lower(), arrow_type(f.type)) for f in schema])


def classify(key: str, head: bytes) -> str | None:
    """``csv`` | ``json`` | ``parquet`` by extension (after ``.gz``), else by content; None: unknown."""
    name = key.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    if name.endswith(".parquet") or head.startswith(b"PAR1"):
        return "parquet"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return "json"
    if name.endswith((".csv", ".txt")):
        return "csv"
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        return "json"
    first_line = stripped.split(b"\n", 1)[0]
    return "csv" if b"," in first_line else None


def read_sample(s3: Any, bucket: str, key: str, size: int) -> tuple[bytes, bool, bool]:
    """``(bytes, compressed, truncated)``: the first :data:`SAMPLE_BYTES` of the (decompressed) object;
    Parquet files are read whole (their schema is in the footer)."""
    compressed = key.lower().endswith(".gz")
    if key.lower().endswith(".parquet"):
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read(), False, False
    if compressed:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with gzip.GzipFile(fileobj=body) as stream:
            data = stream.read(SAMPLE_BYTES + 1)
        return data[:SAMPLE_BYTES], True, len(data) > SAMPLE_BYTES
    if size > SAMPLE_BYTES:
        response = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SAMPLE_BYTES - 1}")
        return response["Body"].read(), False, True
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read(), False, False


def infer_file(s3: Any, bucket: str, key: str, size: int) -> FileSchema:
    """Classify one object and infer its schema; ``ValueError`` if it is neither CSV, JSON nor Parquet."""
    data, compressed, truncated = read_sample(s3, bucket, key, size)
    kind = classify(key, data[:512])
    if kind == "parquet":
        if truncated or compressed:
            raise ValueError("a compressed or partial Parquet file cannot be read")
        return infer_parquet(data)
    if kind is None:
        raise ValueError("not CSV, JSON lines or Parquet")
    text = data.decode("utf-8", errors="replace")
    schema = infer_csv(text, truncated) if kind == "csv" else infer_json_lines(text, truncated)
    schema.compressed = compressed
    return schema


# --- datasets -------------------------------------------------------------------------------------------


@dataclass
class DataFile:
    key: str
    size: int
    folders: tuple[str, ...]  # partition folders between the dataset folder and the file


@dataclass
class InferredPartition:
    values: tuple[str, ...]
    location: str
    schema: FileSchema
    object_count: int
    size: int


@dataclass
class InferredTable:
    """One dataset folder as the crawler sees it."""

    name: str
    location: str
    classification: str
    columns: list[tuple[str, str]]
    partition_keys: list[str]
    partitions: list[InferredPartition]
    compressed: bool
    quoted: bool
    object_count: int
    size: int


@dataclass
class CrawlResult:
    """What one crawl did to the catalog."""

    tables: dict[str, InferredTable] = field(default_factory=dict)
    tables_created: list[str] = field(default_factory=list)
    tables_updated: list[str] = field(default_factory=list)
    tables_unchanged: list[str] = field(default_factory=list)
    tables_deleted: list[str] = field(default_factory=list)
    tables_deprecated: list[str] = field(default_factory=list)
    partitions_created: int = 0
    partitions_updated: int = 0
    skipped: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, int]:
        """The run's ``GetCrawlerMetrics`` figures."""
        return {
            "TablesCreated": len(self.tables_created),
            "TablesUpdated": len(self.tables_updated),
            "TablesDeleted": len(self.tables_deleted),
        }


def table_name(prefix: str, folder: str) -> str:
    """``crawled_`` + ``my-dataset`` → ``crawled_my_dataset`` (Glue names: lower case, ``_``)."""
    return re.sub(r"[^a-z0-9_]", "_", (prefix + folder).lower())


def _partition_key(folder: str, position: int) -> tuple[str, str]:
    if "=" in folder:
        key, _, value = folder.partition("=")
        return key.lower(), value
    return f"partition_{position}", folder


def _ignored(name: str) -> bool:
    return not name or name.startswith(("_", "."))


def list_datasets(
    s3: Any, target: str, exclusions: list[str], skipped: list[str]
) -> dict[str, list[DataFile]]:
    """The data files under ``target`` by dataset folder (exclusion globs are relative to the target)."""
    bucket, prefix = split_s3_uri(target.rstrip("/") + "/")
    datasets: dict[str, list[DataFile]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            parts = relative.split("/")
            if obj["Key"].endswith("/") or obj["Size"] == 0 or any(_ignored(p) for p in parts):
                continue
            if any(fnmatch(relative, pattern) for pattern in exclusions):
                continue
            if len(parts) < 2:
                skipped.append(f"s3://{bucket}/{obj['Key']}: a file at the target's root is not a dataset")
                continue
            datasets.setdefault(parts[0], []).append(DataFile(obj["Key"], obj["Size"], tuple(parts[1:-1])))
    return datasets


def infer_table(
    s3: Any, bucket: str, prefix: str, folder: str, files: list[DataFile], table_prefix: str, skipped: list
) -> InferredTable | None:
    """The table of one dataset folder: partitions from its ``key=value`` folders, schema from its files."""
    depths = Counter(len(f.folders) for f in files)
    depth = depths.most_common(1)[0][0]
    by_partition: dict[tuple[str, ...], list[DataFile]] = {}
    keys: list[str] | None = None
    for data_file in files:
        if len(data_file.folders) != depth:
            skipped.append(f"s3://{bucket}/{data_file.key}: not at the dataset's partition depth {depth}")
            continue
        pairs = [_partition_key(f, i) for i, f in enumerate(data_file.folders)]
        file_keys = [k for k, _ in pairs]
        if keys is None:
            keys = file_keys
        if file_keys != keys:
            skipped.append(f"s3://{bucket}/{data_file.key}: partition keys {file_keys} differ from {keys}")
            continue
        by_partition.setdefault(tuple(v for _, v in pairs), []).append(data_file)
    location = f"s3://{bucket}/{prefix}{folder}/"
    partitions = []
    for values in sorted(by_partition, reverse=True):  # latest first: its column order leads
        part_files = sorted(by_partition[values], key=lambda f: f.key)
        schemas = []
        for data_file in part_files[:MAX_FILES_PER_PARTITION]:
            try:
                schemas.append(infer_file(s3, bucket, data_file.key, data_file.size))
            except ValueError as error:
                skipped.append(f"s3://{bucket}/{data_file.key}: {error}")
        if not schemas:
            continue
        kinds = Counter(s.classification for s in schemas)
        kind = kinds.most_common(1)[0][0]
        columns: dict[str, Type] = {}
        for schema in schemas:
            if schema.classification == kind:
                _merge_columns(columns, schema.columns)
        merged = FileSchema(
            kind,
            list(columns.items()),
            compressed=any(s.compressed for s in schemas if s.classification == kind),
            quoted=any(s.quoted for s in schemas if s.classification == kind),
        )
        folders = "".join(f"{f}/" for f in part_files[0].folders)
        partitions.append(
            InferredPartition(
                values, location + folders, merged, len(part_files), sum(f.size for f in part_files)
            )
        )
    if not partitions:
        skipped.append(f"{location}: no readable data file")
        return None
    kind = Counter(p.schema.classification for p in partitions).most_common(1)[0][0]
    for partition in [p for p in partitions if p.schema.classification != kind]:
        skipped.append(f"{partition.location}: {partition.schema.classification} files in a {kind} dataset")
    partitions = [p for p in partitions if p.schema.classification == kind]
    columns: dict[str, Type] = {}
    for partition in partitions:
        _merge_columns(columns, partition.schema.columns)
    return InferredTable(
        name=table_name(table_prefix, folder),
        location=location,
        classification=kind,
        columns=[(name, render_type(t)) for name, t in columns.items()],
        partition_keys=keys if depth else [],
        partitions=sorted(partitions, key=lambda p: p.values),
        compressed=any(p.schema.compressed for p in partitions),
        quoted=any(p.schema.quoted for p in partitions),
        object_count=sum(p.object_count for p in partitions),
        size=sum(p.size for p in partitions),
    )


# --- catalog --------------------------------------------------------------------------------------------


def _format(classification: str, quoted: bool, columns: list[tuple[str, str]]) -> dict[str, Any]:
    if classification == "parquet":
        return {
            "InputFormat": catalog.PARQUET_INPUT_FORMAT,
            "OutputFormat": catalog.PARQUET_OUTPUT_FORMAT,
            "SerdeInfo": {
                "SerializationLibrary": catalog.PARQUET_SERDE,
                "Parameters": {"serialization.format": "1"},
            },
        }
    if classification == "json":
        serde = {
            "SerializationLibrary": catalog.JSON_SERDE,
            "Parameters": {"paths": ",".join(sorted(name for name, _ in columns))},
        }
    elif quoted:
        serde = {
            "SerializationLibrary": OPEN_CSV_SERDE,
            "Parameters": {"separatorChar": ",", "quoteChar": '"'},
        }
    else:
        serde = {"SerializationLibrary": catalog.CSV_SERDE, "Parameters": {"field.delim": ","}}
    return {
        "InputFormat": catalog.TEXT_INPUT_FORMAT,
        "OutputFormat": catalog.TEXT_OUTPUT_FORMAT,
        "SerdeInfo": serde,
    }


def _parameters(
    classification: str, compressed: bool, quoted: bool, crawler: str, objects: int, size: int
) -> dict[str, str]:
    params = {
        "classification": classification,
        "compressionType": "gzip" if compressed else "none",
        "typeOfData": "file",
        "UPDATED_BY_CRAWLER": crawler,
        "CrawlerSchemaDeserializerVersion": "1.0",
        "CrawlerSchemaSerializerVersion": "1.0",
        "objectCount": str(objects),
        "sizeKey": str(size),
    }
    if classification == "csv":
        params |= {
            "delimiter": ",",
            "skip.header.line.count": "1",
            "areColumnsQuoted": str(quoted).lower(),
            "columnsOrdered": "true",
        }
    return params


def _storage(
    columns: list[tuple[str, str]], location: str, classification: str, quoted: bool, compressed: bool, params
) -> dict[str, Any]:
    return {
        "Columns": catalog.glue_columns(columns),
        "Location": location,
        **_format(classification, quoted, columns),
        "Compressed": compressed,
        "NumberOfBuckets": -1,
        "StoredAsSubDirectories": False,
        "Parameters": dict(params),
    }


def table_input(table: InferredTable, crawler: str) -> dict[str, Any]:
    """The Glue ``TableInput`` an AWS crawler would write for ``table``."""
    params = _parameters(
        table.classification, table.compressed, table.quoted, crawler, table.object_count, table.size
    )
    return {
        "Name": table.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": params,
        "PartitionKeys": [{"Name": key, "Type": "string"} for key in table.partition_keys],
        "StorageDescriptor": _storage(
            table.columns, table.location, table.classification, table.quoted, table.compressed, params
        ),
    }


def partition_input(table: InferredTable, partition: InferredPartition, crawler: str) -> dict[str, Any]:
    """The Glue ``PartitionInput`` of one partition: its own files' schema at its own location."""
    schema = partition.schema
    columns = [(name, render_type(t)) for name, t in schema.columns]
    params = _parameters(
        schema.classification,
        schema.compressed,
        schema.quoted,
        crawler,
        partition.object_count,
        partition.size,
    )
    return {
        "Values": list(partition.values),
        "Parameters": params,
        "StorageDescriptor": _storage(
            columns, partition.location, schema.classification, schema.quoted, schema.compressed, params
        ),
    }


_COMPARED_TABLE = ("TableType", "Parameters", "PartitionKeys", "StorageDescriptor")


def _same(current: dict[str, Any], wanted: dict[str, Any], keys: tuple[str, ...]) -> bool:
    def pick(data: dict[str, Any], key: str) -> Any:
        value = data.get(key)
        if key == "StorageDescriptor" and value is not None:
            value = {k: value.get(k) for k in wanted["StorageDescriptor"]}
        return value

    return all(pick(current, key) == pick(wanted, key) for key in keys)


def _existing_partitions(glue: Any, database: str, table: str) -> dict[tuple[str, ...], dict[str, Any]]:
    found = {}
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
        for partition in page["Partitions"]:
            found[tuple(partition["Values"])] = partition
    return found


def apply_table(
    glue: Any, database: str, table: InferredTable, crawler: str, update: bool, result: CrawlResult
) -> None:
    """Create or update ``table`` and its partitions as the SchemaChangePolicy says (no-op if unchanged)."""
    wanted = table_input(table, crawler)
    try:
        current = glue.get_table(DatabaseName=database, Name=table.name)["Table"]
    except ClientError as error:
        if not has_code(error, "EntityNotFoundException"):
            raise
        glue.create_table(DatabaseName=database, TableInput=wanted)
        result.tables_created.append(table.name)
        current = None
    if current is not None:
        if _same(current, wanted, _COMPARED_TABLE):
            result.tables_unchanged.append(table.name)
        elif update:
            glue.update_table(DatabaseName=database, TableInput=wanted)
            result.tables_updated.append(table.name)
        else:
            log.info("table %s changed; SchemaChangePolicy LOG leaves it as it is", table.name)
            result.tables_unchanged.append(table.name)
    if not table.partition_keys:
        return
    existing = _existing_partitions(glue, database, table.name) if current is not None else {}
    new = []
    for partition in table.partitions:
        wanted_partition = partition_input(table, partition, crawler)
        have = existing.get(partition.values)
        if have is None:  # new folders are added whatever the UpdateBehavior
            new.append(wanted_partition)
        elif update and not _same(have, wanted_partition, ("Parameters", "StorageDescriptor")):
            glue.update_partition(
                DatabaseName=database,
                TableName=table.name,
                PartitionValueList=list(partition.values),
                PartitionInput=wanted_partition,
            )
            result.partitions_updated += 1
    for start in range(0, len(new), 100):
        response = glue.batch_create_partition(
            DatabaseName=database, TableName=table.name, PartitionInputList=new[start : start + 100]
        )
        if response.get("Errors"):
            raise CrawlerError(f"table {table.name}: partitions not created: {response['Errors']}")
    result.partitions_created += len(new)


def _crawler_tables(glue: Any, database: str, crawler: str) -> list[dict[str, Any]]:
    tables = []
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=database):
        tables += [
            t for t in page["TableList"] if (t.get("Parameters") or {}).get("UPDATED_BY_CRAWLER") == crawler
        ]
    return tables


def crawl(
    s3: Any,
    glue: Any,
    *,
    crawler: str,
    database: str,
    targets: list[dict[str, Any]],
    table_prefix: str = "",
    schema_change_policy: dict[str, str] | None = None,
) -> CrawlResult:
    """Crawl the S3 ``targets`` (Glue ``S3Targets``: ``Path``, optional ``Exclusions``) into ``database``."""
    policy = schema_change_policy or {}
    update_behavior = policy.get("UpdateBehavior", "UPDATE_IN_DATABASE")
    delete_behavior = policy.get("DeleteBehavior", "DEPRECATE_IN_DATABASE")
    if update_behavior not in UPDATE_BEHAVIORS or delete_behavior not in DELETE_BEHAVIORS:
        raise CrawlerError(f"unsupported SchemaChangePolicy {policy}")
    result = CrawlResult()
    for target in targets:
        path = target["Path"].rstrip("/") + "/"
        bucket, prefix = split_s3_uri(path)
        datasets = list_datasets(s3, path, list(target.get("Exclusions", [])), result.skipped)
        for folder, files in sorted(datasets.items()):
            table = infer_table(s3, bucket, prefix, folder, files, table_prefix, result.skipped)
            if table is None:
                continue
            if table.name in result.tables:
                raise CrawlerError(f"two datasets map to table {table.name}: rename one folder")
            result.tables[table.name] = table
            apply_table(glue, database, table, crawler, update_behavior == "UPDATE_IN_DATABASE", result)
    roots = tuple(t["Path"].rstrip("/") + "/" for t in targets)
    for gone in _crawler_tables(glue, database, crawler):
        location = gone.get("StorageDescriptor", {}).get("Location", "")
        if gone["Name"] in result.tables or not location.startswith(roots):
            continue
        if delete_behavior == "DELETE_FROM_DATABASE":
            glue.delete_table(DatabaseName=database, Name=gone["Name"])
            result.tables_deleted.append(gone["Name"])
        elif delete_behavior == "DEPRECATE_IN_DATABASE" and "DEPRECATED_BY_CRAWLER" not in gone["Parameters"]:
            keep = {
                k: gone[k] for k in ("Name", "TableType", "PartitionKeys", "StorageDescriptor") if k in gone
            }
            keep["Parameters"] = {**gone["Parameters"], "DEPRECATED_BY_CRAWLER": "1"}
            glue.update_table(DatabaseName=database, TableInput=keep)
            result.tables_deprecated.append(gone["Name"])
        else:
            log.info(
                "table %s: its folder %s is gone (DeleteBehavior %s)", gone["Name"], location, delete_behavior
            )
    for message in result.skipped:
        log.warning("skipped %s", message)
    return result


# --- a crawler run, recorded in the control plane ------------------------------------------------------


def record_crawl(glue: Any, credentials: Any, crawler: str, status: str, **details: Any) -> dict[str, Any]:
    """Record the outcome of ``crawler``'s running crawl in the local control plane (``SUCCEEDED`` with
    ``TablesCreated``/``TablesUpdated``/``TablesDeleted``, or ``FAILED`` with ``ErrorMessage``).

    A control-plane-only call (``AWSGlue.SagelakeRecordCrawl``), signed like any Glue request.
    """
    body = {"CrawlerName": crawler, "Status": status, **details}
    try:
        return call_extension(glue, credentials, "glue", f"AWSGlue.{RECORD_CRAWL_ACTION}", body)
    except ExtensionCallError as error:
        raise CrawlerError(f"recording crawl of {crawler} failed: {error}") from None


def _start(glue: Any, credentials: Any, crawler: str) -> None:
    try:
        glue.start_crawler(Name=crawler)
    except ClientError as error:
        if not has_code(error, "CrawlerRunningException"):
            raise
        # locally nothing crawls in the background: a RUNNING crawl is one whose task died
        record_crawl(glue, credentials, crawler, "FAILED", ErrorMessage="abandoned: its local run ended")
        glue.start_crawler(Name=crawler)


def run_crawler(s3: Any, glue: Any, credentials: Any, crawler: str) -> CrawlResult:
    """Start ``crawler`` (defined in the control plane), crawl its S3 targets, record the run's outcome.

    A failure is recorded as ``FAILED`` with its message, then raised.
    """
    config = glue.get_crawler(Name=crawler)["Crawler"]
    recrawl = (config.get("RecrawlPolicy") or {}).get("RecrawlBehavior", "CRAWL_EVERYTHING")
    _start(glue, credentials, crawler)
    try:
        if recrawl != "CRAWL_EVERYTHING":
            raise CrawlerError(f"RecrawlBehavior {recrawl} is not supported locally: use CRAWL_EVERYTHING")
        result = crawl(
            s3,
            glue,
            crawler=crawler,
            database=config["DatabaseName"],
            targets=list(config.get("Targets", {}).get("S3Targets", [])),
            table_prefix=config.get("TablePrefix") or "",
            schema_change_policy=config.get("SchemaChangePolicy"),
        )
    except Exception as error:
        record_crawl(
            glue, credentials, crawler, "FAILED", ErrorMessage=f"{type(error).__name__}: {error}"[:2000]
        )
        raise
    record_crawl(glue, credentials, crawler, "SUCCEEDED", **result.metrics())
    return result
