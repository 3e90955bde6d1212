"""Staging an S3 prefix as a folder: keys below the prefix's last '/', folder markers skipped, no escapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagelake.local.s3_files import KeyEscapesError, download_prefix


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_paginator(self, name: str):
        objects = self.objects

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str):  # noqa: N803 (boto3's names)
                yield {"Contents": [{"Key": k} for k in sorted(objects) if k.startswith(Prefix)]}

        return Paginator()

    def download_file(self, bucket: str, key: str, target: str) -> None:
        Path(target).write_bytes(self.objects[key])


def test_keys_keep_their_path_below_the_prefix(tmp_path: Path) -> None:
    s3 = FakeS3({"d/train/a.csv": b"1", "d/train/sub/b.csv": b"2", "d/train/sub/": b"", "d/other.csv": b"x"})
    assert download_prefix(s3, "s3://b/d/train/", tmp_path) == 2
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv")) == [
        "a.csv",
        "sub/b.csv",
    ]
    # a prefix that is not a folder keeps the part after its last '/' (SageMaker's rule)
    assert download_prefix(s3, "s3://b/d/tra", tmp_path / "partial") == 2
    assert (tmp_path / "partial" / "train" / "sub" / "b.csv").read_bytes() == b"2"


def test_a_key_that_would_escape_the_folder_is_refused(tmp_path: Path) -> None:
    s3 = FakeS3({"d/train/../../../etc/passwd": b"no"})
    with pytest.raises(KeyEscapesError, match="escapes"):
        download_prefix(s3, "s3://b/d/train/", tmp_path / "dest")
    assert not (tmp_path / "etc").exists()
