"""Write–audit–publish of one partition: versioned locations, audited through staged tables, published
atomically by switching the catalog partition's location.

- Every run writes its outputs under ``<table root>/dt=<dt>/version=<version>/``, a location nobody reads.
- For the audit, the staged version is registered as partition ``dt`` of ``<table>_staged``; the quality
  checks query those tables.
- Publishing updates partition ``dt`` of the readers' table to the staged location, with the version, the
  input fingerprint and the run as partition parameters: readers (Athena, the training DAG) follow the
  catalog, so they see the old version or the new one, never a mixture.
- Cleaning up deletes the partition's other version folders, never the one the catalog publishes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake.catalog import register_partition, staged_table, table_root
from sagelake.lake.layout import check_dt, split_s3_uri
from sagelake.ml.naming import run_suffix

PARAM_VERSION = "sagelake_version"
PARAM_FINGERPRINT = "sagelake_input_fingerprint"
PARAM_RUN_ID = "sagelake_run_id"


class NotPublishedError(LookupError):
    """A partition has no published version yet."""


@dataclass(frozen=True)
class Published:
    """Partition ``dt`` of a table as readers see it."""

    location: str
    version: str | None
    fingerprint: str | None


def new_version(run_id: str, now: datetime) -> str:
    """A version id unique per attempt and sortable by time: ``20261127T131500123456Z-<runhash>``."""
    return f"{now:%Y%m%dT%H%M%S%fZ}-{run_suffix(run_id)}"


def version_location(partition_uri: str, version: str) -> str:
    """``s3://b/curated/x/dt=D/`` + version → ``s3://b/curated/x/dt=D/version=<version>/``."""
    table_root(partition_uri)  # validates the dt= partition location
    if not version or "/" in version:
        raise ValueError(f"version {version!r} must be a non-empty name without '/'")
    return partition_uri.rstrip("/") + f"/version={version}/"


def input_fingerprint(s3: Any, prefixes: Iterable[str], code: Iterable[bytes]) -> str:
    """sha256 of every object under ``prefixes`` (key, size, ETag) and of the code that processes them.

    The same raw objects processed by the same code give the same fingerprint; a re-upload (new ETag),
    a new or removed file, or a changed script or contract gives another.
    """
    digest = hashlib.sha256()
    for prefix in sorted(prefixes):
        bucket, key_prefix = split_s3_uri(prefix)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        objects = sorted((o["Key"], o["Size"], o["ETag"]) for page in pages for o in page.get("Contents", []))
        for key, size, etag in objects:
            digest.update(f"{bucket}/{key}\0{size}\0{etag}\n".encode())
    for blob in code:
        digest.update(hashlib.sha256(blob).digest())
    return digest.hexdigest()


def published(glue: Any, database: str, table: str, dt: str) -> Published | None:
    """Partition ``dt`` of ``database.table`` as published, or None if it has none."""
    try:
        partition = glue.get_partition(DatabaseName=database, TableName=table, PartitionValues=[check_dt(dt)])
    except ClientError as error:
        if has_code(error, "EntityNotFoundException"):
            return None
        raise
    params = partition["Partition"].get("Parameters") or {}
    return Published(
        location=partition["Partition"]["StorageDescriptor"]["Location"],
        version=params.get(PARAM_VERSION),
        fingerprint=params.get(PARAM_FINGERPRINT),
    )


def published_partitions(glue: Any, database: str, table: str) -> dict[str, str]:
    """dt → location of every published partition of ``database.table`` (what readers see), by dt."""
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    found = {
        check_dt(partition["Values"][0]): partition["StorageDescriptor"]["Location"]
        for page in pages
        for partition in page.get("Partitions", [])
    }
    return dict(sorted(found.items()))


def published_location(glue: Any, database: str, table: str, dt: str) -> str:
    """Where readers find partition ``dt`` of ``table``; :class:`NotPublishedError` if nowhere yet."""
    found = published(glue, database, table, dt)
    if found is None:
        raise NotPublishedError(
            f"partition dt={dt} of {database}.{table} is not published: run churn_prepare for that day first"
        )
    return found.location


def stage(glue: Any, database: str, locations: Mapping[str, str], dt: str) -> dict[str, str]:
    """Register each table's staged location as partition ``dt`` of its ``_staged`` table, for the audit."""
    return {
        staged_table(table): register_partition(glue, database, staged_table(table), dt, location=location)
        for table, location in locations.items()
    }


def publish(
    glue: Any,
    database: str,
    locations: Mapping[str, str],
    dt: str,
    *,
    version: str,
    fingerprint: str,
    run_id: str,
) -> dict[str, str]:
    """Switch partition ``dt`` of each table to its audited location, in the order given (put the table
    readers wait for last). Each switch is one ``UpdatePartition``: atomic for that table's readers."""
    parameters = {PARAM_VERSION: version, PARAM_FINGERPRINT: fingerprint, PARAM_RUN_ID: run_id[:1024]}
    return {
        table: register_partition(glue, database, table, dt, location=location, parameters=parameters)
        for table, location in locations.items()
    }


def version_folders(s3: Any, partition_uri: str) -> list[str]:
    """The ``version=…/`` folders under a partition location, as URIs."""
    bucket, prefix = split_s3_uri(partition_uri.rstrip("/") + "/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
    return sorted(
        f"s3://{bucket}/{common['Prefix']}"
        for page in pages
        for common in page.get("CommonPrefixes", [])
        if common["Prefix"][len(prefix) :].startswith("version=")
    )


def delete_prefix(s3: Any, uri: str) -> int:
    """Delete every object under ``uri``; return how many."""
    bucket, prefix = split_s3_uri(uri)
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return len(keys)


def clean_versions(
    s3: Any, glue: Any, database: str, partitions: Mapping[str, str], dt: str, *, anchor: str
) -> list[str]:
    """Delete every version folder of partition ``dt`` of each output except the published ones.

    ``partitions`` maps each output (a catalog table, or a dataset without one) to its ``dt=`` partition
    URI. Kept: the location each catalog table publishes, and in every output the version that ``anchor``
    (the readers' table) publishes. Both are read from the catalog now, so a version published after the
    caller planned is never deleted. The staged partitions registered for the audit are dropped too.
    Returns the deleted folders.
    """
    anchored = published(glue, database, anchor, dt)
    deleted = []
    for name, partition_uri in partitions.items():
        keep = set()
        current = published(glue, database, name, dt)
        if current is not None:
            keep.add(current.location.rstrip("/") + "/")
        if anchored is not None and anchored.version:
            keep.add(version_location(partition_uri, anchored.version))
        for folder in version_folders(s3, partition_uri):
            if folder not in keep:
                delete_prefix(s3, folder)
                deleted.append(folder)
        try:
            glue.delete_partition(DatabaseName=database, TableName=staged_table(name), PartitionValues=[dt])
        except ClientError as error:
            if not has_code(error, "EntityNotFoundException"):
                raise
    return deleted
