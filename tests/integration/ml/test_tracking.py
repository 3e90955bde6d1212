"""An evaluation report in the lake, downloaded and logged into its trial's MLflow run (SQLite store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagelake.ml import tracking

pytestmark = pytest.mark.usefixtures("restore_mlflow_tracking_uri")


def test_a_report_in_the_lake_is_logged_under_evaluation(s3, bucket: str, tmp_path: Path) -> None:
    prefix = "reports/evaluation/dt=2026-01-05/churn-2026-01-05-ab12cd/"
    files = {"metrics.json": b'{"models": {}}', "report.html": b"<html/>", "plots/roc.png": b"\x89PNG"}
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body)
    s3.put_object(Bucket=bucket, Key="reports/evaluation/dt=2026-01-05/other-job/metrics.json", Body=b"{}")

    downloaded = tracking.download_prefix(s3, f"s3://{bucket}/{prefix}", tmp_path / "report")
    assert {p.relative_to(tmp_path / "report").as_posix(): p.read_bytes() for p in downloaded} == files

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trial = tracking.log_trial(
        model_package_group="sagelake-churn",
        training_job_name="churn-2026-01-05-ab12cd",
        dt="2026-01-05",
        version="v1",
        hyperparameters={},
        metrics={"validation:auc": 0.8},
        uri=store,
    )
    tracking.log_evaluation(
        model_package_group="sagelake-churn",
        training_job_name=trial.training_job_name,
        metrics={"auc": 0.79},
        report_uri=f"s3://{bucket}/{prefix}",
        report_files=[p for p in downloaded if p.parent == tmp_path / "report"]
        + [tmp_path / "report" / "plots"],
        uri=store,
    )
    client = tracking.client(store)
    logged = {a.path for a in client.list_artifacts(trial.run_id, "evaluation")}
    assert logged == {"evaluation/metrics.json", "evaluation/report.html", "evaluation/plots"}
    assert [a.path for a in client.list_artifacts(trial.run_id, "evaluation/plots")] == [
        "evaluation/plots/roc.png"
    ]
