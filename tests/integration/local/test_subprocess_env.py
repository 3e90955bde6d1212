"""Least privilege on the local engines: the code each runner runs on the user's behalf (Glue script,
training entry point, processing container, transform and endpoint model workers) sees its job's contract
and the allowed variables, never the Airflow task's secrets or the ``SAGELAKE_*`` settings."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
import uuid
from pathlib import Path

import boto3
import pytest

from sagelake.local.endpoint_server import serve
from sagelake.local.glue_runner import run_glue_script
from sagelake.local.processing_runner import run_processing_job
from sagelake.local.training_runner import run_training_job
from sagelake.local.transform_runner import run_transform_job
from sagelake.ml.artifacts import package_source_dir
from sagelake.ml.aws_requests import training_request
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.serving import deploy, put

# What an Airflow task's environment holds and no job may see.
SECRETS = {
    "AIRFLOW_CONN_EVENTBRIDGE_WEBHOOK": '{"conn_type": "generic", "password": "webhook-secret"}',
    "AIRFLOW__CORE__FERNET_KEY": "fernet-secret",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
    "SAGELAKE_EVENTS_QUEUE_URL": "http://queue.invalid/secret",
    "PYTHONPATH": "/somewhere/the/task/put",
}
# Writes its environment, as JSON, to the file named by its first argument.
DUMP = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"
# A model whose every prediction is the worker's environment.
INFERENCE = """
import json, os

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return dict(os.environ)

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


@pytest.fixture()
def task_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The secrets of an Airflow task's environment, set in this process (the runners' parent)."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "SPARK_LOCAL_IP"):
        monkeypatch.delenv(name, raising=False)  # the runners' defaults apply
    return SECRETS


def assert_least_privilege(seen: dict[str, str], contract: dict[str, str]) -> None:
    """No secret (by name or value) in ``seen``, the contract is there, the allowed basics passed on."""
    leaked = sorted(set(SECRETS) & set(seen))
    assert not leaked, f"leaked to the job: {leaked}"
    assert not any(value in seen.values() for value in SECRETS.values())
    assert not [name for name in seen if name.startswith("AIRFLOW")]
    assert {name: seen.get(name) for name in contract} == contract
    assert seen["PATH"] and seen["LC_ALL"] == "C.UTF-8"
    assert seen["AWS_DEFAULT_REGION"] == REGION  # the control plane's region (aws_env)


def model_archive(tmp_path: Path) -> bytes:
    model_dir = tmp_path / "environ-model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "inference.py").write_text(INFERENCE)
    return package_source_dir(model_dir)


def test_a_glue_script_sees_its_spark_contract_and_no_secret(
    s3, bucket: str, tmp_path: Path, task_secrets
) -> None:
    script = tmp_path / "dump_env.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os, sys
            args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
            open(os.path.join(args["--output_env"], "env.json"), "w").write(json.dumps(dict(os.environ)))
            """
        )
    )
    put(s3, bucket, "raw/in.txt", b"x")
    arguments = {"--input_raw": f"s3://{bucket}/raw/", "--output_env": f"s3://{bucket}/env/"}
    run_glue_script(script, arguments, s3, tmp_path / "work")

    seen = json.loads(s3.get_object(Bucket=bucket, Key="env/env.json")["Body"].read())
    assert_least_privilege(seen, {"SPARK_LOCAL_IP": "127.0.0.1"})
    assert {"JAVA_HOME", "PYSPARK_PYTHON", "PYSPARK_SUBMIT_ARGS"} <= set(seen)


def test_a_training_entry_point_sees_the_sm_contract_and_no_secret(
    s3, bucket: str, tmp_path: Path, task_secrets
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "train.py").write_text(
        "import json, os\n"
        "path = os.path.join(os.environ['SM_MODEL_DIR'], 'env.json')\n"
        "open(path, 'w').write(json.dumps(dict(os.environ)))\n"
    )
    put(s3, bucket, "train/part-0.csv", b"1,2\n")
    request = training_request(
        job_name=f"env-{uuid.uuid4().hex[:8]}",
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        train_uri=f"s3://{bucket}/train/",
        output_uri=f"s3://{bucket}/models/",
        source_uri=put(s3, bucket, "code/sourcedir.tar.gz", package_source_dir(source)),
        instance_type="ml.m5.large",
        hyperparameters={"max_iter": 7},
        max_runtime_s=300,
    )
    result = run_training_job(request, s3, tmp_path / "work")

    bucket_name, key = result.model_artifacts.removeprefix("s3://").split("/", 1)
    body = s3.get_object(Bucket=bucket_name, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        seen = json.loads(archive.extractfile("env.json").read())
    assert_least_privilege(seen, {"SM_HP_MAX_ITER": "7", "SM_CURRENT_HOST": "algo-1"})
    contract = {"SM_MODEL_DIR", "SM_CHANNEL_TRAIN", "SM_HPS", "SM_OUTPUT_DATA_DIR", "SM_TRAINING_ENV"}
    assert contract <= set(seen)


def test_a_processing_container_sees_its_environment_and_no_secret(
    s3, bucket: str, tmp_path: Path, task_secrets
) -> None:
    put(s3, bucket, "code/dump.py", DUMP.encode())
    request = {
        "ProcessingJobName": f"env-{uuid.uuid4().hex[:8]}",
        "RoleArn": SAGEMAKER_ROLE_ARN,
        "AppSpecification": {
            "ImageUri": SKLEARN_IMAGE_URI,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/dump.py"],
            "ContainerArguments": ["/opt/ml/processing/output/env/env.json"],
        },
        "Environment": {"GREETING": "hello"},
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{bucket}/code/dump.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "env",
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/env",
                        "LocalPath": "/opt/ml/processing/output/env",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
    }
    run_processing_job(request, s3, tmp_path / "work")

    seen = json.loads(s3.get_object(Bucket=bucket, Key="env/env.json")["Body"].read())
    assert_least_privilege(seen, {"GREETING": "hello"})
    assert seen["SAGELAKE_PROCESSING_ROOT"] == str((tmp_path / "work").resolve())  # its own contract


def test_a_transform_jobs_model_worker_sees_no_secret(
    aws_env: str, s3, bucket: str, tmp_path: Path, task_secrets
) -> None:
    sagemaker = boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)
    model_url = put(s3, bucket, "models/environ/model.tar.gz", model_archive(tmp_path))
    model = deploy(sagemaker, f"environ-{uuid.uuid4().hex[:8]}", SKLEARN_IMAGE_URI, model_url)
    put(s3, bucket, "batch/in/part-0.csv", b"1\n")
    request = {
        "TransformJobName": f"env-{uuid.uuid4().hex[:8]}",
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/batch/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/batch/out/", "Accept": "application/json"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    result = run_transform_job(request, sagemaker, s3, tmp_path / "work")

    assert result.served_on != "xgboost (built-in algorithm)"
    body = s3.get_object(Bucket=bucket, Key="batch/out/part-0.csv.out")["Body"].read()
    assert_least_privilege(json.loads(body.decode().strip()), {"OMP_NUM_THREADS": "1"})


def test_an_endpoints_model_worker_sees_no_secret(
    aws_env: str, s3, bucket: str, tmp_path: Path, task_secrets
) -> None:
    sagemaker = boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)
    model_url = put(s3, bucket, "models/environ-endpoint/model.tar.gz", model_archive(tmp_path))
    endpoint = deploy(sagemaker, f"environ-{uuid.uuid4().hex[:8]}", SKLEARN_IMAGE_URI, model_url)
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION, framework_envs=True, model_workers=1)
    try:
        host, port = server.server_address[:2]
        runtime = boto3.client("sagemaker-runtime", endpoint_url=f"http://{host}:{port}", region_name=REGION)
        answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=b"1", ContentType="text/csv")
        seen = json.loads(answer["Body"].read())
    finally:
        server.shutdown()
    assert_least_privilege(seen, {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
