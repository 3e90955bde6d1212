"""lake_discovery's shape: crawl, compare with the contracts, then a warn check of the drift it recorded."""

from __future__ import annotations

import json

import pytest
from airflow.dag_processing.dagbag import DagBag

from sagelake.config.settings import DISCOVERY_SQL_DIR, crawler_name
from sagelake.lake.discovery import DRIFT_TABLE
from sagelake.quality.checks import load_check
from tests.support.constants import ROOT
from tests.support.pipeline import DT, rendered_task


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(ROOT / "dags" / "lake_discovery.py"))
    assert bag.import_errors == {}
    return bag.dags["lake_discovery"]


def test_crawl_then_compare_then_check(dag) -> None:
    downstream = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert downstream == {
        "ensure_database": ["crawl_raw"],
        "crawl_raw": ["compare_with_contracts"],
        "compare_with_contracts": ["check_crawler_drift"],
        "check_crawler_drift": [],
    }
    assert dag.schedule == "@daily"  # manual runs take an optional dt
    assert dag.max_active_runs == 1


def test_the_crawl_renders_the_crawler_over_raw() -> None:
    crawl = rendered_task("lake_discovery.py", "lake_discovery", "crawl_raw", conf={"bucket": "b1"})
    assert crawl.config["Targets"]["S3Targets"][0]["Path"] == "s3://b1/raw/"
    assert crawl.config["TablePrefix"] == "crawled_"
    assert crawl.config["Name"] == crawler_name()
    assert json.loads(crawl.config["Configuration"])["Grouping"]["TableLevelConfiguration"] == 3
    assert crawl.deferrable


def test_the_drift_check_is_a_warn_check_of_the_days_drift() -> None:
    spec = load_check(DISCOVERY_SQL_DIR / "crawler_drift.sql")
    assert (spec.severity, spec.expectation.text) == ("warn", "value == 0")
    check = rendered_task("lake_discovery.py", "lake_discovery", "check_crawler_drift")
    assert f"FROM sagelake.{DRIFT_TABLE}" in check.query  # include/sql/discovery/, rendered
    assert f"dt = '{DT}'" in check.query
