"""The ``aws`` target's requests, built exactly as the DAGs build them, checked against the AWS API models
(botocore's parameter validation) and accepted by the control plane (moto) — AWS exercised without AWS."""

from __future__ import annotations

import boto3

from sagelake.lake.setup import get_workgroup
from tests.support.constants import REGION, ROOT
from tests.support.pipeline import DT, VERSION, rendered_task, training


def test_glue_job_definition_and_run_are_accepted_by_the_control_plane(aws_env, bucket, monkeypatch) -> None:
    """The operator's own AWS path (script upload, job definition, job run) against the control plane."""
    from devstack.stack import aws_connection

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
    assert recorded["Arguments"]["--output_features"].endswith(f"dt={DT}/version={VERSION}/")


def test_quality_check_query_is_accepted_by_athena_on_the_control_plane(aws_env) -> None:
    task = rendered_task("churn_prepare.py", "churn_prepare", "check_row_count")
    assert f"dt = '{DT}'" in task.query and "sagelake.churn_features" in task.query
    athena = boto3.client("athena", endpoint_url=aws_env, region_name=REGION)
    if get_workgroup(athena, task.workgroup) is None:  # lake_setup creates it (sagelake.lake.setup)
        athena.create_work_group(Name=task.workgroup)
    qid = athena.start_query_execution(
        QueryString=task.query,
        QueryExecutionContext={"Database": task.database},
        ResultConfiguration={"OutputLocation": task.output_location},
        WorkGroup=task.workgroup,
    )["QueryExecutionId"]
    execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert execution["Query"] == task.query
    assert execution["WorkGroup"] == task.workgroup == "sagelake"
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
    hook.create_training_job(request, wait_for_completion=False, print_log=False)
    described = hook.describe_training_job(request["TrainingJobName"])
    assert described["HyperParameters"] == request["HyperParameters"]
    assert (
        described["AlgorithmSpecification"]["TrainingImage"]
        == request["AlgorithmSpecification"]["TrainingImage"]
    )
