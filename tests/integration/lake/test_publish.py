"""Write-audit-publish on the control plane: staged versions, atomic publishing, clean-up that keeps
what readers see, and the input fingerprint."""

from __future__ import annotations

import uuid

import boto3
import pytest

from sagelake.lake import catalog
from sagelake.lake.layout import Lake
from sagelake.lake.publish import (
    NotPublishedError,
    clean_versions,
    input_fingerprint,
    publish,
    published,
    published_location,
    stage,
    version_folders,
    version_location,
)
from tests.support.constants import REGION

DT = "2026-11-26"


@pytest.fixture()
def glue(aws_env: str):
    return boto3.client("glue", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def lake(glue, bucket: str) -> tuple[Lake, str]:
    database = f"db_{uuid.uuid4().hex[:10]}"
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, Lake(bucket))
    return Lake(bucket), database


def write_version(s3, partition: str, version: str, body: bytes = b"rows") -> str:
    location = version_location(partition, version)
    bucket, _, key = location[5:].partition("/")
    s3.put_object(Bucket=bucket, Key=f"{key}part-0.parquet", Body=body)
    return location


def test_staged_versions_are_invisible_until_published(s3, glue, lake) -> None:
    lake, database = lake
    v1 = write_version(s3, lake.curated_features(DT), "v1")
    assert stage(glue, database, {"churn_features": v1}, DT) == {"churn_features_staged": v1}
    assert published(glue, database, "churn_features", DT) is None
    with pytest.raises(NotPublishedError, match="not published"):
        published_location(glue, database, "churn_features", DT)

    publish(glue, database, {"churn_features": v1}, DT, version="v1", fingerprint="f1", run_id="run-1")
    current = published(glue, database, "churn_features", DT)
    assert (current.location, current.version, current.fingerprint) == (v1, "v1", "f1")

    v2 = write_version(s3, lake.curated_features(DT), "v2")
    stage(glue, database, {"churn_features": v2}, DT)  # a later run's audit does not move readers
    assert published_location(glue, database, "churn_features", DT) == v1
    publish(glue, database, {"churn_features": v2}, DT, version="v2", fingerprint="f2", run_id="run-2")
    assert published_location(glue, database, "churn_features", DT) == v2


def test_clean_up_keeps_exactly_what_readers_see(s3, glue, lake) -> None:
    lake, database = lake
    partitions = {"churn_features": lake.curated_features(DT), "processed_events": lake.processed_events(DT)}
    for version in ("v1", "v2", "v3"):
        for partition in partitions.values():
            write_version(s3, partition, version)
    v2 = version_location(lake.curated_features(DT), "v2")
    publish(glue, database, {"churn_features": v2}, DT, version="v2", fingerprint="f", run_id="r")
    stage(glue, database, {"churn_features": version_location(lake.curated_features(DT), "v3")}, DT)

    deleted = clean_versions(s3, glue, database, partitions, DT, anchor="churn_features")
    assert sorted(deleted) == sorted(
        version_location(p, v) for p in partitions.values() for v in ("v1", "v3")
    )
    for partition in partitions.values():  # a table-less output keeps the anchor's published version too
        assert version_folders(s3, partition) == [version_location(partition, "v2")]
    staged = glue.get_partitions(DatabaseName=database, TableName="churn_features_staged")["Partitions"]
    assert staged == []


def test_clean_up_of_a_never_published_partition_deletes_every_staged_version(s3, glue, lake) -> None:
    lake, database = lake
    partition = lake.curated_features(DT)
    write_version(s3, partition, "v1")
    assert clean_versions(s3, glue, database, {"churn_features": partition}, DT, anchor="churn_features") == [
        version_location(partition, "v1")
    ]
    assert version_folders(s3, partition) == []


def test_fingerprint_changes_with_objects_and_code_only(s3, lake) -> None:
    lake, _ = lake
    bucket = lake.bucket
    s3.put_object(Bucket=bucket, Key=f"raw/customers/dt={DT}/customers.csv", Body=b"a,b\n1,2\n")
    prefixes = [lake.raw_customers(DT), lake.raw_events(DT)]
    first = input_fingerprint(s3, prefixes, [b"script"])
    assert input_fingerprint(s3, list(reversed(prefixes)), [b"script"]) == first
    assert input_fingerprint(s3, prefixes, [b"script v2"]) != first
    s3.put_object(Bucket=bucket, Key=f"raw/customers/dt={DT}/customers.csv", Body=b"a,b\n1,3\n")
    changed = input_fingerprint(s3, prefixes, [b"script"])
    assert changed != first
    s3.put_object(Bucket=bucket, Key=f"raw/events/dt={DT}/events.jsonl", Body=b"{}\n")
    assert input_fingerprint(s3, prefixes, [b"script"]) != changed
