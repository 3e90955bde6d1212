"""Registering a day's partitions: the lake's tables are ensured first, a retry updates in place."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sagelake.lake import catalog
from sagelake.lake.layout import Lake
from tests.support.pipeline import DT


def already_exists(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "AlreadyExistsException", "Message": "exists"}}, operation)


class FakeGlue:
    """The Glue Data Catalog calls the catalog module makes, in memory, with Glue's AlreadyExists errors."""

    def __init__(self) -> None:
        self.databases: set[str] = set()
        self.tables: dict[tuple[str, str], dict] = {}
        self.partitions: dict[tuple[str, str, str], dict] = {}
        self.updated_partitions = 0

    def create_database(self, DatabaseInput: dict) -> None:
        if DatabaseInput["Name"] in self.databases:
            raise already_exists("CreateDatabase")
        self.databases.add(DatabaseInput["Name"])

    def create_table(self, DatabaseName: str, TableInput: dict) -> None:
        if (DatabaseName, TableInput["Name"]) in self.tables:
            raise already_exists("CreateTable")
        self.update_table(DatabaseName, TableInput)

    def update_table(self, DatabaseName: str, TableInput: dict) -> None:
        self.tables[DatabaseName, TableInput["Name"]] = TableInput

    def get_table(self, DatabaseName: str, Name: str) -> dict:
        return {"Table": self.tables[DatabaseName, Name]}

    def create_partition(self, DatabaseName: str, TableName: str, PartitionInput: dict) -> None:
        key = (DatabaseName, TableName, PartitionInput["Values"][0])
        if key in self.partitions:
            raise already_exists("CreatePartition")
        self.partitions[key] = PartitionInput

    def update_partition(self, DatabaseName: str, TableName: str, PartitionValueList: list, PartitionInput):
        self.partitions[DatabaseName, TableName, PartitionValueList[0]] = PartitionInput
        self.updated_partitions += 1


def test_registers_partitions_under_the_table_roots_and_a_retry_updates_them() -> None:
    glue = FakeGlue()
    expected = {
        "raw_customers": f"s3://lake/raw/customers/dt={DT}/",
        "raw_events": f"s3://lake/raw/events/dt={DT}/",
    }
    tables = ["raw_customers", "raw_events"]
    assert catalog.register_partitions(glue, "sagelake", Lake("lake"), DT, tables) == expected
    assert glue.databases == {"sagelake"}  # and every lake table:
    assert {name for _, name in glue.tables} == set(catalog.table_inputs(Lake("lake")))

    # a retry: everything exists already, the same partitions are updated in place
    assert catalog.register_partitions(glue, "sagelake", Lake("lake"), DT, tables) == expected
    assert sorted(glue.partitions) == [("sagelake", t, DT) for t in tables]
    assert glue.updated_partitions == 2
    stored = glue.partitions["sagelake", "raw_customers", DT]["StorageDescriptor"]
    assert stored["Location"] == expected["raw_customers"]


def test_a_malformed_dt_registers_nothing() -> None:
    glue = FakeGlue()
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        catalog.register_partitions(glue, "sagelake", Lake("lake"), "26/11/2026", ["churn_features"])
    assert glue.partitions == {} and glue.databases == set()
