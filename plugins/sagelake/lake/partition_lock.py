"""One run per partition: a lease in S3, taken and handed over with conditional writes.

The lock of partition ``dt`` of a dataset is the object ``locks/<dataset>/dt=<dt>.json`` in the lake bucket.
It is created with ``If-None-Match: *`` (only one writer can create it), renewed or taken over with
``If-Match: <etag>`` (only the writer that read that version can replace it), and deleted by its holder.
A holder that dies (a killed worker) leaves a lease that expires; a retry of the same run takes its own
lease back at once. S3 has offered these conditional writes since 2024; the local control plane serialises
them (``sagelake.local.control_plane``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake.layout import check_dt

LOCK_PREFIX = "locks"
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict")


@dataclass(frozen=True)
class Lease:
    """Who holds a partition and until when."""

    owner: str
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def to_json(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires_at": self.expires_at.isoformat()}).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Lease:
        data = json.loads(body)
        return cls(str(data["owner"]), datetime.fromisoformat(data["expires_at"]))


@dataclass(frozen=True)
class Claim:
    """The outcome of one attempt to take a partition: taken, or held by ``holder``."""

    acquired: bool
    holder: Lease


def lock_key(dataset: str, dt: str) -> str:
    """The S3 key of the lock of partition ``dt`` of ``dataset``."""
    if not dataset or "/" in dataset:
        raise ValueError(f"dataset name {dataset!r} must be a non-empty name without '/'")
    return f"{LOCK_PREFIX}/{dataset}/dt={check_dt(dt)}.json"


def _read(s3: Any, bucket: str, key: str) -> tuple[Lease, str] | None:
    try:
        got = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if has_code(error, "NoSuchKey", "404"):
            return None
        raise
    return Lease.from_json(got["Body"].read()), got["ETag"]


def try_acquire(
    s3: Any, bucket: str, key: str, owner: str, lease: timedelta, now: datetime | None = None
) -> Claim:
    """Take the lock for ``owner`` if it is free, expired or already ``owner``'s; never wait."""
    now = now or datetime.now(UTC)
    mine = Lease(owner, now + lease)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=mine.to_json(), IfNoneMatch="*")
        return Claim(True, mine)
    except ClientError as error:
        if not has_code(error, *_CONFLICT):
            raise
    current = _read(s3, bucket, key)
    if current is None:  # released between our two calls: try once more from the start
        return try_acquire(s3, bucket, key, owner, lease, now)
    held, etag = current
    if held.owner != owner and not held.expired(now):
        return Claim(False, held)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=mine.to_json(), IfMatch=etag)
    except ClientError as error:
        if has_code(error, *_CONFLICT, "NoSuchKey"):  # someone else took it over first
            again = _read(s3, bucket, key)
            return Claim(False, again[0] if again else held)
        raise
    return Claim(True, mine)


def holds(s3: Any, bucket: str, key: str, owner: str) -> bool:
    """Whether ``owner`` holds the lock now (expired or not: nobody has taken it over)."""
    current = _read(s3, bucket, key)
    return current is not None and current[0].owner == owner


def release(s3: Any, bucket: str, key: str, owner: str) -> bool:
    """Delete the lock if ``owner`` holds it; return whether it did. Another holder's lock is left alone."""
    current = _read(s3, bucket, key)
    if current is None or current[0].owner != owner:
        return False
    try:
        s3.delete_object(Bucket=bucket, Key=key, IfMatch=current[1])
    except ClientError as error:
        if has_code(error, *_CONFLICT, "NoSuchKey"):
            return False
        raise
    return True
