"""The local SageMaker training engine against the local control plane (moto S3)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from sagelake.local.training_runner import (
    TrainingJobFailedError,
    TrainingRequestError,
    run_training_job,
)
from sagelake.ml.artifacts import package_source_dir, read_evaluation
from sagelake.ml.aws_requests import training_request as build_training_request
from tests.support.constants import SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE, TRAINING_DIR
from tests.support.framework_scoring import score
from tests.support.training_data import synthetic_features

FEATURES_PREFIX = "curated/churn_features/dt=2024-01-01/"


def upload_features(s3, bucket: str, n: int = 500, seed: int = 1) -> str:
    body = io.BytesIO()
    synthetic_features(n, seed).to_parquet(body, index=False)
    s3.put_object(Bucket=bucket, Key=f"{FEATURES_PREFIX}part-00000.snappy.parquet", Body=body.getvalue())
    s3.put_object(Bucket=bucket, Key=f"{FEATURES_PREFIX}_SUCCESS", Body=b"")
    return f"s3://{bucket}/{FEATURES_PREFIX}"


def upload_source(s3, bucket: str, source_dir: Path, key: str = "code/sourcedir.tar.gz") -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=package_source_dir(source_dir))
    return f"s3://{bucket}/{key}"


def training_request(
    job: str, bucket: str, train_uri: str, source_uri: str, program: str, **hps: str
) -> dict:
    """The DAG's own CreateTrainingJob request (``sagelake.ml.aws_requests``), plus raw SDK-encoded extras."""
    request = build_training_request(
        job_name=job,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=f"{SKLEARN_IMAGE}:1.4-2-cpu-py3",
        train_uri=train_uri,
        output_uri=f"s3://{bucket}/models/churn/",
        source_uri=source_uri,
        instance_type="ml.m5.large",
        hyperparameters={},
        program=program,
        max_runtime_s=600,
    )
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+)"}
    ]
    request["HyperParameters"].update({"sagemaker_container_log_level": "20", **hps})
    return request


def keys_under(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_train_py_job_lands_sagemaker_artefacts(s3, bucket: str, tmp_path: Path) -> None:
    request = training_request(
        "churn-2024-01-01",
        bucket,
        upload_features(s3, bucket),
        upload_source(s3, bucket, TRAINING_DIR),
        "train.py",
        max_iter="60",
        learning_rate=json.dumps(0.1),
    )
    result = run_training_job(request, s3, tmp_path / "work")

    prefix = f"s3://{bucket}/models/churn/churn-2024-01-01/output"
    assert result.model_artifacts == f"{prefix}/model.tar.gz"
    assert result.output_data == f"{prefix}/output.tar.gz"
    assert keys_under(s3, bucket, "models/") == [
        "models/churn/churn-2024-01-01/output/model.tar.gz",
        "models/churn/churn-2024-01-01/output/output.tar.gz",
    ]
    evaluation = read_evaluation(s3, result.output_data)
    assert evaluation["hyperparameters"]["max_iter"] == 60
    assert evaluation["n_train"] + evaluation["n_validation"] == 500
    assert result.metrics["validation:auc"] == pytest.approx(evaluation["metrics"]["auc"], abs=1e-6)
    assert "validation:auc=" in result.log_tail

    model_dir = tmp_path / "unpacked"
    model_tar = s3.get_object(Bucket=bucket, Key="models/churn/churn-2024-01-01/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(model_tar["Body"].read())) as tar:
        assert {"model.joblib", "code/inference.py"} <= set(tar.getnames())
        tar.extractall(model_dir, filter="data")
    fresh = synthetic_features(300, 99)
    probabilities = score(model_dir, fresh)  # in the container's scikit-learn, where it was trained
    assert roc_auc_score(fresh["churned"], probabilities) > 0.7


PROBE = """
import json, os, sys
keys = sorted(k for k in os.environ if k.startswith("SM_"))
env = {k: os.environ[k] for k in keys}
files = sorted(os.path.relpath(os.path.join(d, f), os.environ["SM_CHANNEL_TRAIN"])
               for d, _, fs in os.walk(os.environ["SM_CHANNEL_TRAIN"]) for f in fs)
probe = {"argv": sys.argv[1:], "env": env, "files": files, "cwd": os.getcwd()}
os.makedirs(os.environ["SM_MODEL_DIR"], exist_ok=True)
open(os.path.join(os.environ["SM_MODEL_DIR"], "probe.json"), "w").write(json.dumps(probe))
out = os.environ["SM_OUTPUT_DATA_DIR"]
open(os.path.join(out, "evaluation.json"), "w").write('{"metrics": {"auc": 0.5}}')
print("validation:auc=0.5")
print("train:loss=1e-3")
"""


def unpack_json(s3, uri: str, name: str) -> dict:
    bucket, key = uri[5:].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        return json.loads(tar.extractfile(name).read())


def test_container_contract_env_args_and_channel_layout(s3, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "src" / "pkg"
    source.mkdir(parents=True)
    (source / "probe.py").write_text(PROBE)
    upload_features(s3, bucket, n=20)
    request = training_request(
        "probe-job",
        bucket,
        f"s3://{bucket}/curated/churn_features",  # no trailing slash: the last path part is kept
        upload_source(s3, bucket, source, "code/probe.tar.gz"),
        "probe.py",
        max_iter="100",
        name=json.dumps("churn"),
        flag="true",
    )
    del request["AlgorithmSpecification"]["MetricDefinitions"]
    (tmp_path / "work" / "model").mkdir(parents=True)
    (tmp_path / "work" / "model" / "stale.joblib").write_text("from an earlier run")
    result = run_training_job(request, s3, tmp_path / "work")

    probe = unpack_json(s3, result.model_artifacts, "probe.json")
    bucket_name, key = result.model_artifacts[5:].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket_name, Key=key)["Body"].read())) as tar:
        assert tar.getnames() == ["probe.json"]
    assert probe["argv"] == ["--flag", "True", "--max_iter", "100", "--name", "churn"]
    assert probe["files"] == [
        "churn_features/dt=2024-01-01/_SUCCESS",
        "churn_features/dt=2024-01-01/part-00000.snappy.parquet",
    ]
    env = probe["env"]
    work = tmp_path / "work"
    assert env["SM_CHANNEL_TRAIN"] == str(work / "input" / "data" / "train")
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert env["SM_MODEL_DIR"] == str(work / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(work / "output" / "data")
    assert env["SM_OUTPUT_DIR"] == str(work / "output")
    assert json.loads(env["SM_HPS"]) == {"flag": True, "max_iter": 100, "name": "churn"}
    assert (env["SM_HP_MAX_ITER"], env["SM_HP_NAME"], env["SM_HP_FLAG"]) == ("100", "churn", "true")
    assert env["SM_CURRENT_HOST"] == "algo-1" and json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert int(env["SM_NUM_CPUS"]) >= 1
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["job_name"] == "probe-job"
    assert training_env["channel_input_dirs"] == {"train": env["SM_CHANNEL_TRAIN"]}
    assert probe["cwd"] == str(work / "code")
    assert result.metrics == {"validation:auc": 0.5, "train:loss": 0.001}


def test_failing_script_uploads_nothing(s3, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "fail.py").write_text(
        "import sys\nprint('starting')\nsys.exit('features look wrong: 42 rows')\n"
    )
    request = training_request(
        "failing-job",
        bucket,
        upload_features(s3, bucket, n=20),
        upload_source(s3, bucket, source),
        "fail.py",
    )
    with pytest.raises(
        TrainingJobFailedError, match=r"failing-job failed \(exit 1\).*features look wrong: 42 rows"
    ):
        run_training_job(request, s3, tmp_path / "work")
    assert keys_under(s3, bucket, "models/") == []


def test_max_runtime_is_enforced(s3, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "slow.py").write_text("import time\ntime.sleep(60)\n")
    request = training_request(
        "slow-job", bucket, upload_features(s3, bucket, n=20), upload_source(s3, bucket, source), "slow.py"
    )
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = 1
    with pytest.raises(
        TrainingJobFailedError, match="slow-job exceeded StoppingCondition.MaxRuntimeInSeconds=1"
    ):
        run_training_job(request, s3, tmp_path / "work")
    assert keys_under(s3, bucket, "models/") == []


def test_missing_channel_prefix_is_named(s3, bucket: str, tmp_path: Path) -> None:
    missing = f"s3://{bucket}/curated/churn_features/dt=2030-01-01/"
    request = training_request(
        "no-data", bucket, missing, upload_source(s3, bucket, TRAINING_DIR), "train.py"
    )
    with pytest.raises(TrainingRequestError, match=f"no objects under {missing}"):
        run_training_job(request, s3, tmp_path / "work")
    assert keys_under(s3, bucket, "models/") == []


def test_script_mode_hyperparameters_are_required(s3, bucket: str, tmp_path: Path) -> None:
    request = training_request(
        "no-script", bucket, upload_features(s3, bucket, n=20), "s3://x/y.tar.gz", "x.py"
    )
    del request["HyperParameters"]["sagemaker_program"]
    with pytest.raises(TrainingRequestError, match="sagemaker_program and sagemaker_submit_directory"):
        run_training_job(request, s3, tmp_path / "work")


def test_package_source_dir_is_deterministic(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "train.py").write_text("print('hi')\n")
    (source / "pkg" / "util.py").write_text("X = 1\n")
    (source / "pkg" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"\0")
    first = package_source_dir(source)
    (source / "train.py").touch()
    os.utime(source / "pkg" / "util.py", (1, 1))
    assert package_source_dir(source) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getnames() == ["pkg", "pkg/util.py", "train.py"]
        assert {m.mtime for m in tar.getmembers()} == {0}
    (source / "train.py").write_text("print('changed')\n")
    assert package_source_dir(source) != first
