"""The local Athena engine: Athena SQL on DuckDB over moto S3, tables resolved through moto Glue."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator

import boto3
import jinja2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.local.athena.engine import BytesScannedLimitError, LocalAthenaEngine
from sagelake.local.athena.errors import (
    AthenaEngineError,
    AthenaTableNotFoundError,
    UnsupportedAthenaFeatureError,
)
from sagelake.quality import checks as quality
from tests.support.constants import CHECKS_DIR, REGION
from tests.support.lake_days import features, put_bytes, put_parquet

DAY1, DAY2 = "2026-11-26", "2026-11-27"


def register_at(glue, database: str, table: str, day: str, location: str) -> None:
    """Create or move partition ``dt=day`` of ``database.table`` to ``location`` (any S3 prefix)."""
    storage = glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"]
    partition = {"Values": [day], "StorageDescriptor": {**storage, "Location": location}}
    try:
        glue.create_partition(DatabaseName=database, TableName=table, PartitionInput=partition)
    except glue.exceptions.AlreadyExistsException:
        glue.update_partition(
            DatabaseName=database, TableName=table, PartitionValueList=[day], PartitionInput=partition
        )


@pytest.fixture()
def glue(aws_env: str):
    return boto3.client("glue", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def lake(bucket: str) -> Lake:
    return Lake(bucket)


@pytest.fixture()
def database(glue, lake: Lake) -> str:
    name = f"db_{uuid.uuid4().hex[:10]}"
    catalog.ensure_database(glue, name)
    catalog.ensure_tables(glue, name, lake)
    return name


@pytest.fixture()
def engine(glue, aws_env: str) -> Iterator[LocalAthenaEngine]:
    with LocalAthenaEngine(
        glue, s3_endpoint_url=aws_env, region=REGION, access_key_id="testing", secret_access_key="testing"
    ) as engine:
        yield engine


@pytest.fixture()
def two_days(s3, glue, database: str, lake: Lake) -> dict[str, pd.DataFrame]:
    frames = {DAY1: features(40, seed=1), DAY2: features(25, seed=2)}
    for day, frame in frames.items():
        put_parquet(s3, lake.curated_features(day) + "part-00000.parquet", frame)
        catalog.register_partition(glue, database, "churn_features", day)
    return frames


def test_partition_filter_returns_only_that_partition(engine, database, two_days) -> None:
    result = engine.execute(
        "SELECT plan, count(*) AS n, sum(n_events) AS events, avg(monthly_fee) AS fee, max(dt) AS day "
        f"FROM churn_features WHERE dt = '{DAY1}' GROUP BY plan ORDER BY plan",
        database,
    )
    assert result.columns == ["plan", "n", "events", "fee", "day"]
    expected = (
        two_days[DAY1]
        .groupby("plan")
        .agg(n=("customer_id", "size"), events=("n_events", "sum"), fee=("monthly_fee", "mean"))
    )
    assert [row[0] for row in result.rows] == list(expected.index)
    for plan, n, events, fee, day in result.rows:
        assert n == expected.loc[plan, "n"]
        assert events == expected.loc[plan, "events"]
        assert fee == pytest.approx(expected.loc[plan, "fee"])
        assert day == DAY1

    both = engine.execute("SELECT dt, count(*) FROM churn_features GROUP BY dt ORDER BY dt", database)
    assert both.columns == ["dt", "_col1"]
    assert both.rows == [(day, len(frame)) for day, frame in sorted(two_days.items())]


def test_partition_filter_prunes_other_partitions_files(s3, glue, engine, database, lake, two_days) -> None:
    # a registered partition whose only file is unreadable: reading it fails, so a query that succeeds
    # never opened it
    put_bytes(s3, lake.curated_features("2026-11-28") + "part-00000.parquet", b"this is not parquet")
    catalog.register_partition(glue, database, "churn_features", "2026-11-28")
    pruned = engine.execute(f"SELECT count(*) AS n FROM churn_features WHERE dt = '{DAY2}'", database)
    assert pruned.rows == [(len(two_days[DAY2]),)]
    both = len(two_days[DAY1]) + len(two_days[DAY2])
    for where in [f"dt IN ('{DAY1}', '{DAY2}')", f"dt BETWEEN '{DAY1}' AND '{DAY2}'", "dt < '2026-11-28'"]:
        assert engine.execute(f"SELECT count(*) FROM churn_features WHERE {where}", database).rows == [
            (both,)
        ], where
    joined = engine.execute(
        f"""
        SELECT count(*) FROM churn_features a JOIN churn_features b ON a.customer_id = b.customer_id
        WHERE a.dt = '{DAY1}' AND b.dt = '{DAY1}'
        """,
        database,
    )
    assert joined.rows == [(len(two_days[DAY1]),)]
    with pytest.raises(AthenaEngineError, match=r"churn_features at s3://.*/dt=2026-11-28/"):
        engine.execute("SELECT count(*) FROM churn_features", database)
    with pytest.raises(AthenaEngineError, match=r"churn_features"):  # one reference is not filtered
        engine.execute(
            f"SELECT count(*) FROM churn_features WHERE dt = '{DAY1}' "
            "UNION ALL SELECT count(*) FROM churn_features",
            database,
        )


def _sizes_under(s3, uri: str) -> dict[str, int]:
    bucket, prefix = split_s3_uri(uri)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {f"s3://{bucket}/{o['Key']}": o["Size"] for o in listed}


def test_bytes_scanned_are_the_files_of_the_partitions_read(
    s3, glue, engine, database, lake, two_days
) -> None:
    put_parquet(s3, lake.curated_features(DAY1) + "part-00001.parquet", two_days[DAY1].head(5))
    day1, day2 = _sizes_under(s3, lake.curated_features(DAY1)), _sizes_under(s3, lake.curated_features(DAY2))
    assert len(day1) == 2 and len(day2) == 1

    one_day = engine.execute(f"SELECT count(*) FROM churn_features WHERE dt = '{DAY2}'", database)
    assert one_day.files_read == day2  # pruned: only that partition's file
    assert one_day.bytes_scanned == sum(day2.values()) > 0

    every_day = engine.execute("SELECT count(*) FROM churn_features", database)
    assert every_day.files_read == {**day1, **day2}
    assert every_day.bytes_scanned == sum(day1.values()) + sum(day2.values())
    # each statement counts its own reads
    again = engine.execute(f"SELECT count(*) FROM churn_features WHERE dt = '{DAY1}'", database)
    assert again.files_read == day1


def test_bytes_scanned_cutoff_cancels_a_query_that_reads_too_much(
    glue, aws_env, database, two_days, lake, s3
):
    day2 = sum(_sizes_under(s3, lake.curated_features(DAY2)).values())
    with LocalAthenaEngine(
        glue,
        s3_endpoint_url=aws_env,
        region=REGION,
        access_key_id="testing",
        secret_access_key="testing",
        bytes_scanned_cutoff=day2,
    ) as limited:
        assert limited.execute(f"SELECT count(*) FROM churn_features WHERE dt = '{DAY2}'", database).rows == [
            (len(two_days[DAY2]),)
        ]
        with pytest.raises(BytesScannedLimitError, match=rf"more than the workgroup's limit of {day2} bytes"):
            limited.execute("SELECT count(*) FROM churn_features", database)


def test_unregistered_folders_under_the_table_are_not_read(s3, glue, engine, database, lake) -> None:
    registered, unregistered = features(20, seed=11), features(9, seed=12)
    put_parquet(s3, lake.curated_features(DAY1) + "part-00000.parquet", registered)
    put_parquet(s3, lake.curated_features(DAY2) + "part-00000.parquet", unregistered)
    put_parquet(s3, catalog.table_root(lake.curated_features(DAY1)) + "stray.parquet", unregistered)
    catalog.register_partition(glue, database, "churn_features", DAY1)
    result = engine.execute("SELECT dt, count(*) AS n FROM churn_features GROUP BY dt", database)
    assert result.rows == [(DAY1, len(registered))]
    assert engine.execute(f"SELECT count(*) FROM churn_features WHERE dt = '{DAY2}'", database).rows == [(0,)]


def test_versioned_partition_reads_only_its_version(s3, glue, engine, database, lake) -> None:
    day = lake.curated_features(DAY1)
    v1, v2 = features(30, seed=21), features(12, seed=22)
    put_parquet(s3, day + "version=v1/part-00000.parquet", v1)
    put_parquet(s3, day + "version=v2/part-00000.parquet", v2)
    put_parquet(s3, day + "version=v2/retry/part-00001.parquet", v2.head(3))  # below the location: read
    put_bytes(s3, day + "version=v3/part-00000.parquet", b"a staged write, half done")  # never opened
    register_at(glue, database, "churn_features", DAY1, day + "version=v2/")
    sql = "SELECT dt, count(*) AS n, sum(n_events) AS events FROM churn_features GROUP BY dt"
    expected_v2 = (DAY1, len(v2) + 3, v2["n_events"].sum() + v2["n_events"].head(3).sum())
    assert engine.execute(sql, database).rows == [expected_v2]
    ids = engine.execute("SELECT DISTINCT customer_id FROM churn_features", database).rows
    assert {row[0] for row in ids} == set(v2["customer_id"])
    # publishing another version is one catalog update: the next statement reads it, and only it
    register_at(glue, database, "churn_features", DAY1, day + "version=v1/")
    assert engine.execute(sql, database).rows == [(DAY1, len(v1), v1["n_events"].sum())]


def test_catalog_columns_win_over_the_files_columns(s3, glue, engine, database, lake) -> None:
    frame = features(8, seed=31).drop(columns=["tenure_days"]).assign(secret=np.arange(8))
    put_parquet(s3, lake.curated_features(DAY1) + "part-00000.parquet", frame, schema=None)
    catalog.register_partition(glue, database, "churn_features", DAY1)
    result = engine.execute("SELECT * FROM churn_features ORDER BY customer_id", database)
    assert result.columns == [name for name, _ in catalog.CHURN_FEATURES_COLUMNS] + ["dt"]
    by_name = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    assert [row["tenure_days"] for row in by_name] == [None] * 8  # listed by the catalog, not in the files
    assert [row["customer_id"] for row in by_name] == sorted(frame["customer_id"])
    assert [row["dt"] for row in by_name] == [DAY1] * 8
    with pytest.raises(AthenaEngineError, match="secret"):  # in the files, not in the catalog
        engine.execute("SELECT secret FROM churn_features", database)


def test_partitions_whose_files_have_different_columns(s3, glue, engine, database, lake) -> None:
    old = features(10, seed=41).drop(columns=["avg_session_s", "total_amount"])
    new = features(6, seed=42)
    put_parquet(s3, lake.curated_features(DAY1) + "part-00000.parquet", old, schema=None)
    put_parquet(s3, lake.curated_features(DAY2) + "part-00000.parquet", new.head(3))
    # within one partition too: a later file adds a column (typed differently) the first one lacks
    put_parquet(
        s3,
        lake.curated_features(DAY2) + "part-00001.parquet",
        new.tail(3).drop(columns=["age"]).assign(n_events=new["n_events"].tail(3).astype("int32")),
        schema=None,
    )
    for day in (DAY1, DAY2):
        catalog.register_partition(glue, database, "churn_features", day)
    result = engine.execute(
        "SELECT dt, count(*), count(avg_session_s), count(age), sum(total_amount), sum(n_events) "
        "FROM churn_features GROUP BY dt ORDER BY dt",
        database,
    )
    assert result.rows[0] == (DAY1, 10, 0, 10, None, old["n_events"].sum())
    assert result.rows[1][:4] == (DAY2, 6, 6, 3)
    assert result.rows[1][4] == pytest.approx(new["total_amount"].sum())
    assert result.rows[1][5] == new["n_events"].sum()


def test_registered_partition_without_files_has_no_rows(s3, glue, engine, database, lake) -> None:
    frame = features(5, seed=51)
    put_parquet(s3, lake.curated_features(DAY1) + "part-00000.parquet", frame)
    catalog.register_partition(glue, database, "churn_features", DAY1)
    register_at(glue, database, "churn_features", DAY2, lake.curated_features(DAY2) + "version=gone/")
    result = engine.execute("SELECT dt, count(*) FROM churn_features GROUP BY dt", database)
    assert result.rows == [(DAY1, 5)]
    assert engine.execute(f"SELECT count(*) FROM churn_features WHERE dt = '{DAY2}'", database).rows == [(0,)]


def test_each_statement_sees_the_current_lake_and_catalog(s3, glue, engine, database, lake) -> None:
    sql = f"SELECT count(*) AS n, sum(n_events) AS events FROM churn_features WHERE dt = '{DAY1}'"
    assert engine.execute(sql, database).rows == [(0, None)]
    catalog.register_partition(glue, database, "churn_features", DAY1)  # registered, no files yet
    assert engine.execute(sql, database).rows == [(0, None)]
    first, second, replaced = features(30, seed=3), features(12, seed=4), features(7, seed=5)
    put_parquet(s3, lake.curated_features(DAY1) + "part-00000.parquet", first)
    assert engine.execute(sql, database).rows == [(30, first["n_events"].sum())]
    put_parquet(s3, lake.curated_features(DAY1) + "part-00001.parquet", second)
    put_parquet(s3, lake.curated_features(DAY1) + "part-00000.parquet", replaced)  # overwritten in place
    expected = replaced["n_events"].sum() + second["n_events"].sum()
    assert engine.execute(sql, database).rows == [(19, expected)]
    # the table moves to another bucket: its partitions keep their locations until they move too
    other = f"{lake.bucket}-moved"
    s3.create_bucket(Bucket=other)
    catalog.ensure_tables(glue, database, Lake(other))
    assert engine.execute(sql, database).rows == [(19, expected)]
    catalog.register_partition(glue, database, "churn_features", DAY1)
    assert engine.execute(sql, database).rows == [(0, None)]


def test_athena_only_syntax_is_transpiled(engine, database, two_days) -> None:
    frame = two_days[DAY1]
    result = engine.execute(
        f"""
        SELECT approx_distinct(customer_id) AS customers,
               max(date_diff('day', date '2026-01-01', CAST(dt AS date))) AS days,
               CAST(sum(n_events) AS varchar) AS events_text,
               try_cast('not a number' AS integer) AS bad,
               sum(n_purchases) / count(*) AS int_div,
               count_if(churned = 1),
               element_at(array_agg(plan ORDER BY customer_id), 1) AS first_plan
        FROM {database}.churn_features
        WHERE dt = '{DAY1}'
        """,
        database,
    )
    assert result.columns == ["customers", "days", "events_text", "bad", "int_div", "_col5", "first_plan"]
    (customers, days, events_text, bad, int_div, churners, first_plan) = result.rows[0]
    assert abs(customers - frame["customer_id"].nunique()) <= 0.15 * len(frame)  # HyperLogLog estimate
    assert days == (dt.date.fromisoformat(DAY1) - dt.date(2026, 1, 1)).days
    assert events_text == str(frame["n_events"].sum())
    assert bad is None
    assert int_div == int(frame["n_purchases"].sum()) // len(frame)  # Presto integer division
    assert churners == int(frame["churned"].sum())
    assert first_plan == frame.sort_values("customer_id")["plan"].iloc[0]


def test_ctes_and_awsdatacatalog_prefix(engine, database, two_days) -> None:
    result = engine.execute(
        f"""
        WITH per_region AS (
            SELECT region, avg(total_amount) AS spend
            FROM awsdatacatalog.{database}.churn_features WHERE dt = '{DAY2}' GROUP BY region
        )
        SELECT region, spend FROM per_region ORDER BY spend DESC LIMIT 1
        """,
        "some_other_default_db",
    )
    spend = two_days[DAY2].groupby("region")["total_amount"].mean()
    assert result.rows[0][0] == spend.idxmax()
    assert result.rows[0][1] == pytest.approx(spend.max())


def test_raw_csv_and_json_tables(s3, engine, database, lake) -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["a1", "a2", "a3"],
            "signup_date": ["2025-01-31", "2026-02-01", "2024-12-24"],
            "plan": ["basic", "premium", "basic"],
            "monthly_fee": [9.99, 19.99, 9.99],
            "age": [31, 45, 27],
            "region": ["north", "east", "west"],
            "support_tickets": [0, 3, 1],
            "churned": [0, 1, 0],
        }
    )
    events = pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4"],
            "customer_id": ["a1", "a1", "a2", "a9"],
            "ts": ["2026-11-26T10:00:00Z"] * 4,
            "event_type": ["login", "purchase", "play", "support"],
            "amount": [0, 12.5, 0, 0],
            "duration_s": [30, 5, 600.5, 60],
        }
    )
    for uri, body in [
        (lake.raw_customers(DAY1) + "customers.csv", customers.to_csv(index=False)),
        (lake.raw_events(DAY1) + "events.jsonl", events.to_json(orient="records", lines=True)),
    ]:
        bucket, key = split_s3_uri(uri)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    catalog.register_partition(engine.glue, database, "raw_customers", DAY1)
    catalog.register_partition(engine.glue, database, "raw_events", DAY1)

    result = engine.execute(
        f"""
        SELECT c.customer_id, c.signup_date, c.monthly_fee + 1 AS fee_plus,
               count(e.event_id) AS n_events, coalesce(sum(e.amount), 0) AS spend
        FROM raw_customers c LEFT JOIN raw_events e ON e.customer_id = c.customer_id AND e.dt = c.dt
        WHERE c.dt = '{DAY1}'
        GROUP BY 1, 2, 3 ORDER BY 1
        """,
        database,
    )
    counts = events.groupby("customer_id")["event_id"].count()
    spend = events.groupby("customer_id")["amount"].sum()
    assert [row[0] for row in result.rows] == list(customers["customer_id"])  # header row skipped
    for (cid, signup, fee_plus, n, total), (_, row) in zip(result.rows, customers.iterrows(), strict=True):
        assert signup == dt.date.fromisoformat(row["signup_date"])
        assert fee_plus == pytest.approx(row["monthly_fee"] + 1)
        assert n == counts.get(cid, 0)
        assert total == pytest.approx(spend.get(cid, 0.0))


def test_empty_location_gives_typed_empty_result(s3, glue, engine, database, lake) -> None:
    result = engine.execute("SELECT * FROM churn_quarantine", database)
    assert result.columns == ["source", "reason", "record", "dt"]
    assert result.rows == []
    # a job's success marker is not data
    bucket, key = split_s3_uri(lake.curated_features(DAY1) + "_SUCCESS")
    s3.put_object(Bucket=bucket, Key=key, Body=b"")
    catalog.register_partition(glue, database, "churn_features", DAY1)
    counted = engine.execute(
        f"SELECT count(*) AS n, sum(n_events) AS e FROM churn_features WHERE dt='{DAY1}'", database
    )
    assert counted.rows == [(0, None)]


def test_glue_columns_missing_from_files_read_as_null(s3, glue, engine, database, lake) -> None:
    frame = pd.DataFrame(
        {"source": ["customers", "events"], "reason": ["bad age", "bad ts"], "extra": [1, 2]}
    )
    put_parquet(s3, lake.quarantine(DAY1) + "part-0.parquet", frame, schema=None)
    catalog.register_partition(glue, database, "churn_quarantine", DAY1)
    result = engine.execute("SELECT * FROM churn_quarantine ORDER BY source", database)
    assert result.columns == ["source", "reason", "record", "dt"]
    assert result.rows == [("customers", "bad age", None, DAY1), ("events", "bad ts", None, DAY1)]


def test_missing_table_names_database_and_table(engine, database) -> None:
    with pytest.raises(AthenaTableNotFoundError, match=rf"{database}\.no_such_table"):
        engine.execute("SELECT * FROM no_such_table", database)
    with pytest.raises(AthenaTableNotFoundError, match=r"otherdb\.churn_features"):
        engine.execute("SELECT * FROM otherdb.churn_features", database)


def _object_keys(s3, uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(uri)
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_ctas_writes_parquet_and_registers_the_table(s3, glue, engine, database, lake, two_days) -> None:
    location = lake.uri("tables/plan_summary/")
    result = engine.execute(
        f"""
        CREATE TABLE plan_summary
        WITH (format = 'PARQUET', external_location = '{location}', write_compression = 'SNAPPY')
        AS SELECT plan, count(*) AS customers, avg(monthly_fee) AS fee
        FROM churn_features WHERE dt = '{DAY1}' GROUP BY plan
        """,
        database,
    )
    expected = two_days[DAY1].groupby("plan").agg(customers=("plan", "size"), fee=("monthly_fee", "mean"))
    assert result.rows == [(len(expected),)]

    keys = _object_keys(s3, location)
    assert len(keys) == 1 and keys[0].endswith(".parquet")
    bucket, _ = split_s3_uri(location)
    written = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())).to_pandas()
    written = written.set_index("plan").sort_index()
    assert list(written["customers"]) == list(expected["customers"])
    assert written["fee"].to_numpy() == pytest.approx(expected["fee"].to_numpy())

    table = glue.get_table(DatabaseName=database, Name="plan_summary")["Table"]
    storage = table["StorageDescriptor"]
    assert storage["Location"] == location
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [
        ("plan", "string"),
        ("customers", "bigint"),
        ("fee", "double"),
    ]
    readback = engine.execute("SELECT plan, customers FROM plan_summary ORDER BY plan", database)
    assert readback.rows == list(expected["customers"].items())

    with pytest.raises(AthenaEngineError, match="already exists"):
        engine.execute(
            f"CREATE TABLE plan_summary WITH (external_location = '{location}') AS SELECT 1 AS x", database
        )
    assert engine.execute(
        f"CREATE TABLE IF NOT EXISTS plan_summary WITH (external_location = '{location}') AS SELECT 1 AS x",
        database,
    ).rows == [(0,)]
    assert _object_keys(s3, location) == keys


@pytest.mark.parametrize("nested", [False, True])
def test_ctas_refuses_a_non_empty_location(s3, glue, engine, database, lake, two_days, nested) -> None:
    # the files sit directly under the location, or one dt= directory below it
    location = catalog.table_root(lake.curated_features(DAY1)) if nested else lake.curated_features(DAY1)
    before = _object_keys(s3, location)
    assert len(before) == (2 if nested else 1)
    with pytest.raises(AthenaEngineError, match="HIVE_PATH_ALREADY_EXISTS"):
        engine.execute(
            f"CREATE TABLE copy_of_day WITH (format = 'PARQUET', external_location = '{location}') "
            f"AS SELECT * FROM churn_features WHERE dt = '{DAY1}'",
            database,
        )
    assert _object_keys(s3, location) == before
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName=database, Name="copy_of_day")


def test_ctas_into_a_missing_database_writes_nothing(s3, engine, database, lake, two_days) -> None:
    location = lake.uri("tables/elsewhere/")
    with pytest.raises(AthenaEngineError, match="SCHEMA_NOT_FOUND: database nowhere"):
        engine.execute(
            f"CREATE TABLE nowhere.t WITH (external_location = '{location}') AS SELECT * FROM churn_features",
            database,
        )
    assert _object_keys(s3, location) == []


@pytest.mark.parametrize(
    ("properties", "named"),
    [
        ("partitioned_by = ARRAY['plan']", "partitioned_by"),
        ("bucketed_by = ARRAY['plan'], bucket_count = 4", "bucketed_by"),
        ("format = 'ORC'", "(?i)orc"),
        ("table_type = 'ICEBERG'", "table_type"),
        ("write_compression = 'BROTLI'", "write_compression"),
        ("format = 'PARQUET'", "external_location"),
    ],
)
def test_ctas_unsupported_properties_raise(s3, glue, engine, database, lake, properties, named) -> None:
    location = lake.uri("tables/unsupported/")
    props = properties if "external_location" in named else f"{properties}, external_location = '{location}'"
    with pytest.raises(UnsupportedAthenaFeatureError, match=named):
        engine.execute(f"CREATE TABLE t_unsupported WITH ({props}) AS SELECT 1 AS x", database)
    assert _object_keys(s3, location) == []
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName=database, Name="t_unsupported")


def _run_check(
    engine: LocalAthenaEngine, spec: quality.CheckSpec, database: str, ds: str
) -> quality.CheckResult:
    sql = jinja2.Template(spec.sql).render(params={"glue_database": database}, ds=ds)
    result = engine.execute(sql, database)
    return quality.evaluate(spec, quality.value_from_result(result.columns, result.rows))


def test_quality_checks_verdicts_on_good_and_bad_data(s3, glue, engine, database, lake) -> None:
    specs = {spec.name: spec for spec in quality.load_checks(CHECKS_DIR)}
    assert len(specs) >= 5
    assert {spec.severity for spec in specs.values()} == {"error", "warn"}

    good = features(600, seed=7)
    duplicated = pd.concat([good, good.head(5)], ignore_index=True)
    negative = good.copy()
    negative.loc[3, "monthly_fee"] = -9.99
    no_churn = good.assign(churned=np.int32(0))
    quiet = good.assign(n_events=np.where(np.arange(len(good)) % 2 == 0, 0, good["n_events"]))
    cases = {
        "2026-11-01": (good, set()),
        "2026-11-02": (good.head(100), {"row_count"}),
        "2026-11-03": (duplicated, {"unique_customer_id"}),
        "2026-11-04": (negative, {"key_features_valid"}),
        "2026-11-05": (no_churn, {"churn_rate"}),
        "2026-11-06": (quiet, {"zero_event_share"}),
    }
    for day, (frame, _) in cases.items():
        # the checks audit the staged version of the day (write-audit-publish)
        staged = lake.curated_features(day) + "version=v1/"
        put_parquet(s3, staged + "part-00000.parquet", frame)
        register_at(glue, database, catalog.staged_table("churn_features"), day, staged)

    for day, (frame, expected_failures) in cases.items():
        results = [_run_check(engine, spec, database, day) for spec in specs.values()]
        failed = {r.name for r in results if not r.passed}
        assert failed == expected_failures, day
        by_name = {r.name: r for r in results}
        assert by_name["row_count"].value == len(frame)
        assert by_name["churn_rate"].value == pytest.approx(frame["churned"].mean())
        assert by_name["zero_event_share"].value == pytest.approx((frame["n_events"] == 0).mean())
        blocking = {r.name for r in results if not r.passed and r.severity == "error"}
        if day == "2026-11-06":
            assert by_name["zero_event_share"].severity == "warn"
            assert blocking == set()  # a warning alone does not stop the pipeline
        else:
            assert blocking == expected_failures, day


def test_quality_checks_on_an_empty_partition_fail_as_verdicts(engine, database) -> None:
    results = {
        spec.name: _run_check(engine, spec, database, DAY1) for spec in quality.load_checks(CHECKS_DIR)
    }
    assert not results["row_count"].passed and results["row_count"].value == 0
    assert not results["churn_rate"].passed
