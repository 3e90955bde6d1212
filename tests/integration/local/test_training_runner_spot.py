"""Managed Spot training locally: a training job killed mid-way keeps its checkpoints in S3, and the same
job run again resumes from them and finishes with the model an uninterrupted run makes (script mode and
the built-in XGBoost algorithm)."""

from __future__ import annotations

import io
import os
import re
import signal
import tarfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from sagelake.local.training_runner import (
    TrainingJobFailedError,
    TrainingRequestError,
    TrainingRunResult,
    run_training_job,
)
from sagelake.ml.artifacts import package_source_dir, read_evaluation
from sagelake.ml.aws_requests import training_request, xgboost_training_request
from sagelake.ml.images import xgboost_image_uri
from sagelake.ml.spot import SpotSettings
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE, TRAINING_DIR
from tests.support.framework_scoring import score
from tests.support.training_data import load_script, synthetic_features

CHECKPOINT_WAIT_S = 180  # a generous bound on a busy machine; the test polls, it asserts no timing
SCRIPT_HYPERPARAMETERS = {"max_iter": 100, "checkpoint_every": 1, "max_depth": 3}
XGB_HYPERPARAMETERS = {
    "num_round": 120,
    "max_depth": 5,
    "eta": 0.1,
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "seed": 3,
    "nthread": 1,
}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs' OpenMP threads spin on a busy 2-core machine: one thread each keeps the tests quick."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def spot(bucket: str) -> SpotSettings:
    return SpotSettings(enabled=True, max_wait_s=None, checkpoint_bucket=bucket)


def put(s3, bucket: str, key: str, body: bytes) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def script_request(s3, bucket: str, job: str, *, with_spot: bool) -> dict:
    features = io.BytesIO()
    synthetic_features(600, 11).to_parquet(features, index=False)
    put(s3, bucket, "curated/dt=2024-01-01/part-0.parquet", features.getvalue())
    return training_request(
        job_name=job,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=f"{SKLEARN_IMAGE}:1.4-2-cpu-py3",
        train_uri=f"s3://{bucket}/curated/dt=2024-01-01/",
        output_uri=f"s3://{bucket}/models/",
        source_uri=put(s3, bucket, "code/sourcedir.tar.gz", package_source_dir(TRAINING_DIR)),
        instance_type="ml.m5.large",
        hyperparameters=SCRIPT_HYPERPARAMETERS,
        max_runtime_s=900,
        spot=spot(bucket) if with_spot else None,
    )


def csv_rows(n: int, seed: int) -> np.ndarray:
    """Label first, then 8 features with a non-linear signal: the built-in algorithm's text/csv."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    label = (x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2 + rng.normal(size=n) > 0).astype(float)
    return np.column_stack([label, x])


def to_csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows).encode()


def xgb_request(s3, bucket: str, job: str, *, with_spot: bool) -> dict:
    channels = {
        "train": put(s3, bucket, "xgb/train/part-0.csv", to_csv(csv_rows(3000, 1))).rsplit("/", 1)[0] + "/",
        "validation": put(s3, bucket, "xgb/validation/part-0.csv", to_csv(csv_rows(500, 2))).rsplit("/", 1)[0]
        + "/",
    }
    return xgboost_training_request(
        job_name=job,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=xgboost_image_uri(REGION),
        channels=channels,
        output_uri=f"s3://{bucket}/models/",
        instance_type="ml.m5.large",
        hyperparameters=XGB_HYPERPARAMETERS,
        max_runtime_s=900,
        spot=spot(bucket) if with_spot else None,
    )


def checkpoint_keys(s3, bucket: str, job: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"checkpoints/{job}/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def children_running_in(work: Path) -> list[int]:
    """This process's child processes whose command line names ``work`` (the job's container)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s+(\d+)$", status, re.MULTILINE)
        if ppid and int(ppid.group(1)) == os.getpid() and str(work) in cmdline:
            found.append(int(entry.name))
    return found


def kill_after_first_checkpoint(s3, bucket: str, job: str, work: Path, run: Future) -> list[str]:
    """Poll S3 until the job's first checkpoint is there, then SIGKILL its container; return the keys."""
    deadline = time.monotonic() + CHECKPOINT_WAIT_S
    while not checkpoint_keys(s3, bucket, job):
        assert not run.done(), f"job {job} ended before a checkpoint reached S3: {run.exception()}"
        assert time.monotonic() < deadline, f"no checkpoint of {job} in S3"
        time.sleep(0.05)
    pids = children_running_in(work)
    assert len(pids) == 1, f"expected the job's one container process, found {pids}"
    os.kill(pids[0], signal.SIGKILL)
    with pytest.raises(TrainingJobFailedError, match=r"exit -9"):
        run.result(timeout=CHECKPOINT_WAIT_S)
    return checkpoint_keys(s3, bucket, job)


def killed_then_rerun(s3, bucket: str, request: dict, tmp_path: Path) -> tuple[list[str], TrainingRunResult]:
    """Run ``request``, kill it after its first checkpoint, run it again on a fresh work dir."""
    job = request["TrainingJobName"]
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(run_training_job, request, s3, tmp_path / "attempt-1")
        kept = kill_after_first_checkpoint(s3, bucket, job, tmp_path / "attempt-1", first)
    assert kept, "the killed job's checkpoints must stay in S3"
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="models/")
    assert "Contents" not in listing, "a killed job uploads no model"
    return kept, run_training_job(request, s3, tmp_path / "attempt-2")


def job_stdout(tmp_path: Path) -> str:
    """The re-run's container output (kept by the runner in ``<work>/output/stdout.log``)."""
    return (tmp_path / "attempt-2" / "output" / "stdout.log").read_text()


def untar(s3, uri: str, into: Path) -> Path:
    bucket, key = uri[5:].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        tar.extractall(into, filter="data")
    return into


def test_killed_script_mode_job_resumes_from_its_checkpoint(s3, bucket: str, tmp_path: Path) -> None:
    request = script_request(s3, bucket, "churn-spot-1", with_spot=True)
    kept, result = killed_then_rerun(s3, bucket, request, tmp_path)
    assert all(re.fullmatch(r"checkpoints/churn-spot-1/checkpoint-\d{6}\.joblib", k) for k in kept)

    resumed = int(re.search(r"resuming from iteration (\d+)", job_stdout(tmp_path)).group(1))
    assert 0 < resumed < SCRIPT_HYPERPARAMETERS["max_iter"]
    evaluation = read_evaluation(s3, result.output_data)
    assert evaluation["resumed_from_iteration"] == resumed
    assert result.training_seconds is not None and result.training_seconds >= 1
    assert result.billable_seconds == result.training_seconds  # no spot discount locally
    final = checkpoint_keys(s3, bucket, "churn-spot-1")
    assert final[-1].endswith(f"checkpoint-{SCRIPT_HYPERPARAMETERS['max_iter']:06d}.joblib")
    assert len(final) == load_script("train").CHECKPOINTS_KEPT  # deletions are mirrored in S3

    # scored where they were trained: the container's scikit-learn (the framework environment)
    resumed = untar(s3, result.model_artifacts, tmp_path / "resumed")
    plain = run_training_job(script_request(s3, bucket, "churn-plain-1", with_spot=False), s3, tmp_path / "p")
    reference = untar(s3, plain.model_artifacts, tmp_path / "plain")
    fresh = synthetic_features(200, 99)
    probabilities = np.asarray(score(resumed, fresh))
    assert probabilities.shape == (200,) and ((probabilities > 0) & (probabilities < 1)).all()
    np.testing.assert_array_equal(probabilities, np.asarray(score(reference, fresh)))


def load_booster(s3, uri: str, into: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(bytearray((untar(s3, uri, into) / "xgboost-model").read_bytes()))
    return booster


def test_killed_builtin_xgboost_job_resumes_from_its_checkpoint(s3, bucket: str, tmp_path: Path) -> None:
    request = xgb_request(s3, bucket, "churn-xgb-spot-1", with_spot=True)
    kept, result = killed_then_rerun(s3, bucket, request, tmp_path)
    assert all(re.fullmatch(r"checkpoints/churn-xgb-spot-1/xgboost-checkpoint\.\d+", k) for k in kept)

    stdout = job_stdout(tmp_path)
    resumed = int(re.search(r"Resuming from iteration (\d+)", stdout).group(1))
    assert 0 < resumed < XGB_HYPERPARAMETERS["num_round"]
    rounds = [int(n) for n in re.findall(r"^\[(\d+)\]#011train-auc", stdout, re.MULTILINE)]
    assert rounds == list(range(resumed, XGB_HYPERPARAMETERS["num_round"]))  # numbered on from the resume
    assert result.metrics["validation:auc"] > 0.7
    assert result.billable_seconds == result.training_seconds

    booster = load_booster(s3, result.model_artifacts, tmp_path / "resumed")
    assert booster.num_boosted_rounds() == XGB_HYPERPARAMETERS["num_round"]
    plain = run_training_job(
        xgb_request(s3, bucket, "churn-xgb-plain-1", with_spot=False), s3, tmp_path / "p"
    )
    reference = load_booster(s3, plain.model_artifacts, tmp_path / "plain")
    fresh = xgb.DMatrix(csv_rows(300, 7)[:, 1:])
    np.testing.assert_array_equal(booster.predict(fresh), reference.predict(fresh))


@pytest.mark.parametrize("build", [script_request, xgb_request])
@pytest.mark.parametrize(
    ("stopping", "message"),
    [
        ({"MaxRuntimeInSeconds": 900}, "needs StoppingCondition.MaxWaitTimeInSeconds"),
        ({"MaxRuntimeInSeconds": 900, "MaxWaitTimeInSeconds": 60}, "shorter than MaxRuntimeInSeconds"),
    ],
)
def test_spot_requests_aws_refuses_are_refused_before_anything_runs(
    s3, bucket: str, tmp_path: Path, build, stopping: dict, message: str
) -> None:
    request = {**build(s3, bucket, "churn-bad-1", with_spot=True), "StoppingCondition": stopping}
    with pytest.raises(TrainingRequestError, match=message):
        run_training_job(request, s3, tmp_path / "work")
    assert not (tmp_path / "work").exists()
