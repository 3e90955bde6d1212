"""Names of AWS resources, derived from the run so that retries, clears and backfills never collide.

``resource_name`` is stable for a run (partition + a hash of the run id); ``unique_name`` turns it into a
name not taken yet when a retry finds the first one used (SageMaker job names cannot be reused).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sagelake.lake.layout import check_dt

MAX_NAME_LEN = 63  # SageMaker resource names: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
MAX_ATTEMPTS = 99


def run_suffix(run_id: str) -> str:
    """A short, stable hash of an Airflow run id."""
    return hashlib.sha1(run_id.encode()).hexdigest()[:8]


def resource_name(prefix: str, dt: str, run_id: str, *extra: str | int) -> str:
    """``{prefix}-{yyyymmdd}-{runhash}[-extra…]``, valid as a SageMaker name (≤ 63 chars, [a-zA-Z0-9-])."""
    parts = [prefix, check_dt(dt).replace("-", ""), run_suffix(run_id), *map(str, extra)]
    name = "-".join(parts)
    if len(name) > MAX_NAME_LEN:
        raise ValueError(
            f"resource name {name!r} is longer than {MAX_NAME_LEN} characters; use a shorter prefix"
        )
    return name


def unique_name(base: str, taken: Callable[[str], bool]) -> str:
    """``base`` if it is free, else ``base-r2``, ``base-r3``… (the first free one, within 63 characters).

    ``taken(name)`` says whether a resource of that name exists already (e.g. a describe call).
    """
    if not taken(base):
        return base
    for attempt in range(2, MAX_ATTEMPTS + 1):
        suffix = f"-r{attempt}"
        name = base[: MAX_NAME_LEN - len(suffix)].rstrip("-") + suffix
        if not taken(name):
            return name
    raise ValueError(f"{MAX_ATTEMPTS} names derived from {base!r} are all taken: clean up old resources")


NOT_FOUND_CODE = "ValidationException"  # SageMaker's (and moto's) answer to a Describe* of an unknown name


def free_name(
    base: str,
    describe: Callable[[str], Any],
    *,
    fail_if_exists: bool,
    kind: str,
    error: type[Exception] = ValueError,
) -> str:
    """The name to create SageMaker ``kind`` ``base`` under: ``base`` if ``describe(base)`` finds nothing,
    else ``base-r2``, ``base-r3``… (:func:`unique_name`); with ``fail_if_exists`` a taken ``base`` raises
    ``error`` instead. SageMaker names can never be reused. Errors other than not-found propagate."""
    from botocore.exceptions import ClientError

    from sagelake.aws_errors import has_code

    def taken(name: str) -> bool:
        try:
            describe(name)
        except ClientError as exc:
            if has_code(exc, NOT_FOUND_CODE):
                return False
            raise
        return True

    if not fail_if_exists:
        return unique_name(base, taken)
    if taken(base):
        raise error(f"A SageMaker {kind} named {base!r} already exists and its action is 'fail'")
    return base
