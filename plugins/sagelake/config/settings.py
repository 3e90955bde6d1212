"""Pipeline settings: DAG param defaults, overridable by environment variables and, per run, by params.

Nothing here names an account, a region or a secret: credentials, region and endpoints come from the
Airflow connection ``aws_default``; IAM roles are given by name and expanded to ARNs at run time.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
INCLUDE_DIR = PROJECT_ROOT / "include"
GLUE_SCRIPT = INCLUDE_DIR / "glue" / "churn_features.py"
SQL_DIR = INCLUDE_DIR / "sql"
CHECKS_DIR = SQL_DIR / "checks"
TRAINING_DIR = INCLUDE_DIR / "training"
CONTRACTS_DIR = INCLUDE_DIR / "contracts"

AWS_CONN_ID = "aws_default"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def default_params() -> dict[str, object]:
    """Defaults of the DAG params shared by the pipeline's DAGs (each can be overridden per run)."""
    return {
        "bucket": _env("SAGELAKE_BUCKET", "sagelake-lake"),
        "glue_database": _env("SAGELAKE_GLUE_DATABASE", "sagelake"),
        "glue_role": _env("SAGELAKE_GLUE_ROLE", "sagelake-glue"),
        "glue_job_name": _env("SAGELAKE_GLUE_JOB", "sagelake-churn-features"),
        "athena_workgroup": _env("SAGELAKE_ATHENA_WORKGROUP", "primary"),
        "sagemaker_role": _env("SAGELAKE_SAGEMAKER_ROLE", "sagelake-sagemaker"),
        "model_package_group": _env("SAGELAKE_MODEL_PACKAGE_GROUP", "sagelake-churn"),
        "endpoint_name": _env("SAGELAKE_ENDPOINT", "sagelake-churn"),
        "training_instance_type": _env("SAGELAKE_TRAINING_INSTANCE", "ml.m5.large"),
        "endpoint_instance_type": _env("SAGELAKE_ENDPOINT_INSTANCE", "ml.m5.large"),
        "min_auc": float(_env("SAGELAKE_MIN_AUC", "0.75")),
    }


def events_queue_url() -> str | None:
    """The SQS queue EventBridge delivers events to (``SAGELAKE_EVENTS_QUEUE_URL``); unset: no SQS path."""
    return os.environ.get("SAGELAKE_EVENTS_QUEUE_URL", "").strip() or None


def partition_lease() -> timedelta:
    """How long a run holds its partition's lock before another run may take it over (a killed run's
    lock expires then; its own retries take it back at once): ``SAGELAKE_PARTITION_LEASE_MINUTES``, 120."""
    raw = _env("SAGELAKE_PARTITION_LEASE_MINUTES", "120")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"SAGELAKE_PARTITION_LEASE_MINUTES={raw!r} is not a whole number of minutes >= 1")
    return timedelta(minutes=int(raw))
