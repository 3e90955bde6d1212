"""Batch inference as requests and plain functions: score a published ``churn_features`` partition with
the model production serves, through a SageMaker batch transform job.

- **Which model** (:func:`sagelake.ml.serving.serving_model`): the SageMaker Model the production
  endpoint serves (endpoint →
  config → first variant → model). Its batch scores are then the answers the endpoint gives for the same
  rows, and a transform job takes that ``ModelName`` as it is (no model to create).
- **Input** (:func:`prepare_transform_input`): the partition's rows, in the protocol the model speaks —
  script mode: JSON lines, each line one ``{"instances": [...]}`` request of up to
  :data:`INSTANCES_PER_LINE` customers (``SplitType=Line``, ``BatchStrategy=SingleRecord``: a line is a
  request the inference code's ``input_fn`` reads as one JSON document); built-in XGBoost: headerless CSV
  of the training channels' encoding (:func:`sagelake.ml.training_data.serving_csv`; ``MultiRecord``
  mini-batches). The customer ids go beside the input, in the same order (the model never sees them).
- **Request** (:func:`transform_request`): CreateTransformJob with ``AssembleWith=Line``; SageMaker writes
  ``<S3OutputPath>/<input key below the prefix>.out`` (:func:`output_object_uri`).
- **Scores** (:func:`parse_scores`, :func:`scores_frame`): the outputs joined with the ids by position,
  written to ``curated/churn_scores/dt=<dt>/version=<v>/part-0.parquet`` and published as partition ``dt``
  of the ``churn_scores`` table (:func:`publish_scores`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake.catalog import PARTITION_KEYS, glue_columns, parquet_storage, table_root
from sagelake.lake.layout import Lake, check_dt, split_s3_uri
from sagelake.lake.objects import put_only
from sagelake.lake.publish import publish, version_location
from sagelake.ml.training_data import KEY, LABEL, serving_csv

SCORES_TABLE = "churn_scores"
SCORES_COLUMNS: list[tuple[str, str]] = [
    ("customer_id", "string"),
    ("churn_probability", "double"),
    ("model_package_arn", "string"),
    ("model_url", "string"),
    ("transform_job", "string"),
    ("scored_at", "string"),
]
SCORES_FILE = "part-0.parquet"
JSON = "application/json"
CSV = "text/csv"
INSTANCES_PER_LINE = 500
MAX_PAYLOAD_MB = 6
INPUT_FILES = {JSON: "part-0.jsonl", CSV: "part-0.csv"}
IDS_FILE = "customer_ids.json"
OUTPUT_SUFFIX = ".out"
NOT_FEATURES = (KEY, LABEL, "dt")


class BatchScoringError(ValueError):
    """Scores cannot be produced or joined (no serving model, outputs that do not match the input)."""


def batch_prefix(bucket: str, dt: str, run: str) -> str:
    """One run's transform input, ids and outputs: ``s3://<bucket>/batch/churn_scores/dt=<dt>/run=<run>/``
    (scratch, like ``training/``)."""
    return Lake(bucket).uri(f"batch/{SCORES_TABLE}/dt={check_dt(dt)}/run={run}/")


def scores_partition(bucket: str, dt: str) -> str:
    """Partition ``dt`` of the scores: ``s3://<bucket>/curated/churn_scores/dt=<dt>/``."""
    return Lake(bucket).uri(f"curated/{SCORES_TABLE}/dt={check_dt(dt)}/")


def transform_payload(
    frame: pd.DataFrame, *, builtin_xgboost: bool, instances_per_line: int = INSTANCES_PER_LINE
) -> tuple[bytes, str]:
    """``(file body, content type)`` of the rows for the model: CSV for built-in XGBoost, else JSON lines
    of ``{"instances": [...]}`` (feature columns only, in the rows' order)."""
    if frame.empty:
        raise BatchScoringError("the partition has no rows to score")
    if builtin_xgboost:
        return serving_csv(frame), CSV
    if instances_per_line < 1:
        raise ValueError(f"instances_per_line={instances_per_line}: it must be at least 1")
    features = frame.drop(columns=[c for c in NOT_FEATURES if c in frame.columns])
    records = [
        {
            name: None if isinstance(value, float) and math.isnan(value) else value
            for name, value in row.items()
        }
        for row in features.to_dict(orient="records")  # native Python values: floats keep every digit
    ]
    lines = [
        json.dumps({"instances": records[start : start + instances_per_line]}, separators=(",", ":"))
        for start in range(0, len(records), instances_per_line)
    ]
    return ("\n".join(lines) + "\n").encode(), JSON


def prepare_transform_input(
    s3: Any, frame: pd.DataFrame, prefix_uri: str, *, builtin_xgboost: bool
) -> dict[str, Any]:
    """Write the transform input (``input/part-0.jsonl`` or ``.csv``) and the customer ids in the same order
    (``customers/customer_ids.json``) under ``prefix_uri``; idempotent. Returns their URIs for the request.
    """
    if KEY not in frame.columns:
        raise BatchScoringError(f"the rows lack {KEY!r}: expected the churn_features columns")
    body, content_type = transform_payload(frame, builtin_xgboost=builtin_xgboost)
    root = prefix_uri.rstrip("/")
    ids = [str(v) for v in frame[KEY]]
    input_file = put_only(s3, f"{root}/input/", INPUT_FILES[content_type], body, content_type)
    ids_uri = put_only(s3, f"{root}/customers/", IDS_FILE, json.dumps(ids).encode(), JSON)
    return {
        "prefix": f"{root}/",
        "input_uri": f"{root}/input/",
        "input_file": input_file,
        "ids_uri": ids_uri,
        "output_uri": f"{root}/output/",
        "content_type": content_type,
        "rows": len(ids),
    }


def transform_request(
    *,
    job_name: str,
    model_name: str,
    input_uri: str,
    output_uri: str,
    content_type: str,
    instance_type: str,
    max_payload_mb: int = MAX_PAYLOAD_MB,
    max_concurrent: int = 1,
) -> dict[str, Any]:
    """A CreateTransformJob request scoring every object under ``input_uri`` with ``model_name``.

    ``content_type`` chooses the protocol: ``text/csv`` (built-in XGBoost) sends ``MultiRecord`` mini-batches
    of lines; ``application/json`` sends each line (one ``{"instances": [...]}`` document) alone. Outputs go
    to ``output_uri`` as ``<input file>.out``, one line per request (``AssembleWith=Line``).
    """
    if content_type not in INPUT_FILES:
        raise ValueError(f"content_type {content_type!r} is not one of {sorted(INPUT_FILES)}")
    for name, uri in (("input_uri", input_uri), ("output_uri", output_uri)):
        split_s3_uri(uri)
        if not uri.endswith("/"):
            raise ValueError(f"{name} {uri!r} must be a prefix ending with '/'")
    return {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxConcurrentTransforms": max_concurrent,
        "MaxPayloadInMB": max_payload_mb,
        "BatchStrategy": "MultiRecord" if content_type == CSV else "SingleRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": output_uri.rstrip("/"),
            "Accept": content_type,
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": 1},
    }


def output_object_uri(input_prefix: str, input_object: str, output_path: str) -> str:
    """Where a transform job writes the output of ``input_object``: ``<output_path>/<its key below the
    prefix's last '/'>.out`` (SageMaker's naming)."""
    bucket, prefix = split_s3_uri(input_prefix)
    object_bucket, key = split_s3_uri(input_object)
    base = prefix[: prefix.rfind("/") + 1]
    if object_bucket != bucket or not key.startswith(prefix):
        raise ValueError(f"{input_object} is not under {input_prefix}")
    return f"{output_path.rstrip('/')}/{key[len(base) :]}{OUTPUT_SUFFIX}"


def parse_scores(body: bytes, content_type: str) -> list[float]:
    """Probabilities from a ``.out`` file, in input order: JSON lines of ``{"predictions": [...]}`` or one
    number per line (CSV)."""
    lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
    if content_type == CSV:
        try:
            return [float(value) for line in lines for value in line.split(",") if value.strip()]
        except ValueError as error:
            raise BatchScoringError(f"transform output is not one score per line: {error}") from None
    scores = []
    for number, line in enumerate(lines, 1):
        try:
            predictions = json.loads(line)["predictions"]
            scores.extend(float(p["churn_probability"]) for p in predictions)
        except (ValueError, KeyError, TypeError) as error:
            raise BatchScoringError(f"output line {number} is not a predictions object: {error}") from None
    return scores


def scores_frame(
    ids: list[str],
    scores: list[float],
    *,
    model_package_arn: str,
    model_url: str,
    transform_job: str,
    scored_at: str,
) -> pd.DataFrame:
    """One row per customer: id, probability and the model's lineage. The outputs must match the ids."""
    if len(ids) != len(scores):
        raise BatchScoringError(f"{len(scores)} scores for {len(ids)} customers: the outputs do not match")
    bad = [s for s in scores if not 0.0 <= s <= 1.0]
    if bad:
        raise BatchScoringError(f"{len(bad)} score(s) are not probabilities, e.g. {bad[0]!r}")
    frame = pd.DataFrame({"customer_id": pd.Series(ids, dtype="string")})
    frame["churn_probability"] = pd.Series(scores, dtype="float64")
    for column, value in (
        ("model_package_arn", model_package_arn),
        ("model_url", model_url),
        ("transform_job", transform_job),
        ("scored_at", scored_at),
    ):
        frame[column] = pd.Series([value] * len(ids), dtype="string")
    return frame[[name for name, _ in SCORES_COLUMNS]]


def read_object(s3: Any, uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def read_scores(
    s3: Any, prepared: dict[str, Any], transform: dict[str, Any]
) -> tuple[list[str], list[float]]:
    """``(customer ids, scores)`` of a finished transform job (``DescribeTransformJob``) over
    :func:`prepare_transform_input`'s input."""
    output = output_object_uri(
        transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"],
        prepared["input_file"],
        transform["TransformOutput"]["S3OutputPath"],
    )
    try:
        body = read_object(s3, output)
    except ClientError as error:
        if has_code(error, "NoSuchKey", "404"):
            job = transform["TransformJobName"]
            raise BatchScoringError(f"transform job {job} wrote no {output}") from None
        raise
    ids = json.loads(read_object(s3, prepared["ids_uri"]))
    return ids, parse_scores(body, prepared["content_type"])


def scores_table_input(lake: Lake) -> dict[str, Any]:
    """Glue ``TableInput`` of ``churn_scores`` (Parquet, partitioned by ``dt``)."""
    return {
        "Name": SCORES_TABLE,
        "Description": "Churn probability per customer per day, from the model production serves (batch).",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet"},
        "PartitionKeys": [dict(key) for key in PARTITION_KEYS],
        "StorageDescriptor": parquet_storage(
            glue_columns(SCORES_COLUMNS), table_root(scores_partition(lake.bucket, "2000-01-01"))
        ),
    }


def ensure_scores_table(glue: Any, database: str, lake: Lake) -> None:
    """Create ``database.churn_scores``, or update it to the current definition (idempotent)."""
    table = scores_table_input(lake)
    try:
        glue.create_table(DatabaseName=database, TableInput=table)
    except ClientError as error:
        if not has_code(error, "AlreadyExistsException"):
            raise
        glue.update_table(DatabaseName=database, TableInput=table)


def scores_fingerprint(features_location: str, model_url: str) -> str:
    """What the scores were made from: the published features version and the model artefact."""
    return hashlib.sha256(f"{features_location}\0{model_url}".encode()).hexdigest()


def publish_scores(
    s3: Any,
    glue: Any,
    database: str,
    lake: Lake,
    dt: str,
    frame: pd.DataFrame,
    *,
    version: str,
    run_id: str,
    fingerprint: str,
) -> str:
    """Write ``curated/churn_scores/dt=<dt>/version=<version>/part-0.parquet`` and switch partition ``dt``
    of ``churn_scores`` to it (one ``UpdatePartition``); returns the published location."""
    location = version_location(scores_partition(lake.bucket, dt), version)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    bucket, prefix = split_s3_uri(location)
    s3.put_object(Bucket=bucket, Key=prefix + SCORES_FILE, Body=buffer.getvalue())
    ensure_scores_table(glue, database, lake)
    published = publish(
        glue, database, {SCORES_TABLE: location}, dt, version=version, fingerprint=fingerprint, run_id=run_id
    )
    return published[SCORES_TABLE]
