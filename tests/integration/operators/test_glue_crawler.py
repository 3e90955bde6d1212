"""The crawler operator's local branch against the control plane: it creates (then updates) the crawler,
really crawls raw/, and the run reads as SUCCEEDED; the discovery DAG's drift record and its warn check
then report the columns that differ from the contracts, on the local Athena engine."""

from __future__ import annotations

import csv
import io
import json

import boto3
import pytest

from devstack.datagen import generate_day
from devstack.stack import aws_connection
from sagelake.lake.discovery import DRIFT_TABLE, crawler_config, drift_key
from sagelake.operators.glue_crawler import SagelakeGlueCrawlerOperator
from tests.support.constants import REGION
from tests.support.pipeline import rendered_task

DT = "2026-11-26"


@pytest.fixture()
def glue(aws_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    return boto3.client("glue", endpoint_url=aws_env, region_name=REGION)


def drifted_customers(csv_bytes: bytes) -> bytes:
    """The day's customers without ``churned`` and with an added ``referrer`` column."""
    rows = list(csv.reader(io.StringIO(csv_bytes.decode())))
    drop = rows[0].index("churned")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for i, row in enumerate(rows):
        writer.writerow([v for j, v in enumerate(row) if j != drop] + ["referrer" if i == 0 else f"r{i % 5}"])
    return out.getvalue().encode()


def crawl(bucket: str, database: str, **overrides) -> str:
    config = crawler_config(name=f"crawler-{bucket}", role="sagelake-glue", database=database, bucket=bucket)
    op = SagelakeGlueCrawlerOperator(task_id="crawl_raw", config=config | overrides, poll_interval=1)
    return op.execute({})


def test_local_branch_crawls_and_the_drift_check_reports_the_columns(glue, s3, bucket, monkeypatch) -> None:
    database = f"db_{bucket.replace('-', '_')}"
    glue.create_database(DatabaseInput={"Name": database})
    day = generate_day(DT, n_customers=40)
    s3.put_object(
        Bucket=bucket, Key=f"raw/customers/dt={DT}/customers.csv", Body=drifted_customers(day.customers_csv)
    )
    s3.put_object(Bucket=bucket, Key=f"raw/events/dt={DT}/events.jsonl", Body=day.events_jsonl)

    name = crawl(bucket, database)
    described = glue.get_crawler(Name=name)["Crawler"]
    assert (described["State"], described["LastCrawl"]["Status"]) == ("READY", "SUCCEEDED")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert set(tables) == {"crawled_customers", "crawled_events"}
    customers = [c["Name"] for c in tables["crawled_customers"]["StorageDescriptor"]["Columns"]]
    assert "referrer" in customers and "churned" not in customers

    # a changed definition updates the crawler (UpdateCrawler) and the re-crawl changes no table
    crawl(bucket, database, Description="crawls raw/ again")
    described = glue.get_crawler(Name=name)["Crawler"]
    assert described["Description"] == "crawls raw/ again"
    assert [c["State"] for c in glue.list_crawls(CrawlerName=name)["Crawls"]] == ["COMPLETED", "COMPLETED"]
    metrics = glue.get_crawler_metrics(CrawlerNameList=[name])["CrawlerMetricsList"][0]
    assert (metrics["TablesCreated"], metrics["TablesUpdated"]) == (0, 0)

    # the DAG's compare_with_contracts (twice: a re-run replaces the day's record), then its warn check
    monkeypatch.setenv("SAGELAKE_CRAWLER", name)  # the DAG's crawler: a deployment setting
    params = {"dt": DT, "bucket": bucket, "glue_database": database}
    compare = rendered_task("lake_discovery.py", "lake_discovery", "compare_with_contracts", conf=params)
    compare.python_callable(dt=DT, params=params)
    records = compare.python_callable(dt=DT, params=params)
    assert records[0]["crawled_at"] == described["LastCrawl"]["StartTime"].isoformat()
    stored = [
        json.loads(line) for line in s3.get_object(Bucket=bucket, Key=drift_key(DT))["Body"].iter_lines()
    ]
    by_dataset = {r["dataset"]: r for r in stored}
    assert (by_dataset["raw_customers"]["added"], by_dataset["raw_customers"]["missing"]) == (
        "referrer",
        "churned",
    )
    assert by_dataset["raw_events"]["columns_differing"] == 0
    assert [
        p["Values"] for p in glue.get_partitions(DatabaseName=database, TableName=DRIFT_TABLE)["Partitions"]
    ] == [[DT]]

    check = rendered_task(
        "lake_discovery.py",
        "lake_discovery",
        "check_crawler_drift",
        conf=params,
    )
    verdict = check.execute({"run_id": "manual__1"})
    assert (verdict["name"], verdict["value"], verdict["passed"], verdict["severity"]) == (
        "crawler_drift",
        2.0,
        False,
        "warn",
    )
    # the verdict is a row of quality_results (the table created on first use)
    [partition] = glue.get_partitions(DatabaseName=database, TableName="quality_results")["Partitions"]
    assert partition["Values"] == [DT]
