"""AWS error codes of botocore's ``ClientError``: the one place that reads them."""

from __future__ import annotations

from botocore.exceptions import ClientError


def error_code(error: ClientError) -> str:
    """The AWS error code of ``error`` (``"ValidationException"``, ``"NoSuchKey"``…); ``""`` if absent."""
    return str((error.response or {}).get("Error", {}).get("Code", ""))


def has_code(error: ClientError, *codes: str) -> bool:
    """Whether ``error`` carries one of ``codes``."""
    return error_code(error) in codes
