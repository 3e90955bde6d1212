"""The drift DAG's cost (figures, not a test): ``python benchmarks/drift.py --days 30 --rows 5000``.

On a throw-away local control plane (moto with sagelake's extensions, free port) and a throw-away Airflow
home: publishes a 7-day training window and ``--days`` monitored days of ``--rows`` customers each (every
third day drifted on purpose: monthly fees shifted, the premium plan's share up), writes the window's
baseline as ``churn_train_deploy`` would, then runs ``churn_drift`` with ``dag.test`` for one day and for
every day in turn. Reports the wall time of one run, of all ``--days`` runs, the share of a run spent in the
drift computation itself (read + measures + report), and how many runs asked for retraining.
Writes ``benchmarks/results/drift.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

_HOME = tempfile.mkdtemp(prefix="sagelake-bench-airflow-")
os.environ.update(
    {
        "AIRFLOW_HOME": _HOME,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "SAGELAKE_TARGET": "local",
        "SAGELAKE_LOCAL_DIR": tempfile.mkdtemp(prefix="sagelake-bench-state-"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)

import io  # noqa: E402

import boto3  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from devstack.datagen import curated_features  # noqa: E402
from devstack.stack import aws_connection  # noqa: E402
from sagelake.lake import catalog  # noqa: E402
from sagelake.lake.layout import Lake, split_s3_uri  # noqa: E402
from sagelake.ml import drift, drift_store  # noqa: E402
from sagelake.ml.training_data import read_partition  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "drift.json"
FIRST = date(2026, 8, 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def publish(s3, glue, database: str, lake: Lake, dt: str, frame) -> str:
    location = f"{lake.curated_features(dt)}version=v1/"
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    bucket, key = split_s3_uri(location + "part-00000.parquet")
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    catalog.register_partition(glue, database, "churn_features", dt, location=location)
    return location


def day_frame(i: int, rows: int):
    frame = curated_features(rows, 1000 + i)
    if i % 3 == 2:  # drifted on purpose
        frame["monthly_fee"] = frame["monthly_fee"] + 5.0
        frame.loc[frame.index < rows // 2, "plan"] = "premium"
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()

    from sagelake.local import control_plane

    port = free_port()
    server = control_plane.start("127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(url, "http://127.0.0.1:9")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    try:
        from airflow.dag_processing.dagbag import DagBag

        from sagelake.config.settings import default_params

        params = default_params()
        bucket, database = str(params["bucket"]), str(params["glue_database"])
        s3 = boto3.client("s3", endpoint_url=url)
        glue = boto3.client("glue", endpoint_url=url)
        s3.create_bucket(Bucket=bucket)
        lake = Lake(bucket)
        catalog.ensure_database(glue, database)
        catalog.ensure_tables(glue, database, lake)
        window = {}
        for i in range(7):
            dt = (FIRST + timedelta(days=i)).isoformat()
            window[dt] = publish(s3, glue, database, lake, dt, curated_features(args.rows, i))
        started = time.perf_counter()
        drift_store.write_training_baseline(s3, bucket, "churn-20260807-bench000", window, drift.Thresholds())
        baseline_s = time.perf_counter() - started
        days = [(FIRST + timedelta(days=7 + i)).isoformat() for i in range(args.days)]
        locations = {
            dt: publish(s3, glue, database, lake, dt, day_frame(i, args.rows)) for i, dt in enumerate(days)
        }
        stats = drift_store.get_json(
            s3, drift_store.baseline_uri(bucket, "churn-20260807-bench000") + "statistics.json"
        )

        compute = []
        for dt in days:
            started = time.perf_counter()
            drift_store.write_report(
                s3, f"s3://{bucket}/bench/{dt}/", read_partition(s3, locations[dt]), stats, drift.Thresholds()
            )
            compute.append(time.perf_counter() - started)

        dag = DagBag(dag_folder=str(ROOT / "dags" / "churn_drift.py")).dags["churn_drift"]
        walls, requested = [], 0
        for dt in days:
            started = time.perf_counter()
            run = dag.test(run_conf={"dt": dt})
            walls.append(time.perf_counter() - started)
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
            if states.get("request_retraining") == "success":
                requested += 1
            elif states.get("request_retraining") != "skipped":
                raise SystemExit(f"dt={dt}: unexpected states {states}")
        result = {
            "rows_per_day": args.rows,
            "days": args.days,
            "features": len(stats["features"]),
            "baseline_7_days_s": round(baseline_s, 2),
            "one_day_run_s": round(walls[0], 2),
            "median_run_s": round(sorted(walls)[len(walls) // 2], 2),
            "all_days_s": round(sum(walls), 1),
            "drift_compute_per_day_s": round(sum(compute) / len(compute), 3),
            "drift_compute_all_days_s": round(sum(compute), 2),
            "retraining_requested_runs": requested,
            "drifted_days_published": sum(1 for i in range(args.days) if i % 3 == 2),
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
