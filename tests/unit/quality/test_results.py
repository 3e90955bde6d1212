"""Rows of the quality_results table: what a verdict records, and one object per DAG, run and check."""

from __future__ import annotations

from datetime import UTC, datetime

from sagelake.lake import catalog
from sagelake.lake.layout import Lake
from sagelake.quality import checks as quality
from sagelake.quality.results import result_row, result_uri
from tests.support.constants import CHECKS_DIR

WHEN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def row_for(value: float, run_id: str = "manual__2026-11-27T00:00:00+00:00") -> dict:
    spec = quality.load_check(CHECKS_DIR / "row_count.sql")
    return result_row(
        spec,
        quality.evaluate(spec, value),
        dag_id="churn_prepare",
        run_id=run_id,
        version="v1",
        bytes_scanned=2048,
        checked_at=WHEN,
    )


def test_a_row_has_exactly_the_catalog_columns() -> None:
    row = row_for(812)
    assert list(row) == [name for name, _ in catalog.QUALITY_RESULTS_COLUMNS]
    assert (row["check_name"], row["threshold"], row["severity"], row["verdict"]) == (
        "row_count",
        "value >= 500",
        "error",
        "pass",
    )
    assert row_for(12)["verdict"] == "fail"
    assert row["checked_at"] == "2026-11-27T12:00:00+00:00"


def test_one_object_per_dag_run_and_check_with_safe_key_characters() -> None:
    lake = Lake("lake")
    uri = result_uri(lake, "2026-11-27", row_for(812))
    assert uri == (
        "s3://lake/metrics/quality/dt=2026-11-27/"
        "churn_prepare__manual__2026-11-27T00_00_00_00_00/row_count.json"
    )
    assert result_uri(lake, "2026-11-27", row_for(1)) == uri  # same run and check: the same row
    assert result_uri(lake, "2026-11-27", row_for(812, run_id="scheduled__x")) != uri
