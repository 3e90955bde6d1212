"""Discovery without AWS: the crawler's definition is a valid CreateCrawler request that cannot touch the
contract tables, and the contract-vs-crawled schema diff finds added, missing and retyped columns."""

from __future__ import annotations

import json

import pytest

from sagelake.lake import catalog
from sagelake.lake.contracts import load_contracts
from sagelake.lake.discovery import (
    COMPARED,
    NO_CONTRACT,
    NOT_CRAWLED,
    crawler_config,
    drift_key,
    drift_records,
    drift_table_input,
    schema_drift,
    table_level,
    type_satisfies,
)
from sagelake.lake.layout import Lake
from tests.support.pipeline import validate

CONTRACTS = load_contracts()
CUSTOMERS = CONTRACTS["raw_customers"]
CONFIG = crawler_config(name="sagelake-raw", role="sagelake-glue", database="sagelake", bucket="lake")


def test_crawler_config_is_a_valid_create_crawler_request() -> None:
    validate("glue", "CreateCrawler", CONFIG)
    assert CONFIG["Targets"]["S3Targets"][0]["Path"] == "s3://lake/raw/"
    assert (CONFIG["Name"], CONFIG["Role"], CONFIG["DatabaseName"]) == (
        "sagelake-raw",
        "sagelake-glue",
        "sagelake",
    )
    assert CONFIG["SchemaChangePolicy"] == {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}
    assert CONFIG["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}
    grouping = json.loads(CONFIG["Configuration"])["Grouping"]
    assert grouping["TableLevelConfiguration"] == 3  # s3://lake (1) / raw (2) / <dataset> (3)


def test_crawled_tables_never_collide_with_the_catalog_tables() -> None:
    prefix = CONFIG["TablePrefix"]
    assert prefix == "crawled_"
    folders = {
        table["StorageDescriptor"]["Location"].rstrip("/").rsplit("/", 1)[-1]
        for table in catalog.table_inputs(Lake("lake")).values()
    }
    defined = set(catalog.table_inputs(Lake("lake")))
    assert {prefix + folder for folder in folders}.isdisjoint(defined)
    with pytest.raises(ValueError, match="table_prefix"):
        crawler_config(name="c", role="r", database="d", bucket="b", table_prefix="")


@pytest.mark.parametrize(("path", "level"), [("s3://b/raw/", 3), ("s3://b/raw", 3), ("s3://b/a/b/", 4)])
def test_table_level(path: str, level: int) -> None:
    assert table_level(path) == level


def test_crawler_config_can_be_a_template() -> None:
    config = crawler_config(
        name="{{ params.crawler_name }}", role="r", database="d", bucket="{{ params.bucket }}"
    )
    assert config["Targets"]["S3Targets"][0]["Path"] == "s3://{{ params.bucket }}/raw/"
    assert json.loads(config["Configuration"])["Grouping"]["TableLevelConfiguration"] == 3


@pytest.mark.parametrize(
    ("crawled", "contract", "classification", "fits"),
    [
        ("bigint", "int", "csv", True),  # a crawler types any integer bigint
        ("bigint", "double", "csv", True),  # integral ages in a double column
        ("bigint", "decimal(10,2)", "csv", True),
        ("double", "double", "csv", True),
        ("double", "bigint", "csv", False),  # fractions do not load into an integer
        ("string", "int", "csv", False),
        ("boolean", "string", "csv", True),  # anything loads into a string
        ("date", "timestamp", "csv", True),
        ("timestamp", "date", "csv", False),
        ("string", "timestamp", "json", True),  # JSON has no date type
        ("string", "timestamp", "csv", False),
    ],
)
def test_type_satisfies(crawled: str, contract: str, classification: str, fits: bool) -> None:
    assert type_satisfies(crawled, contract, classification) is fits


def test_schema_drift_lists_added_missing_and_retyped_columns() -> None:
    crawled = [
        ("customer_id", "string"),
        ("signup_date", "date"),
        ("plan", "string"),
        ("monthly_fee", "double"),
        ("age", "bigint"),
        ("region", "string"),
        ("support_tickets", "string"),  # text where the contract says int
        ("loyalty_points", "bigint"),  # not in the contract
    ]  # churned is gone
    drift = schema_drift(CUSTOMERS, crawled, "csv")
    assert drift.added == ("loyalty_points",)
    assert drift.missing == ("churned",)
    assert drift.type_changed == (("support_tickets", "int", "string"),)
    assert drift.columns_differing == 3
    assert "support_tickets int→string" in drift.describe()


def test_matching_files_give_no_drift_whatever_the_column_order() -> None:
    crawled = [(c.name.upper(), "bigint" if c.type == "int" else c.type) for c in reversed(CUSTOMERS.columns)]
    drift = schema_drift(CUSTOMERS, crawled, "csv")
    assert drift.columns_differing == 0
    assert drift.describe() == "no difference"


def crawled_table(name: str, location: str, columns: list[tuple[str, str]], classification: str) -> dict:
    return {
        "Name": name,
        "Parameters": {"classification": classification},
        "StorageDescriptor": {"Location": location, "Columns": [{"Name": n, "Type": t} for n, t in columns]},
    }


def test_drift_records_match_crawled_tables_to_contracts_by_location() -> None:
    columns = [(c.name, c.type) for c in CUSTOMERS.columns if c.name != "churned"] + [("extra", "string")]
    tables = [
        crawled_table("crawled_customers", "s3://lake/raw/customers", columns, "csv"),
        crawled_table("crawled_sessions", "s3://lake/raw/sessions/", [("id", "string")], "parquet"),
        crawled_table("raw_customers", "s3://lake/raw/customers/", [], "csv"),  # a contract table: ignored
    ]
    records = drift_records(tables, Lake("lake"), crawler="c", crawled_at="2026-11-26T00:00:00+00:00")
    by_table = {r["crawled_table"]: r for r in records}
    assert set(by_table) == {"crawled_customers", "crawled_sessions", None}
    customers = by_table["crawled_customers"]
    assert (customers["dataset"], customers["status"]) == ("raw_customers", COMPARED)
    assert (customers["added"], customers["missing"], customers["type_changed"]) == ("extra", "churned", "")
    assert customers["columns_differing"] == 2
    assert by_table["crawled_sessions"]["status"] == NO_CONTRACT
    assert by_table["crawled_sessions"]["columns_differing"] == 0
    assert (by_table[None]["dataset"], by_table[None]["status"]) == ("raw_events", NOT_CRAWLED)
    columns = {c["Name"] for c in drift_table_input(Lake("lake"))["StorageDescriptor"]["Columns"]}
    assert all(set(record) == columns for record in records)  # every record is a row of crawler_drift


def test_drift_table_is_a_valid_table_partitioned_by_dt() -> None:
    table = drift_table_input(Lake("lake"))
    validate("glue", "CreateTable", {"DatabaseName": "sagelake", "TableInput": table})
    assert table["StorageDescriptor"]["Location"] == "s3://lake/metrics/crawler_drift/"
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert drift_key("2026-11-26") == "metrics/crawler_drift/dt=2026-11-26/drift.jsonl"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        drift_key("26/11/2026")
