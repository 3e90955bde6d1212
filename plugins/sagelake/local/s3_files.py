"""S3 prefixes as local folders, as SageMaker stages channels and processing inputs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sagelake.lake.layout import split_s3_uri


class KeyEscapesError(ValueError):
    """An object key would be written outside the destination folder (``..`` in the key)."""


def list_keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Every object key under ``prefix`` (folder markers ending in ``/`` left out)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):
                yield obj["Key"]


def download_prefix(s3: Any, uri: str, dest: Path) -> int:
    """Download every object under ``uri`` into ``dest``, keeping each key's path below the prefix's last
    ``/`` (as SageMaker does); return how many files. :class:`KeyEscapesError` names a key that would
    land outside ``dest``."""
    bucket, prefix = split_s3_uri(uri)
    base = prefix[: prefix.rfind("/") + 1]
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    count = 0
    for key in list_keys(s3, bucket, prefix):
        target = (dest / key[len(base) :]).resolve()
        if root not in target.parents:
            raise KeyEscapesError(f"object key {key!r} escapes {dest}")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
        count += 1
    return count
