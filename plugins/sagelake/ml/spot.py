"""Managed Spot training: the deployment switch, the request fields it adds, and what a spot job cost.

Spot is a deployment setting (:func:`sagelake.config.settings.spot_training_settings`), never a DAG param.
With it, a CreateTrainingJob request carries ``EnableManagedSpotTraining``,
``StoppingCondition.MaxWaitTimeInSeconds`` (at least ``MaxRuntimeInSeconds``: the runtime plus the time
spent waiting for spot capacity) and a ``CheckpointConfig`` whose S3 prefix is per job name
(``s3://<bucket>/checkpoints/<job name>/``), so a retry of the same job resumes from its checkpoints
and a new job starts clean. :func:`billing_summary` reads what AWS reports for a finished job
(``TrainingTimeInSeconds``, ``BillableTimeInSeconds``) and :func:`billing_log_line` says it in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"  # SageMaker's default CheckpointConfig.LocalPath
CHECKPOINT_FOLDER = "checkpoints"  # s3://<bucket>/checkpoints/<job name>/
MAX_WAIT_FACTOR = 2  # MaxWaitTimeInSeconds when the deployment sets none: twice the runtime limit
MAX_TRAINING_SECONDS = 28 * 24 * 3600  # SageMaker's ceiling for MaxRuntimeInSeconds/MaxWaitTimeInSeconds
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off", "")


class SpotSettingsError(ValueError):
    """Spot settings or a spot request are unusable (the message says which value to change)."""


@dataclass(frozen=True)
class SpotSettings:
    """Whether training jobs run on managed spot capacity, how long they may wait, where checkpoints go.

    ``max_wait_s`` None: :data:`MAX_WAIT_FACTOR` times the job's ``MaxRuntimeInSeconds``.
    ``checkpoint_bucket``: the bucket of ``s3://<bucket>/checkpoints/<job name>/``.
    """

    enabled: bool = False
    max_wait_s: int | None = None
    checkpoint_bucket: str = ""


def parse_flag(name: str, raw: str | None) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``; empty is false) of variable
    ``name``; :class:`SpotSettingsError` for anything else."""
    text = (raw or "").strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise SpotSettingsError(f"{name}={raw!r} is not true or false")


def parse_spot_settings(env: Mapping[str, str], *, bucket: str) -> SpotSettings:
    """:class:`SpotSettings` from deployment variables: ``SAGELAKE_SPOT_TRAINING`` (``true``/``false``,
    default false), ``SAGELAKE_SPOT_MAX_WAIT_SECONDS`` (whole seconds >= 1, default: twice the runtime
    limit), ``SAGELAKE_SPOT_CHECKPOINT_BUCKET`` (default ``bucket``, the lake bucket)."""
    enabled = parse_flag("SAGELAKE_SPOT_TRAINING", env.get("SAGELAKE_SPOT_TRAINING"))
    raw_wait = (env.get("SAGELAKE_SPOT_MAX_WAIT_SECONDS") or "").strip()
    max_wait = None
    if raw_wait:
        if not raw_wait.isdigit() or not 1 <= int(raw_wait) <= MAX_TRAINING_SECONDS:
            raise SpotSettingsError(
                f"SAGELAKE_SPOT_MAX_WAIT_SECONDS={raw_wait!r} is not a whole number of seconds from 1 to "
                f"{MAX_TRAINING_SECONDS}"
            )
        max_wait = int(raw_wait)
    checkpoint_bucket = (env.get("SAGELAKE_SPOT_CHECKPOINT_BUCKET") or "").strip() or bucket
    if enabled and not checkpoint_bucket:
        raise SpotSettingsError(
            "spot training needs a checkpoint bucket: set SAGELAKE_SPOT_CHECKPOINT_BUCKET or SAGELAKE_BUCKET"
        )
    return SpotSettings(enabled=enabled, max_wait_s=max_wait, checkpoint_bucket=checkpoint_bucket)


def checkpoint_uri(bucket: str, job_name: str) -> str:
    """``s3://<bucket>/checkpoints/<job name>/``: one prefix per job name (the trailing ``/`` keeps
    ``job`` and ``job-2`` apart)."""
    if not bucket or "/" in bucket:
        raise SpotSettingsError(f"checkpoint bucket {bucket!r} is not a bucket name")
    if not job_name or "/" in job_name:
        raise SpotSettingsError(f"training job name {job_name!r} cannot name a checkpoint prefix")
    return f"s3://{bucket}/{CHECKPOINT_FOLDER}/{job_name}/"


def spot_request_fields(spot: SpotSettings | None, *, job_name: str, max_runtime_s: int) -> dict[str, Any]:
    """The CreateTrainingJob fields spot adds: ``EnableManagedSpotTraining``, the whole
    ``StoppingCondition`` (with ``MaxWaitTimeInSeconds``) and ``CheckpointConfig``; ``{}`` when ``spot``
    is None or disabled. :class:`SpotSettingsError` when the wait is shorter than the runtime limit."""
    if spot is None or not spot.enabled:
        return {}
    max_wait = spot.max_wait_s
    if max_wait is None:
        max_wait = max(min(MAX_WAIT_FACTOR * max_runtime_s, MAX_TRAINING_SECONDS), max_runtime_s)
    if max_wait < max_runtime_s:
        raise SpotSettingsError(
            f"MaxWaitTimeInSeconds={max_wait} is shorter than MaxRuntimeInSeconds={max_runtime_s}: SageMaker "
            "refuses it; raise SAGELAKE_SPOT_MAX_WAIT_SECONDS to at least the runtime limit"
        )
    return {
        "EnableManagedSpotTraining": True,
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s, "MaxWaitTimeInSeconds": max_wait},
        "CheckpointConfig": {
            "S3Uri": checkpoint_uri(spot.checkpoint_bucket, job_name),
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        },
    }


def check_spot_request(request: Mapping[str, Any]) -> None:
    """Refuse what CreateTrainingJob refuses about spot: ``EnableManagedSpotTraining`` without
    ``MaxWaitTimeInSeconds``, a wait without spot, or a wait shorter than ``MaxRuntimeInSeconds``."""
    job = request.get("TrainingJobName", "?")
    stopping = request.get("StoppingCondition") or {}
    wait, runtime = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds")
    spot = bool(request.get("EnableManagedSpotTraining"))
    if spot and wait is None:
        raise SpotSettingsError(
            f"training job {job}: EnableManagedSpotTraining needs StoppingCondition.MaxWaitTimeInSeconds"
        )
    if not spot and wait is not None:
        raise SpotSettingsError(
            f"training job {job}: StoppingCondition.MaxWaitTimeInSeconds is only valid with "
            "EnableManagedSpotTraining"
        )
    if wait is not None and runtime is not None and wait < runtime:
        raise SpotSettingsError(
            f"training job {job}: MaxWaitTimeInSeconds={wait} is shorter than MaxRuntimeInSeconds={runtime}"
        )


# --- billable vs wall seconds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BillingSummary:
    """What a finished training job cost, from its DescribeTrainingJob answer.

    ``training_s`` and ``billable_s`` are AWS's ``TrainingTimeInSeconds`` and ``BillableTimeInSeconds``
    (None when not reported); ``wall_s`` is ``CreationTime`` to ``TrainingEndTime`` (it includes waiting
    for spot capacity and interruptions); ``saving`` is ``1 - billable/training`` (AWS's own formula for
    the managed spot saving), None without both times.
    """

    job_name: str
    managed_spot: bool
    training_s: int | None
    billable_s: int | None
    wall_s: float | None
    saving: float | None


def _seconds(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value).astimezone()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def billing_summary(describe: Mapping[str, Any]) -> BillingSummary:
    """:class:`BillingSummary` of a DescribeTrainingJob answer (boto3's, with datetimes, or JSON)."""
    training = _seconds(describe.get("TrainingTimeInSeconds"))
    billable = _seconds(describe.get("BillableTimeInSeconds"))
    created, ended = _time(describe.get("CreationTime")), _time(describe.get("TrainingEndTime"))
    wall = None
    if created is not None and ended is not None:
        try:
            wall = max((ended - created).total_seconds(), 0.0)
        except TypeError:  # one aware, one naive: not comparable
            wall = None
    saving = None
    if training and billable is not None:
        saving = 1.0 - billable / training
    return BillingSummary(
        job_name=str(describe.get("TrainingJobName", "?")),
        managed_spot=bool(describe.get("EnableManagedSpotTraining")),
        training_s=training,
        billable_s=billable,
        wall_s=wall,
        saving=saving,
    )


def billing_log_line(describe: Mapping[str, Any]) -> str:
    """One log line on a finished job's billable vs training (and wall) seconds and the spot saving."""
    summary = billing_summary(describe)
    kind = "managed spot" if summary.managed_spot else "on-demand"

    def text(value: float | None) -> str:
        return "not reported" if value is None else f"{value:.0f} s"

    line = (
        f"training job {summary.job_name} ({kind}): billable {text(summary.billable_s)}, "
        f"training {text(summary.training_s)}, wall {text(summary.wall_s)}"
    )
    if summary.saving is not None:
        line += f", saving {summary.saving:.1%} (1 - billable/training)"
    return line
