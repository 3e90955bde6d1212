"""Published lake days without running the ETL: curated feature frames written as Parquet at a version
location and published through the catalog, as ``churn_prepare`` leaves them."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from tests.support.contract import FEATURES_SCHEMA


def features(n: int, seed: int, churn_p: float = 0.2, zero_event_p: float = 0.05) -> pd.DataFrame:
    """A curated-contract feature frame of ``n`` customers."""
    rng = np.random.default_rng(seed)
    n_events = rng.poisson(20, n) * (rng.random(n) >= zero_event_p)
    n_logins = rng.binomial(n_events, 0.5)
    n_purchases = rng.binomial(n_events - n_logins, 0.3)
    return pd.DataFrame(
        {
            "customer_id": [f"c{seed}-{i:05d}" for i in range(n)],
            "plan": rng.choice(["basic", "standard", "premium"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "monthly_fee": rng.choice([9.99, 14.99, 19.99], n),
            "age": rng.integers(18, 80, n).astype(float),
            "support_tickets": rng.poisson(1.0, n).astype("int32"),
            "tenure_days": rng.integers(0, 2000, n).astype("int32"),
            "n_events": n_events.astype("int64"),
            "n_logins": n_logins.astype("int64"),
            "n_purchases": n_purchases.astype("int64"),
            "total_amount": np.round(n_purchases * rng.uniform(1, 20, n), 2),
            "avg_session_s": np.where(n_events > 0, rng.uniform(30, 600, n), 0.0),
            "churned": (rng.random(n) < churn_p).astype("int32"),
        }
    )


def put_bytes(s3, uri: str, body: bytes) -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def put_parquet(s3, uri: str, frame: pd.DataFrame, schema: pa.Schema | None = FEATURES_SCHEMA) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), buf)
    put_bytes(s3, uri, buf.getvalue())


def publish_day(
    s3, glue, database: str, lake: Lake, dt: str, frame: pd.DataFrame, quarantine: pd.DataFrame | None = None
) -> str:
    """Write ``frame`` (and quarantine rows) at version ``v1`` of partition ``dt`` and publish it; returns
    the published features location."""
    location = f"{lake.curated_features(dt)}version=v1/"
    put_parquet(s3, location + "part-00000.parquet", frame)
    catalog.register_partition(glue, database, "churn_features", dt, location=location)
    if quarantine is not None:
        where = f"{lake.quarantine(dt)}version=v1/"
        put_parquet(s3, where + "part-00000.parquet", quarantine, schema=None)
        catalog.register_partition(glue, database, "churn_quarantine", dt, location=where)
    return location
