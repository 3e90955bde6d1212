"""The local profiler against the control plane's S3: a Parquet partition in two files, with missing values,
duplicate rows, categorical, boolean, temporal and all-missing columns, profiled by DuckDB over httpfs and
compared statistic by statistic with an independent pandas computation."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from sagelake.lake import profiles
from sagelake.local.aws_session import AwsAccess
from sagelake.local.profiler import EmptyLocationError, profile_location
from tests.support.constants import REGION

DT = "2026-03-01"
QUANTILES = list(profiles.QUANTILES.values())


def partition() -> pd.DataFrame:
    """300 rows plus 6 exact copies; every kind of column the lake holds, with missing values."""
    rng = np.random.default_rng(7)
    n = 300
    fee = rng.gamma(2.0, 25.0, n).round(2)
    fee[rng.choice(n, 17, replace=False)] = np.nan
    tickets = pd.array(rng.poisson(2, n), dtype="Int64")
    tickets[rng.choice(n, 11, replace=False)] = pd.NA
    plan = rng.choice(["basic", "standard", "premium", "trial"], n, p=[0.45, 0.3, 0.2, 0.05]).astype(object)
    plan[rng.choice(n, 9, replace=False)] = None
    region = rng.choice([f"r{i:02d}" for i in range(14)], n).astype(object)  # more than TOP_VALUES levels
    known = pd.array(rng.random(n) < 0.9, dtype="boolean")
    known[rng.choice(n, 5, replace=False)] = pd.NA
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "plan": plan,
            "region": region,
            "monthly_fee": fee,
            "support_tickets": tickets,
            "n_events": rng.integers(0, 500, n).astype("int64"),
            "known_customer": known,
            "last_seen": pd.Timestamp("2026-02-01")
            + pd.to_timedelta(rng.integers(0, 28 * 86400, n), unit="s"),
            "age": np.full(n, np.nan),  # nothing known
        }
    )
    return pd.concat([frame, frame.iloc[[3, 3, 50, 120, 121, 299]]], ignore_index=True)


def expected_top(series: pd.Series) -> list[tuple]:
    counts = series.dropna().value_counts()
    pairs = sorted(((value, int(count)) for value, count in counts.items()), key=lambda p: (-p[1], str(p[0])))
    return pairs[: profiles.TOP_VALUES]


def plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


@pytest.fixture()
def published(s3, bucket) -> tuple[str, pd.DataFrame]:
    frame = partition()
    prefix = f"curated/churn_features/dt={DT}/version=v1/"
    for index, part in enumerate((frame.iloc[:180], frame.iloc[180:])):
        buffer = io.BytesIO()
        part.to_parquet(buffer, index=False)
        s3.put_object(Bucket=bucket, Key=f"{prefix}part-{index:05d}.snappy.parquet", Body=buffer.getvalue())
    s3.put_object(Bucket=bucket, Key=f"{prefix}_SUCCESS", Body=b"")
    return f"s3://{bucket}/{prefix}", frame


@pytest.fixture()
def access(aws_env: str) -> AwsAccess:
    return AwsAccess(REGION, "testing", "testing", None, {"s3": aws_env})


def test_every_statistic_matches_pandas(published, access) -> None:
    location, frame = published
    profile = profile_location(
        access, location, dataset="churn_features", dt=DT, version="v1", created_at="now"
    )
    profiles.validate(profiles.to_document(profile))

    assert profile.row_count == len(frame) == 306
    assert profile.duplicate_rows == len(frame) - len(frame.drop_duplicates()) == 6
    assert [c.name for c in profile.columns] == list(frame.columns)
    types = {c.name: c.type for c in profile.columns}
    assert types == {
        "customer_id": "string",
        "plan": "string",
        "region": "string",
        "monthly_fee": "number",
        "support_tickets": "integer",
        "n_events": "integer",
        "known_customer": "boolean",
        "last_seen": "timestamp",
        "age": "number",
    }
    for column in profile.columns:
        series = frame[column.name]
        assert column.count == int(series.notna().sum()), column.name
        assert column.missing == int(series.isna().sum()), column.name
        assert column.distinct == int(series.nunique(dropna=True)), column.name
        if column.type in profiles.NUMERIC:
            values = series.astype("float64")
            expected = {
                "min": values.min(),
                "max": values.max(),
                "mean": values.mean(),
                "stddev": values.std(ddof=1),
                **dict(zip(profiles.QUANTILES, values.quantile(QUANTILES), strict=True)),
            }
            got = {
                "min": column.min,
                "max": column.max,
                "mean": column.mean,
                "stddev": column.stddev,
                **column.quantiles,
            }
            assert list(column.quantiles) == list(profiles.QUANTILES)
            for name, value in expected.items():
                if plain(value) is None:
                    assert got[name] is None, (column.name, name)
                else:
                    assert got[name] == pytest.approx(plain(value), rel=1e-12), (column.name, name)
            assert column.top_values == []
        elif column.type == "timestamp":
            assert (column.min, column.max) == (plain(series.min()), plain(series.max()))
        else:
            got = [(v.value, v.count) for v in column.top_values]
            assert got == [(plain(v), c) for v, c in expected_top(series)], column.name
            assert (column.min, column.mean, column.stddev, column.quantiles) == (None, None, None, None)


def test_edge_columns_are_what_they_should_be(published, access) -> None:
    """Not vacuous: the partition really has missing values, ties, a capped top list and an empty column."""
    location, _ = published
    profile = profile_location(
        access, location, dataset="churn_features", dt=DT, version="v1", created_at="now"
    )
    assert profile.column("monthly_fee").missing >= 17 and profile.column("plan").missing >= 9
    assert len(profile.column("region").top_values) == profiles.TOP_VALUES < profile.column("region").distinct
    age = profile.column("age")
    assert (age.count, age.missing, age.distinct, age.mean, age.stddev) == (0, 306, 0, None, None)
    assert age.quantiles == dict.fromkeys(profiles.QUANTILES)
    assert isinstance(profile.column("n_events").min, int)
    assert {v.value for v in profile.column("known_customer").top_values} == {True, False}


def test_a_location_without_parquet_is_refused(s3, bucket, access) -> None:
    s3.put_object(Bucket=bucket, Key=f"curated/x/dt={DT}/version=v1/_SUCCESS", Body=b"")
    with pytest.raises(EmptyLocationError, match="no Parquet file"):
        profile_location(
            access,
            f"s3://{bucket}/curated/x/dt={DT}/version=v1/",
            dataset="x",
            dt=DT,
            version="v1",
            created_at="now",
        )
