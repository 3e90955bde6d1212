"""The partition lock on the control plane's S3: one holder at a time, leases, hand-over, release."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from sagelake.lake.partition_lock import Lease, holds, lock_key, release, try_acquire

LEASE = timedelta(minutes=30)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture()
def key() -> str:
    return lock_key("churn_prepare", "2026-11-26")


def test_lock_key_names_dataset_and_partition() -> None:
    assert lock_key("churn_prepare", "2026-11-26") == "locks/churn_prepare/dt=2026-11-26.json"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        lock_key("churn_prepare", "yesterday")
    with pytest.raises(ValueError, match="without '/'"):
        lock_key("a/b", "2026-11-26")


def test_one_holder_until_release(s3, bucket, key) -> None:
    first = try_acquire(s3, bucket, key, "run-a", LEASE, NOW)
    assert first.acquired and first.holder.owner == "run-a"
    second = try_acquire(s3, bucket, key, "run-b", LEASE, NOW + timedelta(minutes=1))
    assert not second.acquired and second.holder == Lease("run-a", NOW + LEASE)
    assert (holds(s3, bucket, key, "run-a"), holds(s3, bucket, key, "run-b")) == (True, False)
    assert release(s3, bucket, key, "run-b") is False  # not b's to release
    assert try_acquire(s3, bucket, key, "run-b", LEASE, NOW).acquired is False
    assert release(s3, bucket, key, "run-a") is True
    assert holds(s3, bucket, key, "run-a") is False
    assert try_acquire(s3, bucket, key, "run-b", LEASE, NOW).acquired


def test_the_same_run_takes_its_lease_back_and_renews_it(s3, bucket, key) -> None:
    try_acquire(s3, bucket, key, "run-a", LEASE, NOW)
    retry = try_acquire(s3, bucket, key, "run-a", LEASE, NOW + timedelta(minutes=5))
    assert retry.acquired and retry.holder.expires_at == NOW + timedelta(minutes=5) + LEASE


def test_an_expired_lease_is_taken_over(s3, bucket, key) -> None:
    try_acquire(s3, bucket, key, "killed-run", LEASE, NOW)
    assert not try_acquire(s3, bucket, key, "run-b", LEASE, NOW + LEASE - timedelta(seconds=1)).acquired
    takeover = try_acquire(s3, bucket, key, "run-b", LEASE, NOW + LEASE)
    assert takeover.acquired and takeover.holder.owner == "run-b"
    assert release(s3, bucket, key, "killed-run") is False  # the old holder cannot free b's lock


def test_concurrent_claims_give_exactly_one_holder(s3, bucket, key) -> None:
    owners = [f"run-{i}" for i in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        claims = list(pool.map(lambda owner: try_acquire(s3, bucket, key, owner, LEASE), owners))
    winners = [claim.holder.owner for claim in claims if claim.acquired]
    assert len(winners) == 1
    assert {claim.holder.owner for claim in claims} == set(winners)


def test_concurrent_takeovers_of_an_expired_lease_give_one_holder(s3, bucket, key) -> None:
    try_acquire(s3, bucket, key, "killed-run", LEASE, NOW - 2 * LEASE)
    owners = [f"run-{i}" for i in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        claims = list(pool.map(lambda owner: try_acquire(s3, bucket, key, owner, LEASE, NOW), owners))
    assert len([claim for claim in claims if claim.acquired]) == 1
