"""Pipeline settings: DAG param defaults, overridable by environment variables and, per run, by params.

Nothing here names an account, a region or a secret: credentials, region and endpoints come from the
Airflow connection ``aws_default``; IAM roles are given by name and expanded to ARNs at run time.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagelake.ml.spot import SpotSettings

PROJECT_ROOT = Path(__file__).resolve().parents[3]
INCLUDE_DIR = Path(os.environ.get("SAGELAKE_INCLUDE_DIR", "").strip() or PROJECT_ROOT / "include")
GLUE_SCRIPT = INCLUDE_DIR / "glue" / "churn_features.py"
SQL_DIR = INCLUDE_DIR / "sql"
CHECKS_DIR = SQL_DIR / "checks"
TRAINING_DIR = INCLUDE_DIR / "training"
CONTRACTS_DIR = INCLUDE_DIR / "contracts"

AWS_CONN_ID = "aws_default"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def default_params() -> dict[str, object]:
    """Defaults of the DAG params shared by the pipeline's DAGs (each can be overridden per run).

    Only where a run reads and writes and per-run choices; who the jobs run as, which endpoint is
    production and which registry decides are :func:`deployment_settings`, out of a triggerer's reach.
    """
    return {
        "bucket": _env("SAGELAKE_BUCKET", "sagelake-lake"),
        "glue_database": _env("SAGELAKE_GLUE_DATABASE", "sagelake"),
        "glue_job_name": _env("SAGELAKE_GLUE_JOB", "sagelake-churn-features"),
        "athena_workgroup": _env("SAGELAKE_ATHENA_WORKGROUP", "sagelake"),
        "training_instance_type": _env("SAGELAKE_TRAINING_INSTANCE", "ml.m5.large"),
        "endpoint_instance_type": _env("SAGELAKE_ENDPOINT_INSTANCE", "ml.m5.large"),
    }


def deployment_settings() -> dict[str, str]:
    """Who the jobs run as and what is production: deployment settings, never run params.

    ``glue_role`` (``SAGELAKE_GLUE_ROLE``) and ``sagemaker_role`` (``SAGELAKE_SAGEMAKER_ROLE``): IAM roles by
    name (expanded to ARNs at run time) or ARN; ``endpoint_name`` (``SAGELAKE_ENDPOINT``): the production
    endpoint; ``model_package_group`` (``SAGELAKE_MODEL_PACKAGE_GROUP``): the registry group whose approved
    versions may serve. DAGs read them as ``{{ deployment.* }}`` (``user_defined_macros``).
    """
    return {
        "glue_role": _env("SAGELAKE_GLUE_ROLE", "sagelake-glue"),
        "sagemaker_role": _env("SAGELAKE_SAGEMAKER_ROLE", "sagelake-sagemaker"),
        "endpoint_name": _env("SAGELAKE_ENDPOINT", "sagelake-churn"),
        "model_package_group": _env("SAGELAKE_MODEL_PACKAGE_GROUP", "sagelake-churn"),
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


def local_state_dir() -> Path:
    """Where the local target's engines keep their state (``SAGELAKE_LOCAL_DIR``, default ``.local/``)."""
    return Path(_env("SAGELAKE_LOCAL_DIR", str(PROJECT_ROOT / ".local")))


def spark_gateway_dir() -> Path:
    """Where the local stack's warm Spark JVM is recorded (``SAGELAKE_SPARK_GATEWAY_DIR``, default
    ``spark-gateway/`` in :func:`local_state_dir`); local Glue runs use it when it is running and free."""
    return Path(_env("SAGELAKE_SPARK_GATEWAY_DIR", str(local_state_dir() / "spark-gateway")))


# C1 only: the local stack's days are demo- and test-sized, where the C2 compiler costs more CPU than it saves
# (on 2 cores, the demo's Glue run in a new JVM 40.5 -> 29.5 s, in the warm one 17.9 -> 12.8 s). A large day
# wants C2 back (SAGELAKE_SPARK_JAVA_OPTIONS="-XX:+UseParallelGC": a 1e7-event day took 123 CPU-s with it,
# 224 with C1 alone). The parallel collector keeps GC pauses short on a multi-GiB heap.
SPARK_JAVA_OPTIONS = "-XX:+UseParallelGC -XX:TieredStopAtLevel=1"


def spark_java_options() -> str:
    """The local Spark driver's JVM options (``SAGELAKE_SPARK_JAVA_OPTIONS``, default
    :data:`SPARK_JAVA_OPTIONS`): for the own JVM of a local Glue run and the warm one alike."""
    return _env("SAGELAKE_SPARK_JAVA_OPTIONS", SPARK_JAVA_OPTIONS)


# --- Warehouse: Redshift Serverless and Redshift Spectrum (issue 9) ---
WAREHOUSE_SQL_DIR = SQL_DIR / "warehouse"


def warehouse_settings() -> dict[str, str]:
    """The warehouse the ``warehouse_load`` DAG loads: deployment settings, not run params.

    ``redshift_workgroup`` and ``redshift_database`` name the Redshift Serverless workgroup and database;
    ``spectrum_role`` is the IAM role (name, expanded to an ARN at run time, or an ARN) Redshift assumes
    to read the Glue catalog and S3; ``redshift_secret_arn`` (optional) is the Secrets Manager secret of
    the database user (empty: the Data API's temporary IAM credentials).
    """
    return {
        "redshift_workgroup": _env("SAGELAKE_REDSHIFT_WORKGROUP", "sagelake"),
        "redshift_database": _env("SAGELAKE_REDSHIFT_DATABASE", "dev"),
        "redshift_secret_arn": _env("SAGELAKE_REDSHIFT_SECRET_ARN", ""),
        "spectrum_role": _env("SAGELAKE_SPECTRUM_ROLE", "sagelake-spectrum"),
        "spectrum_schema": _env("SAGELAKE_SPECTRUM_SCHEMA", "spectrum"),
        "warehouse_table": _env("SAGELAKE_WAREHOUSE_TABLE", "churn_features_daily"),
    }


# --- Lake set-up as code: bucket and Athena workgroup policy (issue 9, sagelake.lake.setup) ---
RAW_STORAGE_CLASSES = ("STANDARD_IA", "GLACIER_IR")
ATHENA_MIN_BYTES_SCANNED_CUTOFF = 10 * 1024 * 1024  # AWS's minimum BytesScannedCutoffPerQuery (10 MB)


def _whole(name: str, default: int, minimum: int) -> int:
    raw = _env(name, str(default))
    if not raw.isdigit() or int(raw) < minimum:
        raise ValueError(f"{name}={raw!r} is not a whole number >= {minimum}")
    return int(raw)


def lake_setup_settings() -> dict[str, object]:
    """Deployment policy of the lake bucket and the Athena workgroup (not DAG params: one policy per lake).

    ``SAGELAKE_LAKE_RAW_TRANSITION_DAYS`` (30) and ``SAGELAKE_LAKE_RAW_STORAGE_CLASS`` (``STANDARD_IA`` or
    ``GLACIER_IR``): ``raw/`` objects move to the cheaper class after that many days (S3 refuses fewer than
    30 for ``STANDARD_IA``). ``SAGELAKE_LAKE_NONCURRENT_EXPIRY_DAYS`` (7): deleted and overwritten objects
    (staged and superseded versions among them) are kept that long as noncurrent versions.
    ``SAGELAKE_LAKE_QUARANTINE_EXPIRY_DAYS`` (90), ``SAGELAKE_ATHENA_RESULTS_EXPIRY_DAYS`` (30),
    ``SAGELAKE_LAKE_SCRATCH_EXPIRY_DAYS`` (30: ``training/`` channels and ``checkpoints/``),
    ``SAGELAKE_LAKE_ABORT_MULTIPART_DAYS`` (7). ``SAGELAKE_LAKE_KMS_KEY_ID`` (empty: SSE-S3, else SSE-KMS
    with that key). ``SAGELAKE_LAKE_REQUIRE_TLS`` (``true``): the TLS-only bucket policy.
    ``SAGELAKE_ATHENA_BYTES_SCANNED_CUTOFF`` (10 GiB, at least 10 MB): the workgroup's per-query limit.
    """
    storage_class = _env("SAGELAKE_LAKE_RAW_STORAGE_CLASS", "STANDARD_IA").upper()
    if storage_class not in RAW_STORAGE_CLASSES:
        raise ValueError(
            f"SAGELAKE_LAKE_RAW_STORAGE_CLASS={storage_class!r} is not one of "
            + ", ".join(RAW_STORAGE_CLASSES)
        )
    transition_days = _whole("SAGELAKE_LAKE_RAW_TRANSITION_DAYS", 30, 1)
    if storage_class == "STANDARD_IA" and transition_days < 30:
        raise ValueError(
            f"SAGELAKE_LAKE_RAW_TRANSITION_DAYS={transition_days} is below 30, the minimum S3 accepts for "
            "STANDARD_IA: raise it or use SAGELAKE_LAKE_RAW_STORAGE_CLASS=GLACIER_IR"
        )
    require_tls = _env("SAGELAKE_LAKE_REQUIRE_TLS", "true").lower()
    if require_tls not in ("true", "false"):
        raise ValueError(f"SAGELAKE_LAKE_REQUIRE_TLS={require_tls!r} is not true or false")
    return {
        "raw_storage_class": storage_class,
        "raw_transition_days": transition_days,
        "noncurrent_expiry_days": _whole("SAGELAKE_LAKE_NONCURRENT_EXPIRY_DAYS", 7, 1),
        "quarantine_expiry_days": _whole("SAGELAKE_LAKE_QUARANTINE_EXPIRY_DAYS", 90, 1),
        "athena_results_expiry_days": _whole("SAGELAKE_ATHENA_RESULTS_EXPIRY_DAYS", 30, 1),
        "scratch_expiry_days": _whole("SAGELAKE_LAKE_SCRATCH_EXPIRY_DAYS", 30, 1),
        "abort_multipart_days": _whole("SAGELAKE_LAKE_ABORT_MULTIPART_DAYS", 7, 1),
        "kms_key_id": _env("SAGELAKE_LAKE_KMS_KEY_ID", ""),
        "require_tls": require_tls == "true",
        "bytes_scanned_cutoff": _whole(
            "SAGELAKE_ATHENA_BYTES_SCANNED_CUTOFF", 10 * 1024**3, ATHENA_MIN_BYTES_SCANNED_CUTOFF
        ),
    }


# --- discovery: the Glue crawler over raw/ (lake_discovery) ---
DISCOVERY_SQL_DIR = SQL_DIR / "discovery"


def crawler_name() -> str:
    """Name of the Glue crawler over ``raw/`` (``SAGELAKE_CRAWLER``, default ``sagelake-raw``)."""
    return _env("SAGELAKE_CRAWLER", "sagelake-raw")


# --- profiles: data profiles of published partitions (lake_profile) ---
def databrew_role() -> str:
    """IAM role (name or ARN) the DataBrew profile jobs run as on AWS (``SAGELAKE_DATABREW_ROLE``,
    default ``sagelake-databrew``); unused on the local target."""
    return _env("SAGELAKE_DATABREW_ROLE", "sagelake-databrew")


# --- MLflow tracking (issue 10, sagelake.ml.tracking) ---
DEFAULT_MLFLOW_PORT = 5000


def mlflow_settings() -> dict[str, str]:
    """Where trials are tracked: deployment settings, not run params (resolved by ``sagelake.ml.tracking``).

    ``tracking_arn`` (``SAGELAKE_MLFLOW_TRACKING_ARN``): the ARN of the SageMaker managed MLflow tracking
    server, used on the ``aws`` target through the ``sagemaker-mlflow`` plugin. ``tracking_uri``
    (``SAGELAKE_MLFLOW_TRACKING_URI``): any other MLflow tracking URI, the local stack's server on the
    ``local`` target (default ``http://127.0.0.1:<SAGELAKE_MLFLOW_PORT or 5000>``).
    """
    return {
        "tracking_arn": _env("SAGELAKE_MLFLOW_TRACKING_ARN", ""),
        "tracking_uri": _env("SAGELAKE_MLFLOW_TRACKING_URI", ""),
        "port": _env("SAGELAKE_MLFLOW_PORT", str(DEFAULT_MLFLOW_PORT)),
    }


# --- model development: training window, tuning, human approval (issue 10, churn_train_deploy) ---
def _fraction(name: str, default: str, *, low: float, high: float, closed_high: bool) -> float:
    raw = _env(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (low < value <= high if closed_high else low <= value < high):
        bound = "]" if closed_high else ")"
        raise ValueError(f"{name}={raw!r} is not a number in ({low}, {high}{bound}")
    return value


def model_settings() -> dict[str, object]:
    """How ``churn_train_deploy`` trains and decides: deployment settings, not run params.

    ``window_days`` (``SAGELAKE_TRAINING_WINDOW_DAYS``, 7): the last N published partitions trained on;
    ``holdout_share`` (``SAGELAKE_HOLDOUT_SHARE``, 0.25; 1 holds out the whole newest day): the share of
    the newest day's customers held out for evaluation; ``validation_share`` (``SAGELAKE_VALIDATION_SHARE``,
    0.2): the share of training rows the tuning objective is measured on; ``tuning_max_jobs``
    (``SAGELAKE_TUNING_MAX_JOBS``, 4), ``tuning_max_parallel`` (``SAGELAKE_TUNING_MAX_PARALLEL``, 2),
    ``tuning_strategy`` (``SAGELAKE_TUNING_STRATEGY``, ``Bayesian``); ``approval_timeout_minutes``
    (``SAGELAKE_APPROVAL_TIMEOUT_MINUTES``, 1440): how long a person has to answer before the challenger
    is rejected. ``algorithm`` (``SAGELAKE_ALGORITHM``, ``sklearn``): the default of the DAG's
    ``algorithm`` param (``sklearn`` script mode or ``xgboost`` built-in), a per-run choice.
    """
    strategy = _env("SAGELAKE_TUNING_STRATEGY", "Bayesian")
    if strategy not in ("Bayesian", "Random"):
        raise ValueError(f"SAGELAKE_TUNING_STRATEGY={strategy!r} is not Bayesian or Random")
    max_jobs = _whole("SAGELAKE_TUNING_MAX_JOBS", 4, 1)
    max_parallel = _whole("SAGELAKE_TUNING_MAX_PARALLEL", 2, 1)
    if max_parallel > max_jobs:
        raise ValueError(
            f"SAGELAKE_TUNING_MAX_PARALLEL={max_parallel} exceeds SAGELAKE_TUNING_MAX_JOBS={max_jobs}"
        )
    return {
        "window_days": _whole("SAGELAKE_TRAINING_WINDOW_DAYS", 7, 1),
        "holdout_share": _fraction("SAGELAKE_HOLDOUT_SHARE", "0.25", low=0, high=1, closed_high=True),
        "validation_share": _fraction("SAGELAKE_VALIDATION_SHARE", "0.2", low=0, high=1, closed_high=False),
        "tuning_max_jobs": max_jobs,
        "tuning_max_parallel": max_parallel,
        "tuning_strategy": strategy,
        "approval_timeout_minutes": _whole("SAGELAKE_APPROVAL_TIMEOUT_MINUTES", 1440, 1),
        "algorithm": _env("SAGELAKE_ALGORITHM", "sklearn"),
    }


# --- Managed Spot training (issue 10, sagelake.ml.spot) ---
def spot_training_settings() -> SpotSettings:
    """Whether training jobs run on managed spot capacity: deployment settings, never run params.

    ``SAGELAKE_SPOT_TRAINING`` (``true``/``false``, default false); ``SAGELAKE_SPOT_MAX_WAIT_SECONDS``
    (default: twice the job's ``MaxRuntimeInSeconds``; never less than it); checkpoints go to
    ``s3://<SAGELAKE_SPOT_CHECKPOINT_BUCKET or the lake bucket SAGELAKE_BUCKET>/checkpoints/<job name>/``.
    Returns a :class:`sagelake.ml.spot.SpotSettings` for the request builders' ``spot=``.
    """
    from sagelake.ml.spot import parse_spot_settings  # only tasks need it: every DAG file imports settings

    return parse_spot_settings(os.environ, bucket=_env("SAGELAKE_BUCKET", "sagelake-lake"))


# --- Local framework environments (issue 10, sagelake.local.framework_env) ---
def local_framework_envs() -> bool:
    """Whether local SageMaker jobs and endpoints run on their container's pinned framework versions.

    ``SAGELAKE_LOCAL_FRAMEWORK_ENVS`` (``true``/``false``, default true); false runs them on the Airflow
    venv's versions (a developer's fallback: a script may then pass locally and fail on AWS).
    """
    value = _env("SAGELAKE_LOCAL_FRAMEWORK_ENVS", "true").lower()
    if value not in ("true", "false"):
        raise ValueError(f"SAGELAKE_LOCAL_FRAMEWORK_ENVS={value!r} is not true or false")
    return value == "true"


def framework_envs_dir() -> Path:
    """Where the framework environments are built (``SAGELAKE_FRAMEWORK_ENVS_DIR``, default
    ``.venv/frameworks``: built by ``make venv``, shared by the stack and the tests, kept by
    ``make clean``)."""
    return Path(_env("SAGELAKE_FRAMEWORK_ENVS_DIR", str(PROJECT_ROOT / ".venv" / "frameworks")))


# --- Monitoring: data drift against the training baseline (issue 11, sagelake.ml.drift, churn_drift) ---
def drift_settings() -> dict[str, object]:
    """When ``churn_drift`` calls a feature drifted and asks for retraining: deployment settings, not params.

    ``psi_threshold`` (``SAGELAKE_DRIFT_PSI_THRESHOLD``, 0.2): a numeric feature whose population stability
    index exceeds it drifted; ``ks_pvalue`` (``SAGELAKE_DRIFT_KS_PVALUE``, 0.01): the significance level of
    the Kolmogorov–Smirnov test (numeric) and of the chi-squared test (categorical); ``linf_threshold``
    (``SAGELAKE_DRIFT_LINF_THRESHOLD``, 0.1): Model Monitor's ``comparison_threshold``, the distance (L∞
    between category shares, KS distance between CDFs) a feature must also exceed; ``categorical_method``
    (``SAGELAKE_DRIFT_CATEGORICAL_METHOD``, ``LInfinity`` or ``ChiSquared``): Model Monitor's
    ``categorical_drift_method``; ``capture_uri`` (``SAGELAKE_DATA_CAPTURE_URI``, default empty: the
    lake's ``monitoring/capture/``): the endpoint's data capture destination.
    """
    method = _env("SAGELAKE_DRIFT_CATEGORICAL_METHOD", "LInfinity")
    if method not in ("LInfinity", "ChiSquared"):
        raise ValueError(f"SAGELAKE_DRIFT_CATEGORICAL_METHOD={method!r} is not LInfinity or ChiSquared")
    return {
        "psi_threshold": _fraction(
            "SAGELAKE_DRIFT_PSI_THRESHOLD", "0.2", low=0, high=float("inf"), closed_high=False
        ),
        "ks_pvalue": _fraction("SAGELAKE_DRIFT_KS_PVALUE", "0.01", low=0, high=1, closed_high=False),
        "linf_threshold": _fraction("SAGELAKE_DRIFT_LINF_THRESHOLD", "0.1", low=0, high=1, closed_high=False),
        "categorical_method": method,
        "capture_uri": _env("SAGELAKE_DATA_CAPTURE_URI", ""),
    }


# --- Safe endpoint updates and autoscaling (issue 11, sagelake.ml.deployment) ---
def rollout_settings():  # -> sagelake.ml.deployment.RolloutSettings (imported lazily: DAG parse time)
    """How ``churn_train_deploy`` updates the production endpoint: deployment settings, never run params.

    ``SAGELAKE_DEPLOY_TRAFFIC`` (``CANARY``, ``LINEAR`` or ``ALL_AT_ONCE``; canary/linear need two or more
    instances), ``SAGELAKE_DEPLOY_STEP_PERCENT`` (10), ``SAGELAKE_DEPLOY_WAIT_SECONDS`` (300),
    ``SAGELAKE_DEPLOY_BAKE_SECONDS`` (600), ``SAGELAKE_DEPLOY_ROLLBACK_ALARMS`` (comma-separated; default the
    endpoint alarms of ``include/infra/ml.cfn.json``; ``none``: no alarms), ``SAGELAKE_ENDPOINT_INSTANCES``,
    ``SAGELAKE_ENDPOINT_MIN_INSTANCES`` (1), ``SAGELAKE_ENDPOINT_MAX_INSTANCES`` (2),
    ``SAGELAKE_ENDPOINT_TARGET_INVOCATIONS`` (100 per instance per minute).
    """
    from sagelake.ml.deployment import parse_rollout_settings

    return parse_rollout_settings(
        os.environ,
        deployment_settings()["endpoint_name"],
        rollback_alarms=_env("SAGELAKE_DEPLOY_ROLLBACK_ALARMS", ""),  # the ml stack's alarm names
    )


# --- Monitoring: failure notifications and run deadlines (issue 11, sagelake.monitoring.notifications) ---
ALERTS_TOPIC = "sagelake-alerts"  # the local stack's topic (devstack.stack.bootstrap_control_plane)
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account (MOTO_ACCOUNT_ID overrides it)


def alerts_topic_arn() -> str | None:
    """The SNS topic failed tasks and missed deadlines notify: a deployment setting, never a run param.

    ``SAGELAKE_ALERTS_TOPIC_ARN`` (the ml stack's ``SagelakeAlertsTopicArn`` output on AWS). Unset on the
    ``local`` target: the local stack's topic ``sagelake-alerts`` in the control plane's region
    (``AWS_DEFAULT_REGION``) and account (``MOTO_ACCOUNT_ID``, else moto's default); unset on ``aws``: None
    (no notifications; the callbacks log a warning). Read at run time, not at DAG parse time.
    """
    from sagelake.config.target import is_local

    name = "SAGELAKE_ALERTS_TOPIC_ARN"
    arn = os.environ.get(name, "").strip()
    if arn:
        if not arn.startswith("arn:") or arn.count(":") != 5:
            raise ValueError(f"{name}={arn!r} is not an SNS topic ARN")
        return arn
    if not is_local():
        return None
    region = os.environ.get("AWS_DEFAULT_REGION", "").strip() or "us-east-1"
    account = os.environ.get("MOTO_ACCOUNT_ID", "").strip() or LOCAL_ACCOUNT_ID
    return f"arn:aws:sns:{region}:{account}:{ALERTS_TOPIC}"


RUN_DEADLINE_DEFAULTS = {"churn_prepare": 120, "churn_train_deploy": 480}  # minutes after a run is queued


def run_deadline(dag_id: str) -> timedelta:
    """How long after a run of ``dag_id`` is queued it must have succeeded before a missed-deadline alert.

    ``SAGELAKE_DEADLINE_MINUTES_<DAG ID IN CAPITALS>``: ``SAGELAKE_DEADLINE_MINUTES_CHURN_PREPARE`` (120) and
    ``SAGELAKE_DEADLINE_MINUTES_CHURN_TRAIN_DEPLOY`` (480: tuning, evaluation and a person's approval).
    """
    if dag_id not in RUN_DEADLINE_DEFAULTS:
        raise KeyError(f"no run deadline for {dag_id!r}: one of {sorted(RUN_DEADLINE_DEFAULTS)}")
    name = "SAGELAKE_DEADLINE_MINUTES_" + dag_id.upper()
    return timedelta(minutes=_whole(name, RUN_DEADLINE_DEFAULTS[dag_id], 1))


# --- A/B testing: champion vs challenger on the production endpoint (issue 11, sagelake.ml.ab_testing) ---
def ab_test_settings():  # -> sagelake.ml.ab_testing.ABSettings (imported lazily: DAG parse time)
    """How ``churn_ab_test`` splits traffic and judges the result: deployment settings, never run params.

    ``SAGELAKE_AB_CHALLENGER_WEIGHT`` (0.1: the challenger's share of the traffic, in (0, 1)),
    ``SAGELAKE_AB_OBSERVATION_MINUTES`` (60: how long both variants serve before the comparison),
    ``SAGELAKE_AB_MIN_SAMPLES`` (100: labelled predictions each variant needs before any verdict),
    ``SAGELAKE_AB_ALPHA`` (0.05: the significance level of the two-proportion z-test).
    """
    from sagelake.ml.ab_testing import ABSettings

    weight = _fraction("SAGELAKE_AB_CHALLENGER_WEIGHT", "0.1", low=0.0, high=1.0, closed_high=False)
    if weight == 0:
        raise ValueError("SAGELAKE_AB_CHALLENGER_WEIGHT='0' is not a number in (0, 1)")
    return ABSettings(
        challenger_weight=weight,
        observation_minutes=_whole("SAGELAKE_AB_OBSERVATION_MINUTES", 60, 1),
        min_samples=_whole("SAGELAKE_AB_MIN_SAMPLES", 100, 1),
        alpha=_fraction("SAGELAKE_AB_ALPHA", "0.05", low=0.0, high=0.5, closed_high=False),
    )
