"""The live local stack the end-to-end tests of ``tests/e2e/live`` share: what its tests agree on,
and waiting on its runs through Airflow's REST API."""

from __future__ import annotations

import time
from pathlib import Path

# The days each test of tests/e2e/live lands or publishes (the approval test needs the newest published ones).
LIVE_DAYS = {
    "events": ("2026-11-18", "2026-11-19"),
    "restart": ("2026-11-20",),
    "approval": ("2026-11-26", "2026-11-27"),
}
# Settings every Airflow process of the live stack starts with (they are read by its workers): small tuning.
# (Not a longer DAG parse interval: a DAG's AssetWatcher starts only when its file is parsed after the DAG is
# unpaused, so the SQS path waits for that parse; with an hour between parses the events test timed out.)
LIVE_ENV = {"SAGELAKE_TUNING_MAX_JOBS": "2", "SAGELAKE_TUNING_MAX_PARALLEL": "2"}


def wait_for_run(api, dag_id: str, run_id: str, timeout_s: float) -> dict:
    """The run once it exists and has finished (or the last state seen at the deadline)."""
    from devstack.airflow_api import AirflowApiError

    deadline, run = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        try:
            run = api.dag_run(dag_id, run_id)
        except AirflowApiError as error:
            if "404" not in str(error):
                raise
        if run.get("state") in ("success", "failed"):
            return run
        time.sleep(1)
    return run


def run_report(api, stack, dag_id: str, run_id: str, tail_lines: int = 25) -> str:
    """Every task's state, and the end of the logs of those that did not succeed: what a failed
    end-to-end assertion prints, so a CI failure says which task stopped and why."""
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(dag_id, run_id)}
    lines = [f"{dag_id} / {run_id}: {states}"]
    logs = Path(stack.local_dir) / "logs" / "airflow"
    for task_id, state in states.items():
        if state in ("success", "skipped"):
            continue
        for log in sorted(logs.glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/**/*.log")):
            tail = log.read_text(errors="replace").splitlines()[-tail_lines:]
            lines += [f"--- {log.relative_to(logs)} ({state})", *tail]
    for name in ("scheduler", "triggerer"):
        log = Path(stack.local_dir) / "logs" / f"{name}.log"
        if log.exists():
            lines += [f"--- {name}.log", *log.read_text(errors="replace").splitlines()[-tail_lines:]]
    return "\n".join(lines)
