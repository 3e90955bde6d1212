"""Final metrics from a training log: the last match wins, non-numbers are ignored, default lines parse."""

from __future__ import annotations

import math
import re

from sagelake.ml.metrics_log import final_metrics, last_value

LOG = [
    "epoch 1 validation:auc=0.70",
    "[0]#011train-auc:0.81#011validation-auc:0.78",
    "validation:auc=0.75",
    "validation:auc=oops",
    "[1]#011train-auc:0.86#011validation-auc:nan",
]


def test_the_last_numeric_match_wins() -> None:
    definitions = [
        {"Name": "validation:auc", "Regex": r"validation:auc=([^ ]+)"},
        {"Name": "xgb:validation:auc", "Regex": r"validation-auc:([-+0-9.naeE]+)"},
        {"Name": "never", "Regex": r"never=(\d+)"},
    ]
    metrics = final_metrics(LOG, definitions)
    assert metrics["validation:auc"] == 0.75  # "oops" is not a number: ignored
    assert math.isnan(metrics["xgb:validation:auc"])  # a reported NaN is the final value
    assert "never" not in metrics
    assert last_value(LOG, re.compile(r"validation-auc:([-+0-9.naeE]+)"), finite_only=True) == 0.78


def test_without_definitions_the_scripts_own_lines_are_the_metrics() -> None:
    assert final_metrics(["validation:auc=0.7", "noise", " train:loss = 0.25 ", "validation:auc=0.9"]) == {
        "validation:auc": 0.9,
        "train:loss": 0.25,
    }
