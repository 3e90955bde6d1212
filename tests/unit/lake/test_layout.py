"""Unit tests of the small plain modules: target, lake layout, approval policy, lifecycle helpers."""

from __future__ import annotations

import pytest

from sagelake.lake.layout import Lake, check_dt, split_s3_uri


def test_lake_layout_is_partitioned_by_dt() -> None:
    lake = Lake("b")
    assert lake.raw_events("2026-11-26") == "s3://b/raw/events/dt=2026-11-26/"
    assert lake.curated_features("2026-11-26") == "s3://b/curated/churn_features/dt=2026-11-26/"
    assert split_s3_uri("s3://b/a/c.txt") == ("b", "a/c.txt")
    for bad in ("2026-1-26", "2026/11/26", "2026-13-01", "2026-02-30", "", None):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            check_dt(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="s3://"):
        split_s3_uri("http://b/k")
