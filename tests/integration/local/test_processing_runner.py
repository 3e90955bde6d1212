"""The local SageMaker Processing engine against the local control plane: the container's contract (inputs
at their local paths, arguments, environment, config files), outputs uploaded only after success, the
container's failure message, missing inputs named, the runtime limit, and the job recorded Completed."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from sagelake.local.processing_runner import (
    ProcessingJobFailedError,
    ProcessingRequestError,
    record_processing_job,
    run_processing_job,
)
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.framework_scoring import framework_python
from tests.support.pipeline import validate

PROBE = """
import json, os, pathlib, sys
root = pathlib.Path(os.environ["SAGELAKE_PROCESSING_ROOT"])
data = pathlib.Path(sys.argv[sys.argv.index("--data") + 1])
out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
files = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
config = json.loads((root / "opt/ml/config/processingjobconfig.json").read_text())
probe = {"argv": sys.argv, "files": files, "greeting": os.environ.get("GREETING"),
         "job": config["ProcessingJobName"], "executable": sys.executable, "cwd": os.getcwd()}
(out / "nested").mkdir()
(out / "nested" / "probe.json").write_text(json.dumps(probe))
(out / "total.txt").write_text(str(sum(len(p.read_bytes()) for p in data.rglob("*") if p.is_file())))
if os.environ.get("FAIL"):
    pathlib.Path(root / "opt/ml/output").mkdir(parents=True, exist_ok=True)
    (root / "opt/ml/output/message").write_text("the data was bad")
    print("traceback here", file=sys.stderr)
    sys.exit(3)
if os.environ.get("SLEEP"):
    import time; time.sleep(float(os.environ["SLEEP"]))
"""


def request(bucket: str, job: str, **env: str) -> dict:
    return {
        "ProcessingJobName": job,
        "RoleArn": SAGEMAKER_ROLE_ARN,
        "AppSpecification": {
            "ImageUri": SKLEARN_IMAGE_URI,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/probe.py"],
            "ContainerArguments": [
                "--data",
                "/opt/ml/processing/input/data",
                "--out=x",
                "--out",
                "/opt/ml/processing/output/result",
            ],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{bucket}/code/probe.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{bucket}/data/dt=2026-11-26/",
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/out/{job}",
                        "LocalPath": "/opt/ml/processing/output/result",
                        "S3UploadMode": "EndOfJob",
                    },
                },
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        "Environment": {"GREETING": "hello", **env},
    }


@pytest.fixture()
def staged(s3, bucket: str) -> str:
    s3.put_object(Bucket=bucket, Key="code/probe.py", Body=PROBE.encode())
    s3.put_object(Bucket=bucket, Key="data/dt=2026-11-26/a.parquet", Body=b"12345")
    s3.put_object(Bucket=bucket, Key="data/dt=2026-11-26/sub/b.parquet", Body=b"678")
    return bucket


def keys_under(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_container_contract_and_outputs(s3, staged: str, tmp_path: Path) -> None:
    config = request(staged, "probe-1")
    validate("sagemaker", "CreateProcessingJob", config)
    result = run_processing_job(config, s3, tmp_path / "work")

    assert result.outputs == {"result": f"s3://{staged}/out/probe-1"}
    assert result.uploaded == {"result": 2}
    assert keys_under(s3, staged, "out/") == ["out/probe-1/nested/probe.json", "out/probe-1/total.txt"]
    assert s3.get_object(Bucket=staged, Key="out/probe-1/total.txt")["Body"].read() == b"8"
    probe = json.loads(s3.get_object(Bucket=staged, Key="out/probe-1/nested/probe.json")["Body"].read())
    work = (tmp_path / "work").resolve()
    assert probe["files"] == ["a.parquet", "sub/b.parquet"]  # keys below the prefix, as SageMaker lays them
    assert probe["argv"] == [
        f"{work}/opt/ml/processing/input/code/probe.py",
        "--data",
        f"{work}/opt/ml/processing/input/data",
        "--out=x",
        "--out",
        f"{work}/opt/ml/processing/output/result",
    ]
    expected = (probe["greeting"], probe["job"], probe["executable"])
    assert expected == ("hello", "probe-1", framework_python())  # the scikit-learn image's environment


def test_a_failure_uploads_nothing_and_reports_the_containers_message(
    s3, staged: str, tmp_path: Path
) -> None:
    with pytest.raises(ProcessingJobFailedError, match=r"(?s)exit 3\): the data was bad\ntraceback here"):
        run_processing_job(request(staged, "probe-2", FAIL="1"), s3, tmp_path / "work")
    assert keys_under(s3, staged, "out/") == []


def test_max_runtime_is_enforced(s3, staged: str, tmp_path: Path) -> None:
    config = request(staged, "probe-3", SLEEP="30")
    config["StoppingCondition"]["MaxRuntimeInSeconds"] = 1
    with pytest.raises(ProcessingJobFailedError, match="MaxRuntimeInSeconds=1"):
        run_processing_job(config, s3, tmp_path / "work")
    assert keys_under(s3, staged, "out/") == []


def test_an_empty_input_prefix_is_named(s3, staged: str, tmp_path: Path) -> None:
    config = request(staged, "probe-4")
    config["ProcessingInputs"][1]["S3Input"]["S3Uri"] = f"s3://{staged}/data/dt=2026-11-27/"
    with pytest.raises(ProcessingRequestError, match="no S3 objects found under .*dt=2026-11-27"):
        run_processing_job(config, s3, tmp_path / "work")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["AppSpecification"].pop("ContainerEntrypoint"), "ContainerEntrypoint is required"),
        (lambda c: c["ProcessingInputs"][1]["S3Input"].update(LocalPath="/tmp/data"), "must be under"),
        (lambda c: c["ProcessingInputs"][1]["S3Input"].update(S3InputMode="Pipe"), "S3InputMode 'Pipe'"),
        (
            lambda c: c["ProcessingOutputConfig"]["Outputs"][0]["S3Output"].update(LocalPath="/out"),
            "must be under",
        ),
        (
            lambda c: c["ProcessingInputs"][0]["S3Input"].update(LocalPath="/opt/ml/processing/../x"),
            "must be under",
        ),
    ],
)
def test_requests_that_cannot_run_locally_are_refused(s3, staged, tmp_path, change, message) -> None:
    config = request(staged, "probe-5")
    change(config)
    with pytest.raises(ProcessingRequestError, match=message):
        run_processing_job(config, s3, tmp_path / "work")


def test_the_job_is_recorded_completed_with_its_times(aws_env: str, staged: str) -> None:
    sagemaker = boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)
    config = request(staged, f"probe-rec-{staged}")
    described = record_processing_job(sagemaker, config)
    assert described["ProcessingJobStatus"] == "Completed"
    assert described["ProcessingEndTime"] >= described["CreationTime"]
    assert described["LastModifiedTime"] >= described["CreationTime"]
    assert described["ProcessingInputs"] == config["ProcessingInputs"]
    assert described["AppSpecification"] == config["AppSpecification"]
