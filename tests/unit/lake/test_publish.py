"""Write-audit-publish, the pure parts: version ids and versioned locations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sagelake.lake.publish import new_version, version_location
from tests.support.pipeline import RUN_ID


def test_versions_are_per_attempt_and_sort_by_time() -> None:
    first = new_version(RUN_ID, datetime(2026, 11, 27, 13, 0, 0, 1, tzinfo=UTC))
    later = new_version(RUN_ID, datetime(2026, 11, 27, 13, 0, 0, 2, tzinfo=UTC))
    other_run = new_version("manual__x", datetime(2026, 11, 27, 13, 0, 0, 1, tzinfo=UTC))
    assert first < later and len({first, later, other_run}) == 3
    assert first.startswith("20261127T130000000001Z-")


def test_version_location_is_inside_the_partition() -> None:
    partition = "s3://lake/curated/churn_features/dt=2026-11-26/"
    assert version_location(partition, "v1") == "s3://lake/curated/churn_features/dt=2026-11-26/version=v1/"
    with pytest.raises(ValueError, match="not a dt= partition"):
        version_location("s3://lake/curated/churn_features/", "v1")
    with pytest.raises(ValueError, match="without '/'"):
        version_location(partition, "../v1")
