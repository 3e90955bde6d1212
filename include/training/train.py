"""Train the churn model: SageMaker script mode (scikit-learn container 1.4-2) and local runs alike.

Reads every Parquet file under the ``train`` channel, fits a one-hot + gradient-boosting
pipeline on the curated churn features, and writes ``model.joblib`` (pipeline + feature order)
and ``code/inference.py`` into the model dir and ``evaluation.json`` into the output data dir.
Metric lines ``validation:<name>=<value>`` go to stdout for SageMaker metric definitions.

Checkpoints (managed spot training): when a checkpoint dir is set (``--checkpoint-dir``, else
``SM_CHECKPOINT_DIR``, else ``/opt/ml/checkpoints`` if it exists, SageMaker's ``CheckpointConfig.LocalPath``)
the boosting runs in stages of ``--checkpoint_every`` iterations (``warm_start``), each stage saved
atomically as ``checkpoint-<iteration>.joblib``; a start finds the newest readable checkpoint made for the
same hyperparameters and data and resumes from it ("resuming from iteration N"). The model is the same as
an uninterrupted run's with the same seed: gradient boosting without early stopping or feature subsampling
is deterministic, and a warm start adds the same trees to the same predictions.
No sagelake imports: this file ships alone in ``sourcedir.tar.gz`` (Python 3.10, scikit-learn 1.4).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import sklearn
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
SAGEMAKER_CHECKPOINT_DIR = "/opt/ml/checkpoints"  # CheckpointConfig.LocalPath's default
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)\.joblib$")
CHECKPOINTS_KEPT = 2  # older ones are deleted (SageMaker deletes them from S3 too)
TEMP_SUFFIX = ".sagemaker-ignore"  # SageMaker's checkpoint sync does not upload such files


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
    parser.add_argument("--checkpoint_every", type=int, default=10)
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
    parser.add_argument(
        "--checkpoint-dir", "--checkpoint_dir", dest="checkpoint_dir", default=default_checkpoint_dir()
    )
    return parser.parse_args(argv)


def default_checkpoint_dir() -> str | None:
    """``SM_CHECKPOINT_DIR`` (local runs), else SageMaker's ``/opt/ml/checkpoints`` when it exists."""
    if os.environ.get("SM_CHECKPOINT_DIR"):
        return os.environ["SM_CHECKPOINT_DIR"]
    return SAGEMAKER_CHECKPOINT_DIR if os.path.isdir(SAGEMAKER_CHECKPOINT_DIR) else None


def check_args(args: argparse.Namespace) -> None:
    """Fail with one clear line when a directory or hyperparameter is unusable."""
    for name, env in (("model_dir", "SM_MODEL_DIR"), ("train", "SM_CHANNEL_TRAIN")):
        if not getattr(args, name):
            raise TrainingInputError(f"--{name.replace('_', '-')} is not set: pass it or set {env}")
    if not args.output_data_dir:
        args.output_data_dir = args.model_dir
    if not 0.0 < args.validation_fraction < 1.0:
        raise TrainingInputError(f"--validation_fraction={args.validation_fraction} must be between 0 and 1")
    if args.checkpoint_every < 1:
        raise TrainingInputError(f"--checkpoint_every={args.checkpoint_every} must be at least 1")


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


def fingerprint(train: pd.DataFrame, hyperparameters: dict) -> str:
    """What a checkpoint must have been made for to be resumed: these hyperparameters, this scikit-learn
    and these training rows (a retry of the same job; never another job's checkpoints)."""
    rows = pd.util.hash_pandas_object(train[FEATURES + [LABEL]], index=True).to_numpy().tobytes()
    head = json.dumps({"hyperparameters": hyperparameters, "sklearn": sklearn.__version__}, sort_keys=True)
    return hashlib.sha256(head.encode() + hashlib.sha256(rows).digest()).hexdigest()


def checkpoint_files(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of the checkpoints in ``checkpoint_dir``, newest first."""
    if not checkpoint_dir.is_dir():
        return []
    found = []
    for path in checkpoint_dir.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def load_checkpoint(checkpoint_dir: Path, expected: str) -> tuple[Pipeline, int] | None:
    """The newest readable checkpoint made for ``expected`` (a :func:`fingerprint`): (pipeline, iteration)."""
    for iteration, path in checkpoint_files(checkpoint_dir):
        try:
            state = joblib.load(path)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: try the older one
            print(f"checkpoint {path.name} is unreadable ({type(exc).__name__}), skipped", flush=True)
            continue
        if not isinstance(state, dict) or state.get("fingerprint") != expected:
            print(f"checkpoint {path.name} was made for other data or hyperparameters, skipped", flush=True)
            continue
        return state["pipeline"], iteration
    return None


def save_checkpoint(checkpoint_dir: Path, pipeline: Pipeline, iteration: int, stamp: str) -> Path:
    """Write ``checkpoint-<iteration>.joblib`` atomically (temp file, then rename); keep the newest
    :data:`CHECKPOINTS_KEPT`."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    target = checkpoint_dir / f"checkpoint-{iteration:06d}.joblib"
    with tempfile.NamedTemporaryFile(dir=checkpoint_dir, suffix=TEMP_SUFFIX, delete=False) as handle:
        joblib.dump({"pipeline": pipeline, "iteration": iteration, "fingerprint": stamp}, handle)
    os.replace(handle.name, target)
    for _, old in checkpoint_files(checkpoint_dir)[CHECKPOINTS_KEPT:]:
        old.unlink(missing_ok=True)
    return target


def fit(
    pipeline: Pipeline,
    train: pd.DataFrame,
    *,
    max_iter: int,
    checkpoint_dir: Path | None,
    every: int,
    stamp: str,
) -> tuple[Pipeline, int]:
    """Fit ``pipeline``; with a checkpoint dir, in checkpointed stages from the newest usable checkpoint.

    Returns the fitted pipeline and the iteration it resumed from (0: a fresh start).
    """
    if checkpoint_dir is None:
        return pipeline.fit(train[FEATURES], train[LABEL]), 0
    start = 0
    resumed = load_checkpoint(checkpoint_dir, stamp)
    if resumed is not None:
        pipeline, start = resumed
        print(f"resuming from iteration {start}", flush=True)
    else:
        print(f"no usable checkpoint in {checkpoint_dir}: starting at iteration 0", flush=True)
    pipeline.set_params(model__warm_start=True)
    for stage in range(min(start + every, max_iter), max_iter + 1, every) if start < max_iter else ():
        pipeline.set_params(model__max_iter=stage)
        pipeline.fit(train[FEATURES], train[LABEL])
        save_checkpoint(checkpoint_dir, pipeline, stage, stamp)
    if pipeline.named_steps["model"].n_iter_ != max_iter:  # max_iter not a multiple of every
        pipeline.set_params(model__max_iter=max_iter)
        pipeline.fit(train[FEATURES], train[LABEL])
        save_checkpoint(checkpoint_dir, pipeline, max_iter, stamp)
    pipeline.set_params(model__warm_start=False)
    return pipeline, start


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
    hyperparameters = {
        "max_iter": args.max_iter,
        "max_depth": args.max_depth,
        "learning_rate": args.learning_rate,
        "validation_fraction": args.validation_fraction,
        "seed": args.seed,
    }
    pipeline = build_pipeline(args.max_iter, args.max_depth, args.learning_rate, args.seed)
    checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    pipeline, resumed_from = fit(
        pipeline,
        train,
        max_iter=args.max_iter,
        checkpoint_dir=checkpoint_dir,
        every=args.checkpoint_every,
        stamp=fingerprint(train, hyperparameters),
    )
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
        "hyperparameters": hyperparameters,
        "resumed_from_iteration": resumed_from,
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
