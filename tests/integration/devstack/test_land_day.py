"""The synthetic day: deterministic, schema as contracted, defects as reported, a real churn signal."""

from __future__ import annotations

from devstack.datagen import generate_day, land_day
from sagelake.lake.layout import Lake

DT = "2024-03-01"


def test_land_day_uploads_to_raw_partitions(s3, bucket):
    files = generate_day(DT, n_customers=50)
    uris = land_day(s3, Lake(bucket), DT, files)
    assert uris == [
        f"s3://{bucket}/raw/customers/dt={DT}/customers.csv",
        f"s3://{bucket}/raw/events/dt={DT}/events.jsonl",
    ]
    keys = sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"raw/customers/dt={DT}/customers.csv", f"raw/events/dt={DT}/events.jsonl"]
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert body == files.customers_csv
    assert s3.get_object(Bucket=bucket, Key=keys[1])["Body"].read() == files.events_jsonl
