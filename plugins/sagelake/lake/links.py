"""Links a person opens: reports in the lake (a data profile, a model evaluation)."""

from __future__ import annotations

from typing import Any

from sagelake.lake.layout import split_s3_uri

REPORT_LINK_SECONDS = 7 * 24 * 3600  # a presigned URL's longest life


def console_url(bucket: str, key: str, region: str | None) -> str:
    """The S3 console page of an object (where the report can be opened on AWS)."""
    region_arg = f"region={region}&" if region else ""
    return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?{region_arg}prefix={key}"


def report_link(s3: Any, uri: str, region: str | None, *, local: bool) -> str:
    """Where a person opens the object ``uri``: on AWS its S3 console page; locally a presigned URL the
    control plane serves (its objects are private, as on AWS), valid for a week."""
    bucket, key = split_s3_uri(uri)
    if not local:
        return console_url(bucket, key, region)
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=REPORT_LINK_SECONDS
    )
