"""The built-in XGBoost engine's pure parts: hyperparameter checks, container defaults, the metric line."""

from __future__ import annotations

import re

import pytest

from sagelake.local.builtin_xgboost import (
    EXACT_ROWS_LIMIT,
    booster_params,
    metric_line,
    validate_hyperparameters,
)
from sagelake.local.training_runner import TrainingRequestError, parse_metrics
from sagelake.ml.images import xgboost_metric_definitions


def test_documented_names_are_parsed_to_their_types() -> None:
    parsed = validate_hyperparameters(
        {
            "num_round": "50",
            "eta": "0.2",
            "max_depth": "4",
            "subsample": "0.8",
            "min_child_weight": "2.5",
            "gamma": "0",
            "objective": "binary:logistic",
            "eval_metric": "auc,logloss",
            "early_stopping_rounds": "5",
            "seed": "-3",
        }
    )
    assert parsed == {
        "num_round": 50,
        "eta": 0.2,
        "max_depth": 4,
        "subsample": 0.8,
        "min_child_weight": 2.5,
        "gamma": 0.0,
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],
        "early_stopping_rounds": 5,
        "seed": -3,
    }


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(TrainingRequestError) as error:
        validate_hyperparameters({"learning_rate": "0.1", "subsample": "0", "max_depth": "2.5"})
    message = str(error.value)
    for part in (
        "learning_rate: not a hyperparameter",
        "subsample='0': must be in (0, 1]",
        "max_depth='2.5': cannot be parsed",
        "num_round: required",
        "Documented names: aft_loss_distribution, aft_loss_distribution_scale, alpha, base_score",
    ):
        assert part in message


def test_gpu_only_names_are_ignored_and_removed_ones_refused() -> None:
    assert validate_hyperparameters({"num_round": "1", "predictor": "gpu_predictor"}) == {"num_round": 1}
    with pytest.raises(TrainingRequestError, match=r"sketch_eps: .*removed in xgboost 2"):
        validate_hyperparameters({"num_round": "1", "sketch_eps": "0.03"})
    with pytest.raises(TrainingRequestError, match="num_class: required with objective multi:softprob"):
        validate_hyperparameters({"num_round": "1", "objective": "multi:softprob"})


def test_booster_params_use_the_containers_defaults() -> None:
    hps = validate_hyperparameters(
        {"num_round": "10", "objective": "binary:logistic", "eval_metric": "logloss"}
    )
    params = booster_params({**hps, "_tuning_objective_metric": "validation:auc"}, rows=1000)
    assert params == {
        "objective": "binary:logistic",
        "base_score": 0.5,
        "tree_method": "exact",
        "eval_metric": ["logloss", "auc"],  # the tuning objective's metric is added, as the container does
    }
    assert booster_params({"num_round": 1}, rows=EXACT_ROWS_LIMIT)["tree_method"] == "approx"
    chosen = booster_params({"num_round": 1, "tree_method": "hist", "base_score": 0.2}, rows=10)
    assert (chosen["tree_method"], chosen["base_score"], chosen["objective"]) == (
        "hist",
        0.2,
        "reg:squarederror",
    )


def test_metric_line_is_the_containers_and_parses_with_sagemakers_regexes() -> None:
    evals_log = {
        "train": {"auc": [0.5, 0.912345678], "logloss": [0.7, 0.301]},
        "validation": {"auc": [0.5, 0.80998], "logloss": [0.7, 0.4]},
    }
    line = metric_line(1, evals_log)
    assert line == (
        "[1]#011train-auc:0.91235#011train-logloss:0.30100#011validation-auc:0.80998#011validation-logloss:0.40000"
    )
    assert re.match(r".*\[[0-9]+\].*#011validation-auc:(\S+)", "[0]#011validation-auc:0.80998").group(1)
    assert parse_metrics([metric_line(0, evals_log), line], xgboost_metric_definitions()) == {
        "train:auc": 0.91235,
        "train:logloss": 0.301,
        "validation:auc": 0.80998,
        "validation:logloss": 0.4,
    }
