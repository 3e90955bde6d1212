"""End to end: the two DAGs run for real against a local control plane on a free port.

Asserts on real outputs: curated Parquet rows, a model whose in-process prediction equals the endpoint's
answer over HTTP, and a violated quality check that fails the run without touching other partitions.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from datetime import UTC
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from sagelake.lake.layout import Lake, split_s3_uri
from tests.support.constants import REGION, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

GOOD_DT, BAD_DT = "2026-11-20", "2026-11-21"


@pytest.fixture(scope="module")
def stack(control_plane_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Metadata DB, endpoint server, bootstrap and the aws_default connection for the local target."""
    from devstack.stack import aws_connection, bootstrap_control_plane
    from sagelake.config.settings import default_params
    from sagelake.local import endpoint_server

    mp = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "SAGELAKE_TARGET": "local",
    }.items():
        mp.setenv(key, value)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    server = endpoint_server.serve(
        "127.0.0.1", 0, control_plane_url, tmp_path_factory.mktemp("endpoint-cache"), REGION
    )
    endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(control_plane_url, endpoint_url))
    params = default_params()
    bootstrap_control_plane(
        control_plane_url, str(params["bucket"]), (str(params["glue_role"]), str(params["sagemaker_role"]))
    )
    session = boto3.Session(region_name=REGION)
    yield {
        "lake": Lake(str(params["bucket"])),
        "params": params,
        "s3": session.client("s3", endpoint_url=control_plane_url),
        "sagemaker": session.client("sagemaker", endpoint_url=control_plane_url),
        "runtime": session.client("sagemaker-runtime", endpoint_url=endpoint_url),
    }
    server.shutdown()
    mp.undo()


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def keys_under(s3, uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(uri)
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def read_parquet_prefix(s3, uri: str):
    import pyarrow as pa

    bucket, _ = split_s3_uri(uri)
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
        for k in keys_under(s3, uri)
        if k.endswith(".parquet")
    ]
    return pa.concat_tables(tables)


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_pipeline_end_to_end(stack) -> None:
    from datetime import datetime

    from devstack.datagen import generate_day, land_day

    s3, lake = stack["s3"], stack["lake"]
    files = generate_day(GOOD_DT, n_customers=1200)
    land_day(s3, lake, GOOD_DT, files)

    prepare = load_dag("churn_prepare").test(logical_date=datetime(2026, 11, 20, tzinfo=UTC))
    assert str(prepare.state) == "success", task_states(prepare)

    features = read_parquet_prefix(s3, lake.curated_features(GOOD_DT))
    customers = files.customers_csv.decode().strip().splitlines()[1:]
    assert 0 < features.num_rows <= len(customers)
    assert features.column("customer_id").null_count == 0
    assert len(set(features.column("customer_id").to_pylist())) == features.num_rows
    assert keys_under(s3, lake.quarantine(GOOD_DT)), "bad rows were not quarantined"

    train = load_dag("churn_train_deploy").test(run_conf={"dt": GOOD_DT})
    assert str(train.state) == "success", task_states(train)

    sagemaker = stack["sagemaker"]
    group = stack["params"]["model_package_group"]
    packages = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in packages] == ["Approved"]
    endpoint = sagemaker.describe_endpoint(EndpointName=stack["params"]["endpoint_name"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    model_url = model["PrimaryContainer"]["ModelDataUrl"]

    # The endpoint's answer over HTTP equals the model artefact's own prediction, in-process.
    row = features.slice(0, 1).to_pylist()[0]
    instance = {k: v for k, v in row.items() if k not in ("customer_id", "churned", "dt")}
    response = stack["runtime"].invoke_endpoint(
        EndpointName=endpoint["EndpointName"],
        ContentType="application/json",
        Body=json.dumps({"instances": [instance]}),
    )
    served = json.loads(response["Body"].read())["predictions"][0]["churn_probability"]
    assert in_process_probability(s3, model_url, instance) == pytest.approx(served, rel=1e-9)


def in_process_probability(s3, model_url: str, instance: dict) -> float:
    import importlib.util
    import tempfile

    bucket, key = split_s3_uri(model_url)
    target = Path(tempfile.mkdtemp(prefix="model-"))
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        tar.extractall(target, filter="data")
    spec = importlib.util.spec_from_file_location("served_inference", target / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.model_fn(str(target))
    data = module.input_fn(json.dumps({"instances": [instance]}), "application/json")
    return float(module.predict_fn(data, model)[0])


def test_failing_quality_check_fails_the_run_and_keeps_other_partitions(stack) -> None:
    from datetime import datetime

    from devstack.datagen import generate_day, land_day

    s3, lake = stack["s3"], stack["lake"]
    before = {uri: keys_under(s3, uri) for uri in (lake.curated_features(GOOD_DT), lake.raw_events(GOOD_DT))}
    land_day(s3, lake, BAD_DT, generate_day(BAD_DT, n_customers=60))  # far below the row-count threshold

    run = load_dag("churn_prepare").test(logical_date=datetime(2026, 11, 21, tzinfo=UTC))
    states = task_states(run)
    assert str(run.state) == "failed", states
    assert states["check_row_count"] == "failed", states
    assert states["publish_curated"] != "success", states
    assert {uri: keys_under(s3, uri) for uri in before} == before
