"""Glue Data Catalog tables as code: the table definitions built from the lake layout."""

from __future__ import annotations

import pytest

from sagelake.lake import catalog
from sagelake.lake.layout import Lake


def test_table_inputs_match_the_lake_layout_and_contract() -> None:
    lake = Lake("my-bucket")
    inputs = catalog.table_inputs(lake)
    published = {"churn_features", "churn_quarantine", "etl_metrics"}
    staged = {f"{t}_staged" for t in published}
    assert set(inputs) == {"raw_customers", "raw_events", "quality_results"} | published | staged
    assert inputs["raw_customers"]["StorageDescriptor"]["Location"] == "s3://my-bucket/raw/customers/"
    assert inputs["raw_events"]["StorageDescriptor"]["Location"] == "s3://my-bucket/raw/events/"
    assert (
        inputs["churn_features"]["StorageDescriptor"]["Location"] == "s3://my-bucket/curated/churn_features/"
    )
    assert inputs["churn_quarantine"]["StorageDescriptor"]["Location"] == "s3://my-bucket/quarantine/churn/"
    assert inputs["quality_results"]["StorageDescriptor"]["Location"] == "s3://my-bucket/metrics/quality/"
    for name, table in inputs.items():
        assert table["Name"] == name
        assert table["TableType"] == "EXTERNAL_TABLE"
        assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        # every partition directory the Lake hands out lies directly under the table root
    assert lake.curated_features("2026-11-26").startswith(
        inputs["churn_features"]["StorageDescriptor"]["Location"]
    )

    features = inputs["churn_features"]["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in features["Columns"]] == [
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
    assert features["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert features["InputFormat"].endswith("MapredParquetInputFormat")
    customers = inputs["raw_customers"]
    assert customers["Parameters"]["skip.header.line.count"] == "1"
    assert [c["Name"] for c in customers["StorageDescriptor"]["Columns"]] == [
        "customer_id",
        "signup_date",
        "plan",
        "monthly_fee",
        "age",
        "region",
        "support_tickets",
        "churned",
    ]
    events = inputs["raw_events"]["StorageDescriptor"]
    assert events["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    quarantine = inputs["churn_quarantine"]["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in quarantine["Columns"]] == [
        ("source", "string"),
        ("reason", "string"),
        ("record", "string"),
    ]
    metrics = inputs["etl_metrics"]["StorageDescriptor"]
    assert metrics["Location"] == "s3://my-bucket/metrics/etl/"
    assert ("schema_drift_columns", "bigint") in [(c["Name"], c["Type"]) for c in metrics["Columns"]]
    assert "dt" not in [c["Name"] for c in metrics["Columns"]]  # the partition key, not a column


def test_every_published_table_has_a_staged_twin_for_the_audit() -> None:
    inputs = catalog.table_inputs(Lake("b"))
    for table in catalog.PUBLISHED_TABLES:
        twin = inputs[catalog.staged_table(table)]
        assert twin["StorageDescriptor"] == inputs[table]["StorageDescriptor"]
        assert twin["PartitionKeys"] == inputs[table]["PartitionKeys"]
        assert "not for readers" in twin["Description"]
    assert catalog.PUBLISHED_TABLES[-1] == "churn_features"  # published last: readers' table switches last


def test_table_inputs_are_fresh_copies() -> None:
    first = catalog.table_inputs(Lake("b1"))
    first["churn_features"]["PartitionKeys"].append({"Name": "x", "Type": "int"})
    assert catalog.table_inputs(Lake("b1"))["churn_features"]["PartitionKeys"] == [
        {"Name": "dt", "Type": "string"}
    ]


def test_table_root_rejects_non_partition_uris() -> None:
    assert catalog.table_root("s3://b/x/y/dt=2026-01-01/") == "s3://b/x/y/"
    with pytest.raises(ValueError, match="dt= partition"):
        catalog.table_root("s3://b/x/y/")
