"""Models and held-out data for the evaluation tests: real ``train.py`` models packaged as SageMaker does,
and an independent scikit-learn computation of the report's metrics."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from sagelake.ml.artifacts import package_source_dir
from tests.support.constants import ROOT
from tests.support.training_data import load_script, synthetic_features, write_channel

EVALUATE_SCRIPT = ROOT / "include" / "evaluation" / "evaluate.py"


def load_evaluate() -> ModuleType:
    """Import ``include/evaluation/evaluate.py`` by path."""
    spec = importlib.util.spec_from_file_location("sagelake_test_evaluate", EVALUATE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_model(work: Path, *, seed: int, n: int = 400, max_iter: int = 40, max_depth: int = 3) -> bytes:
    """A real model from ``include/training/train.py`` on synthetic days; its ``model.tar.gz`` bytes."""
    train = load_script("train")
    channel = write_channel(work / "train", {"2026-11-24": synthetic_features(n, seed)})
    args = train.parse_args(
        [
            f"--max_iter={max_iter}",
            f"--max_depth={max_depth}",
            "--learning_rate=0.1",
            f"--seed={seed}",
            f"--model-dir={work / 'model'}",
            f"--train={channel}",
            f"--output-data-dir={work / 'output'}",
        ]
    )
    train.run(args)
    return package_source_dir(work / "model")


def holdout_frame(n: int = 300, seed: int = 2026) -> pd.DataFrame:
    """The held-out day: rows neither model was trained on (another seed)."""
    return synthetic_features(n, seed)


def model_probabilities(model_tar: bytes, frame: pd.DataFrame, work: Path) -> np.ndarray:
    """Probabilities straight from the packaged pipeline (``model.joblib``), without the evaluation script."""
    import io
    import tarfile

    import joblib

    with tarfile.open(fileobj=io.BytesIO(model_tar)) as tar:
        tar.extractall(work, filter="data")
    bundle = joblib.load(work / "model.joblib")
    features = frame[bundle["features"]].copy()
    features[bundle["categorical"]] = features[bundle["categorical"]].astype(str)
    return bundle["pipeline"].predict_proba(features)[:, 1]


def expected_metrics(truth: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The report's metrics computed independently with scikit-learn."""
    predicted = (proba >= threshold).astype(int)
    return {
        "auc": skm.roc_auc_score(truth, proba),
        "pr_auc": skm.average_precision_score(truth, proba),
        "log_loss": skm.log_loss(truth, proba),
        "brier": skm.brier_score_loss(truth, proba),
        "accuracy": skm.accuracy_score(truth, predicted),
        "precision": skm.precision_score(truth, predicted, zero_division=0),
        "recall": skm.recall_score(truth, predicted, zero_division=0),
        "f1": skm.f1_score(truth, predicted, zero_division=0),
        "n": len(truth),
        "positives": int(truth.sum()),
    }
