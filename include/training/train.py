"""Train the churn model: SageMaker script mode (scikit-learn container 1.4-2) and local runs alike.

Reads every Parquet file under the ``train`` channel, fits a one-hot + gradient-boosting
pipeline on the curated churn features, and writes ``model.joblib`` (pipeline + feature order)
and ``code/inference.py`` into the model dir and ``evaluation.json`` into the output data dir.
Metric lines ``validation:<name>=<value>`` go to stdout for SageMaker metric definitions.
No sagelake imports: this file ships alone in ``sourcedir.tar.gz`` (Python 3.10, scikit-learn 1.4).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

LABEL = "churned"
CATEGORICAL = ["plan", "region"]
NUMERIC = [
    "monthly_fee",
    "age",
    "support_tickets",
    "tenure_days",
    "n_events",
    "n_logins",
    "n_purchases",
    "total_amount",
    "avg_session_s",
]
FEATURES = CATEGORICAL + NUMERIC
MODEL_FILE = "model.joblib"
EVALUATION_FILE = "evaluation.json"
PARQUET_MAGIC = b"PAR1"


class TrainingInputError(Exception):
    """Bad training input (no data, missing columns, unusable labels); the message says what to fix."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Hyperparameters plus the SageMaker directories (defaults from the ``SM_*`` environment)."""
    parser = argparse.ArgumentParser(description="Train the churn model (SageMaker script mode).")
    parser.add_argument("--max_iter", "--n_estimators", dest="max_iter", type=int, default=200)
    parser.add_argument("--max_depth", type=int, default=3)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--validation_fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    # SageMaker tuning may pass its objective's name to every trial: accepted, unused
    parser.add_argument("--_tuning_objective_metric", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--model-dir", "--model_dir", dest="model_dir", default=os.environ.get("SM_MODEL_DIR")
    )
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument(
        "--output-data-dir",
        "--output_data_dir",
        dest="output_data_dir",
        default=os.environ.get("SM_OUTPUT_DATA_DIR"),
    )
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Fail with one clear line when a directory or hyperparameter is unusable."""
    for name, env in (("model_dir", "SM_MODEL_DIR"), ("train", "SM_CHANNEL_TRAIN")):
        if not getattr(args, name):
            raise TrainingInputError(f"--{name.replace('_', '-')} is not set: pass it or set {env}")
    if not args.output_data_dir:
        args.output_data_dir = args.model_dir
    if not 0.0 < args.validation_fraction < 1.0:
        raise TrainingInputError(f"--validation_fraction={args.validation_fraction} must be between 0 and 1")


def find_parquet_files(channel_dir: Path) -> list[Path]:
    """Every Parquet file under ``channel_dir`` (recursive, by magic bytes; hidden/_ files skipped)."""
    if not channel_dir.is_dir():
        raise TrainingInputError(
            f"training channel {channel_dir} does not exist: point --train at the features"
        )
    files = []
    for path in sorted(channel_dir.rglob("*")):
        rel = path.relative_to(channel_dir)
        if not path.is_file() or any(part.startswith((".", "_")) for part in rel.parts):
            continue
        with path.open("rb") as handle:
            if handle.read(4) == PARQUET_MAGIC:
                files.append(path)
    if not files:
        raise TrainingInputError(
            f"no Parquet files under training channel {channel_dir}: run the ETL for this partition first"
        )
    return files


def load_features(channel_dir: Path) -> pd.DataFrame:
    """Concatenate the Parquet files of the channel; check every feature and the label is present."""
    frames = []
    for path in find_parquet_files(channel_dir):
        frame = pq.read_table(path).to_pandas()
        missing = [col for col in FEATURES + [LABEL] if col not in frame.columns]
        if missing:
            raise TrainingInputError(
                f"{path.name} lacks column(s) {', '.join(missing)}: regenerate the curated churn features"
            )
        frames.append(frame[FEATURES + [LABEL]])
    data = pd.concat(frames, ignore_index=True)
    data[CATEGORICAL] = data[CATEGORICAL].astype(str)
    data[NUMERIC] = data[NUMERIC].astype("float64")
    if data[LABEL].isna().any():
        raise TrainingInputError(f"column {LABEL} has missing labels: fix the curated features")
    data[LABEL] = data[LABEL].astype("int64")
    return data


def build_pipeline(max_iter: int, max_depth: int, learning_rate: float, seed: int) -> Pipeline:
    """One-hot for the categorical features, numeric ones passed through, gradient boosting on top."""
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)],
        remainder="passthrough",
    )
    model = HistGradientBoostingClassifier(
        max_iter=max_iter,
        max_depth=max_depth,
        learning_rate=learning_rate,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("encode", encode), ("model", model)])


def split(data: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/validation split; a clear error when a class is too small to stratify."""
    counts = data[LABEL].value_counts()
    if len(counts) < 2 or counts.min() < 2 or round(len(data) * fraction) < 2:
        raise TrainingInputError(
            f"need both churned classes with at least 2 rows each to validate, got {counts.to_dict()} "
            f"in {len(data)} rows: train on a larger partition"
        )
    train, valid = train_test_split(data, test_size=fraction, random_state=seed, stratify=data[LABEL])
    return train, valid


def evaluate(pipeline: Pipeline, valid: pd.DataFrame) -> dict[str, float]:
    """AUC, accuracy, F1 and log loss on the validation rows."""
    proba = pipeline.predict_proba(valid[FEATURES])[:, 1]
    predicted = (proba >= 0.5).astype(int)
    truth = valid[LABEL].to_numpy()
    return {
        "auc": float(roc_auc_score(truth, proba)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
        "log_loss": float(log_loss(truth, np.column_stack([1 - proba, proba]), labels=[0, 1])),
    }


def run(args: argparse.Namespace) -> dict:
    """Train, evaluate, and write the artefacts; return the evaluation document."""
    check_args(args)
    data = load_features(Path(args.train))
    train, valid = split(data, args.validation_fraction, args.seed)
    pipeline = build_pipeline(args.max_iter, args.max_depth, args.learning_rate, args.seed)
    pipeline.fit(train[FEATURES], train[LABEL])
    metrics = evaluate(pipeline, valid)

    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(
        {"pipeline": pipeline, "features": list(FEATURES), "categorical": list(CATEGORICAL)},
        model_dir / MODEL_FILE,
    )
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    shutil.copyfile(Path(__file__).resolve().parent / "inference.py", code_dir / "inference.py")

    evaluation = {
        "metrics": metrics,
        "n_train": int(len(train)),
        "n_validation": int(len(valid)),
        "features": list(FEATURES),
        "hyperparameters": {
            "max_iter": args.max_iter,
            "max_depth": args.max_depth,
            "learning_rate": args.learning_rate,
            "validation_fraction": args.validation_fraction,
            "seed": args.seed,
        },
    }
    output_dir = Path(args.output_data_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=2, sort_keys=True))
    return evaluation


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        evaluation = run(args)
    except TrainingInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if os.environ.get("SM_OUTPUT_DIR"):  # SageMaker reports this file as the job's FailureReason
            Path(os.environ["SM_OUTPUT_DIR"]).mkdir(parents=True, exist_ok=True)
            (Path(os.environ["SM_OUTPUT_DIR"]) / "failure").write_text(str(exc))
        return 2
    print(f"trained on {evaluation['n_train']} rows, validated on {evaluation['n_validation']} rows")
    for name, value in evaluation["metrics"].items():
        print(f"validation:{name}={value:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
