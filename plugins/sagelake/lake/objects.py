"""Writing objects a SageMaker job reads by prefix."""

from __future__ import annotations

from typing import Any

from sagelake.lake.layout import split_s3_uri


def put_only(s3: Any, prefix_uri: str, name: str, body: bytes, content_type: str) -> str:
    """Make ``<prefix>/<name>`` the only object under ``prefix_uri`` and return its URI: SageMaker reads every
    object of a channel's or a transform input's prefix, so a stale one would be read as data."""
    bucket, prefix = split_s3_uri(prefix_uri)
    key = f"{prefix}{name}"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for stale in [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"] != key]:
        s3.delete_object(Bucket=bucket, Key=stale)
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return f"s3://{bucket}/{key}"
