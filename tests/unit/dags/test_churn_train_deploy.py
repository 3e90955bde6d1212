"""churn_train_deploy's gates are deployment settings, and its decision paths are wired as documented."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.support.constants import ROOT


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(ROOT / "dags" / "churn_train_deploy.py"))
    assert bag.import_errors == {}
    return bag.dags["churn_train_deploy"]


def test_gates_roles_and_production_are_not_run_params(dag) -> None:
    forbidden = {"min_auc", "floor", "approval_floor", "sagemaker_role", "glue_role", "endpoint_name"}
    assert not forbidden & set(dag.params.keys())
    assert dag.params.get_param("algorithm").schema["enum"] == ["sklearn", "xgboost"]


def test_the_decision_routes_to_one_of_three_paths_and_only_approvals_deploy(dag) -> None:
    assert dag.get_task("route").downstream_task_ids == {"approved_by_policy", "ask_a_person", "rejected"}
    promote = dag.get_task("promote")
    assert promote.upstream_task_ids == {"approved_by_policy", "ask_a_person"}
    assert promote.trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("rejected").downstream_task_ids == set()
    # the deployment depends on promote: a skipped promote (rejection, a person's Reject) skips it
    assert "promote" in dag.get_task("endpoint_request").upstream_task_ids
    assert dag.get_task("deploy").upstream_task_ids == {"endpoint_request"}


def test_a_person_who_does_not_answer_rejects(dag) -> None:
    ask = dag.get_task("ask_a_person")
    assert ask.defaults == ["Reject"]
    assert ask.response_timeout is not None and ask.response_timeout.total_seconds() > 0
