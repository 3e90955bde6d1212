"""Tuning benchmark (figures, not a test): N real trials with bounded parallelism vs one after another.

``.venv/bin/python benchmarks/tuning.py [--trials 6] [--parallel 2] [--rows 2000] [--threads-per-trial N]``

Starts a local control plane (moto with sagelake's extensions) on a free port, lands one day of generated
churn features and ``include/training`` as ``sourcedir.tar.gz``, then runs the same ``Random`` tuning request
(same seed, hence the same hyperparameters in the same order) twice through
:func:`sagelake.local.tuning_runner.run_tuning_job`: with ``MaxParallelTrainingJobs=1`` and with
``--parallel`` (the runner caps it at the number of cores). Prints and writes to
``benchmarks/results/tuning.json`` (one entry per ``--threads-per-trial``): the wall time of each tuning
job, the speed-up, the time per trial (start of its training job to its record in the control plane:
staging, the training subprocess, upload), and the machine's 1-minute load average before and after
(other work on the machine skews both). ``--threads-per-trial`` sets ``OMP_NUM_THREADS`` for every trial;
by default the runner gives each trial ``cores // parallel trials`` (``tuning_runner.trial_threads``), and
``--threads-per-trial 0`` keeps OpenMP's own default (every core per trial, trials competing for them).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

import boto3  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from sagelake.config.settings import TRAINING_DIR  # noqa: E402
from sagelake.local import control_plane  # noqa: E402
from sagelake.local.tuning_runner import run_tuning_job  # noqa: E402
from sagelake.ml.artifacts import package_source_dir  # noqa: E402
from sagelake.ml.aws_requests import training_request  # noqa: E402
from sagelake.ml.tuning import SCRIPT_METRIC_DEFINITIONS, tuning_request  # noqa: E402

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
RANGES = {
    "max_iter": {"type": "Integer", "min": 50, "max": 200},
    "max_depth": {"type": "Integer", "min": 2, "max": 6},
    "learning_rate": {"type": "Continuous", "min": 0.02, "max": 0.3, "scaling": "Logarithmic"},
}


def features(n: int, seed: int = 1) -> pd.DataFrame:
    """Curated churn features with a planted signal (the columns train.py reads)."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "standard", "premium"], n)
    tickets, tenure, logins = rng.poisson(1.5, n), rng.integers(10, 1500, n), rng.poisson(8, n)
    purchases = rng.poisson(2, n)
    logit = -0.5 + 1.0 * tickets - 0.002 * tenure - 0.15 * logins + 1.2 * (plan == "basic")
    return pd.DataFrame(
        {
            "plan": plan,
            "region": rng.choice(["north", "south", "east", "west"], n),
            "monthly_fee": np.select([plan == "basic", plan == "standard"], [9.99, 14.99], 19.99),
            "age": rng.integers(18, 80, n).astype("float64"),
            "support_tickets": tickets,
            "tenure_days": tenure,
            "n_events": logins + purchases + rng.poisson(5, n),
            "n_logins": logins,
            "n_purchases": purchases,
            "total_amount": purchases * 4.99,
            "avg_session_s": rng.gamma(2.0, 300.0, n),
            "churned": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int32"),
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tune(clients: dict[str, Any], bucket: str, trials: int, parallel: int, work: Path) -> dict[str, Any]:
    name = f"bench-{parallel}-{uuid.uuid4().hex[:8]}"
    training = training_request(
        job_name="unused",
        role=ROLE,
        image_uri=IMAGE,
        train_uri=f"s3://{bucket}/curated/churn_features/dt=2026-11-26/",
        output_uri=f"s3://{bucket}/models/churn/",
        source_uri=f"s3://{bucket}/code/sourcedir.tar.gz",
        instance_type="ml.m5.large",
        hyperparameters={"seed": 5},
    )
    request = tuning_request(
        job_name=name,
        training=training,
        objective_metric="validation:auc",
        ranges=RANGES,
        metric_definitions=SCRIPT_METRIC_DEFINITIONS,
        strategy="Random",
        max_jobs=trials,
        max_parallel=parallel,
        random_seed=7,
    )
    clients["sagemaker"].create_hyper_parameter_tuning_job(**request)
    result = run_tuning_job(
        request,
        sagemaker=clients["sagemaker"],
        s3=clients["s3"],
        logs=clients["logs"],
        credentials=Credentials("testing", "testing"),
        work_dir=work / name,
    )
    per_trial = [t.end_time - t.start_time for t in result.trials]
    return {
        "max_parallel": parallel,
        "parallelism": result.parallelism,
        "wall_s": round(result.wall_seconds, 2),
        "trial_s": {
            "median": round(statistics.median(per_trial), 2),
            "min": round(min(per_trial), 2),
            "max": round(max(per_trial), 2),
        },
        "best": {"trial": result.best.name, "validation:auc": result.best.objective},
        "values": [t.hyperparameters for t in result.trials],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument(
        "--threads-per-trial",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for every trial (default: the runner's share; 0: OpenMP's, every core)",
    )
    args = parser.parse_args(argv)
    if args.threads_per_trial:
        os.environ["OMP_NUM_THREADS"] = str(args.threads_per_trial)  # inherited by the trial subprocesses
    elif args.threads_per_trial == 0:
        os.environ["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)  # what OpenMP uses when nothing is set

    load_before = os.getloadavg()[0]
    port = free_port()
    server = control_plane.start("127.0.0.1", port)
    try:
        kwargs = {
            "endpoint_url": f"http://127.0.0.1:{port}",
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        clients = {name: boto3.client(name, **kwargs) for name in ("s3", "sagemaker", "logs")}
        bucket = "bench-tuning"
        clients["s3"].create_bucket(Bucket=bucket)
        body = io.BytesIO()
        features(args.rows).to_parquet(body, index=False)
        clients["s3"].put_object(
            Bucket=bucket, Key="curated/churn_features/dt=2026-11-26/part-0.parquet", Body=body.getvalue()
        )
        clients["s3"].put_object(
            Bucket=bucket, Key="code/sourcedir.tar.gz", Body=package_source_dir(TRAINING_DIR)
        )
        with tempfile.TemporaryDirectory(prefix="sagelake-bench-tuning-") as work:
            sequential = tune(clients, bucket, args.trials, 1, Path(work))
            parallel = tune(clients, bucket, args.trials, args.parallel, Path(work))
    finally:
        server.stop()
    assert sequential["values"] == parallel["values"], "both runs must train the same hyperparameters"
    figures = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_1min_before": round(load_before, 2),
            "load_1min_after": round(os.getloadavg()[0], 2),
        },
        "trials": args.trials,
        "rows": args.rows,
        "threads_per_trial": {None: "cores // parallel (the runner's share)", 0: "every core (OpenMP)"}.get(
            args.threads_per_trial, args.threads_per_trial
        ),
        "sequential": {k: v for k, v in sequential.items() if k != "values"},
        "parallel": {k: v for k, v in parallel.items() if k != "values"},
        "speedup": round(sequential["wall_s"] / parallel["wall_s"], 2),
    }
    print(
        f"{args.trials} trials on {args.rows} rows, {os.cpu_count()} cores "
        f"(1-min load {figures['machine']['load_1min_before']} before, "
        f"{figures['machine']['load_1min_after']} after)\n"
        f"  one after another: {sequential['wall_s']:.1f} s wall, "
        f"{sequential['trial_s']['median']:.1f} s per trial (median)\n"
        f"  {parallel['parallelism']} at a time:       {parallel['wall_s']:.1f} s wall, "
        f"{parallel['trial_s']['median']:.1f} s per trial (median)\n"
        f"  speed-up {figures['speedup']}x; best trial {parallel['best']['trial']} "
        f"validation:auc={parallel['best']['validation:auc']}"
    )
    out = ROOT / "benchmarks" / "results" / "tuning.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    key = f"threads_per_trial={'runner' if args.threads_per_trial is None else args.threads_per_trial}"
    results = {**results.get("runs", {}), key: figures}
    out.write_text(json.dumps({"runs": results}, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
