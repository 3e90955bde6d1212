"""End to end: ``churn_ab_test`` runs for real against a local control plane and endpoint server.

A production endpoint serving a real ``train.py`` model (the champion) and an Approved challenger: while
the run observes, customers of a published ``churn_features`` day are scored through the endpoint; the
comparison reports each variant's CloudWatch metrics and the outcome test on the captured predictions
joined with those customers' labels, and — the challenger not winning — the endpoint ends on the champion
alone, autoscaled. A version that is not Approved is refused before anything changes.
"""

from __future__ import annotations

import io
import json
import threading
import uuid

import boto3
import pytest

from sagelake.lake.catalog import register_partitions
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.lake.publish import publish, version_location
from sagelake.ml.ab_testing import CHALLENGER, CHALLENGER_WINS, CHAMPION, PRIMARY
from tests.support.constants import REGION, ROOT, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.pipeline import use_local_target
from tests.support.serving import deploy, put, register_version, train_script_model
from tests.support.training_data import synthetic_features

pytestmark = pytest.mark.e2e

DT = "2026-10-16"  # the labels' day: no other end-to-end test publishes it


@pytest.fixture(scope="module")
def stack(control_plane_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Endpoint server, metadata DB and aws_default for the local target; a bucket and Glue database of the
    module's own with one published (labelled) features day; a production endpoint on the champion; an
    Approved challenger and a pending version. Settings: a 50/50 split observed for one minute."""
    from sagelake.local import endpoint_server

    mp = pytest.MonkeyPatch()
    use_local_target(mp, control_plane_url)
    server = endpoint_server.serve(
        "127.0.0.1",
        0,
        control_plane_url,
        tmp_path_factory.mktemp("endpoint-cache"),
        REGION,
        metrics_flush_seconds=1.0,
    )
    endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    use_local_target(mp, control_plane_url, endpoint_url)
    tag = uuid.uuid4().hex[:8]
    session = boto3.Session(region_name=REGION)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    glue = session.client("glue", endpoint_url=control_plane_url)
    sagemaker = session.client("sagemaker", endpoint_url=control_plane_url)
    bucket, database = f"ab-{tag}", f"ab_{tag}"
    s3.create_bucket(Bucket=bucket)
    lake = Lake(bucket)
    features = synthetic_features(300, 31)
    body = io.BytesIO()
    features.to_parquet(body, index=False)
    location = version_location(lake.curated_features(DT), "v1")
    put(s3, bucket, split_s3_uri(location)[1] + "part-00000.snappy.parquet", body.getvalue())
    register_partitions(glue, database, lake, DT, [])
    publish(glue, database, {"churn_features": location}, DT, version="v1", fingerprint="f", run_id="setup")

    champion_url = train_script_model(
        s3, bucket, tmp_path_factory.mktemp("champion"), f"champion-{tag}", rows=400
    )
    challenger_url = train_script_model(
        s3, bucket, tmp_path_factory.mktemp("challenger"), f"challenger-{tag}", rows=120
    )
    endpoint = f"prod-{tag}"
    deploy(sagemaker, endpoint, SKLEARN_IMAGE_URI, champion_url)  # the champion, variant "primary"
    for name, value in {
        "SAGELAKE_ENDPOINT": endpoint,  # deployment settings, read when the DAG file is parsed
        "SAGELAKE_MODEL_PACKAGE_GROUP": f"group-{tag}",
        "SAGELAKE_DATA_CAPTURE_URI": f"s3://{bucket}/capture/",
        "SAGELAKE_AB_CHALLENGER_WEIGHT": "0.5",
        "SAGELAKE_AB_OBSERVATION_MINUTES": "1",
        "SAGELAKE_AB_MIN_SAMPLES": "20",
        "SAGELAKE_AB_ALPHA": "0.001",  # a chance "win" of the weaker challenger stays unlikely
        "SAGELAKE_DEPLOY_ROLLBACK_ALARMS": "none",
        "SAGELAKE_SAGEMAKER_ROLE": SAGEMAKER_ROLE_ARN,  # an ARN: no IAM role to look up
    }.items():
        mp.setenv(name, value)
    yield {
        "s3": s3,
        "sagemaker": sagemaker,
        "autoscaling": session.client("application-autoscaling", endpoint_url=control_plane_url),
        "runtime": session.client("sagemaker-runtime", endpoint_url=endpoint_url),
        "bucket": bucket,
        "database": database,
        "features": features,
        "endpoint": endpoint,
        "champion_url": champion_url,
        "challenger": register_version(sagemaker, SKLEARN_IMAGE_URI, challenger_url),
        # the same artefact as a version no one approved yet: the DAG must refuse it by its status alone
        "pending": register_version(sagemaker, SKLEARN_IMAGE_URI, challenger_url, "PendingManualApproval"),
    }
    server.shutdown()
    mp.undo()


def run_dag(stack, package_arn: str) -> object:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "churn_ab_test.py"))
    assert bag.import_errors == {}
    conf = {
        "model_package_arn": package_arn,
        "labels_dt": DT,
        "bucket": stack["bucket"],
        "glue_database": stack["database"],
    }
    return bag.dags["churn_ab_test"].test(run_conf=conf)


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def live_variants(stack) -> list[dict]:
    described = stack["sagemaker"].describe_endpoint(EndpointName=stack["endpoint"])
    config = stack["sagemaker"].describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    return config["ProductionVariants"]


def test_a_version_that_is_not_approved_is_refused_before_anything_changes(stack) -> None:
    before = live_variants(stack)
    run = run_dag(stack, stack["pending"])
    assert states(run)["plan"] == "failed"
    assert states(run)["start_ab_test"] == "upstream_failed"
    assert live_variants(stack) == before


def test_an_ab_test_compares_the_variants_and_ends_on_the_champion(stack) -> None:
    rows = stack["features"].drop(columns=["churned"]).to_dict(orient="records")
    stop, answered = threading.Event(), []

    def traffic() -> None:  # production traffic while the run observes, customer ids included
        i = 0
        while not stop.wait(0.1):  # ≈10 requests a second: hundreds per variant in the minute
            try:
                answer = stack["runtime"].invoke_endpoint(
                    EndpointName=stack["endpoint"],
                    ContentType="application/json",
                    Accept="application/json",
                    Body=json.dumps({"instances": [rows[i % len(rows)]]}),
                )
                answered.append(answer["InvokedProductionVariant"])
            except Exception:  # an endpoint switching config: the next request is served
                pass
            i += 1

    client = threading.Thread(target=traffic, daemon=True)
    client.start()
    try:
        run = run_dag(stack, stack["challenger"])
    finally:
        stop.set()
        client.join()
    state = states(run)
    assert state["compare_variants"] == "success", state
    ti = next(t for t in run.get_task_instances() if t.task_id == "compare_variants")
    verdict = ti.xcom_pull(task_ids="compare_variants", key="verdict")
    metrics = ti.xcom_pull(task_ids="compare_variants", key="metrics")
    test = ti.xcom_pull(task_ids="compare_variants", key="test")
    assert {CHAMPION, CHALLENGER} <= set(answered)
    assert metrics[CHAMPION]["Invocations"] > 0 and metrics[CHALLENGER]["Invocations"] > 0
    assert metrics[CHAMPION]["ModelLatencyMeanMs"] > 0
    # both variants answered more than the minimum of labelled customers: a real test was made
    assert test["champion_n"] >= 20 and test["challenger_n"] >= 20 and test["p_value"] is not None
    assert verdict != CHALLENGER_WINS, test
    assert state["ask_to_promote"] == "skipped" and state["keep_champion"] == "success"
    assert state["back_to_champion"] == "success" and state["autoscale"] == "success"
    [variant] = live_variants(stack)
    model = stack["sagemaker"].describe_model(ModelName=variant["ModelName"])
    assert variant["VariantName"] == PRIMARY
    assert model["PrimaryContainer"]["ModelDataUrl"] == stack["champion_url"]
    targets = stack["autoscaling"].describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert f"endpoint/{stack['endpoint']}/variant/{PRIMARY}" in [t["ResourceId"] for t in targets]
