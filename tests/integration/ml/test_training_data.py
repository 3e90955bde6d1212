"""Writing the built-in XGBoost channels from published partitions in S3: what lands, and idempotence."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from sagelake.ml.training_data import (
    CSV_FEATURE_COLUMNS,
    TrainingDataError,
    labelled_matrix,
    prepare_channels,
    read_partition,
)
from tests.support.training_data import synthetic_features

DAYS = {"2024-02-01": 1, "2024-02-02": 2, "2024-02-03": 3, "2024-02-04": 4}


def publish(s3, bucket: str) -> dict[str, str]:
    published = {}
    for dt, seed in DAYS.items():
        prefix = f"curated/churn_features/dt={dt}/version=v{seed}/"
        for part in (0, 1):  # two part files per day, as Spark writes
            body = io.BytesIO()
            synthetic_features(40, seed * 10 + part).to_parquet(body, index=False)
            s3.put_object(Bucket=bucket, Key=f"{prefix}part-0000{part}.snappy.parquet", Body=body.getvalue())
        s3.put_object(Bucket=bucket, Key=f"{prefix}_SUCCESS", Body=b"")
        s3.put_object(Bucket=bucket, Key=f"{prefix}.part-00000.snappy.parquet.crc", Body=b"crc")
        published[dt] = f"s3://{bucket}/{prefix}"
    return published


def objects(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_channels_hold_the_window_and_rewriting_changes_nothing(s3, bucket: str) -> None:
    published = publish(s3, bucket)
    root = f"s3://{bucket}/training/churn/dt=2024-02-03/"
    channels = prepare_channels(s3, published, root, days=2, as_of="2024-02-03")

    assert channels.uris == {"train": f"{root}train/", "validation": f"{root}validation/"}
    assert channels.window.days == ["2024-02-02", "2024-02-03"]  # 2024-02-04 is after the run's day
    assert channels.rows == {"train": 80, "validation": 80}
    written = objects(s3, bucket, "training/churn/dt=2024-02-03/")
    assert sorted(written) == [
        "training/churn/dt=2024-02-03/train/train.csv",
        "training/churn/dt=2024-02-03/validation/validation.csv",
    ]
    validation = pd.read_csv(
        io.BytesIO(written["training/churn/dt=2024-02-03/validation/validation.csv"]), header=None
    )
    expected = labelled_matrix(
        pd.concat([synthetic_features(40, 30), synthetic_features(40, 31)]).sort_values("customer_id")
    )
    assert validation.shape == (80, 1 + len(CSV_FEATURE_COLUMNS))
    assert validation.to_numpy().tolist() == expected.to_numpy().tolist()

    s3.put_object(Bucket=bucket, Key="training/churn/dt=2024-02-03/train/stale.csv", Body=b"1,2\n")
    again = prepare_channels(s3, published, root, days=2, as_of="2024-02-03")
    assert again.rows == channels.rows
    assert objects(s3, bucket, "training/churn/dt=2024-02-03/") == written  # same bytes, stale file gone


def test_a_partition_without_parquet_is_named(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="curated/churn_features/dt=2024-02-09/version=x/_SUCCESS", Body=b"")
    location = f"s3://{bucket}/curated/churn_features/dt=2024-02-09/version=x/"
    with pytest.raises(TrainingDataError, match=f"no Parquet files under {location}"):
        read_partition(s3, location)
