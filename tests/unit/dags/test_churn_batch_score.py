"""churn_batch_score reads the published features asset, scores with the provider's transform operator and
publishes the scores as an asset; the production endpoint is a deployment setting, not a run param."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag

from sagelake.operators.sagemaker_transform import SagelakeTransformOperator
from tests.support.constants import ROOT


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(ROOT / "dags" / "churn_batch_score.py"))
    assert bag.import_errors == {}
    return bag.dags["churn_batch_score"]


def test_it_runs_when_features_are_published_and_for_a_day_on_demand(dag) -> None:
    assert [asset.name for asset in dag.timetable.asset_condition.objects] == ["churn_features"]
    assert dag.params.get_param("dt").schema["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert not {"endpoint_name", "model_package_group", "sagemaker_role"} & set(dag.params.keys())


def test_prepare_request_score_publish_in_order(dag) -> None:
    assert dag.get_task("transform_input").upstream_task_ids == {"partition"}
    assert dag.get_task("transform_job").upstream_task_ids == {"transform_input", "partition"}
    score = dag.get_task("score")
    assert isinstance(score, SagelakeTransformOperator)
    assert score.deferrable and score.wait_for_completion
    assert score.upstream_task_ids == {"transform_job"}
    publish = dag.get_task("publish_scores")
    assert publish.upstream_task_ids == {"score", "transform_input", "partition"}
    assert [outlet.name for outlet in publish.outlets] == ["churn_scores"]
    assert publish.outlets[0].uri.rstrip("/").endswith("/curated/churn_scores")  # the table root
