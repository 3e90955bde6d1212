"""What the pipeline's DAGs take: the params (the partition ``dt`` and every pipeline setting) and the
default arguments of their tasks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from sagelake.config.settings import AWS_CONN_ID, default_params


def pipeline_params(dt_fallback: str) -> dict[str, Param]:
    """``dt`` (``YYYY-MM-DD``; empty means ``dt_fallback``) and the settings of ``default_params()``."""
    return {
        "dt": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description=f"Partition to process (YYYY-MM-DD); empty: {dt_fallback}.",
        ),
        **{name: Param(value) for name, value in default_params().items()},
    }


def task_defaults(
    owner: str, *, retries: int = 1, retry_delay: timedelta = timedelta(seconds=30), **extra: Any
) -> dict[str, Any]:
    """A DAG's ``default_args``: its owner and retries, the ``aws_default`` connection, and the failure
    notification every task sends once it has failed for good
    (:func:`sagelake.monitoring.notifications.notify_failure`)."""
    from sagelake.monitoring.notifications import notify_failure

    return {
        "owner": owner,
        "retries": retries,
        "retry_delay": retry_delay,
        "aws_conn_id": AWS_CONN_ID,
        "on_failure_callback": notify_failure,
        **extra,
    }
