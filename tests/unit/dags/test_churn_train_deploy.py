"""churn_train_deploy's gates are deployment settings: a run's trigger cannot lower the approval floor."""

from __future__ import annotations

from airflow.dag_processing.dagbag import DagBag

from tests.support.constants import ROOT


def test_the_approval_floor_is_not_a_run_param() -> None:
    bag = DagBag(dag_folder=str(ROOT / "dags" / "churn_train_deploy.py"))
    assert bag.import_errors == {}
    dag = bag.dags["churn_train_deploy"]
    assert not {"min_auc", "floor", "approval_floor"} & set(dag.params.keys())
    approve = dag.get_task("approve")
    assert approve.minimum is None  # resolved at run time from the policy's deployment configuration
