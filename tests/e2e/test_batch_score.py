"""End to end: ``churn_batch_score`` runs for real against a local control plane and endpoint server.

A published ``churn_features`` day and a production endpoint serving a real ``train.py`` model: the DAG's
published ``churn_scores`` partition holds every customer once, and each batch score equals the endpoint's
answer for the same row; a rerun publishes a new version and deletes the old; without a production endpoint
the run skips and publishes nothing.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime

import boto3
import pyarrow.parquet as pq
import pytest

from sagelake.lake.catalog import register_partitions
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.lake.publish import publish, published, version_location
from sagelake.ml.batch import SCORES_TABLE, scores_partition
from tests.support.constants import REGION, ROOT, SKLEARN_IMAGE_URI
from tests.support.pipeline import use_local_target
from tests.support.serving import deploy, put, register_approved, train_script_model
from tests.support.training_data import synthetic_features

pytestmark = pytest.mark.e2e

DT = "2026-10-15"  # a day no other end-to-end test publishes


@pytest.fixture(scope="module")
def stack(control_plane_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Endpoint server, metadata DB and aws_default for the local target; a bucket and Glue database of the
    module's own with one published features day; a production endpoint and registry group of its own."""
    from sagelake.local import endpoint_server

    mp = pytest.MonkeyPatch()
    use_local_target(mp, control_plane_url)
    server = endpoint_server.serve(
        "127.0.0.1", 0, control_plane_url, tmp_path_factory.mktemp("endpoint-cache"), REGION
    )
    endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    use_local_target(mp, control_plane_url, endpoint_url)
    tag = uuid.uuid4().hex[:8]
    session = boto3.Session(region_name=REGION)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    glue = session.client("glue", endpoint_url=control_plane_url)
    sagemaker = session.client("sagemaker", endpoint_url=control_plane_url)
    bucket, database = f"batch-{tag}", f"batch_{tag}"
    s3.create_bucket(Bucket=bucket)
    lake = Lake(bucket)

    features = synthetic_features(650, 21)  # two JSON lines of instances
    body = io.BytesIO()
    features.to_parquet(body, index=False)
    location = version_location(lake.curated_features(DT), "v1")
    put(s3, bucket, split_s3_uri(location)[1] + "part-00000.snappy.parquet", body.getvalue())
    register_partitions(glue, database, lake, DT, [])
    publish(glue, database, {"churn_features": location}, DT, version="v1", fingerprint="f", run_id="setup")

    model_url = train_script_model(s3, bucket, tmp_path_factory.mktemp("train"), f"churn-{tag}")
    endpoint, group = f"prod-{tag}", f"group-{tag}"
    deploy(sagemaker, endpoint, SKLEARN_IMAGE_URI, model_url)
    package = register_approved(sagemaker, group, SKLEARN_IMAGE_URI, model_url)
    mp.setenv("SAGELAKE_ENDPOINT", endpoint)  # deployment settings, read when the DAG file is parsed
    mp.setenv("SAGELAKE_MODEL_PACKAGE_GROUP", group)
    yield {
        "mp": mp,
        "s3": s3,
        "glue": glue,
        "sagemaker": sagemaker,
        "runtime": session.client("sagemaker-runtime", endpoint_url=endpoint_url),
        "bucket": bucket,
        "database": database,
        "features": features,
        "endpoint": endpoint,
        "model_url": model_url,
        "package": package,
    }
    server.shutdown()
    mp.undo()


def run_dag(stack) -> object:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "churn_batch_score.py"))
    assert bag.import_errors == {}
    conf = {"dt": DT, "bucket": stack["bucket"], "glue_database": stack["database"]}
    return bag.dags["churn_batch_score"].test(logical_date=datetime.now(UTC), run_conf=conf)


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def keys_under(s3, uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(uri)
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def published_scores(stack):
    current = published(stack["glue"], stack["database"], SCORES_TABLE, DT)
    if current is None:
        return None, None
    bucket, prefix = split_s3_uri(current.location)
    (key,) = [k for k in keys_under(stack["s3"], current.location) if k.endswith(".parquet")]
    table = pq.read_table(io.BytesIO(stack["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()))
    return current, table.to_pandas()


def endpoint_answers(stack, frame) -> list[float]:
    """What the production endpoint answers for ``frame``'s rows, asked one customer at a time."""
    answers = []
    for row in frame.drop(columns=["customer_id", "churned"]).to_dict(orient="records"):
        response = stack["runtime"].invoke_endpoint(
            EndpointName=stack["endpoint"],
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps({"instances": [row]}),
        )
        answers.append(json.loads(response["Body"].read())["predictions"][0]["churn_probability"])
    return answers


def test_batch_scores_equal_the_endpoints_answers_and_are_published(stack) -> None:
    run = run_dag(stack)
    assert str(run.state) == "success", states(run)

    current, scores = published_scores(stack)
    assert current.location.startswith(scores_partition(stack["bucket"], DT) + "version=")
    features = stack["features"]
    assert scores["customer_id"].tolist() == features["customer_id"].tolist()  # every customer, once
    assert scores["churn_probability"].tolist() == endpoint_answers(stack, features)
    assert set(scores["model_url"]) == {stack["model_url"]}
    assert set(scores["model_package_arn"]) == {stack["package"]}
    (job,) = set(scores["transform_job"])
    described = stack["sagemaker"].describe_transform_job(TransformJobName=job)
    assert described["TransformJobStatus"] == "Completed"
    assert described["ModelName"] == stack["endpoint"]  # the model production serves
    assert keys_under(stack["s3"], f"s3://{stack['bucket']}/batch/") == []  # the run's scratch is gone

    rerun = run_dag(stack)
    assert str(rerun.state) == "success", states(rerun)
    again, rescored = published_scores(stack)
    assert again.version != current.version
    assert rescored["churn_probability"].tolist() == scores["churn_probability"].tolist()
    partition_keys = keys_under(stack["s3"], scores_partition(stack["bucket"], DT))
    assert {k.split("version=")[1].split("/")[0] for k in partition_keys} == {again.version}  # old deleted


def test_without_a_production_endpoint_the_run_skips(stack) -> None:
    stack["mp"].setenv("SAGELAKE_ENDPOINT", f"nothing-{uuid.uuid4().hex[:6]}")
    try:
        before = published(stack["glue"], stack["database"], SCORES_TABLE, DT)
        run = run_dag(stack)
        assert str(run.state) == "success", states(run)
        assert states(run)["transform_input"] == "skipped"
        assert states(run)["publish_scores"] == "skipped"
        assert published(stack["glue"], stack["database"], SCORES_TABLE, DT) == before
    finally:
        stack["mp"].setenv("SAGELAKE_ENDPOINT", stack["endpoint"])
