"""What the pipeline's DAGs take: the params (the partition ``dt`` and every pipeline setting) and the
default arguments of their tasks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from sagelake.config.settings import AWS_CONN_ID, default_params

JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def param(*default: Any, **schema: Any) -> Param:
    """A DAG param whose JSON Schema names its dialect (draft-07, which has every keyword a form needs);
    with no ``default``, a run must give it.

    Airflow validates every param of every task each time it serializes a DAG (each parse, every 30 s
    in the DAG processor) and when a task starts. Without ``$schema``, jsonschema first checks the schema
    against the draft 2020-12 meta-schema, ≈4× the cost of draft-07's; for ``churn_train_deploy`` (21
    tasks × 8 params) that check was most of the file's parse time.
    """
    return Param(*default, **{"$schema": JSON_SCHEMA_DIALECT, **schema})


def setting_params(*names: str) -> dict[str, Param]:
    """The run-overridable settings of ``default_params()`` a DAG reads, as params (non-empty strings).

    A DAG names only the settings it uses: its trigger form then offers only those, and Airflow validates
    (and copies into each task) fewer params at every parse and task start."""
    settings = default_params()
    unknown = sorted(set(names) - set(settings))
    if unknown:
        raise KeyError(f"no setting param {unknown}; the settings are {sorted(settings)}")
    return {name: param(settings[name], type="string", minLength=1) for name in names}


def pipeline_params(dt_fallback: str, *settings: str) -> dict[str, Param]:
    """``dt`` (``YYYY-MM-DD``; empty means ``dt_fallback``) and the named settings of ``default_params()``."""
    return {
        "dt": param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description=f"Partition to process (YYYY-MM-DD); empty: {dt_fallback}.",
        ),
        **setting_params(*settings),
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
