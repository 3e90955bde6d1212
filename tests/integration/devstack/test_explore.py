"""Exploration queries on the local target: the answers equal pandas over the same curated rows, a one-day
range reads only that day's files, and the command line prints the table and the bytes scanned."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import boto3
import pandas as pd
import pytest

from devstack import explore
from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from tests.support.constants import REGION
from tests.support.lake_days import features, publish_day

DAYS = ["2026-11-23", "2026-11-24", "2026-11-30"]  # Monday, Tuesday and the next Monday


@pytest.fixture()
def lake_days(aws_env, bucket, monkeypatch) -> dict:
    monkeypatch.setenv("SAGELAKE_CONTROL_PLANE_PORT", str(urlparse(aws_env).port))
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name=REGION)
    glue = boto3.client("glue", endpoint_url=aws_env, region_name=REGION)
    database, lake = f"db_{uuid.uuid4().hex[:10]}", Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    frames, locations = {}, {}
    for seed, dt in enumerate(DAYS):
        frames[dt] = features(60 + 20 * seed, seed=seed)
        quarantine = pd.DataFrame(
            {"source": ["customers"] * (seed + 1) + ["events"], "reason": ["missing_churned"] * (seed + 2)}
        ).assign(record="{}")
        locations[dt] = publish_day(s3, glue, database, lake, dt, frames[dt], quarantine)
    return {"s3": s3, "database": database, "frames": frames, "locations": locations}


def sizes_under(s3, uri: str) -> int:
    bucket, prefix = split_s3_uri(uri)
    return sum(o["Size"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_churn_by_plan_region_equals_pandas_and_reads_only_the_range(lake_days) -> None:
    lake = explore.LakeQuery("local", lake_days["database"])
    try:
        result = lake.explore("churn_by_plan_region", DAYS[0], DAYS[1])
    finally:
        lake.close()
    frame = pd.concat([lake_days["frames"][d] for d in DAYS[:2]])
    expected = (
        frame.groupby(["plan", "region"])
        .agg(customers=("customer_id", "size"), churn_rate=("churned", "mean"))
        .reset_index()
    )
    got = result.to_pandas()
    assert list(got["customers"]) == list(expected["customers"])
    assert list(got["churn_rate"]) == pytest.approx(list(expected["churn_rate"].round(4)))
    assert result.bytes_scanned == sum(
        sizes_under(lake_days["s3"], lake_days["locations"][d]) for d in DAYS[:2]
    )


def test_weekly_trends_group_days_into_monday_weeks(lake_days) -> None:
    lake = explore.LakeQuery("local", lake_days["database"])
    try:
        result = lake.explore("weekly_trends", DAYS[0], DAYS[-1]).to_pandas()
    finally:
        lake.close()
    frames = lake_days["frames"]
    assert [str(w)[:10] for w in result["week"]] == ["2026-11-23", "2026-11-30"]
    assert list(result["days"]) == [2, 1]
    assert list(result["customer_days"]) == [
        len(frames[DAYS[0]]) + len(frames[DAYS[1]]),
        len(frames[DAYS[2]]),
    ]


def test_one_day_reads_one_partition_and_the_cli_prints_the_cost(lake_days, capsys) -> None:
    day = DAYS[2]
    code = explore.main(
        ["quarantine_reasons", "--start", day, "--target", "local", "--database", lake_days["database"]]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert rows == [[day, "customers", "missing_churned", "3"], [day, "events", "missing_churned", "1"]]
    quarantine = lake_days["locations"][day].replace("curated/churn_features", "quarantine/churn")
    size = sizes_under(lake_days["s3"], quarantine)
    assert out.splitlines()[-1] == f"2 rows · {explore.human_bytes(size)} scanned · local DuckDB"


def test_bad_requests_fail_with_a_clear_message(capsys) -> None:
    assert explore.main(["no_such_query", "--start", "2026-11-23", "--target", "local"]) == 2
    assert "no exploration query 'no_such_query'" in capsys.readouterr().err
    assert explore.main(["weekly_trends", "--start", "2026-11-30", "--end", "2026-11-01"]) == 2
    assert "start 2026-11-30 is after end 2026-11-01" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a date"):
        explore.render("weekly_trends", "2026-13-01", "2026-13-02", "db")
