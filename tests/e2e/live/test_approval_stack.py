"""A person decides in a real local stack, through Airflow's REST API, as the Required Actions page does:
``churn_train_deploy`` for a day that is not the newest published one never promotes by policy; it asks,
waits, and deploys only after ``PATCH …/hitlDetails`` answers ``Approve``. A built-in XGBoost challenger
the evaluation cannot score with the script-mode champion is asked about too; ``Reject`` leaves production
as it was. Each answer, who gave it and why land in the model registry."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.live_stack import LIVE_DAYS, run_report, wait_for_run

pytestmark = pytest.mark.e2e

OLD, NEWER = LIVE_DAYS["approval"]
PERSON_DELAY_S = 8
DAG = "churn_train_deploy"


def wait_for_task_state(live, run_id: str, task_id: str, state: str, timeout_s: float) -> dict:
    api = live["api"]
    deadline, seen = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        seen = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG, run_id)}
        if seen.get(task_id) == state:
            if state == "awaiting_input":
                # Answer as a person would, not within milliseconds: an answer that reaches Airflow 3.3.2
                # before the executor has reported the paused attempt's exit makes the scheduler see the
                # resumed task as "changed externally" and retry it; the retry then asks again and the
                # answer is lost (what this test's CI run hit, diagnosed from the task logs).
                time.sleep(PERSON_DELAY_S)
            return seen
        if any(s in ("failed", "upstream_failed") for s in seen.values()):
            break
        time.sleep(3)
    raise AssertionError(f"{task_id} never reached {state}: " + run_report(api, live["stack"], DAG, run_id))


def test_a_person_approves_an_old_day_and_rejects_an_uncompared_challenger(live) -> None:
    from devstack import stack as local_stack
    from sagelake.config.settings import default_params, deployment_settings
    from sagelake.lake import catalog
    from sagelake.lake.layout import Lake
    from tests.support.lake_days import features, publish_day

    api, s3 = live["api"], live["s3"]
    session = local_stack.boto3_session()
    glue = session.client("glue", endpoint_url=live["stack"].control_plane_url)
    sagemaker = session.client("sagemaker", endpoint_url=live["stack"].control_plane_url)
    params, deployment = default_params(), deployment_settings()
    database, lake = params["glue_database"], Lake(params["bucket"])
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    for seed, dt in enumerate((OLD, NEWER), start=1):
        publish_day(s3, glue, database, lake, dt, features(600, seed))
    # the policy is the deployment's Variable; this one lets any first model pass the floor
    api.set_variable("sagelake_approval_policy", json.dumps({"floor": 0.0}))
    api.wait_for_dag(DAG)
    api.unpause(DAG)

    run_id = "approval-e2e-old-day"
    api.trigger(DAG, run_id, {"dt": OLD})
    states = wait_for_task_state(live, run_id, "ask_a_person", "awaiting_input", timeout_s=600)
    assert (states["approved_by_policy"], states["rejected"]) == ("skipped", "skipped")
    request = api.hitl_detail(DAG, run_id, "ask_a_person")
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert f"dt={OLD} is not the newest published partition ({NEWER})" in request["body"]
    assert "| auc |" in request["body"] and "report.html" in request["body"]
    group = deployment["model_package_group"]
    pending = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in pending] == ["PendingManualApproval"]
    with pytest.raises(Exception, match="Could not find endpoint"):  # nothing deployed while it waits
        sagemaker.describe_endpoint(EndpointName=deployment["endpoint_name"])

    api.respond(DAG, run_id, "ask_a_person", "Approve", {"reason": "backfill checked against the report"})
    run = wait_for_run(api, DAG, run_id, timeout_s=600)
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG, run_id)}
    assert run["state"] == "success", run_report(api, live["stack"], DAG, run_id)
    assert (states["promote"], states["deploy"], states["smoke_test"]) == ("success",) * 3
    package = sagemaker.describe_model_package(ModelPackageName=pending[0]["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == (
        f"approved by {local_stack.LOCAL_USER} in the Airflow UI: backfill checked against the report"
    )
    endpoint = sagemaker.describe_endpoint(EndpointName=deployment["endpoint_name"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    containers = package["InferenceSpecification"]["Containers"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == containers[0]["ModelDataUrl"]

    # The newest day with built-in XGBoost: no container scores it with the script-mode champion, so the
    # policy cannot compare them and asks; a person rejects; production keeps serving the champion.
    run_id = "approval-e2e-xgboost"
    api.trigger(DAG, run_id, {"dt": NEWER, "algorithm": "xgboost"})
    wait_for_task_state(live, run_id, "ask_a_person", "awaiting_input", timeout_s=600)
    request = api.hitl_detail(DAG, run_id, "ask_a_person")
    assert (
        f"production serves {containers[0]['ModelDataUrl']}, which the evaluation did not score"
        in (request["body"])
    )
    api.respond(DAG, run_id, "ask_a_person", "Reject", {"reason": "keep the champion until compared"})
    run = wait_for_run(api, DAG, run_id, timeout_s=600)
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG, run_id)}
    assert run["state"] == "success", run_report(api, live["stack"], DAG, run_id)
    assert (states["promote"], states["deploy"], states["smoke_test"]) == ("skipped",) * 3
    packages = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    rejected = [p for p in packages if p["ModelPackageArn"] != pending[0]["ModelPackageArn"]]
    described = sagemaker.describe_model_package(ModelPackageName=rejected[0]["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"].startswith(
        f"rejected by {local_stack.LOCAL_USER} in the Airflow UI"
    )
    still = sagemaker.describe_endpoint(EndpointName=deployment["endpoint_name"])
    assert still["EndpointConfigName"] == endpoint["EndpointConfigName"]
