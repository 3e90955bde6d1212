"""Warehouse load time for one day on the local target (figures, not a test):
``python benchmarks/warehouse_load.py --customers 2000``.

Starts a throw-away control plane (free port, temp state dir), writes one published day of curated churn
features (``--customers`` rows of Parquet, the ETL's metrics JSON) and registers it in the Glue catalog as
``churn_prepare`` publishes it, then runs the ``warehouse_load`` DAG with ``dag.test()`` (every task in
this process, against the local Redshift engine) and reports each task's wall time; then the load again
(idempotence: same row count). Writes ``benchmarks/results/warehouse_load.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT), str(ROOT / "dags")]
_HOME = tempfile.mkdtemp(prefix="sagelake-bench-airflow-")
os.environ.update(
    {
        "AIRFLOW_HOME": _HOME,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "SAGELAKE_TARGET": "local",
        "SAGELAKE_LOCAL_DIR": str(Path(_HOME) / "state"),
    }
)


def features(n: int, seed: int):
    """A curated-contract feature frame of ``n`` customers."""
    from devstack.datagen import curated_features

    return curated_features(n, seed, churn_p=0.25, zero_event_p=0.0, id_prefix="C")


def publish_day(endpoint: str, bucket: str, database: str, dt: str, customers: int) -> None:
    """One day of curated features and ETL metrics, published in the catalog as churn_prepare does."""
    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sagelake.lake import catalog
    from sagelake.lake.layout import Lake, split_s3_uri
    from sagelake.lake.publish import publish

    s3 = boto3.client("s3", endpoint_url=endpoint)
    glue = boto3.client("glue", endpoint_url=endpoint)
    s3.create_bucket(Bucket=bucket)
    lake = Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    version = "v" + uuid.uuid4().hex[:8]
    buf = io.BytesIO()
    frame = features(customers, seed=7)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf)
    locations = {
        "etl_metrics": lake.etl_metrics(dt) + f"version={version}/",
        "churn_features": lake.curated_features(dt) + f"version={version}/",
    }
    for uri, body in (
        (locations["churn_features"] + "part-00000.parquet", buf.getvalue()),
        (
            locations["etl_metrics"] + "metrics.json",
            json.dumps({"job_name": "bench", "features_rows": customers, "quarantined": 0}).encode(),
        ),
    ):
        b, key = split_s3_uri(uri)
        s3.put_object(Bucket=b, Key=key, Body=body)
    publish(glue, database, locations, dt, version=version, fingerprint="bench", run_id="bench")


def engine_load_seconds(path: Path, endpoint: str, params: dict, dt: str, repeats: int = 5) -> dict:
    """The load_day batch (delete + insert of the day) on the engine alone, without Airflow: seconds."""
    import statistics
    from types import SimpleNamespace

    import boto3
    import jinja2

    from sagelake.config.settings import WAREHOUSE_SQL_DIR
    from sagelake.local.redshift.engine import LocalRedshiftEngine

    load = {"dt": dt, "version": "bench"}
    ti = SimpleNamespace(xcom_pull=lambda task_ids: load)
    sqls = [
        jinja2.Template((WAREHOUSE_SQL_DIR / name).read_text()).render(ti=ti, params=params, warehouse=params)
        for name in ("delete_day.sql", "insert_day.sql")
    ]
    engine = LocalRedshiftEngine(
        path,
        boto3.client("glue", endpoint_url=endpoint),
        s3_endpoint_url=endpoint,
        region=os.environ["AWS_DEFAULT_REGION"],
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        engine.batch_execute_statement(sqls)
        times.append(time.perf_counter() - started)
    return {"repeats": repeats, "median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--dt", default="2026-11-26")
    args = parser.parse_args()

    import subprocess

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from devstack.stack import aws_connection, aws_env, free_port
    from sagelake.local import control_plane

    port = free_port()
    server = control_plane.start("127.0.0.1", port)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        os.environ.update(aws_env())
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(endpoint, "http://127.0.0.1:9")
        bucket, database = f"bench-{uuid.uuid4().hex[:8]}", "bench"
        publish_day(endpoint, bucket, database, args.dt, args.customers)

        from warehouse_load import warehouse_load

        dag = warehouse_load()
        conf = {"dt": args.dt, "bucket": bucket, "glue_database": database}
        runs = []
        for attempt in ("first load", "reload"):
            started = time.perf_counter()
            run = dag.test(run_conf=conf)
            wall = time.perf_counter() - started
            tasks = {
                ti.task_id: {"state": str(ti.state), "s": round(ti.duration or 0.0, 3)}
                for ti in run.get_task_instances()
            }
            runs.append(
                {
                    "attempt": attempt,
                    "state": str(run.state),
                    "dag_test_wall_s": round(wall, 2),
                    "tasks": tasks,
                }
            )
        import duckdb

        from sagelake.config.settings import local_state_dir, warehouse_settings
        from sagelake.local.redshift.engine import database_path

        params = warehouse_settings()
        path = database_path(
            local_state_dir(), str(params["redshift_workgroup"]), str(params["redshift_database"])
        )
        with duckdb.connect(str(path), read_only=True) as con:
            rows = con.execute(f"SELECT count(*) FROM public.{params['warehouse_table']}").fetchone()[0]
        engine_s = engine_load_seconds(path, endpoint, {**params, "glue_database": database}, args.dt)
        result = {
            "customers": args.customers,
            "dt": args.dt,
            "warehouse_rows": rows,
            "engine_load_day_s": engine_s,
            "runs": runs,
        }
    finally:
        server.stop()
        shutil.rmtree(_HOME, ignore_errors=True)
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / "warehouse_load.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    ok = rows == args.customers and all(r["state"] == "success" for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
