"""MLflow overhead per trial (figures, not a test): ``python benchmarks/mlflow_overhead.py``.

Starts the local stack's MLflow server alone, as ``devstack.stack.up`` does (throw-away temp dir, free port;
``make demo``'s stack is untouched), and reports:
- the server's start-up time (process start to ``/health`` answering);
- the import of ``mlflow`` in the client process (once per task);
- ``sagelake.ml.tracking.log_trial`` wall time per trial over HTTP: ``--trials`` distinct training jobs,
  each with the pipeline's hyperparameters, four final metrics, seven tags and one artefact (an
  ``evaluation.json``), the first (experiment created, client warm-up) reported apart;
- the same call repeated for a job already logged (an Airflow retry: found by tag, nothing re-logged but
  the artefact);
- ``log_evaluation`` (metrics of challenger and champion, a report of three files).
Writes benchmarks/results/mlflow_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from devstack import stack as local_stack  # noqa: E402
from sagelake.ml import tracking  # noqa: E402

HYPERPARAMETERS = {
    "max_iter": 200,
    "max_depth": 6,
    "learning_rate": 0.1,
    "validation_fraction": 0.2,
    "seed": 7,
}
METRICS = {
    "validation:auc": 0.8125,
    "validation:accuracy": 0.84,
    "validation:f1": 0.51,
    "validation:log_loss": 0.37,
}


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def summary(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "median_ms": round(statistics.median(ms)), "p95_ms": round(percentile(ms, 0.95))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args(argv)

    begin = time.perf_counter()
    import mlflow  # noqa: F401  (what a task pays once, apart from the per-trial figures)

    import_s = time.perf_counter() - begin
    work = Path(tempfile.mkdtemp(prefix="sagelake-mlflow-bench-"))
    report = work / "report"
    report.mkdir()
    (report / "metrics.json").write_text(json.dumps({"metrics": METRICS}))
    (report / "roc.png").write_bytes(bytes(30_000))
    (report / "report.html").write_text("<html>" + "x" * 10_000 + "</html>")
    evaluation = report / "metrics.json"

    stack = local_stack.throwaway_stack("sagelake-mlflow-bench-")
    started = time.perf_counter()
    pid = local_stack.start_mlflow(stack)
    try:
        local_stack.wait_for_mlflow(stack, pid)
        startup_s = time.perf_counter() - started
        uri = stack.mlflow_url

        def log(job: str) -> float:
            begin = time.perf_counter()
            tracking.log_trial(
                model_package_group="sagelake-churn",
                training_job_name=job,
                dt="2026-01-05",
                version="20260105T101500-1a2b",
                hyperparameters=HYPERPARAMETERS,
                metrics=METRICS,
                model_artifact=f"s3://sagelake-lake/models/{job}/output/model.tar.gz",
                dag_id="churn_train_deploy",
                airflow_run_id="manual__2026-01-05T10:00:00+00:00",
                artifacts=[evaluation],
                uri=uri,
            )
            return time.perf_counter() - begin

        first = log("churn-bench-0")
        fresh = [log(f"churn-bench-{i}") for i in range(1, args.trials + 1)]
        retries = [log(f"churn-bench-{i}") for i in range(1, args.trials + 1)]
        evaluations = []
        for i in range(1, args.trials + 1):
            begin = time.perf_counter()
            tracking.log_evaluation(
                model_package_group="sagelake-churn",
                training_job_name=f"churn-bench-{i}",
                metrics={"auc": 0.80, "f1": 0.5},
                champion_metrics={"auc": 0.79, "f1": 0.49},
                report_uri="s3://sagelake-lake/evaluations/report.html",
                report_files=sorted(report.iterdir()),
                uri=uri,
            )
            evaluations.append(time.perf_counter() - begin)
    finally:
        local_stack.down(stack)
        shutil.rmtree(stack.local_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "server_startup_s": round(startup_s, 1),
        "import_mlflow_s": round(import_s, 1),
        "first_log_trial_ms": round(first * 1000),
        "log_trial": summary(fresh),
        "log_trial_retry": summary(retries),
        "log_evaluation": summary(evaluations),
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / "mlflow_overhead.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
