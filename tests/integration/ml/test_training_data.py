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


@pytest.mark.parametrize("layout", ["csv", "parquet"])
def test_pipeline_data_writes_channels_and_a_separate_holdout(s3, bucket: str, layout: str) -> None:
    from sagelake.ml.training_data import prepare_training_data

    published = publish(s3, bucket)
    root = f"s3://{bucket}/training/churn/dt=2024-02-03/run=abc/"
    data = prepare_training_data(
        s3, published, root, days=3, layout=layout, as_of="2024-02-03", holdout_share=0.25
    )
    assert data.window.days == ["2024-02-01", "2024-02-02", "2024-02-03"]
    written = objects(s3, bucket, "training/churn/dt=2024-02-03/run=abc/")
    holdout = pd.read_parquet(
        io.BytesIO(written["training/churn/dt=2024-02-03/run=abc/holdout/holdout.parquet"])
    )
    assert len(holdout) == data.rows["holdout"] and 0 < len(holdout) < 80
    newest = pd.concat([synthetic_features(40, 30), synthetic_features(40, 31)])
    assert set(holdout["customer_id"]) <= set(newest["customer_id"])  # held out from the newest day only
    if layout == "csv":
        assert set(data.channels) == {"train", "validation"}
        assert data.rows["train"] + data.rows["validation"] + data.rows["holdout"] == 3 * 80
        train = pd.read_csv(
            io.BytesIO(written["training/churn/dt=2024-02-03/run=abc/train/train.csv"]), header=None
        )
        assert train.shape == (data.rows["train"], 1 + len(CSV_FEATURE_COLUMNS))
    else:
        assert set(data.channels) == {"train"}
        train = pd.read_parquet(
            io.BytesIO(written["training/churn/dt=2024-02-03/run=abc/train/train.parquet"])
        )
        assert len(train) + len(holdout) == 3 * 80
        assert not set(zip(train["customer_id"], train["monthly_fee"], strict=True)) & set(
            zip(holdout["customer_id"], holdout["monthly_fee"], strict=True)
        )


def test_published_partitions_are_what_the_catalog_publishes(s3, aws_env, bucket: str) -> None:
    import boto3

    from sagelake.lake import catalog
    from sagelake.lake.layout import Lake
    from sagelake.lake.publish import published_partitions
    from tests.support.constants import REGION
    from tests.support.lake_days import features, publish_day

    glue = boto3.client("glue", endpoint_url=aws_env, region_name=REGION)
    database, lake = f"db_{bucket.replace('-', '_')}", Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    assert published_partitions(glue, database, "churn_features") == {}
    locations = {
        dt: publish_day(s3, glue, database, lake, dt, features(5, 1)) for dt in ("2024-03-02", "2024-03-01")
    }
    assert published_partitions(glue, database, "churn_features") == dict(sorted(locations.items()))
