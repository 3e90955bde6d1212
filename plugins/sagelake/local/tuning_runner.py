"""The local SageMaker tuning engine: a CreateHyperParameterTuningJob request run as N real training trials.

Each trial is the request's training job definition with values proposed by
:class:`sagelake.ml.tuning.Sampler`, named ``<tuning-job>-<NNN>-<hash>`` and run by the local training
engine (:func:`sagelake.local.training_runner.run_training_job`, a subprocess each), at most
``min(MaxParallelTrainingJobs, cores)`` at a time. A finished trial is recorded in the control plane as a
training job (``CreateTrainingJob``), its log goes to CloudWatch Logs (``/aws/sagemaker/TrainingJobs``,
stream ``<trial>/algo-1-<epoch>``, as SageMaker writes it) and its objective is parsed from that log with
the request's ``MetricDefinitions`` regex. The outcome — every trial, its status and objective — is then
recorded on the tuning job (``SageMaker.SagelakeRecordTuningJob``, see
:mod:`sagelake.local.sagemaker_tuning_records`), so ``DescribeHyperParameterTuningJob`` names the real
best trial.

Each trial gets its share of the cores (``OMP_NUM_THREADS``, :func:`trial_threads`), as each trial on AWS
has its own instance. ``TrainingJobEarlyStoppingType`` ``Off`` runs every trial to its end; ``Auto`` does
the same locally (a warning says so): SageMaker's automatic early stopping compares a trial's intermediate
objective with the median of earlier trials, and the trials here report only final metrics.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sagelake.local.extension_calls import ExtensionCallError, call_extension
from sagelake.local.training_runner import TrainingJobFailedError, run_training_job
from sagelake.ml.tuning import (
    STRATEGIES,
    Sampler,
    Trial,
    TuningSpecError,
    best_trial,
    metric_definitions_of,
    objective_of,
    parse_metric,
    parse_metrics,
    ranges_of,
    seed_of,
    trial_job_name,
    trial_request,
)

log = logging.getLogger(__name__)

RECORD_TUNING_ACTION = "SagelakeRecordTuningJob"  # sagelake.local.sagemaker_tuning_records
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
LOG_EVENTS_PER_CALL = 5000
FAILURE_REASON_MAX_LEN = 1024


class TuningJobFailedError(RuntimeError):
    """No trial reported the objective, or the request cannot run; the tuning job is recorded Failed."""


@dataclass(frozen=True)
class TuningRunResult:
    """What a finished local tuning job produced (``best`` is ``None`` only if it failed)."""

    job_name: str
    trials: list[Trial]
    best: Trial | None
    parallelism: int
    wall_seconds: float
    record: dict[str, Any] = field(default_factory=dict)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def parallelism(request: dict[str, Any], cores: int | None = None, limit: int | None = None) -> int:
    """How many trials run at once: ``min(MaxParallelTrainingJobs, cores[, limit])``, at least 1."""
    limits = (request.get("HyperParameterTuningJobConfig") or {}).get("ResourceLimits") or {}
    bounds = [int(limits.get("MaxParallelTrainingJobs", 1)), cores or available_cores()]
    if limit:
        bounds.append(limit)
    return max(1, min(bounds))


@contextlib.contextmanager
def trial_threads(workers: int) -> Iterator[str | None]:
    """Give each of ``workers`` parallel trials its share of the cores, as each AWS trial has its instance.

    Sets ``OMP_NUM_THREADS`` (read by scikit-learn's and xgboost's OpenMP loops in the trial subprocesses,
    which inherit this process's environment) to ``cores // workers`` while the trials run, unless it is
    set already; yields the value in force.
    """
    if "OMP_NUM_THREADS" in os.environ:
        yield os.environ["OMP_NUM_THREADS"]
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, available_cores() // workers))
    try:
        yield os.environ["OMP_NUM_THREADS"]
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)


def check_runnable(request: dict[str, Any]) -> tuple[int, str]:
    """Check the request runs locally; return ``(MaxNumberOfTrainingJobs, Strategy)``."""
    config = request.get("HyperParameterTuningJobConfig") or {}
    strategy = config.get("Strategy")
    if strategy not in STRATEGIES:
        raise TuningSpecError(f"Strategy {strategy!r} does not run locally: use {' or '.join(STRATEGIES)}")
    if request.get("TrainingJobDefinitions") or not request.get("TrainingJobDefinition"):
        raise TuningSpecError("give one TrainingJobDefinition (several TrainingJobDefinitions: unsupported)")
    if request.get("WarmStartConfig"):
        raise TuningSpecError("WarmStartConfig is not supported locally: remove it")
    max_jobs = int((config.get("ResourceLimits") or {}).get("MaxNumberOfTrainingJobs") or 0)
    if max_jobs < 1:
        raise TuningSpecError("ResourceLimits.MaxNumberOfTrainingJobs must be set (>= 1) to run locally")
    objective_of(request)
    ranges_of(request)
    if config.get("TrainingJobEarlyStoppingType", "Off") == "Auto":
        log.warning(
            "tuning job %s: TrainingJobEarlyStoppingType=Auto runs every trial to its end locally "
            "(trials report only final metrics)",
            request.get("HyperParameterTuningJobName"),
        )
    return max_jobs, strategy


def _trial_log(work: Path, fallback: str) -> str:
    """The trial's whole log (stdout then stderr, as the training engine kept them)."""
    parts = [work / "output" / "stdout.log", work / "output" / "stderr.log"]
    texts = [p.read_text() for p in parts if p.exists()]
    return "\n".join(t for t in texts if t) if texts else fallback


def write_trial_log(logs: Any, job: str, text: str, start: float) -> str | None:
    """Put the trial's log lines into CloudWatch Logs as SageMaker does; return the stream name."""
    lines = [line for line in text.splitlines() if line.strip()]
    if logs is None or not lines:
        return None
    stream = f"{job}/algo-1-{int(start)}"
    try:
        logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
            raise
    logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream)
    base = int(start * 1000)
    events = [{"timestamp": base + i, "message": line} for i, line in enumerate(lines)]
    for first in range(0, len(events), LOG_EVENTS_PER_CALL):
        logs.put_log_events(
            logGroupName=TRAINING_LOG_GROUP,
            logStreamName=stream,
            logEvents=events[first : first + LOG_EVENTS_PER_CALL],
        )
    return stream


def record_tuning_job(sagemaker: Any, credentials: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Send the control-plane-only ``SageMaker.SagelakeRecordTuningJob`` call, signed like any request."""
    try:
        return call_extension(sagemaker, credentials, "sagemaker", f"SageMaker.{RECORD_TUNING_ACTION}", body)
    except ExtensionCallError as error:
        name = body.get("HyperParameterTuningJobName")
        raise TuningJobFailedError(f"recording tuning job {name}: {error}") from None


def _trial_entry(trial: Trial) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "TrainingJobName": trial.name,
        "TunedHyperParameters": trial.hyperparameters,
        "TrainingJobStatus": trial.status,
        "Metrics": trial.metrics,
        "TrainingStartTime": trial.start_time,
        "TrainingEndTime": trial.end_time,
        "TrainingTimeInSeconds": trial.seconds,
        "BillableTimeInSeconds": trial.seconds,  # no spot discount locally
    }
    if trial.objective is not None:
        entry["FinalObjectiveValue"] = trial.objective
    if trial.failure_reason:
        entry["FailureReason"] = trial.failure_reason[:FAILURE_REASON_MAX_LEN]
    return entry


@dataclass
class _Running:
    name: str
    values: dict[str, str]
    request: dict[str, Any]
    work: Path
    start: float


def _run_one(running: _Running, s3: Any) -> str:
    """Run a trial's training job; return its log (raises TrainingJobFailedError on a failed script)."""
    result = run_training_job(running.request, s3, running.work)
    return _trial_log(running.work, result.log_tail)


def _finish(
    running: _Running, future: Future[str], request: dict[str, Any], sagemaker: Any, logs: Any
) -> Trial:
    """Record a finished trial as a training job with its log; parse its objective from that log."""
    metric, _, regex = objective_of(request)
    end = time.time()
    failure, text = "", ""
    try:
        text = future.result()
    except TrainingJobFailedError as error:
        failure = str(error)
        text = _trial_log(running.work, failure)
    sagemaker.create_training_job(**running.request)
    write_trial_log(logs, running.name, text, running.start)
    definitions = metric_definitions_of(request["TrainingJobDefinition"])
    metrics = parse_metrics(text, definitions) if not failure else {}
    objective = parse_metric(text, regex) if not failure else None
    if not failure and objective is None:
        log.warning("trial %s completed but its log has no %s matching %r", running.name, metric, regex)
    log.info(
        "trial %s %s: %s=%s %s",
        running.name,
        "failed" if failure else "completed",
        metric,
        objective,
        running.values,
    )
    return Trial(
        name=running.name,
        hyperparameters=running.values,
        status="Failed" if failure else "Completed",
        objective=objective,
        failure_reason=failure,
        metrics=metrics,
        start_time=running.start,
        end_time=end,
    )


def run_tuning_job(
    request: dict[str, Any],
    *,
    sagemaker: Any,
    s3: Any,
    credentials: Any,
    work_dir: Path,
    logs: Any = None,
    max_workers: int | None = None,
) -> TuningRunResult:
    """Run a recorded (``InProgress``) tuning job's trials locally and record the outcome on it.

    ``sagemaker``, ``s3`` and ``logs`` are clients of the control plane, ``credentials`` sign the record
    call; each trial works in ``work_dir/<trial>``. Raises :class:`TuningJobFailedError` (after recording
    the job ``Failed``) when no trial reported the objective or a trial's request cannot run.
    """
    name = request["HyperParameterTuningJobName"]
    began = time.monotonic()
    try:
        max_jobs, strategy = check_runnable(request)
    except TuningSpecError as error:
        record_tuning_job(
            sagemaker,
            credentials,
            {
                "HyperParameterTuningJobName": name,
                "Status": "Failed",
                "FailureReason": str(error),
                "TrainingJobs": [],
            },
        )
        raise TuningJobFailedError(f"tuning job {name}: {error}") from error
    _, objective_type, _ = objective_of(request)
    sampler = Sampler(
        ranges_of(request), strategy=strategy, objective_type=objective_type, seed=seed_of(request)
    )
    workers = parallelism(request, limit=max_workers)
    log.info("tuning job %s: %d trial(s), %d at a time (%s)", name, max_jobs, workers, strategy)
    trials: list[Trial] = []
    running: dict[Future[str], _Running] = {}
    fatal: BaseException | None = None
    with (
        trial_threads(workers) as threads,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"tuning-{name}") as pool,
    ):
        log.info("tuning job %s: OMP_NUM_THREADS=%s per trial", name, threads)
        started = 0
        while started < max_jobs or running:
            while fatal is None and started < max_jobs and len(running) < workers:
                finished = [(t.hyperparameters, t.objective) for t in trials if t.objective is not None]
                values = sampler.propose(finished, [r.values for r in running.values()])
                started += 1
                trial = trial_job_name(name, started, values)
                item = _Running(
                    trial, values, trial_request(request, trial, values), Path(work_dir) / trial, time.time()
                )
                running[pool.submit(_run_one, item, s3)] = item
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: running[f].name):
                item = running.pop(future)
                if future.exception() is not None and not isinstance(
                    future.exception(), TrainingJobFailedError
                ):
                    fatal = fatal or future.exception()  # a bad request: start no more trials
                    continue
                trials.append(_finish(item, future, request, sagemaker, logs))
    trials.sort(key=lambda t: t.name)
    best = best_trial(trials, objective_type)
    body = {"HyperParameterTuningJobName": name, "TrainingJobs": [_trial_entry(t) for t in trials]}
    if fatal is not None or best is None:
        metric = objective_of(request)[0]
        reason = (
            f"{type(fatal).__name__}: {fatal}"
            if fatal
            else f"no trial reported the objective metric {metric}"
        )
        record_tuning_job(
            sagemaker, credentials, {**body, "Status": "Failed", "FailureReason": reason[:1024]}
        )
        raise TuningJobFailedError(f"tuning job {name} failed: {reason}") from fatal
    recorded = record_tuning_job(sagemaker, credentials, {**body, "Status": "Completed"})
    wall = time.monotonic() - began
    log.info(
        "tuning job %s: best trial %s (%s) of %d in %.1f s",
        name,
        best.name,
        best.objective,
        len(trials),
        wall,
    )
    return TuningRunResult(name, trials, best, workers, wall, recorded)
