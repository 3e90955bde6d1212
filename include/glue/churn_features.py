"""Glue 5.0 (PySpark) job: raw customers CSV + events JSON lines of one day → churn features.

Job arguments (Glue style ``--NAME value``): ``JOB_NAME dt contracts input_customers input_events
output_features output_processed_events output_quarantine output_metrics``. Inputs and outputs are directory
URIs (``s3://...`` on AWS Glue, plain local paths when run locally by ``sagelake.local.glue_runner``).
``--contracts`` is the raw datasets' schema contracts as compact JSON (``sagelake.lake.contracts.
to_job_argument``: ``{"raw_customers": {"format", "allow_empty", "columns": [{"name", "type", "required",
"nullable"}]}, "raw_events": {...}}``); the job reads its raw inputs by those contracts, not by built-in
schemas.

Steps:

1. Pre-flight, before Spark starts and before any output is written: list each input directory's files
   (hidden and ``_``-prefixed ones ignored, as Spark does) and check the first MiB of each. A ``.gz`` file
   must be gzip (and is checked, then read, decompressed); gzip bytes under another name, binary content
   (NUL bytes, not UTF-8) or an empty file (0 bytes, only whitespace, only the CSV header; unless the
   contract has ``allow_empty``) fail. A UTF-8 BOM and CRLF line ends are fine. A CSV header is matched to
   the contract by name (case-sensitive, BOM and surrounding spaces stripped); JSON lines' keys are sampled
   from the first 1000 records. A required column absent fails; columns not in the contract are schema
   drift: loaded around, reported in the metrics. Any failure raises :class:`InputRejected` whose message is
   one line naming the dataset, the file and the problem; ``main`` exits non-zero with it as the last line.
2. Read every CSV file by its own header (all strings), select the contract's columns by name and cast them
   to the contract's types (a non-empty value that does not cast makes the row malformed, like a row with
   the wrong number of fields); JSON lines are read by key with the contract's types. Malformed records are
   kept in ``_corrupt_record``.
3. Quarantine bad records with a reason (a null in a ``nullable: false`` column included) → drop exact
   duplicates → impute missing age (median) and monthly_fee (median per plan) → aggregate events per
   customer → join into one feature row per customer. Every output is written in overwrite mode, sorted, so
   a re-run replaces the partition with identical data.

Self-contained on purpose: this file is uploaded to S3 and run by AWS Glue as is.
"""

from __future__ import annotations

import codecs
import csv
import functools
import json
import math
import re
import sys
import zlib
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

JOB_ARGS = [
    "JOB_NAME",
    "dt",
    "contracts",
    "input_customers",
    "input_events",
    "output_features",
    "output_processed_events",
    "output_quarantine",
    "output_metrics",
]
PLANS = ["basic", "standard", "premium"]
REGIONS = ["north", "south", "east", "west"]
EVENT_TYPES = ["login", "play", "purchase", "support"]
MAX_AMOUNT = 10000.0
MAX_DURATION_S = 86400.0
ROWS_PER_FILE = 1_000_000
CORRUPT = "_corrupt_record"

CUSTOMER_REASONS = [
    "malformed_csv",
    "missing_customer_id",
    "missing_churned",
    "invalid_customer",
    "duplicate_customer_id",
]
EVENT_REASONS = ["malformed_json", "invalid_event", "outlier", "unknown_customer"]

# Each raw source: its job argument, the contract (dataset) it is read by, the format the job reads it as and
# the columns the job's rules use (the contract must declare them; their types come from the contract).
SOURCES = ["customers", "events"]
INPUT_ARGS = {"customers": "input_customers", "events": "input_events"}
SOURCE_DATASETS = {"customers": "raw_customers", "events": "raw_events"}
SOURCE_FORMATS = {"customers": "csv", "events": "jsonl"}
JOB_COLUMNS = {
    "customers": [
        "customer_id",
        "signup_date",
        "plan",
        "monthly_fee",
        "age",
        "region",
        "support_tickets",
        "churned",
    ],
    "events": ["event_id", "customer_id", "ts", "event_type", "amount", "duration_s"],
}
GLUE_TYPES = ["string", "boolean", "tinyint", "smallint", "int", "bigint", "float", "double"]
GLUE_TYPES += ["date", "timestamp"]
DECIMAL_TYPE = re.compile(r"^decimal\((\d{1,2}),(\d{1,2})\)$")
COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ISO_DATE = r"^\s*\d{4}-\d{2}-\d{2}\s*$"

# Pre-flight: how much of each file is checked, and what binary looks like.
SAMPLE_BYTES = 1 << 20
JSON_SAMPLE_LINES = 1000
MAX_NUL_SHARE = 0.01  # a stray NUL in a malformed line is quarantined; a NUL-ridden file is not text
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
BINARY_MAGICS = [
    (b"PK\x03\x04", "a zip archive"),
    (b"PAR1", "Parquet data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
]
SPARK_BLANK = "".join(chr(i) for i in range(33))  # what Spark trims before skipping a blank line
LINE_BREAK = re.compile(r"\r\n|\r|\n")

FEATURE_COLUMNS = [
    "customer_id",
    "plan",
    "region",
    "monthly_fee",
    "age",
    "support_tickets",
    "tenure_days",
    "n_events",
    "n_logins",
    "n_purchases",
    "total_amount",
    "avg_session_s",
    "churned",
]
IMPUTED_COLUMNS = ["age", "monthly_fee"]


def counts_struct(names: list[str]) -> T.StructType:
    return T.StructType([T.StructField(name, T.LongType()) for name in names])


def names_struct(names: list[str]) -> T.StructType:
    return T.StructType([T.StructField(name, T.ArrayType(T.StringType())) for name in names])


METRICS_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.StringType()),
        T.StructField("job_name", T.StringType()),
        T.StructField("customers_landed", T.LongType()),
        T.StructField("events_landed", T.LongType()),
        T.StructField("features_rows", T.LongType()),
        T.StructField("events_cleaned", T.LongType()),
        T.StructField("quarantined", T.LongType()),
        T.StructField("quarantined_by_source", counts_struct(SOURCES)),
        T.StructField("quarantined_by_reason", counts_struct(CUSTOMER_REASONS + EVENT_REASONS)),
        T.StructField("duplicates_dropped", T.LongType()),
        T.StructField("duplicates_by_source", counts_struct(SOURCES)),
        T.StructField("imputed", counts_struct(IMPUTED_COLUMNS)),
        T.StructField("imputed_total", T.LongType()),
        # Columns (CSV) / keys (JSON lines) found in the input but not in the contract, per source, in order
        # of first appearance; and their total (an Athena check can expect ``value == 0``).
        T.StructField("schema_drift", names_struct(SOURCES)),
        T.StructField("schema_drift_columns", T.LongType()),
        # The files read per source, relative to the source's input directory (empty ones included).
        T.StructField("input_files", names_struct(SOURCES)),
    ]
)


def local_resolved_options(argv: list[str], options: list[str]) -> dict[str, str]:
    """Same contract as ``awsglue.utils.getResolvedOptions``: pick ``--NAME value`` pairs, ignore the rest."""
    found: dict[str, str] = {}
    i = 1
    while i < len(argv):
        token = argv[i]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
            found[name] = value
        i += 1
    missing = [f"--{name}" for name in options if name not in found]
    if missing:
        raise SystemExit(f"missing required job argument(s): {' '.join(missing)}")
    return {name: found[name] for name in options}


try:  # on AWS Glue
    from awsglue.utils import getResolvedOptions
except ImportError:  # local Spark
    getResolvedOptions = local_resolved_options  # noqa: N816


def log(message: str) -> None:
    print(f"[churn_features] {message}", flush=True)


def start_glue_job(spark: SparkSession, args: dict[str, str]):
    """``Job.init`` when running on AWS Glue (bookmarks, metrics); ``None`` locally."""
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
    except ImportError:
        return None
    job = Job(GlueContext(spark.sparkContext))
    job.init(args["JOB_NAME"], args)
    return job


# --- Contracts (the --contracts argument) ----------------------------------------------------------------


class JobArgumentError(ValueError):
    """A job argument is invalid; the message is one line naming it."""


def is_glue_type(type_name: object) -> bool:
    if type_name in GLUE_TYPES:
        return True
    match = DECIMAL_TYPE.match(type_name) if isinstance(type_name, str) else None
    return bool(match) and 1 <= int(match[1]) <= 38 and int(match[2]) <= int(match[1])


def parse_contracts(text: str) -> dict[str, dict]:
    """The contract of each source from ``--contracts``, checked for what this job needs.

    Returns ``{source: {"dataset", "format", "allow_empty", "columns": [{"name", "type", "required",
    "nullable"}]}}``.
    """
    try:
        data = json.loads(text)
    except ValueError as error:
        raise JobArgumentError(f"--contracts is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise JobArgumentError("--contracts must be a JSON object {dataset: contract}")
    specs = {}
    for source, dataset in SOURCE_DATASETS.items():
        where = f"--contracts {dataset}"
        spec = data.get(dataset)
        if not isinstance(spec, dict):
            raise JobArgumentError(f"--contracts has no contract for dataset {dataset}")
        if spec.get("format") != SOURCE_FORMATS[source]:
            expected = SOURCE_FORMATS[source]
            raise JobArgumentError(f"{where}: format {spec.get('format')!r}, but this job reads {expected}")
        allow_empty = spec.get("allow_empty", False)
        columns = spec.get("columns")
        if not isinstance(allow_empty, bool) or not isinstance(columns, list) or not columns:
            raise JobArgumentError(f"{where}: needs allow_empty (true/false) and a non-empty columns list")
        parsed = []
        for i, column in enumerate(columns):
            ok = (
                isinstance(column, dict)
                and isinstance(column.get("name"), str)
                and COLUMN_NAME.match(column["name"])
                and is_glue_type(column.get("type"))
                and isinstance(column.get("required"), bool)
                and isinstance(column.get("nullable"), bool)
            )
            if not ok:
                raise JobArgumentError(f"{where}: columns[{i}] is not a valid column: {column!r}")
            parsed.append({key: column[key] for key in ("name", "type", "required", "nullable")})
        names = [column["name"] for column in parsed]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise JobArgumentError(f"{where}: column(s) declared twice: {', '.join(twice)}")
        lacking = [name for name in JOB_COLUMNS[source] if name not in names]
        if lacking:
            raise JobArgumentError(f"{where}: lacks column(s) this job uses: {', '.join(lacking)}")
        specs[source] = {
            "dataset": dataset,
            "format": spec["format"],
            "allow_empty": allow_empty,
            "columns": parsed,
        }
    return specs


def spark_ddl(columns: list[dict]) -> str:
    """A Spark DDL schema of ``columns`` (contract types) plus the corrupt-record column."""
    fields = [f"`{c['name']}` {c['type'].upper()}" for c in columns]
    return ", ".join([*fields, f"`{CORRUPT}` STRING"])


# --- Pre-flight: list and check every input file before anything is written ------------------------------


# Exit code of a run that rejected its input or arguments (sysexits' EX_DATAERR): the same input fails
# again, so the local runner does not retry it.
REJECTED_EXIT_CODE = 65


class InputRejected(Exception):
    """An input breaks its dataset's contract; the message is one line naming the file and the problem."""


class InputFile:
    """One input file as checked by the pre-flight (a plain class: the script may be loaded unregistered)."""

    def __init__(self, uri: str, name: str, size: int) -> None:
        self.uri = uri  # what Spark reads: a local path or an s3:// URI
        self.name = name  # relative to the input directory
        self.size = size
        self.empty = False  # no record (allowed by the contract, or it would have been rejected)
        self.header: list[str] | None = None  # CSV: column names in file order
        self.drift: list[str] = []  # columns / keys not in the contract

    def __repr__(self) -> str:
        return f"InputFile({self.uri!r}, empty={self.empty}, drift={self.drift})"


class SourceInput:
    """The checked input files of one source and its contract."""

    def __init__(self, source: str, uri: str, spec: dict, files: list[InputFile]) -> None:
        self.source, self.uri, self.spec, self.files = source, uri, spec, files

    @property
    def readable(self) -> list[InputFile]:
        return [f for f in self.files if not f.empty]

    @property
    def drift(self) -> list[str]:
        return list(dict.fromkeys(name for f in self.files for name in f.drift))


def is_hidden(relative: str) -> bool:
    """Hadoop's (and so Spark's) rule: a path part starting with ``.`` or ``_`` is not data."""
    return any(part.startswith((".", "_")) for part in relative.split("/"))


@functools.lru_cache(maxsize=1)
def s3_client():
    import boto3  # only for s3:// inputs (Glue has it; local runs pass local directories)

    return boto3.client("s3")


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def list_input_files(uri: str) -> list[InputFile]:
    """The data files of an input directory (recursively, sorted; hidden and ``_``-prefixed ones skipped)."""
    if uri.startswith("s3://"):
        bucket, key = split_s3(uri)
        prefix = key if not key or key.endswith("/") else key + "/"
        found = []
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix) :]
                if relative and not relative.endswith("/") and not is_hidden(relative):
                    found.append(InputFile(f"s3://{bucket}/{obj['Key']}", relative, int(obj["Size"])))
        return sorted(found, key=lambda f: f.name)
    root = Path(uri)
    if root.is_file():
        return [InputFile(str(root), root.name, root.stat().st_size)]
    if not root.is_dir():
        return []
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not is_hidden(relative):
            found.append(InputFile(str(path), relative, path.stat().st_size))
    return sorted(found, key=lambda f: f.name)


def read_head(f: InputFile) -> bytes:
    """The first ``SAMPLE_BYTES`` of a file, as stored (compressed or not)."""
    limit = SAMPLE_BYTES
    if f.size == 0:
        return b""
    if f.uri.startswith("s3://"):
        bucket, key = split_s3(f.uri)
        return s3_client().get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit - 1}")["Body"].read()
    with open(f.uri, "rb") as handle:
        return handle.read(limit)


def binary_kind(data: bytes) -> str | None:
    for magic, kind in BINARY_MAGICS:
        if data.startswith(magic):
            return kind
    if data.startswith(b"BZh") and data[4:10] == b"1AY&SY":
        return "bzip2-compressed data"
    return None


def decoded_sample(f: InputFile, head: bytes, reject) -> tuple[str, bool]:
    """The text at the start of ``f`` (gunzipped, BOM dropped) and whether it is the whole file."""
    complete = f.size <= len(head)
    data = head
    if f.name.endswith(".gz"):
        if head and not head.startswith(GZIP_MAGIC):
            raise reject("is named .gz but is not gzip-compressed (no gzip header)")
        if head:
            inflater = zlib.decompressobj(wbits=31)
            try:
                data = inflater.decompress(head, SAMPLE_BYTES)
            except zlib.error as error:
                raise reject(f"is not valid gzip data ({error})") from None
            if complete and not inflater.eof and not inflater.unconsumed_tail:
                raise reject("is a truncated gzip file")
            complete = complete and inflater.eof and not inflater.unused_data
    elif head.startswith(GZIP_MAGIC):
        raise reject(f"is gzip-compressed but not named .gz: rename it to {f.name.rsplit('/', 1)[-1]}.gz")
    kind = binary_kind(data)
    if kind:
        raise reject(f"holds {kind}, not UTF-8 text")
    bom = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data[bom:], final=complete)
    except UnicodeDecodeError as error:
        offset = bom + error.start
        byte = f"0x{data[offset]:02x}"
        raise reject(
            f"is not UTF-8 text (byte {byte} at offset {offset}): binary data or another encoding"
        ) from None
    nuls = text.count("\x00")
    if nuls > MAX_NUL_SHARE * len(text):
        raise reject(f"holds binary data ({nuls} NUL bytes in its first {len(data)} bytes)")
    return text, complete


def case_hint(name: str, found: list[str]) -> str:
    other = [candidate for candidate in found if candidate.lower() == name.lower()]
    return f"; names are case-sensitive: rename {other[0]!r} to {name!r}" if other else ""


def short_list(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_file(f: InputFile, spec: dict) -> None:
    """Check one input file against its contract (see the module doc); raise :class:`InputRejected`."""

    def reject(problem: str) -> InputRejected:
        return InputRejected(f"{spec['dataset']}: {f.uri}: {problem}")

    text, complete = decoded_sample(f, read_head(f), reject)
    lines = LINE_BREAK.split(text)
    if not complete:
        lines = lines[:-1]  # possibly cut
    records = [line for line in lines if line.strip(SPARK_BLANK)]
    names = [c["name"] for c in spec["columns"]]

    def empty(problem: str) -> None:
        if not spec["allow_empty"]:
            raise reject(f"{problem}: an empty {spec['dataset']} day is not allowed by its contract")
        f.empty = True

    if not records:
        if not complete:
            raise reject(f"holds no record in its first {SAMPLE_BYTES} bytes")
        if f.size == 0 or text:
            empty("is empty (0 bytes)" if f.size == 0 else "is empty (only whitespace)")
        else:
            empty("is empty (0 bytes once decompressed)")
        return
    if spec["format"] == "csv":
        try:
            header = [name.strip().lstrip("\ufeff").strip() for name in next(csv.reader([records[0]]))]
        except csv.Error as error:
            raise reject(f"has an unreadable CSV header row ({error})") from None
        f.header = header
        for name in names:
            if header.count(name) > 1:
                raise reject(f"has column {name!r} {header.count(name)} times in its header row")
        for column in spec["columns"]:
            if column["required"] and column["name"] not in header:
                raise reject(
                    f"lacks required column {column['name']!r} (header: {short_list(header)})"
                    + case_hint(column["name"], header)
                )
        f.drift = list(dict.fromkeys(name or f"_c{i}" for i, name in enumerate(header) if name not in names))
        if complete and len(records) == 1:
            empty("holds only the CSV header row, no record")
        return
    sample = records[:JSON_SAMPLE_LINES]
    keys: dict[str, None] = {}
    objects = 0
    for line in sample:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            objects += 1
            keys.update(dict.fromkeys(record))
    if not objects:
        raise reject(f"none of its first {len(sample)} lines is a JSON object: not JSON lines")
    for column in spec["columns"]:
        if column["required"] and column["name"] not in keys:
            raise reject(
                f"lacks required key {column['name']!r} (absent from all {objects} records sampled)"
                + case_hint(column["name"], list(keys))
            )
    f.drift = [key for key in keys if key not in names]


def preflight(args: dict[str, str], specs: dict[str, dict]) -> dict[str, SourceInput]:
    """List and check every input file of every source; the first problem raises :class:`InputRejected`."""
    inputs = {}
    for source in SOURCES:
        uri, spec = args[INPUT_ARGS[source]], specs[source]
        files = list_input_files(uri)
        if not files:
            raise InputRejected(
                f"{spec['dataset']}: {uri}: no input file (hidden and _-prefixed ones are ignored)"
            )
        for f in files:
            check_file(f, spec)
            if f.drift:
                log(f"WARNING schema drift: {spec['dataset']} {f.name}: not in the contract: {f.drift}")
        inputs[source] = SourceInput(source, uri, spec, files)
        empty = sum(f.empty for f in files)
        log(f"pre-flight: {spec['dataset']}: {len(files)} file(s) checked ({empty} empty)")
    return inputs


def prepare(args: dict[str, str]) -> dict[str, SourceInput]:
    """Check the arguments and every input file; nothing is read by Spark or written yet."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args["dt"]):
        raise JobArgumentError(f"--dt {args['dt']!r} is not a YYYY-MM-DD partition date")
    return preflight(args, parse_contracts(args["contracts"]))


# --- Reading by the contracts -----------------------------------------------------------------------------


def csv_field(column):
    """A CSV field as the csv module writes it: quoted when it holds a comma, quote or line break."""
    quoted = F.concat(F.lit('"'), F.regexp_replace(column, '"', '""'), F.lit('"'))
    return F.when(column.isNull(), F.lit("")).when(column.rlike('[,"\r\n]'), quoted).otherwise(column)


def quoted(name: str) -> str:
    """``name`` as a Spark SQL identifier (any characters)."""
    return "`" + name.replace("`", "``") + "`"


def spark_field_names(header: list[str]) -> list[str]:
    """Field names to read a CSV with ``header`` by: its own names (so Spark's header check agrees), or
    ``_c<position>`` where a name is blank, repeated or clashes (Spark resolves names case-insensitively)."""
    lowered = [name.lower() for name in header]
    names = [
        name if name and lowered.count(name.lower()) == 1 and name.lower() != CORRUPT.lower() else f"_c{i}"
        for i, name in enumerate(header)
    ]
    if len({name.lower() for name in names}) < len(names):
        names = [f"_c{i}" for i in range(len(header))]
    return names


def typed_text(field_name: str | None, type_name: str):
    """Text field ``field_name`` cast to ``type_name``: (value, non-empty but not castable)."""
    if field_name is None:
        return F.lit(None).cast(type_name), F.lit(False)
    text = F.col(quoted(field_name))
    if type_name == "string":
        return text, F.lit(False)
    value = F.expr(f"try_cast({quoted(field_name)} AS {type_name})")
    if type_name == "date":  # the contract's date is yyyy-MM-dd (what Spark's CSV reader parsed before)
        value = F.when(text.rlike(ISO_DATE), value)
    return value, text.isNotNull() & value.isNull()


def read_csv_files(spark: SparkSession, header: list[str], uris: list[str], columns: list[dict]) -> DataFrame:
    """CSV files sharing ``header``: read as strings by position, then the contract's columns by name."""
    fields = spark_field_names(header)
    schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in fields] + [T.StructField(CORRUPT, T.StringType())]
    )
    raw = (
        spark.read.schema(schema)
        .option("header", "true")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("encoding", "UTF-8")
        .csv(uris)
    )
    field_of = dict(zip(header, fields, strict=True))  # contract names are unique in the header (pre-flight)
    values, bad = [], F.lit(False)
    for column in columns:
        value, not_castable = typed_text(field_of.get(column["name"]), column["type"])
        values.append(value.alias(column["name"]))
        bad = bad | not_castable
    line = F.concat_ws(",", *[csv_field(F.col(quoted(name))) for name in fields])
    corrupt = F.coalesce(F.col(CORRUPT), F.when(bad, line))
    return raw.select(*values, corrupt.alias(CORRUPT))


def read_source(spark: SparkSession, source: SourceInput) -> DataFrame:
    """A source's non-empty files as one DataFrame: the contract's columns (typed) + the corrupt record."""
    columns = source.spec["columns"]
    files = source.readable
    if not files:
        return spark.createDataFrame([], spark_ddl(columns))
    if source.spec["format"] == "jsonl":
        return (
            spark.read.schema(spark_ddl(columns))
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .json([f.uri for f in files])
        )
    by_header: dict[tuple[str, ...], list[str]] = {}
    for f in files:
        by_header.setdefault(tuple(f.header or ()), []).append(f.uri)
    frames = [read_csv_files(spark, list(header), uris, columns) for header, uris in by_header.items()]
    return functools.reduce(DataFrame.unionByName, frames)


# --- Cleaning -----------------------------------------------------------------------------------------------


def any_null(columns: list[str]):
    """True where any of ``columns`` is null (False when there is none)."""
    return functools.reduce(lambda a, b: a | b, [F.col(c).isNull() for c in columns], F.lit(False))


def first_reason(rules: list[tuple[str, object]]):
    """A column holding the first reason whose condition holds, else null."""
    expr = F.lit(None).cast("string")
    for reason, condition in reversed(rules):
        expr = F.when(condition, F.lit(reason)).otherwise(expr)
    return expr


def quarantine_rows(df: DataFrame, source: str, record) -> DataFrame:
    return df.select(F.lit(source).alias("source"), F.col("reason"), record.alias("record"))


def csv_record(columns: list[str]):
    """The raw CSV line when Spark kept it, else the row re-joined as CSV (empty for nulls)."""
    joined = F.concat_ws(",", *[F.coalesce(F.col(c).cast("string"), F.lit("")) for c in columns])
    return F.coalesce(F.col(CORRUPT), joined)


def json_record(columns: list[str]):
    return F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(c) for c in columns])))


def non_nullable(spec: dict) -> list[str]:
    return [c["name"] for c in spec["columns"] if not c["nullable"]]


def collapse(raw: DataFrame, spec: dict) -> DataFrame:
    """``raw`` with identical records as one row and their number of ``copies``, partitioned by customer.

    One aggregation drops the exact duplicates of parsed records and keeps what is needed to count what
    landed; a malformed record is kept by its text (see :func:`malformed_rows`). Its one shuffle is by
    ``customer_id``, so the joins and aggregations by customer that follow need no other.
    """
    columns = [c["name"] for c in spec["columns"]]
    by_customer = raw.repartition("customer_id")
    return by_customer.groupBy(*columns, CORRUPT).agg(F.count(F.lit(1)).alias("copies"))


def landed_counts(records: DataFrame) -> tuple[int, int]:
    """(records landed, exact duplicates of parsed records) of :func:`collapse`'d ``records``."""
    parsed = F.col(CORRUPT).isNull()
    row = records.agg(
        F.sum("copies").alias("landed"), F.sum(F.when(parsed, F.col("copies") - 1)).alias("duplicates")
    ).first()
    return int(row["landed"] or 0), int(row["duplicates"] or 0)


def malformed_rows(records: DataFrame) -> DataFrame:
    """The malformed records of :func:`collapse`'d ``records``, one row per copy landed."""
    copies = F.array_repeat(F.lit(1), F.col("copies").cast("int"))
    return records.filter(F.col(CORRUPT).isNotNull()).withColumn("copies", F.explode(copies))


def clean_customers(records: DataFrame, dt: str, spec: dict) -> tuple[DataFrame, DataFrame]:
    """Valid customers and their quarantine rows, from :func:`collapse`'d records (duplicates dropped).

    A null in a column the contract declares ``nullable: false`` is quarantined: ``missing_customer_id`` /
    ``missing_churned`` (always checked: the job's key and label), else ``invalid_customer``.
    """
    columns = [c["name"] for c in spec["columns"]]
    deduped = records.filter(F.col(CORRUPT).isNull()).select(*columns)
    reason = first_reason(
        [
            ("missing_customer_id", F.col("customer_id").isNull() | (F.trim("customer_id") == "")),
            ("missing_churned", F.col("churned").isNull()),
            (
                "invalid_customer",
                ~F.col("churned").isin(0, 1)
                | ~F.coalesce(F.col("plan").isin(PLANS), F.lit(False))
                | ~F.coalesce(F.col("region").isin(REGIONS), F.lit(False))
                | F.col("signup_date").isNull()
                | (F.col("signup_date") > F.lit(dt).cast("date"))
                | F.col("support_tickets").isNull()
                | (F.col("support_tickets") < 0)
                | (F.col("age") < 0)
                | (F.col("monthly_fee") < 0)
                | any_null(non_nullable(spec)),
            ),
        ]
    )
    # Rows left valid that share their customer_id are all quarantined: counted over the id's rows (the
    # records are partitioned by customer_id, so this needs no shuffle).
    same_id = F.count(F.when(F.col("reason").isNull(), 1)).over(Window.partitionBy("customer_id"))
    classified = deduped.withColumn("reason", reason).withColumn(
        "reason", F.coalesce("reason", F.when(same_id > 1, F.lit("duplicate_customer_id")))
    )
    valid = classified.filter(F.col("reason").isNull()).drop("reason")
    bad = classified.filter(F.col("reason").isNotNull())
    quarantine = quarantine_rows(
        malformed_rows(records).withColumn("reason", F.lit("malformed_csv")),
        "customers",
        csv_record(columns),
    ).unionByName(
        quarantine_rows(bad.withColumn(CORRUPT, F.lit(None).cast("string")), "customers", csv_record(columns))
    )
    return valid, quarantine


def impute_customers(valid: DataFrame) -> tuple[DataFrame, dict[str, int]]:
    """Fill missing age with the median age and missing monthly_fee with its plan's median fee (the overall
    median fee for a plan without one)."""
    rows = (
        valid.rollup("plan")  # one row per plan and the overall row (none at all when there is no customer)
        .agg(
            F.grouping("plan").alias("overall"),
            F.expr("percentile(age, 0.5)").alias("median_age"),
            F.expr("percentile(monthly_fee, 0.5)").alias("median_fee"),
            F.count(F.when(F.col("age").isNull(), 1)).alias("missing_age"),
            F.count(F.when(F.col("monthly_fee").isNull(), 1)).alias("missing_fee"),
        )
        .collect()
    )
    stats = next((row.asDict() for row in rows if row["overall"]), {})
    median_age = stats.get("median_age") if stats.get("median_age") is not None else 0.0
    median_fee = stats.get("median_fee") if stats.get("median_fee") is not None else 0.0
    plan_fee = F.lit(None).cast("double")
    for row in rows:
        if not row["overall"] and row["median_fee"] is not None:
            plan_fee = F.when(F.col("plan") == row["plan"], F.lit(float(row["median_fee"]))).otherwise(
                plan_fee
            )
    imputed = valid.withColumn("age", F.coalesce(F.col("age"), F.lit(float(median_age)))).withColumn(
        "monthly_fee", F.coalesce(F.col("monthly_fee"), plan_fee, F.lit(float(median_fee)))
    )
    missing = {"age": int(stats.get("missing_age", 0)), "monthly_fee": int(stats.get("missing_fee", 0))}
    return imputed, missing


def classify_events(records: DataFrame, customers: DataFrame, spec: dict) -> DataFrame:
    """:func:`collapse`'d event records with ``ts_parsed`` and ``reason``: null for a valid event, else why
    it is quarantined (``malformed_json``, ``invalid_event``, ``outlier``, ``unknown_customer``).

    A null in a column the contract declares ``nullable: false`` is an ``invalid_event``.
    """
    # One row per known customer (clean_customers quarantines repeated ids), so the left join keeps every
    # record once; the day's customers are few next to its events: broadcast them.
    known = customers.select("customer_id", F.lit(True).alias("known_customer"))
    reason = first_reason(
        [
            ("malformed_json", F.col(CORRUPT).isNotNull()),
            (
                "invalid_event",
                F.col("event_id").isNull()
                | F.col("customer_id").isNull()
                | F.col("ts_parsed").isNull()
                | ~F.coalesce(F.col("event_type").isin(EVENT_TYPES), F.lit(False))
                | F.col("amount").isNull()
                | F.col("duration_s").isNull()
                | any_null(non_nullable(spec)),
            ),
            (
                "outlier",
                (F.col("amount") < 0)
                | (F.col("amount") > MAX_AMOUNT)
                | (F.col("duration_s") < 0)
                | (F.col("duration_s") > MAX_DURATION_S),
            ),
            ("unknown_customer", F.col("known_customer").isNull()),
        ]
    )
    return (
        records.withColumn("ts_parsed", F.to_timestamp("ts"))
        .join(F.broadcast(known), "customer_id", "left")
        .withColumn("reason", reason)
        .drop("known_customer")
    )


def valid_events(classified: DataFrame) -> DataFrame:
    """The valid events of :func:`classify_events`, in the processed events' schema."""
    return classified.filter(F.col("reason").isNull()).select(
        "event_id",
        "customer_id",
        F.col("ts_parsed").alias("ts"),
        "event_type",
        "amount",
        "duration_s",
    )


def events_quarantine(classified: DataFrame, spec: dict) -> DataFrame:
    """The quarantine rows of :func:`classify_events`: one per malformed line landed, one per bad event."""
    columns = [c["name"] for c in spec["columns"]]
    bad = classified.filter(F.col("reason").isNotNull())
    malformed = malformed_rows(bad)
    parsed = bad.filter(F.col(CORRUPT).isNull())
    return quarantine_rows(malformed, "events", json_record(columns)).unionByName(
        quarantine_rows(parsed, "events", json_record(columns))
    )


def build_features(customers: DataFrame, events: DataFrame, dt: str) -> DataFrame:
    """One row per customer in the curated schema; customers without events get zeros."""
    per_customer = events.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("n_events"),
        F.count(F.when(F.col("event_type") == "login", 1)).alias("n_logins"),
        F.count(F.when(F.col("event_type") == "purchase", 1)).alias("n_purchases"),
        F.round(F.sum("amount"), 2).alias("total_amount"),
        F.round(F.avg("duration_s"), 3).alias("avg_session_s"),
    )
    joined = customers.join(per_customer, "customer_id", "left")
    return joined.select(
        F.col("customer_id").cast("string"),
        F.col("plan").cast("string"),
        F.col("region").cast("string"),
        F.col("monthly_fee").cast("double"),
        F.col("age").cast("double"),
        F.col("support_tickets").cast("int"),
        F.datediff(F.lit(dt).cast("date"), F.col("signup_date")).cast("int").alias("tenure_days"),
        F.coalesce(F.col("n_events"), F.lit(0)).cast("bigint").alias("n_events"),
        F.coalesce(F.col("n_logins"), F.lit(0)).cast("bigint").alias("n_logins"),
        F.coalesce(F.col("n_purchases"), F.lit(0)).cast("bigint").alias("n_purchases"),
        F.coalesce(F.col("total_amount"), F.lit(0.0)).cast("double").alias("total_amount"),
        F.coalesce(F.col("avg_session_s"), F.lit(0.0)).cast("double").alias("avg_session_s"),
        F.col("churned").cast("int"),
    )


def write_parquet(df: DataFrame, path: str, keys: list[str], rows: int) -> None:
    """Overwrite ``path`` with ``df`` sorted by ``keys`` in a few files."""
    files = max(1, math.ceil(rows / ROWS_PER_FILE))
    df.repartition(files, *keys).sortWithinPartitions(*keys).write.mode("overwrite").parquet(path)


def counts_by(rows: list, column: str, names: list[str]) -> dict[str, int]:
    """The ``n`` of ``rows`` summed per value of ``column``, with a zero for each name that does not occur."""
    found: dict[str, int] = {}
    for row in rows:
        found[row[column]] = found.get(row[column], 0) + int(row["n"])
    unexpected = sorted(set(found) - set(names))
    if unexpected:
        raise RuntimeError(f"unexpected {column} value(s) {unexpected}: add them to the metrics schema")
    return {name: found.get(name, 0) for name in names}


def metrics_frame(spark: SparkSession, metrics: dict) -> DataFrame:
    """``metrics`` as a one-row DataFrame of ``METRICS_SCHEMA``, parsed in the JVM (no Python worker)."""
    parsed = F.from_json(F.lit(json.dumps(metrics)), METRICS_SCHEMA, {"mode": "FAILFAST"})
    return spark.range(1, numPartitions=1).select(parsed.alias("metrics")).select("metrics.*")


def run(spark: SparkSession, args: dict[str, str], inputs: dict[str, SourceInput] | None = None) -> dict:
    """The job on ``spark``; ``inputs`` from :func:`prepare` (run here when not given)."""
    if inputs is None:
        inputs = prepare(args)
    dt = args["dt"]
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")

    customer_spec, event_spec = inputs["customers"].spec, inputs["events"].spec
    customer_records = collapse(read_source(spark, inputs["customers"]), customer_spec).cache()
    customers_landed, customer_dups = landed_counts(customer_records)
    valid_customers, customer_quarantine = clean_customers(customer_records, dt, customer_spec)
    customers, imputed = impute_customers(valid_customers)
    customers = customers.cache()
    event_records = collapse(read_source(spark, inputs["events"]), event_spec)
    classified_events = classify_events(event_records, customers, event_spec).cache()
    events_landed, event_dups = landed_counts(classified_events)
    log(f"dt={dt}: {customers_landed} customer rows, {events_landed} event lines landed")
    for source, landed in (("customers", customers_landed), ("events", events_landed)):
        spec = inputs[source].spec
        if landed == 0 and not spec["allow_empty"]:
            files = len(inputs[source].files)
            raise InputRejected(
                f"{spec['dataset']}: {inputs[source].uri}: no record in its {files} file(s): "
                f"an empty {spec['dataset']} day is not allowed by its contract"
            )

    events = valid_events(classified_events)
    quarantine = customer_quarantine.unionByName(events_quarantine(classified_events, event_spec)).cache()
    features = build_features(customers, events, dt).cache()

    features_rows, events_cleaned = features.count(), events.count()
    quarantine_counts = quarantine.groupBy("source", "reason").agg(F.count(F.lit(1)).alias("n")).collect()
    quarantined = sum(int(row["n"]) for row in quarantine_counts)
    write_parquet(features, args["output_features"], ["customer_id"], features_rows)
    write_parquet(events, args["output_processed_events"], ["customer_id", "ts", "event_id"], events_cleaned)
    write_parquet(quarantine, args["output_quarantine"], ["source", "reason", "record"], quarantined)

    drift = {source: inputs[source].drift for source in SOURCES}
    metrics = {
        "dt": dt,
        "job_name": args["JOB_NAME"],
        "customers_landed": customers_landed,
        "events_landed": events_landed,
        "features_rows": features_rows,
        "events_cleaned": events_cleaned,
        "quarantined": quarantined,
        "quarantined_by_source": counts_by(quarantine_counts, "source", SOURCES),
        "quarantined_by_reason": counts_by(quarantine_counts, "reason", CUSTOMER_REASONS + EVENT_REASONS),
        "duplicates_dropped": customer_dups + event_dups,
        "duplicates_by_source": {"customers": customer_dups, "events": event_dups},
        "imputed": imputed,
        "imputed_total": sum(imputed.values()),
        "schema_drift": drift,
        "schema_drift_columns": sum(len(names) for names in drift.values()),
        "input_files": {source: [f.name for f in inputs[source].files] for source in SOURCES},
    }
    metrics_frame(spark, metrics).coalesce(1).write.mode("overwrite").json(args["output_metrics"])
    log(
        f"features={features_rows} events={events_cleaned} quarantined={quarantined} "
        f"duplicates={metrics['duplicates_dropped']} imputed={imputed} schema_drift={drift}"
    )
    spark.catalog.clearCache()
    return metrics


def reject(error: Exception) -> None:
    """Print the one-line reason last and exit with :data:`REJECTED_EXIT_CODE` (a retry cannot help)."""
    print(str(error), file=sys.stderr, flush=True)
    raise SystemExit(REJECTED_EXIT_CODE)


def main(argv: list[str]) -> None:
    """Run the job; a rejected input or argument exits with ``REJECTED_EXIT_CODE``, its message last."""
    args = getResolvedOptions(argv, JOB_ARGS)
    try:
        inputs = prepare(args)  # before Spark starts: a bad input fails fast, nothing written
    except (InputRejected, JobArgumentError) as error:
        reject(error)
    spark = SparkSession.builder.getOrCreate()
    job = start_glue_job(spark, args)
    try:
        run(spark, args, inputs)
    except InputRejected as error:
        spark.stop()  # nothing of Spark's may print after the message
        reject(error)
    if job is not None:
        job.commit()


if __name__ == "__main__":
    main(sys.argv)
