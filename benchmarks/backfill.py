"""A backfill on a real local stack (figures, not a test): ``python benchmarks/backfill.py --days 7``.

Starts a throw-away local stack (temp dir, free ports; ``make demo``'s stack is untouched), lands ``--days``
days of synthetic data, creates the backfill with ``airflow backfill create`` (the CLI: on the local stack's
SQLite, Airflow refuses backfill creation through the REST API and so the UI), and waits for its runs.
Reports each run's state, the wall time from creation to the last run's end, the partitions the catalog
publishes, and what the write–audit–publish steps took on one day's critical path. The training DAG stays
paused. Writes ``benchmarks/results/backfill.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from devstack import stack as local_stack  # noqa: E402
from devstack.airflow_api import AirflowApi  # noqa: E402
from devstack.datagen import generate_day, land_day  # noqa: E402
from sagelake.config.settings import default_params  # noqa: E402
from sagelake.lake.layout import Lake  # noqa: E402
from sagelake.lake.publish import published  # noqa: E402

WAP_TASKS = ("plan_partition", "publish_partition")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wap_share(api: AirflowApi, run: dict) -> dict:
    """Seconds of one run's wall time spent between the sensor and the Glue job (plan_partition: lease,
    fingerprint, raw partitions, staging) and after the checks (publish_partition: switch, clean-up,
    release), scheduling gaps included."""
    tis = {t["task_id"]: t for t in api.task_instances("churn_prepare", run["dag_run_id"])}
    checks_end = max(when(t["end_date"]) for name, t in tis.items() if name.startswith("check_"))
    before_etl = when(tis["glue_churn_features"]["start_date"]) - when(tis["wait_for_raw_files"]["end_date"])
    after_checks = when(run["end_date"]) - checks_end
    total = (when(run["end_date"]) - when(run["start_date"])).total_seconds()
    wap = before_etl.total_seconds() + after_checks.total_seconds()
    return {
        "run_wall_s": round(total, 1),
        "wap_critical_path_s": round(wap, 1),
        "wap_share": round(wap / total, 3),
        "wap_task_run_s": round(sum(tis[name].get("duration") or 0.0 for name in WAP_TASKS), 1),
    }


def every_day(api: AirflowApi, runs: list[dict]) -> dict | None:
    """Median and worst write–audit–publish share over every finished run."""
    import statistics

    shares = [wap_share(api, run) for run in runs]
    if not shares:
        return None
    return {
        "runs": len(shares),
        "median_wap_share": round(statistics.median(s["wap_share"] for s in shares), 3),
        "max_wap_share": max(s["wap_share"] for s in shares),
        "median_wap_critical_path_s": round(statistics.median(s["wap_critical_path_s"] for s in shares), 1),
        "median_run_wall_s": round(statistics.median(s["run_wall_s"] for s in shares), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--first-day", default="2026-10-01")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    first = date.fromisoformat(args.first_day)
    days = [(first + timedelta(days=i)).isoformat() for i in range(args.days)]
    stack = local_stack.throwaway_stack("sagelake-bench-")
    params = default_params()
    try:
        local_stack.up(stack)
        s3 = local_stack.boto3_session().client("s3", endpoint_url=stack.control_plane_url)
        glue = local_stack.boto3_session().client("glue", endpoint_url=stack.control_plane_url)
        for day in days:
            land_day(s3, Lake(str(params["bucket"])), day, generate_day(day, n_customers=args.customers))
        api = AirflowApi(stack.airflow_url, local_stack.LOCAL_USER, local_stack.LOCAL_PASSWORD)
        api.wait_for_dag("churn_prepare")
        api.unpause("churn_prepare")
        env = {**os.environ, **local_stack.airflow_env(stack, local_stack.webhook_key(stack), "")}
        started = time.monotonic()
        created = subprocess.run(
            [
                str(Path(sys.executable).with_name("airflow")),
                "backfill",
                "create",
                "--dag-id",
                "churn_prepare",
            ]
            + ["--from-date", days[0], "--to-date", days[-1], "--max-active-runs", "2"],
            env=env,
            capture_output=True,
        )
        if created.returncode != 0:
            raise SystemExit(f"airflow backfill create failed:\n{created.stderr.decode()[-3000:]}")
        runs: list[dict] = []
        while time.monotonic() - started < args.timeout:
            runs = [r for r in api.dag_runs("churn_prepare", limit=100) if r.get("run_type") == "backfill"]
            if len(runs) == len(days) and all(r["state"] in ("success", "failed") for r in runs):
                break
            time.sleep(5)
        wall = time.monotonic() - started
        publications = {
            day: published(glue, str(params["glue_database"]), "churn_features", day) for day in days
        }
        finished = [r for r in runs if r["state"] == "success"]
        results = {
            "days": len(days),
            "customers_per_day": args.customers,
            "run_states": {r["dag_run_id"]: r["state"] for r in runs},
            "wall_s": round(wall, 1),
            "published": {day: p.version if p else None for day, p in publications.items()},
            "published_count": sum(p is not None for p in publications.values()),
            "one_day": wap_share(api, finished[0]) if finished else None,
            "every_day": every_day(api, finished),
        }
    finally:
        local_stack.down(stack)
    out = ROOT / "benchmarks" / "results" / "backfill.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0 if results["published_count"] == len(days) else 1


if __name__ == "__main__":
    sys.exit(main())
