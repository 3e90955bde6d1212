"""The local Glue crawler against the control plane: tables, columns, types and partitions match the files
landed (CSV plain and gzip, reordered, with an added column; JSON lines; Parquet), a re-crawl after a schema
change updates the table and an unchanged re-crawl changes nothing, and the run is recorded as AWS records
it, so the provider's ``GlueCrawlerHook`` accepts it."""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
from datetime import date, datetime

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.providers.amazon.aws.hooks.glue_crawler import GlueCrawlerHook
from airflow.providers.amazon.aws.sensors.glue_crawler import GlueCrawlerSensor
from botocore.exceptions import ClientError, WaiterError

from devstack.datagen import generate_day
from devstack.stack import aws_connection
from sagelake.lake import catalog
from sagelake.lake.discovery import crawler_config
from sagelake.local.crawler import run_crawler
from tests.support.constants import REGION

D1, D2, D3 = "2026-11-25", "2026-11-26", "2026-11-27"
SESSIONS = pa.schema(
    [
        ("session_id", pa.string()),
        ("customer_id", pa.string()),
        ("started", pa.timestamp("ms")),
        ("day", pa.date32()),
        ("seconds", pa.int32()),
        ("score", pa.float64()),
        ("paid", pa.bool_()),
        ("tags", pa.list_(pa.string())),
    ]
)


@pytest.fixture()
def glue(aws_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    return boto3.client("glue", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def credentials(aws_env):
    return boto3.Session(region_name=REGION).get_credentials()


@pytest.fixture()
def crawler(glue, bucket) -> str:
    database = f"db_{uuid.uuid4().hex[:10]}"
    catalog.ensure_database(glue, database)
    name = f"crawler-{bucket}"
    glue.create_crawler(**crawler_config(name=name, role="sagelake-glue", database=database, bucket=bucket))
    return name


def rows_of(csv_bytes: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(csv_bytes.decode())))


def to_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def reorder_and_add(csv_bytes: bytes) -> bytes:
    """The same customers with the columns in reverse order and an added integer column ``loyalty_points``."""
    rows = rows_of(csv_bytes)
    header, body = rows[0], rows[1:]
    out = [[*reversed(header), "loyalty_points"]]
    out += [[*reversed(row), str(10 * i)] for i, row in enumerate(body)]
    return to_csv(out)


def sessions_parquet(n: int, day: str) -> bytes:
    table = pa.table(
        {
            "session_id": [f"s{i}" for i in range(n)],
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "started": [datetime(2026, 11, 25, 10, i % 60) for i in range(n)],
            "day": [date.fromisoformat(day)] * n,
            "seconds": pa.array(range(n), pa.int32()),
            "score": [i / 3 for i in range(n)],
            "paid": [i % 2 == 0 for i in range(n)],
            "tags": [["a", "b"][: i % 3] for i in range(n)],
        },
        schema=SESSIONS,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def land(s3, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture()
def landed(s3, bucket) -> dict[str, bytes]:
    """Two days of customers (CSV; day 2 gzip, reordered, one column added), events (JSON lines; day 2
    gzip), sessions (Parquet), plus a ``_SUCCESS`` marker the crawler must ignore."""
    day1, day2 = generate_day(D1, n_customers=60), generate_day(D2, n_customers=60)
    files = {
        f"raw/customers/dt={D1}/customers.csv": day1.customers_csv,
        f"raw/customers/dt={D2}/customers.csv.gz": gzip.compress(reorder_and_add(day2.customers_csv)),
        f"raw/events/dt={D1}/events.jsonl": day1.events_jsonl,
        f"raw/events/dt={D2}/events.jsonl.gz": gzip.compress(day2.events_jsonl),
        f"raw/sessions/dt={D1}/part-0.parquet": sessions_parquet(20, D1),
        f"raw/sessions/dt={D2}/part-0.parquet": sessions_parquet(30, D2),
        f"raw/sessions/dt={D2}/_SUCCESS": b"",
        f"raw/sessions/dt={D2}/_committed": b"{}",
    }
    for key, body in files.items():
        land(s3, bucket, key, body)
    return files


def database_of(glue, crawler: str) -> str:
    return glue.get_crawler(Name=crawler)["Crawler"]["DatabaseName"]


def columns(table: dict) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]


def partitions(glue, database: str, table: str) -> dict[str, dict]:
    found = glue.get_partitions(DatabaseName=database, TableName=table)["Partitions"]
    return {p["Values"][0]: p for p in found}


def test_crawl_creates_tables_matching_the_files(glue, s3, bucket, credentials, crawler, landed) -> None:
    result = run_crawler(s3, glue, credentials, crawler)
    database = database_of(glue, crawler)

    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert set(tables) == {"crawled_customers", "crawled_events", "crawled_sessions"}
    assert sorted(result.tables_created) == sorted(tables)

    # CSV: the table is the union, the latest day's (reordered) columns first; each partition its own file's
    header1 = rows_of(landed[f"raw/customers/dt={D1}/customers.csv"])[0]
    header2 = rows_of(gzip.decompress(landed[f"raw/customers/dt={D2}/customers.csv.gz"]))[0]
    customers = tables["crawled_customers"]
    assert [name for name, _ in columns(customers)] == header2
    types = dict(columns(customers))
    assert types == {
        "customer_id": "string",
        "signup_date": "date",
        "plan": "string",
        "monthly_fee": "double",
        "age": "bigint",
        "region": "string",
        "support_tickets": "bigint",
        "churned": "bigint",
        "loyalty_points": "bigint",
    }
    assert customers["Parameters"]["classification"] == "csv"
    assert customers["Parameters"]["skip.header.line.count"] == "1"
    assert customers["Parameters"]["UPDATED_BY_CRAWLER"] == crawler
    assert customers["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == catalog.CSV_SERDE
    assert customers["StorageDescriptor"]["InputFormat"] == catalog.TEXT_INPUT_FORMAT
    assert customers["StorageDescriptor"]["Location"] == f"s3://{bucket}/raw/customers/"
    assert customers["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    parts = partitions(glue, database, "crawled_customers")
    assert set(parts) == {D1, D2}
    assert [name for name, _ in columns(parts[D1])] == header1
    assert [name for name, _ in columns(parts[D2])] == header2
    assert parts[D1]["StorageDescriptor"]["Location"] == f"s3://{bucket}/raw/customers/dt={D1}/"
    assert parts[D2]["Parameters"]["compressionType"] == "gzip"
    assert parts[D1]["Parameters"]["compressionType"] == "none"

    # JSON lines: the keys of the valid lines (the generator also writes malformed ones)
    keys: dict[str, None] = {}
    for line in landed[f"raw/events/dt={D1}/events.jsonl"].decode().splitlines():
        try:
            keys |= dict.fromkeys(json.loads(line))
        except ValueError:
            continue
    events = tables["crawled_events"]
    assert [name for name, _ in columns(events)] == list(keys)
    assert dict(columns(events)) == {
        "event_id": "string",
        "customer_id": "string",
        "ts": "string",
        "event_type": "string",
        "amount": "double",
        "duration_s": "double",
    }
    assert events["Parameters"]["classification"] == "json"
    assert events["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == catalog.JSON_SERDE
    assert set(partitions(glue, database, "crawled_events")) == {D1, D2}

    # Parquet: the file's schema
    sessions = tables["crawled_sessions"]
    assert columns(sessions) == [
        ("session_id", "string"),
        ("customer_id", "string"),
        ("started", "timestamp"),
        ("day", "date"),
        ("seconds", "int"),
        ("score", "double"),
        ("paid", "boolean"),
        ("tags", "array<string>"),
    ]
    assert sessions["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == catalog.PARQUET_SERDE
    assert sessions["Parameters"]["objectCount"] == "2"  # the _SUCCESS and _committed markers are not data
    assert set(partitions(glue, database, "crawled_sessions")) == {D1, D2}


def test_recrawl_updates_a_changed_schema_and_leaves_the_rest(glue, s3, bucket, credentials, crawler, landed):
    run_crawler(s3, glue, credentials, crawler)
    database = database_of(glue, crawler)
    before = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}

    unchanged = run_crawler(s3, glue, credentials, crawler)
    assert unchanged.metrics() == {"TablesCreated": 0, "TablesUpdated": 0, "TablesDeleted": 0}
    assert (unchanged.partitions_created, unchanged.partitions_updated) == (0, 0)

    # day 3: support_tickets now holds text and churned is gone
    rows = rows_of(generate_day(D3, n_customers=30).customers_csv)
    drop = rows[0].index("churned")
    changed = [[v for i, v in enumerate(row) if i != drop] for row in rows]
    ticket = changed[0].index("support_tickets")
    for row in changed[1:]:
        row[ticket] = "a few"
    land(s3, bucket, f"raw/customers/dt={D3}/customers.csv", to_csv(changed))

    result = run_crawler(s3, glue, credentials, crawler)
    assert result.tables_updated == ["crawled_customers"]
    assert result.partitions_created == 1
    after = glue.get_table(DatabaseName=database, Name="crawled_customers")["Table"]
    assert dict(columns(after))["support_tickets"] == "string"  # bigint in older days, text now
    assert "churned" in dict(columns(after))  # still in the older partitions' files
    part = partitions(glue, database, "crawled_customers")[D3]
    assert [name for name, _ in columns(part)] == changed[0]
    events_after = glue.get_table(DatabaseName=database, Name="crawled_events")["Table"]
    assert columns(events_after) == columns(before["crawled_events"])


def test_the_run_is_recorded_as_aws_records_it(glue, s3, bucket, credentials, crawler, landed) -> None:
    assert "LastCrawl" not in glue.get_crawler(Name=crawler)["Crawler"]
    run_crawler(s3, glue, credentials, crawler)
    described = glue.get_crawler(Name=crawler)["Crawler"]
    assert described["State"] == "READY"
    assert described["LastCrawl"]["Status"] == "SUCCEEDED"
    crawls = glue.list_crawls(CrawlerName=crawler)["Crawls"]
    assert [c["State"] for c in crawls] == ["COMPLETED"]
    assert crawls[0]["EndTime"] >= crawls[0]["StartTime"]
    metrics = glue.get_crawler_metrics(CrawlerNameList=[crawler])["CrawlerMetricsList"][0]
    assert (metrics["TablesCreated"], metrics["TablesUpdated"], metrics["TablesDeleted"]) == (3, 0, 0)

    hook = GlueCrawlerHook(aws_conn_id="aws_default")
    assert hook.wait_for_crawler_completion(crawler, poll_interval=1) == "SUCCEEDED"
    assert GlueCrawlerSensor(task_id="crawled", crawler_name=crawler).poke({}) is True


def test_a_failed_crawl_is_recorded_failed_and_the_waiter_rejects_it(glue, s3, bucket, credentials, crawler):
    land(s3, bucket, "raw/customers/dt=2026-11-25/customers.csv", b"id,name\n1,a\n")
    glue.update_crawler(Name=crawler, DatabaseName=f"missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(ClientError):
        run_crawler(s3, glue, credentials, crawler)
    described = glue.get_crawler(Name=crawler)["Crawler"]
    assert (described["State"], described["LastCrawl"]["Status"]) == ("READY", "FAILED")
    assert "EntityNotFoundException" in described["LastCrawl"]["ErrorMessage"]
    with pytest.raises(WaiterError):
        GlueCrawlerHook(aws_conn_id="aws_default").wait_for_crawler_completion(crawler, poll_interval=1)


def test_a_crawl_abandoned_by_a_dead_task_is_closed_by_the_next_run(glue, s3, bucket, credentials, crawler):
    land(s3, bucket, "raw/customers/dt=2026-11-25/customers.csv", b"id,name\n1,a\n")
    glue.start_crawler(Name=crawler)  # a task that died after starting its crawl
    assert glue.get_crawler(Name=crawler)["Crawler"]["State"] == "RUNNING"
    run_crawler(s3, glue, credentials, crawler)
    crawls = glue.list_crawls(CrawlerName=crawler)["Crawls"]
    assert [c["State"] for c in crawls] == ["FAILED", "COMPLETED"]
    assert glue.get_crawler(Name=crawler)["Crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"


def test_a_folder_without_partitions_is_an_unpartitioned_table(
    glue, s3, bucket, credentials, crawler
) -> None:
    land(s3, bucket, "raw/plans/plans.csv", b"plan,fee\nbasic,9.99\npremium,22.99\n")
    land(s3, bucket, "raw/loose.csv", b"a\n1\n")  # a file at the target's root is no dataset
    result = run_crawler(s3, glue, credentials, crawler)
    database = database_of(glue, crawler)
    table = glue.get_table(DatabaseName=database, Name="crawled_plans")["Table"]
    assert table["PartitionKeys"] == []
    assert columns(table) == [("plan", "string"), ("fee", "double")]
    assert glue.get_partitions(DatabaseName=database, TableName="crawled_plans")["Partitions"] == []
    assert result.tables_created == ["crawled_plans"]
    assert any("loose.csv" in message for message in result.skipped)


def test_schema_change_and_delete_policies(glue, s3, bucket, credentials, crawler) -> None:
    land(s3, bucket, f"raw/a/dt={D1}/a.csv", b"x,y\n1,2\n")
    land(s3, bucket, f"raw/b/dt={D1}/b.csv", b"x\n1\n")
    run_crawler(s3, glue, credentials, crawler)
    database = database_of(glue, crawler)

    # UpdateBehavior LOG: a changed schema is left as it is, a new folder still becomes a partition
    glue.update_crawler(
        Name=crawler, SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "DEPRECATE_IN_DATABASE"}
    )
    land(s3, bucket, f"raw/a/dt={D2}/a.csv", b"x,y,z\n1,2,3\n")
    s3.delete_object(Bucket=bucket, Key=f"raw/b/dt={D1}/b.csv")
    result = run_crawler(s3, glue, credentials, crawler)
    table = glue.get_table(DatabaseName=database, Name="crawled_a")["Table"]
    assert [name for name, _ in columns(table)] == ["x", "y"]
    assert set(partitions(glue, database, "crawled_a")) == {D1, D2}
    # DEPRECATE_IN_DATABASE: the table whose folder is gone is marked, not dropped
    assert result.tables_deprecated == ["crawled_b"] and result.tables_deleted == []
    gone = glue.get_table(DatabaseName=database, Name="crawled_b")["Table"]
    assert gone["Parameters"]["DEPRECATED_BY_CRAWLER"] == "1"

    glue.update_crawler(
        Name=crawler,
        SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "DELETE_FROM_DATABASE"},
    )
    result = run_crawler(s3, glue, credentials, crawler)
    assert result.tables_updated == ["crawled_a"] and result.tables_deleted == ["crawled_b"]
    assert [
        name for name, _ in columns(glue.get_table(DatabaseName=database, Name="crawled_a")["Table"])
    ] == [
        "x",
        "y",
        "z",
    ]
    assert "crawled_b" not in {t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]}
    metrics = glue.get_crawler_metrics(CrawlerNameList=[crawler])["CrawlerMetricsList"][0]
    assert (metrics["TablesUpdated"], metrics["TablesDeleted"]) == (1, 1)
