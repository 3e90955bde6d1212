"""Hyperparameter tuning as plain functions: the CreateHyperParameterTuningJob request, trials, the best one.

The same request goes to SageMaker (``SageMakerTuningOperator``) and to the local tuning runner
(:mod:`sagelake.local.tuning_runner`), which uses the rest of this module to run it:

* :func:`tuning_request` turns a CreateTrainingJob request (:func:`sagelake.ml.aws_requests.training_request`)
  and a plain spec of ranges into the tuning request; :func:`trial_request` turns it back into the
  CreateTrainingJob request of one trial, named like SageMaker names trials (:func:`trial_job_name`).
* :func:`parse_metric` reads a metric from a training log with SageMaker's ``MetricDefinitions`` semantics.
* :class:`Sampler` proposes each trial's hyperparameters: ``Random`` samples every range independently
  (seeded; linear, logarithmic or reverse-logarithmic scaling); ``Bayesian`` is *not* SageMaker's
  Gaussian-process optimiser: after random initial points it ranks random candidates by a kernel-regression
  surrogate of the objective plus an exploration bonus (see :class:`Sampler`).
* :func:`best_trial` picks the best completed trial for a ``Maximize`` or ``Minimize`` objective.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sagelake.ml.images import is_builtin_xgboost_training, xgboost_metric_definitions
from sagelake.ml.metrics_log import last_value

STRATEGIES = ("Bayesian", "Random")  # what runs locally; Hyperband and Grid are refused by name
OBJECTIVE_TYPES = ("Maximize", "Minimize")
EARLY_STOPPING_TYPES = ("Off", "Auto")
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
RANGE_TYPES = ("Integer", "Continuous", "Categorical")
MAX_TUNING_JOB_NAME_LEN = 32  # HyperParameterTuningJobName: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}
MAX_CATEGORICAL_VALUES = 30
TUNING_OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"  # CategoricalParameterRange.Values
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
# CreateTrainingJob fields a HyperParameterTrainingJobDefinition carries under the same name.
_SHARED_FIELDS = (
    "RoleArn",
    "InputDataConfig",
    "VpcConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "RetryStrategy",
    "Environment",
)
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
# What include/training/train.py prints ("validation:auc=0.812345"), as MetricDefinitions.
SCRIPT_METRIC_DEFINITIONS: tuple[dict[str, str], ...] = tuple(
    {"Name": f"validation:{name}", "Regex": rf"^validation:{name}={_NUMBER}\s*$"}
    for name in ("auc", "accuracy", "f1", "log_loss")
)
_ALGORITHM_FIELDS = ("TrainingImage", "AlgorithmName", "TrainingInputMode", "MetricDefinitions")


class TuningSpecError(ValueError):
    """The tuning spec or request is invalid (the message says what to change)."""


@dataclass(frozen=True)
class ParameterRange:
    """One tuned hyperparameter: ``kind`` Integer | Continuous | Categorical."""

    name: str
    kind: str
    min_value: float | None = None
    max_value: float | None = None
    scaling: str = "Auto"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trial:
    """A finished trial: its training job, tuned values (strings, as SageMaker passes them), outcome."""

    name: str
    hyperparameters: dict[str, str]
    status: str  # Completed | Failed
    objective: float | None = None
    failure_reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    start_time: float = 0.0  # epoch seconds
    end_time: float = 0.0

    @property
    def seconds(self) -> int:
        """Whole seconds the trial trained (``TrainingTimeInSeconds``; billable too: no spot discount
        locally)."""
        return max(int(round(self.end_time - self.start_time)), 0)


# --- the request ----------------------------------------------------------------------------------


def _range_from_spec(name: str, spec: Mapping[str, Any]) -> ParameterRange:
    kind = str(spec.get("type", "")).capitalize()
    if kind not in RANGE_TYPES:
        raise TuningSpecError(f"range {name!r}: type must be one of {', '.join(RANGE_TYPES)}, got {kind!r}")
    if kind == "Categorical":
        values = tuple(str(v) for v in spec.get("values") or ())
        if not values or len(values) > MAX_CATEGORICAL_VALUES or len(set(values)) != len(values):
            raise TuningSpecError(
                f"range {name!r}: give 1 to {MAX_CATEGORICAL_VALUES} distinct categorical values"
            )
        return ParameterRange(name, kind, values=values)
    scaling = spec.get("scaling", "Auto")
    return check_range(ParameterRange(name, kind, spec.get("min"), spec.get("max"), scaling))


def check_range(rng: ParameterRange) -> ParameterRange:
    """Check a numeric range as SageMaker does (min < max; log scaling needs min > 0; reverse-log < 1)."""
    if rng.kind == "Categorical":
        return rng
    if rng.min_value is None or rng.max_value is None:
        raise TuningSpecError(f"range {rng.name!r}: give both min and max")
    low, high = float(rng.min_value), float(rng.max_value)
    if rng.kind == "Integer" and (low != int(low) or high != int(high)):
        raise TuningSpecError(f"range {rng.name!r}: Integer bounds must be whole numbers")
    if not low < high:
        raise TuningSpecError(f"range {rng.name!r}: min {low} must be below max {high}")
    if rng.scaling not in SCALING_TYPES:
        raise TuningSpecError(f"range {rng.name!r}: scaling must be one of {', '.join(SCALING_TYPES)}")
    if rng.scaling == "Logarithmic" and low <= 0:
        raise TuningSpecError(f"range {rng.name!r}: Logarithmic scaling needs min > 0")
    if rng.scaling == "ReverseLogarithmic" and (rng.kind != "Continuous" or low < 0 or high >= 1):
        raise TuningSpecError(f"range {rng.name!r}: ReverseLogarithmic needs a Continuous range in [0, 1)")
    return rng


def _format_bound(rng: ParameterRange, value: float) -> str:
    return str(int(value)) if rng.kind == "Integer" else repr(float(value))


def parameter_ranges(ranges: Sequence[ParameterRange]) -> dict[str, list[dict[str, Any]]]:
    """The request's ``ParameterRanges`` (bounds as strings, as the API takes them)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rng in ranges:
        if rng.kind == "Categorical":
            out.setdefault("CategoricalParameterRanges", []).append(
                {"Name": rng.name, "Values": list(rng.values)}
            )
            continue
        out.setdefault(f"{rng.kind}ParameterRanges", []).append(
            {
                "Name": rng.name,
                "MinValue": _format_bound(rng, rng.min_value),  # type: ignore[arg-type]
                "MaxValue": _format_bound(rng, rng.max_value),  # type: ignore[arg-type]
                "ScalingType": rng.scaling,
            }
        )
    return out


def ranges_of(request: Mapping[str, Any]) -> list[ParameterRange]:
    """The ranges of a CreateHyperParameterTuningJob request, checked."""
    raw = (request.get("HyperParameterTuningJobConfig") or {}).get("ParameterRanges") or {}
    ranges = []
    for kind in ("Integer", "Continuous"):
        for item in raw.get(f"{kind}ParameterRanges", []):
            ranges.append(
                check_range(
                    ParameterRange(
                        item["Name"],
                        kind,
                        float(item["MinValue"]),
                        float(item["MaxValue"]),
                        item.get("ScalingType", "Auto"),
                    )
                )
            )
    for item in raw.get("CategoricalParameterRanges", []):
        ranges.append(_range_from_spec(item["Name"], {"type": "Categorical", "values": item["Values"]}))
    if not ranges:
        raise TuningSpecError("the tuning request has no ParameterRanges: give at least one range")
    names = [r.name for r in ranges]
    if len(set(names)) != len(names):
        raise TuningSpecError(f"a hyperparameter has two ranges: {sorted(names)}")
    return ranges


def tuning_request(
    *,
    job_name: str,
    training: Mapping[str, Any],
    objective_metric: str,
    ranges: Mapping[str, Mapping[str, Any]],
    objective_type: str = "Maximize",
    metric_definitions: Sequence[Mapping[str, str]] | None = None,
    strategy: str = "Bayesian",
    max_jobs: int = 4,
    max_parallel: int = 2,
    early_stopping: str = "Off",
    random_seed: int | None = None,
) -> dict[str, Any]:
    """A CreateHyperParameterTuningJob request over the CreateTrainingJob request ``training``.

    ``ranges`` maps a hyperparameter to ``{"type": "Integer"|"Continuous", "min", "max", "scaling"?}`` or
    ``{"type": "Categorical", "values": [...]}``; its name is removed from the static hyperparameters.
    ``metric_definitions`` (``[{"Name", "Regex"}]``) replace the training request's; they, or the built-in
    algorithm's own metrics (built-in XGBoost, see :func:`metric_definitions_of`), must define
    ``objective_metric``. For a built-in algorithm (no ``sagemaker_program``) the static hyperparameters
    also carry ``_tuning_objective_metric``, which the algorithm's container reads.
    """
    if not _NAME.match(job_name):
        raise TuningSpecError(
            f"tuning job name {job_name!r} must be 1-{MAX_TUNING_JOB_NAME_LEN} characters of [a-zA-Z0-9-]"
        )
    if strategy not in STRATEGIES:
        raise TuningSpecError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if objective_type not in OBJECTIVE_TYPES:
        raise TuningSpecError(f"objective type must be Maximize or Minimize, got {objective_type!r}")
    if early_stopping not in EARLY_STOPPING_TYPES:
        raise TuningSpecError(f"early stopping must be Off or Auto, got {early_stopping!r}")
    if not 1 <= max_parallel <= max_jobs:
        raise TuningSpecError(f"need 1 <= max_parallel ({max_parallel}) <= max_jobs ({max_jobs})")
    parsed = [_range_from_spec(name, spec) for name, spec in ranges.items()]
    if not parsed:
        raise TuningSpecError("give at least one hyperparameter range")
    algorithm = {
        k: v for k, v in (training.get("AlgorithmSpecification") or {}).items() if k in _ALGORITHM_FIELDS
    }
    if metric_definitions is not None:
        algorithm["MetricDefinitions"] = [dict(d) for d in metric_definitions]
    static = {k: v for k, v in (training.get("HyperParameters") or {}).items() if k not in ranges}
    known = metric_definitions_of({"AlgorithmSpecification": algorithm, "StaticHyperParameters": static})
    defined = [d["Name"] for d in known]
    if objective_metric not in defined:
        raise TuningSpecError(
            f"objective metric {objective_metric!r} is not in MetricDefinitions {defined}: add its regex"
        )
    for metric in known:
        metric_regex(metric)
    if "sagemaker_program" not in static:
        # a built-in algorithm reads the objective from this hyperparameter (the SageMaker SDK's tuner sets
        # it too); a script-mode entry point would receive it as an unknown --_tuning_objective_metric
        static[TUNING_OBJECTIVE_HYPERPARAMETER] = objective_metric
    definition: dict[str, Any] = {
        "AlgorithmSpecification": algorithm,
        "StaticHyperParameters": static,
        **{key: copy.deepcopy(training[key]) for key in _SHARED_FIELDS if key in training},
    }
    config: dict[str, Any] = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": objective_type, "MetricName": objective_metric},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": max_parallel},
        "ParameterRanges": parameter_ranges(parsed),
        "TrainingJobEarlyStoppingType": early_stopping,
    }
    if random_seed is not None:
        config["RandomSeed"] = random_seed
    return {
        "HyperParameterTuningJobName": job_name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": definition,
    }


# --- trials ---------------------------------------------------------------------------------------


def trial_job_name(tuning_job: str, index: int, hyperparameters: Mapping[str, str]) -> str:
    """``<tuning-job>-<NNN>-<8 hex>``, as SageMaker names a tuning job's training jobs.

    SageMaker's suffix is random; here it hashes the tuning job, the index and the values, so a re-run of the
    same request names the same trials.
    """
    digest = hashlib.sha1(
        json.dumps([tuning_job, index, dict(sorted(hyperparameters.items()))]).encode()
    ).hexdigest()[:8]
    return f"{tuning_job}-{index:03d}-{digest}"


def trial_request(
    request: Mapping[str, Any], name: str, hyperparameters: Mapping[str, str]
) -> dict[str, Any]:
    """The CreateTrainingJob request of one trial: the definition, static + tuned hyperparameters.

    A ``CheckpointConfig`` gets the trial's name appended to its S3 URI: trials running side by side must
    never read, resume from or delete each other's checkpoints; a re-run of the same trial resumes its own.
    """
    definition = request.get("TrainingJobDefinition")
    if not definition:
        raise TuningSpecError(
            "the tuning request has no TrainingJobDefinition (TrainingJobDefinitions: unsupported)"
        )
    trial: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": copy.deepcopy(definition["AlgorithmSpecification"]),
        "HyperParameters": {**(definition.get("StaticHyperParameters") or {}), **hyperparameters},
        **{key: copy.deepcopy(definition[key]) for key in _SHARED_FIELDS if key in definition},
    }
    if "CheckpointConfig" in trial:
        root = trial["CheckpointConfig"]["S3Uri"].rstrip("/")
        trial["CheckpointConfig"]["S3Uri"] = f"{root}/{name}/"
    return trial


def metric_definitions_of(definition: Mapping[str, Any]) -> list[dict[str, str]]:
    """A training job definition's ``MetricDefinitions``, else the built-in algorithm's own metrics.

    Built-in XGBoost defines ``train:auc``, ``validation:auc``... itself (:mod:`sagelake.ml.images`), so its
    requests carry no regex; any other algorithm without ``MetricDefinitions`` has no metric.
    """
    algorithm = definition.get("AlgorithmSpecification") or {}
    if algorithm.get("MetricDefinitions"):
        return [dict(d) for d in algorithm["MetricDefinitions"]]
    job = {"AlgorithmSpecification": algorithm, "HyperParameters": definition.get("StaticHyperParameters")}
    return xgboost_metric_definitions() if is_builtin_xgboost_training(job) else []


def objective_of(request: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(metric name, Maximize|Minimize, regex)`` of a tuning request's objective."""
    config = request.get("HyperParameterTuningJobConfig") or {}
    objective = config.get("HyperParameterTuningJobObjective") or {}
    name, kind = objective.get("MetricName"), objective.get("Type")
    if not name or kind not in OBJECTIVE_TYPES:
        raise TuningSpecError("HyperParameterTuningJobObjective needs MetricName and Type Maximize|Minimize")
    for definition in metric_definitions_of(request.get("TrainingJobDefinition") or {}):
        if definition["Name"] == name:
            return name, kind, definition["Regex"]
    raise TuningSpecError(f"objective metric {name!r} has no MetricDefinitions regex")


# --- metrics from a log ---------------------------------------------------------------------------


def metric_regex(definition: Mapping[str, str]) -> re.Pattern[str]:
    """Compile a MetricDefinitions regex; it must capture the value in its first group."""
    try:
        pattern = re.compile(definition["Regex"])
    except re.error as error:
        raise TuningSpecError(f"metric {definition.get('Name')!r}: bad regex: {error}") from None
    if pattern.groups < 1:
        raise TuningSpecError(
            f"metric {definition.get('Name')!r}: the regex must capture the value in a group"
        )
    return pattern


def parse_metric(log: str, regex: str | re.Pattern[str]) -> float | None:
    """The metric's value in ``log``: the regex's first group, searched line by line; the last match wins.

    SageMaker applies each regex to every log line and reports the last value as the final metric (and
    the tuning objective); a match whose group is not a number is ignored, as SageMaker ignores it.
    """
    pattern = re.compile(regex) if isinstance(regex, str) else regex
    return last_value(log.splitlines(), pattern, finite_only=True)


def parse_metrics(log: str, definitions: Sequence[Mapping[str, str]]) -> dict[str, float]:
    """Every defined metric found in ``log`` (last match wins), by name."""
    found = {d["Name"]: parse_metric(log, metric_regex(d)) for d in definitions}
    return {name: value for name, value in found.items() if value is not None}


# --- the best trial -------------------------------------------------------------------------------


def best_trial(trials: Sequence[Trial], objective_type: str) -> Trial | None:
    """The completed trial with the best objective (highest for Maximize, lowest for Minimize).

    Trials that failed or reported no objective are never best; a tie goes to the earlier trial (its
    position in ``trials``). ``None`` when no trial has an objective.
    """
    if objective_type not in OBJECTIVE_TYPES:
        raise TuningSpecError(f"objective type must be Maximize or Minimize, got {objective_type!r}")
    sign = 1.0 if objective_type == "Maximize" else -1.0
    best: Trial | None = None
    for trial in trials:
        if trial.status != "Completed" or trial.objective is None:
            continue
        if best is None or sign * trial.objective > sign * best.objective:  # type: ignore[operator]
            best = trial
    return best


# --- sampling -------------------------------------------------------------------------------------


def _to_unit(rng: ParameterRange, value: float) -> float:
    """A numeric value mapped to [0, 1] in the range's scaling (Auto is linear here)."""
    low, high = float(rng.min_value), float(rng.max_value)  # type: ignore[arg-type]
    if rng.scaling == "Logarithmic":
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    if rng.scaling == "ReverseLogarithmic":
        return (math.log(1 - low) - math.log(1 - value)) / (math.log(1 - low) - math.log(1 - high))
    return (value - low) / (high - low)


def _from_unit(rng: ParameterRange, unit: float) -> str:
    low, high = float(rng.min_value), float(rng.max_value)  # type: ignore[arg-type]
    if rng.kind == "Integer":
        if rng.scaling == "Logarithmic":
            # uniform in log space over [low, high + 1), floored: every integer reachable, small ones denser
            value = math.exp(math.log(low) + unit * (math.log(high + 1) - math.log(low)))
            return str(int(min(max(math.floor(value), low), high)))
        return str(int(min(math.floor(low + unit * (high - low + 1)), high)))
    if rng.scaling == "Logarithmic":
        value = math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
    elif rng.scaling == "ReverseLogarithmic":
        value = 1 - math.exp(math.log(1 - low) - unit * (math.log(1 - low) - math.log(1 - high)))
    else:
        value = low + unit * (high - low)
    return f"{min(max(value, low), high):.6g}"


def sample_value(rng: ParameterRange, source: random.Random) -> str:
    """One value of ``rng`` drawn uniformly in its scaling, as the string a training job receives."""
    if rng.kind == "Categorical":
        return source.choice(rng.values)
    return _from_unit(rng, source.random())


class Sampler:
    """Proposes trial hyperparameters for a tuning request, deterministically for a given seed.

    ``Random``: every range sampled independently and uniformly in its scaling (``Auto`` = linear).

    ``Bayesian`` (a local stand-in, not SageMaker's Gaussian-process optimiser): the first
    ``initial_points`` proposals are random; each later one draws ``candidates`` random points and picks
    the one maximising a Nadaraya-Watson kernel regression of the (sign-adjusted, standardised)
    objectives of the finished trials plus ``exploration`` times the distance to the nearest finished or
    pending point, in the ranges' unit space (categorical distance 0 or 1).
    """

    def __init__(
        self,
        ranges: Sequence[ParameterRange],
        *,
        strategy: str,
        objective_type: str = "Maximize",
        seed: int = 0,
        initial_points: int = 2,
        candidates: int = 256,
        bandwidth: float = 0.25,
        exploration: float = 0.5,
    ) -> None:
        if strategy not in STRATEGIES:
            raise TuningSpecError(
                f"strategy {strategy!r} does not run locally: use {' or '.join(STRATEGIES)}"
            )
        self.ranges = list(ranges)
        self.strategy = strategy
        self.sign = 1.0 if objective_type == "Maximize" else -1.0
        self.random = random.Random(seed)
        self.initial_points = initial_points
        self.candidates = candidates
        self.bandwidth = bandwidth
        self.exploration = exploration

    def _random_point(self) -> dict[str, str]:
        return {rng.name: sample_value(rng, self.random) for rng in self.ranges}

    def _distance(self, a: Mapping[str, str], b: Mapping[str, str]) -> float:
        total = 0.0
        for rng in self.ranges:
            if rng.kind == "Categorical":
                total += 0.0 if a[rng.name] == b[rng.name] else 1.0
            else:
                total += (_to_unit(rng, float(a[rng.name])) - _to_unit(rng, float(b[rng.name]))) ** 2
        return math.sqrt(total / len(self.ranges))

    def propose(
        self,
        finished: Sequence[tuple[Mapping[str, str], float]],
        pending: Sequence[Mapping[str, str]] = (),
    ) -> dict[str, str]:
        """The next trial's values given ``finished`` (values, objective) pairs and ``pending`` values."""
        if self.strategy == "Random" or len(finished) < self.initial_points:
            return self._random_point()
        scores = [self.sign * objective for _, objective in finished]
        mean = sum(scores) / len(scores)
        spread = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)) or 1.0
        standard = [(s - mean) / spread for s in scores]
        seen = [values for values, _ in finished] + list(pending)
        best_point, best_score = None, -math.inf
        for _ in range(self.candidates):
            point = self._random_point()
            distances = [self._distance(point, values) for values, _ in finished]
            weights = [math.exp(-((d / self.bandwidth) ** 2) / 2) for d in distances]
            total = sum(weights)
            predicted = (
                sum(w * s for w, s in zip(weights, standard, strict=True)) / total if total > 1e-12 else 0.0
            )
            score = predicted + self.exploration * min(self._distance(point, values) for values in seen)
            if score > best_score:
                best_point, best_score = point, score
        return best_point  # type: ignore[return-value]


def seed_of(request: Mapping[str, Any]) -> int:
    """``RandomSeed`` of the request, else a number derived from the tuning job name (re-runs agree)."""
    config = request.get("HyperParameterTuningJobConfig") or {}
    if config.get("RandomSeed") is not None:
        return int(config["RandomSeed"])
    return int(hashlib.sha1(str(request.get("HyperParameterTuningJobName")).encode()).hexdigest()[:8], 16)


# --- names and results ----------------------------------------------------------------------------


def tuning_job_name(base: str, taken: Callable[[str], bool], attempts: int = 99) -> str:
    """``base`` if free, else ``base-r2``, ``base-r3``… within the 32 characters of a tuning job name.

    ``taken(name)`` says whether a tuning job of that name exists (a describe call).
    """
    if not taken(base):
        return base
    for attempt in range(2, attempts + 1):
        suffix = f"-r{attempt}"
        name = base[: MAX_TUNING_JOB_NAME_LEN - len(suffix)].rstrip("-") + suffix
        if not taken(name):
            return name
    raise TuningSpecError(f"{attempts} names derived from {base!r} are all taken: clean up old tuning jobs")


def best_training_job_name(result: Mapping[str, Any]) -> str:
    """The best trial's training job name in a tuning operator's result (``{"Tuning": describe}``)."""
    describe = result.get("Tuning", result)
    best = describe.get("BestTrainingJob") or {}
    if not best.get("TrainingJobName"):
        raise TuningSpecError(
            f"tuning job {describe.get('HyperParameterTuningJobName')} has no best training job "
            f"(status {describe.get('HyperParameterTuningJobStatus')})"
        )
    return best["TrainingJobName"]
