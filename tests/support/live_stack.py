"""Waiting on runs of a live local stack through Airflow's REST API."""

from __future__ import annotations

import time


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
        time.sleep(3)
    return run
