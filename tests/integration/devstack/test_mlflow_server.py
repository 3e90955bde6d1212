"""The local stack's MLflow server: started as the stack does, a trial logged over HTTP and read back."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import stack
from sagelake.ml import tracking


@pytest.fixture(scope="module")
def mlflow_stack() -> Iterator[stack.Stack]:
    """A throw-away stack running only its MLflow server (free port, temp state dir)."""
    local = stack.throwaway_stack("sagelake-mlflow-")
    pid = stack.start_mlflow(local)
    try:
        stack.wait_for_mlflow(local, pid)
        yield local
    finally:
        stack.down(local)
        shutil.rmtree(local.local_dir, ignore_errors=True)


pytestmark = pytest.mark.usefixtures("restore_mlflow_tracking_uri")


def test_a_trial_logged_over_http_is_read_back_with_mlflow_client(
    mlflow_stack: stack.Stack, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import mlflow

    report = tmp_path / "evaluation.json"
    report.write_text(json.dumps({"metrics": {"auc": 0.8125}}))
    env = stack.airflow_env(mlflow_stack, "key", "http://queue")
    uri = env["SAGELAKE_MLFLOW_TRACKING_URI"]  # what the stack gives Airflow's tasks
    assert uri == mlflow_stack.mlflow_url

    kwargs = {
        "model_package_group": "sagelake-churn",
        "training_job_name": "churn-2026-01-05-ab12cd",
        "dt": "2026-01-05",
        "version": "v1",
        "hyperparameters": {"max_iter": 200},
        "metrics": {"validation:auc": 0.8125},
        "model_artifact": "s3://lake/models/churn-2026-01-05-ab12cd/output/model.tar.gz",
        "dag_id": "churn_train_deploy",
        "airflow_run_id": "manual__1",
        "artifacts": [report],
        "uri": uri,
    }
    trial = tracking.log_trial(**kwargs)
    assert tracking.log_trial(**kwargs) == trial  # a retry: same run
    # the sagemaker-mlflow plugin's header provider fails on a non-ARN URI at every request: kept quiet
    assert "resolving request headers" not in capfd.readouterr().err

    client = mlflow.MlflowClient(tracking_uri=mlflow_stack.mlflow_url)
    experiment = client.get_experiment_by_name("sagelake-churn")
    assert experiment.experiment_id == trial.experiment_id
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [trial.run_id]
    run = runs[0]
    assert run.data.params == {"max_iter": "200"}
    assert run.data.metrics == {"validation:auc": 0.8125}
    assert run.data.tags["sagelake.dt"] == "2026-01-05"
    assert run.info.status == "FINISHED"
    # artefacts go through the server (proxied) into the stack's state folder
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    downloaded = client.download_artifacts(trial.run_id, "evaluation.json", str(tmp_path / "dl"))
    assert Path(downloaded).read_bytes() == report.read_bytes()
    stored = list((mlflow_stack.mlflow_dir / "artifacts").rglob("evaluation.json"))
    assert [p.read_bytes() for p in stored] == [report.read_bytes()]
    assert (mlflow_stack.mlflow_dir / "mlflow.db").is_file()
    assert trial.url == f"{mlflow_stack.mlflow_url}/#/experiments/{trial.experiment_id}/runs/{trial.run_id}"


def test_the_server_is_stopped_by_down() -> None:
    local = stack.throwaway_stack("sagelake-mlflow-down-")
    try:
        pid = stack.start_mlflow(local)
        assert stack.running_pid(local, "mlflow") == pid
        assert stack.start_mlflow(local) == pid  # started once
        assert stack.down(local) == ["mlflow"]
        assert stack.running_pid(local, "mlflow") is None
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    finally:
        stack.down(local)
        shutil.rmtree(local.local_dir, ignore_errors=True)
