"""SageMaker hyperparameter tuning jobs in the local control plane, recorded as AWS reports them.

moto completes a tuning job the moment it is created, with a fixed fake best training job
(``FakeTrainingJobName``, objective 1) and fixed counters, and it lacks
``ListTrainingJobsForHyperParameterTuningJob``. :func:`install` patches moto (idempotent) so that:

* a tuning job created by ``CreateHyperParameterTuningJob`` is ``InProgress`` with zero counters and no
  best training job until the local tuning runner (:mod:`sagelake.local.tuning_runner`) records its
  outcome with the control-plane-only call ``SageMaker.SagelakeRecordTuningJob``
  (:data:`RECORD_TUNING_ACTION`; body ``{"HyperParameterTuningJobName", "Status": "Completed"|"Failed",
  "FailureReason"?, "TrainingJobs": [{"TrainingJobName", "TunedHyperParameters", "TrainingJobStatus":
  "Completed"|"Failed", "FinalObjectiveValue"?, "Metrics"?: {name: value}, "FailureReason"?,
  "TrainingStartTime", "TrainingEndTime"}]}``, times in epoch seconds). Every trial must already be a
  recorded training job (``CreateTrainingJob``);
* ``DescribeHyperParameterTuningJob`` then answers from the recorded trials: ``BestTrainingJob`` (and
  ``OverallBestTrainingJob``) is the best trial by the request's objective type
  (:func:`sagelake.ml.tuning.best_trial`), ``TrainingJobStatusCounters``, ``ObjectiveStatusCounters``,
  ``HyperParameterTuningEndTime``, ``ConsumedResources``; no fake field remains;
* each trial's ``DescribeTrainingJob`` carries ``TuningJobArn``, its status and failure reason, its
  ``FinalMetricDataList`` (the metrics parsed from its log) and the request's ``MetricDefinitions`` (moto
  replaces them with a fake one);
* ``ListTrainingJobsForHyperParameterTuningJob`` lists the trials (``StatusEquals``, ``SortBy`` ``Name`` |
  ``CreationTime`` | ``Status`` | ``FinalObjectiveMetricValue``, ``SortOrder``, ``MaxResults``,
  ``NextToken``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import HyperParameterTuningJob
from moto.sagemaker.responses import SageMakerResponse

from sagelake.ml.tuning import Trial, best_trial

RECORD_TUNING_ACTION = "SagelakeRecordTuningJob"
OUTCOMES = ("Completed", "Failed")
TRIAL_OUTCOMES = ("Completed", "Failed")
_SORT_KEYS = ("Name", "CreationTime", "Status", "FinalObjectiveMetricValue")
_MAX_RESULTS = 100
_INSTALLED = "_sagelake_tuning_records"
_original_init = HyperParameterTuningJob.__init__


def _init(self: HyperParameterTuningJob, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self.hyper_parameter_tuning_job_status = "InProgress"
    self.hyper_parameter_tuning_end_time = None
    self.training_job_status_counters = {
        "Completed": 0,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    self.objective_status_counters = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    self.best_training_job = None
    self.OverallBestTrainingJob = None
    self.tuning_job_completion_details = None
    self.consumed_resources = None
    self.sagelake_trials: list[dict[str, Any]] = []


def _describe(self: HyperParameterTuningJob) -> dict[str, Any]:
    data = _original_describe(self)
    if not data.get("FailureReason"):
        data.pop("FailureReason", None)
    return {key: value for key, value in data.items() if value is not None}


def _objective(job: HyperParameterTuningJob) -> dict[str, str]:
    return job.hyper_parameter_tuning_job_config.get("HyperParameterTuningJobObjective") or {}


def _summary(job: HyperParameterTuningJob, trial: dict[str, Any]) -> dict[str, Any]:
    """A ``HyperParameterTrainingJobSummary`` of a recorded trial."""
    summary = {
        "TrainingJobName": trial["TrainingJobName"],
        "TrainingJobArn": trial["TrainingJobArn"],
        "TuningJobName": job.hyper_parameter_tuning_job_name,
        "CreationTime": trial["CreationTime"],
        "TrainingStartTime": trial["TrainingStartTime"],
        "TrainingEndTime": trial["TrainingEndTime"],
        "TrainingJobStatus": trial["TrainingJobStatus"],
        "TunedHyperParameters": trial["TunedHyperParameters"],
        "ObjectiveStatus": "Succeeded" if trial.get("FinalObjectiveValue") is not None else "Failed",
    }
    if trial.get("FailureReason"):
        summary["FailureReason"] = trial["FailureReason"]
    if trial.get("FinalObjectiveValue") is not None:
        objective = _objective(job)
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective.get("Type"),
            "MetricName": objective.get("MetricName"),
            "Value": trial["FinalObjectiveValue"],
        }
    return summary


def _time(value: Any) -> datetime:
    """Epoch seconds as the naive UTC datetime moto keeps."""
    return datetime.fromtimestamp(float(value), tz=UTC).replace(tzinfo=None) if value else utcnow()


def _record_trial(
    self: SageMakerResponse, job: HyperParameterTuningJob, item: dict[str, Any]
) -> dict[str, Any]:
    """Mark the trial's training job as the tuning job's; return the trial as recorded."""
    name = item.get("TrainingJobName")
    training = self.sagemaker_backend.training_jobs.get(name)
    if training is None:
        raise ValidationError(message=f"trial {name!r} is not a recorded training job: create it first")
    status = item.get("TrainingJobStatus")
    if status not in TRIAL_OUTCOMES:
        raise ValidationError(message=f"trial {name}: TrainingJobStatus must be Completed or Failed")
    objective = item.get("FinalObjectiveValue")
    start, end = _time(item.get("TrainingStartTime")), _time(item.get("TrainingEndTime"))
    training.tuning_job_arn = job.arn
    training.training_job_status = training.secondary_status = status
    training.training_start_time, training.training_end_time = start, end
    training.last_modified_time = end
    training.creation_time = min(training.creation_time, start)
    for attribute, key in (
        ("training_time_in_seconds", "TrainingTimeInSeconds"),
        ("billable_time_in_seconds", "BillableTimeInSeconds"),
    ):
        if item.get(key) is not None:
            setattr(training, attribute, int(item[key]))
    if item.get("FailureReason"):
        training.failure_reason = item["FailureReason"]
    training.final_metric_data_list = [
        {"MetricName": metric, "Value": float(value), "Timestamp": end}
        for metric, value in sorted((item.get("Metrics") or {}).items())
    ]
    definition = job.training_job_definition or {}
    definitions = (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions")
    if definitions:
        training.algorithm_specification["MetricDefinitions"] = definitions
    return {
        "TrainingJobName": name,
        "TrainingJobArn": training.arn,
        "CreationTime": training.creation_time,
        "TrainingStartTime": start,
        "TrainingEndTime": end,
        "TrainingJobStatus": status,
        "TunedHyperParameters": {k: str(v) for k, v in (item.get("TunedHyperParameters") or {}).items()},
        "FinalObjectiveValue": None if objective is None else float(objective),
        "FailureReason": item.get("FailureReason") or "",
    }


def _record_tuning_job(self: SageMakerResponse) -> str:
    params = {
        key: self._get_param(key)
        for key in ("HyperParameterTuningJobName", "Status", "FailureReason", "TrainingJobs")
    }
    name = params.get("HyperParameterTuningJobName")
    job = self.sagemaker_backend.hyper_parameter_tuning_jobs.get(name)
    if job is None:
        raise ResourceNotFound(message=f"Could not find hyper parameter tuning job '{name}'.")
    status = params.get("Status")
    if status not in OUTCOMES:
        raise ValidationError(message=f"Status must be one of {', '.join(OUTCOMES)}, got {status!r}")
    if job.hyper_parameter_tuning_job_status != "InProgress":
        raise ValidationError(
            message=f"tuning job {name} is {job.hyper_parameter_tuning_job_status}: its outcome is recorded"
        )
    trials = [_record_trial(self, job, item) for item in params.get("TrainingJobs") or []]
    completed = sum(t["TrainingJobStatus"] == "Completed" for t in trials)
    succeeded = sum(t["FinalObjectiveValue"] is not None for t in trials)
    job.sagelake_trials = trials
    job.training_job_status_counters = {
        "Completed": completed,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": len(trials) - completed,
        "Stopped": 0,
    }
    job.objective_status_counters = {"Succeeded": succeeded, "Pending": 0, "Failed": len(trials) - succeeded}
    candidates = [
        Trial(
            t["TrainingJobName"], t["TunedHyperParameters"], t["TrainingJobStatus"], t["FinalObjectiveValue"]
        )
        for t in trials
    ]
    best = best_trial(candidates, _objective(job).get("Type", "Maximize"))
    if best is not None:
        job.best_training_job = _summary(job, next(t for t in trials if t["TrainingJobName"] == best.name))
        job.OverallBestTrainingJob = job.best_training_job
    job.hyper_parameter_tuning_job_status = status
    job.failure_reason = params.get("FailureReason") or ""
    job.hyper_parameter_tuning_end_time = job.last_modified_time = utcnow()
    job.consumed_resources = {
        "RuntimeInSeconds": int(
            sum((t["TrainingEndTime"] - t["TrainingStartTime"]).total_seconds() for t in trials)
        )
    }
    best_name = best.name if best else None
    return json.dumps({"HyperParameterTuningJobArn": job.arn, "Status": status, "BestTrainingJob": best_name})


def _sort_key(sort_by: str) -> Any:
    def key(trial: dict[str, Any]) -> Any:
        if sort_by == "Name":
            return trial["TrainingJobName"]
        if sort_by == "Status":
            return trial["TrainingJobStatus"]
        if sort_by == "FinalObjectiveMetricValue":
            return trial["FinalObjectiveValue"]
        return trial["CreationTime"]

    return key


def _list_trials(self: SageMakerResponse) -> ActionResult:
    name = self._get_param("HyperParameterTuningJobName")
    job = self.sagemaker_backend.hyper_parameter_tuning_jobs.get(name)
    if job is None:
        raise ResourceNotFound(message=f"Could not find hyper parameter tuning job '{name}'.")
    sort_by = self._get_param("SortBy") or "CreationTime"
    if sort_by not in _SORT_KEYS:
        raise ValidationError(message=f"SortBy must be one of {', '.join(_SORT_KEYS)}")
    trials = list(getattr(job, "sagelake_trials", []))
    status = self._get_param("StatusEquals")
    if status:
        trials = [t for t in trials if t["TrainingJobStatus"] == status]
    descending = (self._get_param("SortOrder") or "Descending") == "Descending"
    if sort_by == "FinalObjectiveMetricValue":  # trials without an objective come last, as on AWS
        scored = [t for t in trials if t["FinalObjectiveValue"] is not None]
        unscored = [t for t in trials if t["FinalObjectiveValue"] is None]
        trials = sorted(scored, key=_sort_key(sort_by), reverse=descending) + unscored
    else:
        trials.sort(key=_sort_key(sort_by), reverse=descending)
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or _MAX_RESULTS)
    page = trials[start : start + size]
    result: dict[str, Any] = {"TrainingJobSummaries": [_summary(job, t) for t in page]}
    if start + size < len(trials):
        result["NextToken"] = str(start + size)
    return ActionResult(result)


def _parse_parameters(self: SageMakerResponse, request: Any) -> None:
    """moto parses a request against the service model, which lacks the record action: read its JSON."""
    if self._get_action() == RECORD_TUNING_ACTION:
        self.params = json.loads(request.data or b"{}")
        return
    _original_parse_parameters(self, request)


_original_describe = HyperParameterTuningJob.describe
_original_parse_parameters = SageMakerResponse.parse_parameters


def install() -> None:
    """Patch moto's tuning jobs and responses (see the module doc); safe to call twice."""
    if getattr(HyperParameterTuningJob, _INSTALLED, False):
        return
    HyperParameterTuningJob.__init__ = _init  # type: ignore[method-assign]
    HyperParameterTuningJob.describe = _describe  # type: ignore[method-assign]
    SageMakerResponse.parse_parameters = _parse_parameters  # type: ignore[method-assign]
    SageMakerResponse.sagelake_record_tuning_job = _record_tuning_job  # type: ignore[attr-defined]
    SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job = _list_trials  # type: ignore[attr-defined]
    setattr(HyperParameterTuningJob, _INSTALLED, True)
