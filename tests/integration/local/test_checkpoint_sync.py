"""SageMaker's checkpoint sync, locally, against the control plane's S3: restore, upload as files appear
or change, mirror deletions, skip temporary files, leave other prefixes alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sagelake.local.checkpoint_sync import CheckpointPlan, CheckpointSync, synced_checkpoints

PREFIX = "checkpoints/job-1/"


def keys(s3, bucket: str, prefix: str = "checkpoints/") -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def test_restore_then_mirror_uploads_changes_and_deletions(s3, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}old.bin", Body=b"old")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}sub/kept.bin", Body=b"kept")
    s3.put_object(Bucket=bucket, Key="checkpoints/job-10/other.bin", Body=b"other job")
    local = tmp_path / "checkpoints"
    local.mkdir()
    (local / "stale.bin").write_bytes(b"from an earlier run of this work dir")

    sync = CheckpointSync(s3, local, f"s3://{bucket}/{PREFIX}")
    assert sync.restore() == 2
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == [
        "old.bin",
        "sub/kept.bin",
    ]
    sync.sync_once()
    assert sync.uploaded == 0  # what was restored is not uploaded again

    (local / "new.bin").write_bytes(b"new")
    (local / "half.sagemaker-ignore").write_bytes(b"being written")
    (local / "old.bin").unlink()
    (local / "sub" / "kept.bin").write_bytes(b"changed!")
    os.utime(local / "sub" / "kept.bin", ns=(1, 1))  # a new mtime even on a coarse clock
    sync.sync_once()
    assert keys(s3, bucket) == {
        f"{PREFIX}new.bin": b"new",
        f"{PREFIX}sub/kept.bin": b"changed!",
        "checkpoints/job-10/other.bin": b"other job",
    }
    assert (sync.uploaded, sync.deleted) == (2, 1)


def test_the_last_pass_runs_even_when_the_block_fails(s3, bucket: str, tmp_path: Path) -> None:
    plan = CheckpointPlan(f"s3://{bucket}/{PREFIX}", "/opt/ml/checkpoints")
    with (
        pytest.raises(RuntimeError, match="killed"),
        synced_checkpoints(s3, plan, tmp_path, "job-1") as local,
    ):
        assert local == tmp_path / "checkpoints"
        (local / "checkpoint-1").write_bytes(b"state")
        raise RuntimeError("killed")
    assert keys(s3, bucket) == {f"{PREFIX}checkpoint-1": b"state"}


def test_no_plan_syncs_nothing(s3, bucket: str, tmp_path: Path) -> None:
    with synced_checkpoints(s3, None, tmp_path, "job-1") as local:
        assert local is None
    assert keys(s3, bucket) == {}
