"""The two ways the pipeline trains a churn model, on the same window of published partitions.

* ``sklearn`` — script mode: ``include/training/train.py`` in SageMaker's scikit-learn container, reading
  one Parquet ``train`` channel with named columns (it splits its own validation rows) and logging
  ``validation:auc=…`` lines the tuning job's metric definitions parse.
* ``xgboost`` — SageMaker's built-in XGBoost algorithm (image from the ``sagemaker`` SDK), reading
  ``train`` and ``validation`` CSV channels (label first) and logging ``[i]#011train-auc:…
  validation-auc:…`` lines, its own metric definitions.

Each is a :class:`Algorithm`: the channel layout it reads, its static hyperparameters and the ranges a
hyperparameter tuning job searches. :func:`tuning_config` turns one into the
CreateHyperParameterTuningJob request the ``tune`` task runs; the objective is ``validation:auc`` for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelake.ml.aws_requests import training_request, xgboost_training_request
from sagelake.ml.images import sklearn_image_uri, xgboost_image_uri
from sagelake.ml.spot import SpotSettings
from sagelake.ml.tuning import SCRIPT_METRIC_DEFINITIONS, tuning_request

OBJECTIVE_METRIC = "validation:auc"


class UnknownAlgorithmError(ValueError):
    """The run asked for an algorithm the pipeline does not know."""


@dataclass(frozen=True)
class Algorithm:
    """How one algorithm trains: channel layout, static hyperparameters, tuning ranges."""

    name: str
    layout: str  # "parquet" | "csv" (sagelake.ml.training_data.LAYOUTS)
    static: Mapping[str, Any]
    ranges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


ALGORITHMS: dict[str, Algorithm] = {
    "sklearn": Algorithm(
        name="sklearn",
        layout="parquet",
        static={"seed": 42, "validation_fraction": 0.2},
        ranges={
            "max_iter": {"type": "Integer", "min": 60, "max": 300},
            "max_depth": {"type": "Integer", "min": 2, "max": 6},
            "learning_rate": {"type": "Continuous", "min": 0.02, "max": 0.3, "scaling": "Logarithmic"},
        },
    ),
    "xgboost": Algorithm(
        name="xgboost",
        layout="csv",
        static={"objective": "binary:logistic", "eval_metric": "auc", "seed": 42},
        ranges={
            "num_round": {"type": "Integer", "min": 40, "max": 200},
            "max_depth": {"type": "Integer", "min": 2, "max": 6},
            "eta": {"type": "Continuous", "min": 0.03, "max": 0.4, "scaling": "Logarithmic"},
        },
    ),
}


def algorithm(name: str) -> Algorithm:
    """The :class:`Algorithm` called ``name``; :class:`UnknownAlgorithmError` names the known ones."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UnknownAlgorithmError(
            f"algorithm {name!r} is not one of {', '.join(ALGORITHMS)}: choose one in the run's params"
        ) from None


def training_definition(
    spec: Algorithm,
    *,
    job_name: str,
    role: str,
    region: str,
    instance_type: str,
    channels: Mapping[str, str],
    output_uri: str,
    source_uri: str | None = None,
    max_runtime_s: int = 3600,
    spot: SpotSettings | None = None,
) -> dict[str, Any]:
    """A CreateTrainingJob request for ``spec``, the definition of tuning job ``job_name``'s trials.

    ``spot`` (enabled): managed spot trials checkpointing under ``s3://<bucket>/checkpoints/<job_name>/``,
    one prefix per trial below it (:func:`sagelake.ml.tuning.trial_request`).
    """
    if spec.layout == "parquet":
        if source_uri is None:
            raise ValueError(f"algorithm {spec.name} runs a script: give the uploaded source_uri")
        return training_request(
            job_name=job_name,
            role=role,
            image_uri=sklearn_image_uri(region, instance_type),
            train_uri=channels["train"],
            output_uri=output_uri,
            source_uri=source_uri,
            instance_type=instance_type,
            hyperparameters=dict(spec.static),
            max_runtime_s=max_runtime_s,
            spot=spot,
        )
    return xgboost_training_request(
        job_name=job_name,
        role=role,
        image_uri=xgboost_image_uri(region),
        channels=dict(channels),
        output_uri=output_uri,
        instance_type=instance_type,
        hyperparameters=dict(spec.static),
        max_runtime_s=max_runtime_s,
        spot=spot,
    )


def tuning_config(
    spec: Algorithm,
    *,
    job_name: str,
    training: Mapping[str, Any],
    max_jobs: int,
    max_parallel: int,
    strategy: str = "Bayesian",
    early_stopping: str = "Off",
    random_seed: int | None = None,
) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request: ``spec.ranges`` around ``training``, maximising
    ``validation:auc`` (script mode: :data:`SCRIPT_METRIC_DEFINITIONS`; built-in: the algorithm's own)."""
    return tuning_request(
        job_name=job_name,
        training=training,
        objective_metric=OBJECTIVE_METRIC,
        ranges=spec.ranges,
        metric_definitions=SCRIPT_METRIC_DEFINITIONS if spec.layout == "parquet" else None,
        strategy=strategy,
        max_jobs=max_jobs,
        max_parallel=max_parallel,
        early_stopping=early_stopping,
        random_seed=random_seed,
    )
