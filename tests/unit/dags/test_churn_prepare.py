"""churn_prepare's shape: write–audit–publish in as few scheduling hops as it takes, and a failed audit
fails the run while the clean-up after it runs only then."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.support.constants import ROOT


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(ROOT / "dags" / "churn_prepare.py"))
    assert bag.import_errors == {}
    return bag.dags["churn_prepare"]


def test_the_critical_path_is_sensor_plan_etl_checks_publish(dag) -> None:
    downstream = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    checks = sorted(t for t in downstream if t.startswith("check_"))
    assert downstream["wait_for_raw_files"] == ["plan_partition"]
    assert downstream["plan_partition"] == ["glue_churn_features", "input_unchanged"]
    assert downstream["glue_churn_features"] == sorted([*checks, "abandon_partition"])
    assert all(downstream[c] == ["abandon_partition", "publish_partition"] for c in checks)


def test_publish_is_a_leaf_and_the_clean_up_runs_only_after_a_failure(dag) -> None:
    leaves = {t.task_id for t in dag.leaves}
    assert leaves == {"publish_partition", "abandon_partition", "input_unchanged"}
    abandon = dag.get_task("abandon_partition")
    assert abandon.trigger_rule == "one_failed"
    assert not abandon.is_teardown  # a teardown would cost a scheduling hop on every successful run
    assert dag.get_task("publish_partition").on_failure_callback  # frees the day if publishing fails
