"""The ``aws`` target's requests, built exactly as the DAGs build them, checked against the AWS API models
(botocore's parameter validation) and accepted by the control plane (moto) — AWS exercised without AWS."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.validate import validate_parameters

from sagelake.aws_requests import (
    endpoint_request,
    glue_job_kwargs,
    model_package_extras,
    resource_name,
    training_request,
)
from sagelake.lake import Lake

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
DT = "2026-11-26"
RUN_ID = "scheduled__2026-11-26T00:00:00+00:00"


def validate(service: str, operation: str, params: dict) -> None:
    """Raise botocore's ParamValidationError unless ``params`` is a valid request of ``operation``."""
    model = boto3.client(service, region_name=REGION).meta.service_model.operation_model(operation)
    validate_parameters(params, model.input_shape)


def rendered_task(dag_file: str, dag_id: str, task_id: str, conf: dict | None = None):
    """The task with its templates rendered for a run of logical date DT, or, given ``conf``, for a run
    started by an event: no logical date (so no ``ds``), conf overriding the DAG's params."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags" / dag_file)).dags[dag_id]
    task = dag.get_task(task_id)
    params = dag.params.dump() | (conf or {})
    context = {"params": params, "run_id": RUN_ID} | ({} if conf else {"ds": DT})
    for field in task.template_fields:
        value = getattr(task, field)
        if isinstance(value, str | dict | list):
            setattr(task, field, task.render_template(value, context, jinja_env=dag.get_template_env()))
    return task


def training(bucket: str = "sagelake-lake") -> dict:
    lake = Lake(bucket)
    return training_request(
        job_name=resource_name("churn", DT, RUN_ID),
        role="sagelake-sagemaker",
        image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
        train_uri=lake.curated_features(DT),
        output_uri=lake.model_output(),
        source_uri=lake.code("training/sourcedir-abc.tar.gz"),
        instance_type="ml.m5.large",
        hyperparameters={"max_iter": 200, "learning_rate": 0.08},
    )


def test_resource_names_derive_from_the_run_and_differ_between_runs() -> None:
    a = resource_name("churn", DT, RUN_ID)
    assert a == resource_name("churn", DT, RUN_ID)
    assert a != resource_name("churn", DT, "manual__2026-11-26T10:00:00+00:00")
    assert a.startswith("churn-20261126-") and len(a) <= 63
    with pytest.raises(ValueError, match="longer than 63"):
        resource_name("x" * 60, DT, RUN_ID)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        resource_name("churn", "26/11/2026", RUN_ID)


def test_training_request_is_a_valid_script_mode_create_training_job() -> None:
    request = training()
    validate("sagemaker", "CreateTrainingJob", {**request, "RoleArn": "arn:aws:iam::111122223333:role/r"})
    hps = request["HyperParameters"]
    assert json.loads(hps["sagemaker_program"]) == "train.py"
    assert json.loads(hps["sagemaker_submit_directory"]).startswith("s3://sagelake-lake/code/training/")
    assert all(isinstance(v, str) for v in hps.values())
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith(f"dt={DT}/")


def test_training_image_is_the_regional_sklearn_container() -> None:
    from sagelake.images import sklearn_image_uri

    uri = sklearn_image_uri("eu-west-1", "ml.m5.large")
    assert uri.endswith("sagemaker-scikit-learn:1.4-2-cpu-py3")
    assert ".eu-west-1." in uri


def test_endpoint_requests_are_valid() -> None:
    request = endpoint_request(
        model_name="churn-20261126-abcd1234-v1",
        endpoint_config_name="churn-20261126-abcd1234-v1",
        endpoint_name="sagelake-churn",
        role="arn:aws:iam::111122223333:role/r",
        image_uri="img",
        model_data_url="s3://b/models/churn/j/output/model.tar.gz",
        instance_type="ml.m5.large",
    )
    validate("sagemaker", "CreateModel", request["Model"])
    validate("sagemaker", "CreateEndpointConfig", request["EndpointConfig"])
    validate("sagemaker", "CreateEndpoint", request["Endpoint"])
    validate("sagemaker", "UpdateEndpoint", request["Endpoint"])


def test_model_package_request_is_valid() -> None:
    extras = model_package_extras(
        evaluation_uri="s3://b/e.json", metrics={"auc": 0.9}, dt=DT, run_id=RUN_ID, training_job="j"
    )
    request = {
        "InferenceSpecification": {
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelPackageGroupName": "sagelake-churn",
        "ModelApprovalStatus": "PendingManualApproval",
        **extras,
    }
    validate("sagemaker", "CreateModelPackage", request)
    assert extras["CustomerMetadataProperties"]["metric_auc"] == "0.900000"


def test_glue_job_task_renders_arguments_for_the_run_partition() -> None:
    task = rendered_task("churn_prepare.py", "churn_prepare", "glue_churn_features")
    args = task.script_args
    assert args["--dt"] == DT
    assert args["--input_events"] == f"s3://sagelake-lake/raw/events/dt={DT}/"
    assert args["--output_features"] == f"s3://sagelake-lake/curated/churn_features/dt={DT}/"
    assert all(f"dt={DT}/" in v for k, v in args.items() if k.startswith(("--input_", "--output_")))
    assert Path(task.script_location) == ROOT / "include" / "glue" / "churn_features.py"
    validate("glue", "StartJobRun", {"JobName": task.job_name, "Arguments": args})
    validate(
        "glue",
        "CreateJob",
        {
            "Name": task.job_name,
            "Role": "r",
            "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/s.py"},
            **glue_job_kwargs(),
        },
    )


@pytest.mark.parametrize("task_id", ["glue_churn_features", "check_row_count", "wait_for_raw_files"])
def test_a_run_started_by_an_event_works_on_the_partition_in_its_conf(task_id: str) -> None:
    task = rendered_task("churn_prepare.py", "churn_prepare", task_id, conf={"dt": "2026-10-05"})
    rendered = json.dumps([getattr(task, field) for field in task.template_fields], default=str)
    assert "2026-10-05" in rendered and DT not in rendered


def test_glue_job_definition_and_run_are_accepted_by_the_control_plane(aws_env, bucket, monkeypatch) -> None:
    """The operator's own AWS path (script upload, job definition, job run) against the control plane."""
    from sagelake.local.stack import aws_connection

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, "http://127.0.0.1:9"))
    iam = boto3.client("iam", endpoint_url=aws_env, region_name=REGION)
    iam.create_role(RoleName=f"glue-{bucket}", AssumeRolePolicyDocument="{}")
    task = rendered_task("churn_prepare.py", "churn_prepare", "glue_churn_features")
    task.s3_bucket, task.iam_role_name, task.job_name = bucket, f"glue-{bucket}", f"job-{bucket}"
    run = task.hook.initialize_job(task.script_args)  # what GlueJobOperator.submit_job calls on AWS
    glue = boto3.client("glue", endpoint_url=aws_env, region_name=REGION)
    job = glue.get_job(JobName=f"job-{bucket}")["Job"]
    assert job["GlueVersion"] == "5.0"
    assert job["Command"]["ScriptLocation"] == f"s3://{bucket}/artifacts/glue-scripts/churn_features.py"
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name=REGION)
    uploaded = s3.get_object(Bucket=bucket, Key="artifacts/glue-scripts/churn_features.py")["Body"].read()
    assert uploaded == (ROOT / "include" / "glue" / "churn_features.py").read_bytes()
    recorded = glue.get_job_run(JobName=f"job-{bucket}", RunId=run["JobRunId"])["JobRun"]
    assert recorded["Arguments"]["--output_features"].endswith(f"dt={DT}/")


def test_quality_check_query_is_accepted_by_athena_on_the_control_plane(aws_env) -> None:
    task = rendered_task("churn_prepare.py", "churn_prepare", "check_row_count")
    assert f"dt = '{DT}'" in task.query and "sagelake.churn_features" in task.query
    athena = boto3.client("athena", endpoint_url=aws_env, region_name=REGION)
    qid = athena.start_query_execution(
        QueryString=task.query,
        QueryExecutionContext={"Database": task.database},
        ResultConfiguration={"OutputLocation": task.output_location},
        WorkGroup=task.workgroup,
    )["QueryExecutionId"]
    execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert execution["Query"] == task.query
    assert execution["WorkGroup"] == "primary"
    assert execution["QueryExecutionContext"]["Database"] == "sagelake"
    assert (
        execution["ResultConfiguration"]["OutputLocation"] == f"s3://sagelake-lake/athena-results/{qid}.csv"
    )


def test_training_request_is_accepted_by_the_control_plane(aws_env, s3, bucket, monkeypatch) -> None:
    """The provider's SageMaker hook checks the input and sends the request (AWS path, not waiting)."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    s3.put_object(Bucket=bucket, Key=f"curated/churn_features/dt={DT}/part-0.parquet", Body=b"x")

    iam = boto3.client("iam", endpoint_url=aws_env, region_name=REGION)
    role = iam.create_role(RoleName="sm-shape-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    request = {**training(bucket), "RoleArn": role}
    hook = SageMakerHook(aws_conn_id=None, region_name=REGION)
    hook.create_training_job(request, wait_for_completion=False)
    described = hook.describe_training_job(request["TrainingJobName"])
    assert described["HyperParameters"] == request["HyperParameters"]
    assert (
        described["AlgorithmSpecification"]["TrainingImage"]
        == request["AlgorithmSpecification"]["TrainingImage"]
    )
