"""End to end: the two DAGs run for real against a local control plane on a free port.

Asserts on real outputs: curated Parquet rows published through the catalog, a model whose in-process
prediction equals the endpoint's answer over HTTP; a violated quality check that fails the run and publishes
nothing, leaving what readers see byte for byte; an unchanged input that publishes nothing new; and a
reprocessing of the same input that publishes identical rows.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.ml.images import is_builtin_xgboost_model
from sagelake.ml.training_data import serving_csv
from tests.support.constants import REGION, ROOT
from tests.support.pipeline import use_local_target

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

# GOOD_DT is the newest day any test here publishes: its model may promote by policy (an older day would
# ask a person, and dag.test() would wait for the answer)
GOOD_DT = "2026-11-25"
# this module's own catalog, registry and production endpoint on the session's control plane (the bucket and
# so the assets are shared): what other modules publish or deploy there (newer days, champions) never
# changes what is decided here; and small tuning jobs (two trials, as on the live stack)
OWN = {
    "SAGELAKE_GLUE_DATABASE": "sagelake_e2e_pipeline",
    "SAGELAKE_ENDPOINT": "sagelake-e2e-pipeline",
    "SAGELAKE_MODEL_PACKAGE_GROUP": "sagelake-e2e-pipeline",
    "SAGELAKE_TUNING_MAX_JOBS": "2",
    "SAGELAKE_TUNING_MAX_PARALLEL": "2",
}


@pytest.fixture(scope="module")
def stack(control_plane_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Metadata DB, endpoint server, bootstrap and the aws_default connection for the local target."""
    from devstack.stack import bootstrap_control_plane
    from sagelake.config.settings import default_params, deployment_settings
    from sagelake.local import endpoint_server

    mp = pytest.MonkeyPatch()
    for name, value in OWN.items():
        mp.setenv(name, value)
    use_local_target(mp, control_plane_url)  # credentials for the endpoint server too
    server = endpoint_server.serve(
        "127.0.0.1", 0, control_plane_url, tmp_path_factory.mktemp("endpoint-cache"), REGION
    )
    endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    use_local_target(mp, control_plane_url, endpoint_url)  # aws_default with sagemaker-runtime on it
    params = {**default_params(), **deployment_settings()}
    bootstrap_control_plane(
        control_plane_url, str(params["bucket"]), (params["glue_role"], params["sagemaker_role"])
    )
    session = boto3.Session(region_name=REGION)
    yield {
        "lake": Lake(str(params["bucket"])),
        "params": params,
        "s3": session.client("s3", endpoint_url=control_plane_url),
        "glue": session.client("glue", endpoint_url=control_plane_url),
        "sagemaker": session.client("sagemaker", endpoint_url=control_plane_url),
        "runtime": session.client("sagemaker-runtime", endpoint_url=endpoint_url),
        "autoscaling": session.client("application-autoscaling", endpoint_url=control_plane_url),
        "sqs": session.client("sqs", endpoint_url=control_plane_url),
        "cloudwatch": session.client("cloudwatch", endpoint_url=control_plane_url),
    }
    server.shutdown()
    mp.undo()


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py"))
    assert bag.import_errors == {}
    dag = bag.dags[dag_id]
    # Airflow 3.3.2's dag.test() cannot end a run of a DAG with a run deadline: DagRun.update_state looks
    # the alerts up by the ids the DAG processor stores, which dag.test() never stored ('dict' object has
    # no attribute 'hex'). The live-stack tests (tests/e2e/live/) run these DAGs with their deadlines
    # through a real scheduler; tests/integration/monitoring tests the alert itself.
    dag.deadline = None
    return dag


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


def run_prepare(day: datetime, **conf: object):
    return load_dag("churn_prepare").test(logical_date=day, run_conf=conf or None)


def published_features(stack, dt: str) -> tuple[str, object] | None:
    """The published location of ``churn_features`` partition ``dt`` and its rows, or None."""
    from sagelake.lake.publish import published

    current = published(stack["glue"], stack["params"]["glue_database"], "churn_features", dt)
    if current is None:
        return None
    return current.location, read_parquet_prefix(stack["s3"], current.location)


def version_of(location: str) -> str:
    """The version id of a published location ``…/version=<id>/``."""
    return location.rstrip("/").rsplit("version=", 1)[1]


def version_folders(stack, dt: str) -> set[str]:
    """The version ids with objects under the curated features of ``dt``."""
    prefix = stack["lake"].curated_features(dt)
    return {k.split("/version=")[1].split("/")[0] for k in keys_under(stack["s3"], prefix)}


def content_hash(table) -> str:
    """A hash of a table's rows, independent of file layout and row order."""
    rows = sorted(json.dumps(row, sort_keys=True, default=str) for row in table.to_pylist())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def objects(s3, uri: str) -> dict[str, bytes]:
    bucket, _ = split_s3_uri(uri)
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys_under(s3, uri)}


def test_pipeline_end_to_end(stack) -> None:
    from devstack.datagen import generate_day, land_day

    s3, lake = stack["s3"], stack["lake"]
    files = generate_day(GOOD_DT, n_customers=1200)
    land_day(s3, lake, GOOD_DT, files)

    prepare = run_prepare(datetime(2026, 11, 25, tzinfo=UTC))
    assert str(prepare.state) == "success", task_states(prepare)

    location, features = published_features(stack, GOOD_DT)
    assert location.startswith(lake.curated_features(GOOD_DT) + "version=")
    customers = files.customers_csv.decode().strip().splitlines()[1:]
    assert 0 < features.num_rows <= len(customers)
    assert features.column("customer_id").null_count == 0
    assert len(set(features.column("customer_id").to_pylist())) == features.num_rows
    assert keys_under(s3, lake.quarantine(GOOD_DT)), "bad rows were not quarantined"
    # only the published version is left; its staged twin was dropped after the audit
    assert {"/".join(k.split("/")[:4]) + "/" for k in keys_under(s3, lake.curated_features(GOOD_DT))} == {
        location.removeprefix(f"s3://{lake.bucket}/")
    }
    glue, database = stack["glue"], stack["params"]["glue_database"]
    assert glue.get_partitions(DatabaseName=database, TableName="churn_features_staged")["Partitions"] == []

    train = load_dag("churn_train_deploy").test(run_conf={"dt": GOOD_DT})
    assert str(train.state) == "success", task_states(train)

    sagemaker = stack["sagemaker"]
    group = stack["params"]["model_package_group"]
    packages = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in packages] == ["Approved"]
    states = task_states(train)
    assert (states["approved_by_policy"], states["ask_a_person"], states["rejected"]) == (
        "success",
        "skipped",
        "skipped",
    )
    package = sagemaker.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
    assert package["ApprovalDescription"].startswith("policy approve: no champion")
    # every trial of the tuning job trained for real and is tracked; the registered model is the best one
    from sagelake.config.settings import model_settings
    from sagelake.ml import tracking

    tuning = train.get_task_instance("tune").xcom_pull(task_ids="tune")["Tuning"]
    trials = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning["HyperParameterTuningJobName"]
    )["TrainingJobSummaries"]
    assert len(trials) == model_settings()["tuning_max_jobs"]
    objectives = {
        t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials
    }
    assert len(set(objectives.values())) > 1, "trials with different hyperparameters scored the same"
    lineage = tracking.read_lineage(sagemaker, packages[0]["ModelPackageArn"])
    best = tuning["BestTrainingJob"]["TrainingJobName"]
    assert lineage.training_job == best and objectives[best] == max(objectives.values())  # ties: any of them
    assert (lineage.dt, lineage.version) == (GOOD_DT, version_of(location))
    mlflow = tracking.client()
    runs = mlflow.search_runs(
        [mlflow.get_experiment_by_name(group).experiment_id],
        filter_string=f"tags.`sagelake.tuning_job` = '{tuning['HyperParameterTuningJobName']}'",
    )
    assert sorted(r.data.tags["sagelake.training_job"] for r in runs) == sorted(objectives)
    for trial in runs:  # each trial's parameters, metrics and the job's description as an artefact
        assert trial.data.params and trial.data.metrics["validation:auc"] == pytest.approx(
            objectives[trial.data.tags["sagelake.training_job"]], abs=1e-6
        )
        assert "training_job.json" in [a.path for a in mlflow.list_artifacts(trial.info.run_id)]
    run = mlflow.get_run(lineage.mlflow_run_id)
    assert run.data.metrics["validation:auc"] == pytest.approx(objectives[best], abs=1e-6)
    # the registered metrics are the held-out evaluation's, with the report the registry points to
    registered_auc = float(package["CustomerMetadataProperties"]["metric_auc"])
    assert run.data.metrics["eval_auc"] == pytest.approx(registered_auc, abs=1e-6)
    report = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    report_keys = keys_under(s3, report.rsplit("/", 1)[0] + "/")
    assert {k.rsplit("/", 1)[1] for k in report_keys} >= {"metrics.json", "report.html", "roc.png"}
    endpoint = sagemaker.describe_endpoint(EndpointName=stack["params"]["endpoint_name"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    model_url = model["PrimaryContainer"]["ModelDataUrl"]

    # what the runs published as CloudWatch metrics in the project's namespace (docs/monitoring.md)
    names = {m["MetricName"] for m in stack["cloudwatch"].list_metrics(Namespace="sagelake")["Metrics"]}
    assert {"RowsPublished", "QuarantineRatio", "CheckValue", "FailedChecks", "ModelQuality"} <= names, names
    # the new config names the one it replaced (none: a first deployment); the variant scales on invocations
    from sagelake.ml.deployment import previous_config

    assert previous_config(sagemaker, endpoint["EndpointConfigName"]) is None
    scaled = stack["autoscaling"].describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{endpoint['EndpointName']}/variant/primary"]
    )["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in scaled] == [(1, 2)]

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

    # The same day with SageMaker's built-in XGBoost, for a second production endpoint (a deployment
    # setting, so no champion there): tuned, evaluated, approved by the floor, served with text/csv.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGELAKE_ENDPOINT", "sagelake-churn-xgb")
        mp.setenv("AIRFLOW_VAR_SAGELAKE_APPROVAL_POLICY", json.dumps({"floor": 0.6}))
        second = load_dag("churn_train_deploy").test(run_conf={"dt": GOOD_DT, "algorithm": "xgboost"})
    states = task_states(second)
    assert str(second.state) == "success", states
    assert (states["approved_by_policy"], states["smoke_test"]) == ("success", "success")
    serving = sagemaker.describe_model(
        ModelName=sagemaker.describe_endpoint_config(
            EndpointConfigName=sagemaker.describe_endpoint(EndpointName="sagelake-churn-xgb")[
                "EndpointConfigName"
            ]
        )["ProductionVariants"][0]["ModelName"]
    )["PrimaryContainer"]
    assert is_builtin_xgboost_model(serving)
    answer = stack["runtime"].invoke_endpoint(
        EndpointName="sagelake-churn-xgb", ContentType="text/csv", Body=serving_csv(pd.DataFrame([instance]))
    )
    served = float(answer["Body"].read().decode())
    assert booster_probability(s3, serving["ModelDataUrl"], instance) == pytest.approx(served, rel=1e-6)
    # the first endpoint still serves the script-mode model: another endpoint, another champion
    assert (
        sagemaker.describe_endpoint(EndpointName=endpoint["EndpointName"])["EndpointConfigName"]
        == (endpoint["EndpointConfigName"])
    )


def booster_probability(s3, model_url: str, instance: dict) -> float:
    """A built-in XGBoost model's own prediction for ``instance`` (channel encoding), in this process."""
    import tempfile

    import xgboost as xgb

    from sagelake.ml.training_data import encode_features

    bucket, key = split_s3_uri(model_url)
    target = Path(tempfile.mkdtemp(prefix="xgb-"))
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        tar.extractall(target, filter="data")
    booster = xgb.Booster(model_file=str(target / "xgboost-model"))
    rows = encode_features(pd.DataFrame([instance])).to_numpy()
    return float(booster.predict(xgb.DMatrix(rows))[0])


def in_process_probability(s3, model_url: str, instance: dict) -> float:
    """The model artefact's own prediction, outside the endpoint server (in the framework environment)."""
    import tempfile

    import pandas as pd

    from tests.support.framework_scoring import score

    bucket, key = split_s3_uri(model_url)
    target = Path(tempfile.mkdtemp(prefix="model-"))
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        tar.extractall(target, filter="data")
    return score(target, pd.DataFrame([instance]))[0]


PUBLISHED_DT = "2026-11-22"


@pytest.fixture(scope="module")
def published_day(stack):
    """A day landed and published once for the tests below; each test restores its raw files."""
    from devstack.datagen import generate_day, land_day

    files = generate_day(PUBLISHED_DT, n_customers=700)
    land_day(stack["s3"], stack["lake"], PUBLISHED_DT, files)
    run = run_prepare(datetime(2026, 11, 22, tzinfo=UTC))
    assert str(run.state) == "success", task_states(run)
    return files


@pytest.fixture()
def relanded(stack, published_day):
    """Land other raw files for the published day; the original files are landed back afterwards."""
    from devstack.datagen import land_day

    yield lambda files: land_day(stack["s3"], stack["lake"], PUBLISHED_DT, files)
    land_day(stack["s3"], stack["lake"], PUBLISHED_DT, published_day)


def test_a_day_that_fails_its_audit_leaves_the_published_version_byte_for_byte(stack, relanded) -> None:
    """The published day re-landed with too few customers fails its checks: readers keep the old version,
    byte for byte, and the local Athena engine returns the same rows."""
    from devstack.datagen import generate_day

    location, before = published_features(stack, PUBLISHED_DT)
    stored, rows_before = objects(stack["s3"], location), athena_count(stack, PUBLISHED_DT)
    assert rows_before == before.num_rows

    relanded(generate_day(PUBLISHED_DT, n_customers=60, seed=1))  # far below the row-count threshold
    failed = run_prepare(datetime(2026, 11, 22, tzinfo=UTC))
    states = task_states(failed)
    assert str(failed.state) == "failed" and states["check_row_count"] == "failed", states
    assert states["publish_partition"] != "success", states
    assert states["abandon_partition"] == "success", states  # clean-up and release after the failure
    assert published_features(stack, PUBLISHED_DT)[0] == location
    assert objects(stack["s3"], location) == stored
    assert athena_count(stack, PUBLISHED_DT) == rows_before
    assert version_folders(stack, PUBLISHED_DT) == {version_of(location)}  # the rejected one was cleaned up
    # every verdict of the audit is a row of quality_results, the failed one included
    verdicts = athena_rows(
        stack,
        f"SELECT check_name, verdict FROM quality_results WHERE dt = '{PUBLISHED_DT}' "
        f"AND run_id = '{failed.run_id}' ORDER BY check_name",
    )
    assert ("row_count", "fail") in verdicts
    assert (
        len(verdicts)
        == len({name for name, _ in verdicts})
        == len([t for t in states if t.startswith("check_")])
    )
    # the failure was announced on the alerts topic: read from the queue the local stack subscribes to it
    alerts = stack["sqs"].get_queue_url(QueueName="sagelake-alerts")["QueueUrl"]
    subjects: list[str] = []
    for _ in range(5):
        for message in (
            stack["sqs"].receive_message(QueueUrl=alerts, MaxNumberOfMessages=10).get("Messages", [])
        ):
            envelope = json.loads(message["Body"])
            if failed.run_id in envelope["Message"]:
                subjects.append(envelope["Subject"])
        if subjects:
            break
    assert "sagelake: churn_prepare.check_row_count failed (try 1 of 1)" in subjects, subjects


def test_a_day_missing_a_required_column_fails_before_writing_and_changes_nothing(
    stack, published_day, relanded
) -> None:
    from dataclasses import replace

    location, _ = published_features(stack, PUBLISHED_DT)
    stored, rows_before = objects(stack["s3"], location), athena_count(stack, PUBLISHED_DT)
    header, *rows = published_day.customers_csv.decode().splitlines()
    drop = header.split(",").index("churned")
    without = [",".join(f for i, f in enumerate(line.split(",")) if i != drop) for line in [header, *rows]]
    relanded(replace(published_day, customers_csv=("\n".join(without) + "\n").encode()))

    failed = run_prepare(datetime(2026, 11, 22, tzinfo=UTC))
    states = task_states(failed)
    assert str(failed.state) == "failed" and states["glue_churn_features"] == "failed", states
    assert states["check_row_count"] != "success", states
    assert published_features(stack, PUBLISHED_DT)[0] == location
    assert objects(stack["s3"], location) == stored
    assert athena_count(stack, PUBLISHED_DT) == rows_before
    assert version_folders(stack, PUBLISHED_DT) == {version_of(location)}  # the failed one: cleaned up


def test_unchanged_input_publishes_nothing_and_reprocessing_gives_identical_rows(
    stack, published_day
) -> None:
    location, first = published_features(stack, PUBLISHED_DT)

    again = run_prepare(datetime(2026, 11, 22, tzinfo=UTC))
    states = task_states(again)
    assert str(again.state) == "success", states
    assert states["input_unchanged"] == "success" and states["glue_churn_features"] == "skipped", states
    assert states["publish_partition"] == "skipped", states
    assert published_features(stack, PUBLISHED_DT)[0] == location

    forced = run_prepare(datetime(2026, 11, 22, tzinfo=UTC), reprocess=True)
    assert str(forced.state) == "success", task_states(forced)
    new_location, second = published_features(stack, PUBLISHED_DT)
    assert new_location != location
    assert content_hash(second) == content_hash(first)
    assert keys_under(stack["s3"], location) == []  # the superseded version was cleaned up


def athena_rows(stack, sql: str) -> list[tuple]:
    """The rows of ``sql`` as the local Athena engine reads the lake through the catalog."""
    from sagelake.local.athena.engine import LocalAthenaEngine

    endpoint = stack["s3"].meta.endpoint_url
    with LocalAthenaEngine(
        stack["glue"], s3_endpoint_url=endpoint, region=REGION, access_key_id="testing", secret_access_key="t"
    ) as engine:
        return engine.execute(sql, stack["params"]["glue_database"]).rows


def athena_count(stack, dt: str) -> int:
    """``count(*)`` of the published partition, as the local Athena engine reads it through the catalog."""
    return int(athena_rows(stack, f"SELECT count(*) AS n FROM churn_features WHERE dt = '{dt}'")[0][0])


def test_the_published_day_is_profiled_and_loaded_into_the_warehouse(stack, published_day) -> None:
    """The DAGs the curated asset starts, run for the published day: a profile of exactly the published
    rows, and a warehouse day that a second load replaces instead of duplicating."""
    import duckdb

    from sagelake.config.settings import local_state_dir, warehouse_settings
    from sagelake.lake.profiles import from_document, profile_keys
    from sagelake.local.redshift.engine import database_path

    location, features = published_features(stack, PUBLISHED_DT)
    version = version_of(location)

    profiled = load_dag("lake_profile").test(run_conf={"dt": PUBLISHED_DT})
    assert str(profiled.state) == "success", task_states(profiled)
    keys = profile_keys(stack["lake"].bucket, "churn_features", PUBLISHED_DT, version)
    body = stack["s3"].get_object(Bucket=keys.bucket, Key=keys.profile_key)["Body"].read()
    profile = from_document(json.loads(body))
    assert profile.row_count == features.num_rows
    assert profile.column("customer_id").distinct == features.num_rows

    warehouse = warehouse_settings()
    path = database_path(local_state_dir(), warehouse["redshift_workgroup"], warehouse["redshift_database"])
    for _ in range(2):  # a re-run replaces the day
        loaded = load_dag("warehouse_load").test(run_conf={"dt": PUBLISHED_DT})
        assert str(loaded.state) == "success", task_states(loaded)
        with duckdb.connect(str(path), read_only=True) as con:
            table = f"public.{warehouse['warehouse_table']}"
            rows = con.execute(
                f"SELECT count(*), count(DISTINCT customer_id), min(version) FROM {table} "
                f"WHERE dt = DATE '{PUBLISHED_DT}'"
            ).fetchone()
        assert rows == (features.num_rows, features.num_rows, version)
