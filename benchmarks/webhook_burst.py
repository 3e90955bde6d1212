"""Webhook burst on a real local stack (figures, not a test): ``python benchmarks/webhook_burst.py``.

Starts a throw-away local stack (temp dir, free ports; ``make demo``'s stack is untouched), then POSTs to
``/webhooks/eventbridge`` on ``airflow standalone``'s API server, as EventBridge would (429/5xx retried):
- ``--events`` distinct S3 "Object Created" events, ``--unroutable`` of them outside ``raw/``,
  ``--concurrency`` at a time;
- ``--replays`` concurrent deliveries of one event.
Reports status counts, wall time, events/s, latency percentiles and the runs found through the REST API.
The DAGs stay paused, so the runs are created but not executed. Writes benchmarks/results/webhook_burst.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from devstack import stack as local_stack  # noqa: E402
from devstack.airflow_api import AirflowApi  # noqa: E402
from devstack.webhook_client import deliver, object_created_event  # noqa: E402


def event_for(key: str) -> dict:
    now = datetime.now(UTC)
    return object_created_event("sagelake-lake", key, 1, "e", region="us-east-1", account="1" * 12, time=now)


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def burst(url: str, key: str, events: list[dict], concurrency: int) -> dict:
    def one(event: dict) -> tuple[int, float]:
        started = time.perf_counter()
        status, _ = deliver(url, event, key)
        return status, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(one, events))
    wall = time.perf_counter() - started
    latencies = [seconds * 1000 for _, seconds in answers]
    return {
        "events": len(events),
        "concurrency": concurrency,
        "statuses": dict(Counter(status for status, _ in answers)),
        "wall_s": round(wall, 2),
        "events_per_s": round(len(events) / wall, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies)),
            "p95": round(percentile(latencies, 0.95)),
            "max": round(max(latencies)),
        },
    }


def all_run_ids(api: AirflowApi, dag_id: str) -> set[str]:
    """Every run id of ``dag_id``, page by page (the REST API returns at most 100 per page)."""
    ids: set[str] = set()
    while page := api.dag_runs(dag_id, limit=100, offset=len(ids)):
        ids |= {run["dag_run_id"] for run in page}
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--unroutable", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--replays", type=int, default=20)
    args = parser.parse_args()

    stack = local_stack.throwaway_stack("sagelake-bench-")
    try:
        local_stack.up(stack)
        api = AirflowApi(stack.airflow_url, local_stack.LOCAL_USER, local_stack.LOCAL_PASSWORD)
        api.wait_for_dag("churn_prepare")
        url, key = f"{stack.airflow_url}/webhooks/eventbridge", local_stack.webhook_key(stack)
        routable = args.events - args.unroutable
        events = [event_for(f"raw/events/dt=2026-10-{1 + i % 28:02d}/e-{i}.jsonl") for i in range(routable)]
        events += [event_for(f"landing/other/f-{i}.csv") for i in range(args.unroutable)]
        distinct = burst(url, key, events, args.concurrency)
        replayed = event_for("raw/events/dt=2026-10-01/replayed.jsonl")
        replay = burst(url, key, [replayed] * args.replays, args.replays)
        created = all_run_ids(api, "churn_prepare")
        expected = {f"eventbridge__{e['id']}" for e in events[:routable]}
        results = {
            "distinct": distinct | {"runs_found": len(expected & created), "runs_expected": routable},
            "replay": replay,
            "runs_total": len(created),
        }
    finally:
        local_stack.down(stack)
    out = ROOT / "benchmarks" / "results" / "webhook_burst.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
