"""Resource names derived from the run: stable per run, distinct between runs, free on a retry."""

from __future__ import annotations

import pytest

from sagelake.ml.naming import MAX_NAME_LEN, resource_name, unique_name
from tests.support.pipeline import DT, RUN_ID


def test_resource_names_derive_from_the_run_and_differ_between_runs() -> None:
    a = resource_name("churn", DT, RUN_ID)
    assert a == resource_name("churn", DT, RUN_ID)
    assert a != resource_name("churn", DT, "manual__2026-11-26T10:00:00+00:00")
    assert a.startswith("churn-20261126-") and len(a) <= 63
    with pytest.raises(ValueError, match="longer than 63"):
        resource_name("x" * 60, DT, RUN_ID)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        resource_name("churn", "26/11/2026", RUN_ID)


def test_unique_name_keeps_a_free_name_and_numbers_taken_ones() -> None:
    taken = {"churn-20261126-abcd1234", "churn-20261126-abcd1234-r2"}
    assert unique_name("churn-free", taken.__contains__) == "churn-free"
    assert unique_name("churn-20261126-abcd1234", taken.__contains__) == "churn-20261126-abcd1234-r3"


def test_unique_name_stays_within_the_sagemaker_limit() -> None:
    base = "a" * MAX_NAME_LEN
    name = unique_name(base, lambda candidate: candidate == base)
    assert name.endswith("-r2") and len(name) == MAX_NAME_LEN
    assert unique_name("x-" * 40, lambda candidate: not candidate.endswith("-r2")).endswith("x-r2")


def test_unique_name_gives_up_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="all taken"):
        unique_name("churn", lambda candidate: True)
