"""Published lake days without running the ETL: curated feature frames written as Parquet at a version
location and published through the catalog, as ``churn_prepare`` leaves them."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from devstack.datagen import curated_features
from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from tests.support.contract import FEATURES_SCHEMA


def features(n: int, seed: int, churn_p: float = 0.2, zero_event_p: float = 0.05) -> pd.DataFrame:
    """A curated-contract feature frame of ``n`` customers (:func:`devstack.datagen.curated_features`)."""
    return curated_features(n, seed, churn_p=churn_p, zero_event_p=zero_event_p)


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
