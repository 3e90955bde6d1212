"""Glue Data Catalog tables as code, against the local control plane (moto)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from sagelake.lake import catalog
from sagelake.lake.layout import Lake
from tests.support.constants import REGION


@pytest.fixture()
def glue(aws_env: str):
    return boto3.client("glue", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def database(glue) -> str:
    name = f"db_{uuid.uuid4().hex[:10]}"
    catalog.ensure_database(glue, name)
    return name


def test_ensure_database_is_idempotent(glue) -> None:
    name = f"db_{uuid.uuid4().hex[:10]}"
    catalog.ensure_database(glue, name)
    catalog.ensure_database(glue, name)
    assert glue.get_database(Name=name)["Database"]["Name"] == name


def test_ensure_tables_creates_then_updates(glue, database: str) -> None:
    names = catalog.ensure_tables(glue, database, Lake("bucket-one"))
    assert sorted(names) == sorted(catalog.table_inputs(Lake("bucket-one")))
    assert {"churn_features", "churn_features_staged", "etl_metrics", "raw_customers"} <= set(names)
    listed = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert set(listed) == set(names)
    assert (
        listed["churn_features"]["StorageDescriptor"]["Location"] == "s3://bucket-one/curated/churn_features/"
    )

    # re-running is harmless and picks up a changed definition (here: another bucket)
    assert catalog.ensure_tables(glue, database, Lake("bucket-one")) == names
    assert catalog.ensure_tables(glue, database, Lake("bucket-two")) == names
    listed = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert len(listed) == len(names)
    assert (
        listed["churn_features"]["StorageDescriptor"]["Location"] == "s3://bucket-two/curated/churn_features/"
    )
    assert listed["raw_events"]["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]


def test_ensure_tables_needs_the_database(glue) -> None:
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        catalog.ensure_tables(glue, f"missing_{uuid.uuid4().hex[:8]}", Lake("b"))


def test_register_partition_creates_and_updates(glue, database: str) -> None:
    lake = Lake("lake-bucket")
    catalog.ensure_tables(glue, database, lake)
    location = catalog.register_partition(glue, database, "churn_features", "2026-11-26")
    assert location == lake.curated_features("2026-11-26")
    assert catalog.register_partition(glue, database, "raw_customers", "2026-11-26") == lake.raw_customers(
        "2026-11-26"
    )
    assert catalog.register_partition(glue, database, "churn_features", "2026-11-26") == location
    catalog.register_partition(glue, database, "churn_features", "2026-11-27")

    partitions = glue.get_partitions(DatabaseName=database, TableName="churn_features")["Partitions"]
    by_value = {p["Values"][0]: p for p in partitions}
    assert sorted(by_value) == ["2026-11-26", "2026-11-27"]
    storage = by_value["2026-11-27"]["StorageDescriptor"]
    assert storage["Location"] == "s3://lake-bucket/curated/churn_features/dt=2026-11-27/"
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert [c["Name"] for c in storage["Columns"]][:2] == ["customer_id", "plan"]

    # after the table moves, re-registering updates the partition's location
    catalog.ensure_tables(glue, database, Lake("other-bucket"))
    moved = catalog.register_partition(glue, database, "churn_features", "2026-11-26")
    assert moved == "s3://other-bucket/curated/churn_features/dt=2026-11-26/"
    partition = glue.get_partition(
        DatabaseName=database, TableName="churn_features", PartitionValues=["2026-11-26"]
    )
    assert partition["Partition"]["StorageDescriptor"]["Location"] == moved


def test_register_partition_rejects_bad_input(glue, database: str) -> None:
    catalog.ensure_tables(glue, database, Lake("b-bucket"))
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        catalog.register_partition(glue, database, "churn_features", "26-11-2026")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        catalog.register_partition(glue, database, "no_such_table", "2026-11-26")
    assert glue.get_partitions(DatabaseName=database, TableName="churn_features")["Partitions"] == []
