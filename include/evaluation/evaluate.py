"""Evaluate the challenger model and the champion on the same held-out data (a SageMaker Processing job).

Runs as a Processing job in the SageMaker scikit-learn container, or in the XGBoost 1.7-1 container when a
model is a built-in XGBoost model (``sagelake.ml.evaluation.evaluation_image_uri`` chooses), and locally in a
subprocess with the same contract (``sagelake.local.processing_runner``). Inputs (``ProcessingInput`` local
paths):

* ``/opt/ml/processing/input/challenger`` — the challenger's ``model.tar.gz``;
* ``/opt/ml/processing/input/champion`` — optional (``--champion``), the model serving production; not
  given, or an empty input: only the challenger is reported;
* ``/opt/ml/processing/input/holdout`` — the curated feature Parquet of the held-out day (neither model
  trained on it), recursively.

Each archive says how it is scored (:func:`archive_kind`):

* ``code/inference.py`` (script mode, as ``include/training/train.py`` packages it): through its
  ``model_fn`` + ``predict_fn``, the serving path;
* ``xgboost-model`` and no ``code/inference.py`` (SageMaker's built-in XGBoost algorithm): the booster
  predicts on the rows encoded as the algorithm's CSV channels encode them (:func:`encode_features`: the
  numeric features, then ``plan`` and ``region`` one-hot, :data:`CSV_FEATURE_COLUMNS`) — a copy of
  ``sagelake.ml.training_data``'s encoding, which a unit test keeps equal;
* neither: the job fails naming the archive.

Outputs, in ``/opt/ml/processing/output/report`` (uploaded to the report prefix in the lake):
``metrics.json``, ``model_quality.json`` (the challenger's statistics in the shape of SageMaker Model
Monitor's ``binary_classification_metrics``, which ``ModelMetrics.ModelQuality.Statistics`` points to),
``champion_model_quality.json`` when there is a champion, ``roc.png``, ``precision_recall.png``,
``confusion_<model>.png``, ``calibration.png`` and ``report.html``.

Paths can be given as arguments; when ``SAGELAKE_PROCESSING_ROOT`` is set (local runs), container paths
under ``/opt/ml/`` are read below that directory. On failure the reason goes to stderr and to
``/opt/ml/output/message`` (SageMaker's FailureReason) and the exit code is 2.
No sagelake imports: this file ships alone as the job's code input. Python 3.8 syntax and standard library
(the XGBoost 1.7-1 container's Python); ``xgboost`` is imported only for a built-in XGBoost model.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

LABEL = "churned"
CONTAINER_ROOT = "/opt/ml/"
DEFAULT_CHALLENGER = "/opt/ml/processing/input/challenger"
DEFAULT_CHAMPION = "/opt/ml/processing/input/champion"
DEFAULT_HOLDOUT = "/opt/ml/processing/input/holdout"
DEFAULT_OUTPUT = "/opt/ml/processing/output/report"
FAILURE_MESSAGE = "/opt/ml/output/message"
ROOT_ENV = "SAGELAKE_PROCESSING_ROOT"
PARQUET_MAGIC = b"PAR1"
MODEL_ARCHIVE = "model.tar.gz"
METRICS_FILE = "metrics.json"
MODEL_QUALITY_FILE = "model_quality.json"
CHAMPION_MODEL_QUALITY_FILE = "champion_model_quality.json"
REPORT_FILE = "report.html"
CALIBRATION_BINS = 10
# Metrics compared between the models (challenger − champion in "difference").
COMPARED = ("auc", "pr_auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1")
COLOURS = {"challenger": "tab:blue", "champion": "tab:orange"}
UTC_ZONE = timezone.utc  # noqa: UP017 - Python 3.8 (the XGBoost 1.7-1 container) has no datetime.UTC
INFERENCE_SCRIPT = "code/inference.py"
XGBOOST_MODEL_FILE = "xgboost-model"
SCRIPT_MODE, BUILTIN_XGBOOST = "script mode", "built-in XGBoost"
# SageMaker's built-in XGBoost reads rows encoded as sagelake.ml.training_data writes its CSV channels:
# these three constants copy its NUMERIC_FEATURES, CATEGORY_VOCABULARY and CSV_FEATURE_COLUMNS (this file
# ships alone); tests/unit/include/test_evaluate_builtin_xgboost.py asserts they are equal.
NUMERIC_FEATURES = (
    "monthly_fee",
    "age",
    "support_tickets",
    "tenure_days",
    "n_events",
    "n_logins",
    "n_purchases",
    "total_amount",
    "avg_session_s",
)
CATEGORY_VOCABULARY = {
    "plan": ("basic", "standard", "premium"),
    "region": ("north", "south", "east", "west"),
}
CSV_FEATURE_COLUMNS = NUMERIC_FEATURES + tuple(
    f"{column}_{value}" for column, values in CATEGORY_VOCABULARY.items() for value in values
)
# Booster objectives whose prediction is the churn probability; ``binary:logitraw`` predicts its logit.
PROBABILITY_OBJECTIVES = ("binary:logistic", "reg:logistic")
LOGIT_OBJECTIVES = ("binary:logitraw",)
# The SageMaker scikit-learn container has no matplotlib: installed at run time when missing (needs the
# job's network access to PyPI); a version supporting the container's Python 3.10 and numpy 2.
MATPLOTLIB_REQUIREMENT = "matplotlib==3.9.4"


class EvaluationInputError(Exception):
    """Unusable input (no model, no data, missing columns, one class only); the message says what to fix."""


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend, installing ``MATPLOTLIB_REQUIREMENT`` if it is missing."""
    try:
        import matplotlib
    except ImportError:
        target = Path(tempfile.mkdtemp(prefix="evaluate-site-"))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(target),
                MATPLOTLIB_REQUIREMENT,
            ],
            check=True,
        )
        sys.path.insert(0, str(target))
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def container_path(path: str) -> Path:
    """A container path (``/opt/ml/...``), read below ``$SAGELAKE_PROCESSING_ROOT`` when that is set."""
    root = os.environ.get(ROOT_ENV, "").strip()
    if root and path.startswith(CONTAINER_ROOT):
        return Path(root) / path.lstrip("/")
    return Path(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate challenger and champion on held-out data.")
    parser.add_argument("--challenger", default=DEFAULT_CHALLENGER, help="dir holding model.tar.gz")
    parser.add_argument(
        "--champion", default="", help=f"dir holding model.tar.gz, e.g. {DEFAULT_CHAMPION} (none if empty)"
    )
    parser.add_argument("--holdout", default=DEFAULT_HOLDOUT, help="dir of held-out Parquet files")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="report dir")
    parser.add_argument("--threshold", type=float, default=0.5, help="decision threshold on the probability")
    return parser.parse_args(argv)


def find_files(directory: Path, *, parquet: bool) -> list[Path]:
    """Visible files under ``directory`` (recursive; hidden and ``_`` files skipped), Parquet by magic."""
    found = []
    for path in sorted(directory.rglob("*")) if directory.is_dir() else []:
        rel = path.relative_to(directory)
        if not path.is_file() or any(part.startswith((".", "_")) for part in rel.parts):
            continue
        if parquet:
            with path.open("rb") as handle:
                if handle.read(4) != PARQUET_MAGIC:
                    continue
        found.append(path)
    return found


def load_holdout(directory: Path) -> pd.DataFrame:
    """Every Parquet file of the held-out data, concatenated; the label must be present and complete."""
    files = find_files(directory, parquet=True)
    if not files:
        raise EvaluationInputError(
            f"no Parquet files under {directory}: point the holdout input at the held-out day's features"
        )
    frame = pd.concat([pq.read_table(path).to_pandas() for path in files], ignore_index=True)
    if LABEL not in frame.columns:
        raise EvaluationInputError(f"held-out data lacks the label column {LABEL!r}")
    if frame[LABEL].isna().any():
        raise EvaluationInputError(f"held-out data has missing {LABEL} labels: fix the curated features")
    frame[LABEL] = frame[LABEL].astype("int64")
    classes = sorted(int(c) for c in frame[LABEL].unique())
    if classes != [0, 1]:
        raise EvaluationInputError(
            f"held-out data has {LABEL} classes {classes} in {len(frame)} rows: both 0 and 1 are needed "
            "to evaluate; hold out a larger day"
        )
    return frame


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_archive(directory: Path, *, required: bool) -> Path | None:
    """The ``model.tar.gz`` in an input dir (the only file, or the one named so); ``None`` if none."""
    files = find_files(directory, parquet=False)
    named = [path for path in files if path.name == MODEL_ARCHIVE]
    if named or len(files) == 1:
        return (named or files)[0]
    if not files and not required:
        return None
    what = "no files" if not files else f"{len(files)} files and none named {MODEL_ARCHIVE}"
    raise EvaluationInputError(f"model input {directory} has {what}: give the model's {MODEL_ARCHIVE}")


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tarball, refusing members that would land outside ``dest`` (any Python 3.10+)."""
    with tarfile.open(archive, mode="r:*") as tar:
        root = dest.resolve()
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if target != root and root not in target.parents or member.issym() or member.islnk():
                raise EvaluationInputError(f"{archive.name}: unsafe member {member.name!r}")
        tar.extractall(dest)  # noqa: S202 - members checked above


def archive_kind(model_dir: Path, archive: Path, name: str) -> str:
    """How an extracted archive is scored: :data:`SCRIPT_MODE` (``code/inference.py``, served through it
    even beside an ``xgboost-model``) or :data:`BUILTIN_XGBOOST` (``xgboost-model`` alone)."""
    if (model_dir / INFERENCE_SCRIPT).is_file():
        return SCRIPT_MODE
    if (model_dir / XGBOOST_MODEL_FILE).is_file():
        return BUILTIN_XGBOOST
    found = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    raise EvaluationInputError(
        f"{name} model archive {archive} has neither {INFERENCE_SCRIPT} (a script-mode model) nor "
        f"{XGBOOST_MODEL_FILE} (a built-in XGBoost model); it holds {found or 'no files'}: give the "
        f"{MODEL_ARCHIVE} a SageMaker training job wrote"
    )


def encode_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The built-in XGBoost feature matrix: columns exactly :data:`CSV_FEATURE_COLUMNS`, float64.

    The same encoding as ``sagelake.ml.training_data.encode_features``: numbers as they are (missing stays
    NaN, the algorithm's missing value), categories one-hot over :data:`CATEGORY_VOCABULARY`; a value outside
    the vocabulary is refused, never silently zeroed.
    """
    missing = [c for c in (*NUMERIC_FEATURES, *CATEGORY_VOCABULARY) if c not in frame.columns]
    if missing:
        raise EvaluationInputError(
            f"held-out data lacks the built-in XGBoost feature column(s) {', '.join(missing)}"
        )
    encoded = pd.DataFrame(index=frame.index)
    for column in NUMERIC_FEATURES:
        try:
            encoded[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            raise EvaluationInputError(f"feature {column!r} is not numeric: {exc}") from None
    for column, vocabulary in CATEGORY_VOCABULARY.items():
        values = frame[column]
        unknown = sorted({str(v) for v in values[~values.isin(vocabulary)].unique()})
        if unknown:
            raise EvaluationInputError(
                f"{column} value(s) {unknown} are outside the built-in XGBoost model's vocabulary "
                f"{list(vocabulary)}: the feature contract changed; extend CATEGORY_VOCABULARY and retrain"
            )
        for value in vocabulary:
            encoded[f"{column}_{value}"] = (values == value).astype("float64")
    return encoded[list(CSV_FEATURE_COLUMNS)]


def booster_objective(booster: Any) -> str:
    """The objective a booster was trained with (from its saved configuration)."""
    return str(json.loads(booster.save_config())["learner"]["objective"]["name"])


def score_builtin_xgboost(model_dir: Path, frame: pd.DataFrame, name: str) -> np.ndarray:
    """Churn probabilities of a built-in XGBoost model (``xgboost-model``) for ``frame``."""
    try:
        import xgboost as xgb
    except ImportError:
        raise EvaluationInputError(
            f"the {name} model is a built-in XGBoost model and this container has no xgboost: run the "
            "evaluation in the XGBoost image (sagelake.ml.evaluation.evaluation_image_uri chooses it)"
        ) from None
    booster = xgb.Booster()
    try:  # from a buffer, xgboost detects the format (binary, JSON or UBJSON)
        booster.load_model(bytearray((model_dir / XGBOOST_MODEL_FILE).read_bytes()))
    except xgb.core.XGBoostError as exc:
        raise EvaluationInputError(f"the {name} model's {XGBOOST_MODEL_FILE} does not load: {exc}") from None
    objective = booster_objective(booster)
    if objective not in PROBABILITY_OBJECTIVES + LOGIT_OBJECTIVES:
        raise EvaluationInputError(
            f"the {name} built-in XGBoost model has objective {objective}, which gives no churn "
            "probability: train it with objective binary:logistic"
        )
    matrix = encode_features(frame)
    if booster.num_features() != matrix.shape[1]:
        raise EvaluationInputError(
            f"the {name} built-in XGBoost model was trained on {booster.num_features()} features; the "
            f"churn encoding has {matrix.shape[1]} ({', '.join(CSV_FEATURE_COLUMNS)}): train it on "
            "channels written by sagelake.ml.training_data"
        )
    predictions = booster.predict(xgb.DMatrix(matrix.to_numpy(), missing=np.nan))
    predictions = np.asarray(predictions, dtype="float64")
    if objective in LOGIT_OBJECTIVES:
        predictions = 1.0 / (1.0 + np.exp(-predictions))
    return predictions


def score_script_mode(model_dir: Path, frame: pd.DataFrame, name: str) -> np.ndarray:
    """Churn probabilities of a script-mode model for ``frame``, through its ``code/inference.py``."""
    inference = _import(model_dir / INFERENCE_SCRIPT, f"sagelake_evaluate_{name}_inference")
    model = inference.model_fn(str(model_dir))
    missing = [feature for feature in model["features"] if feature not in frame.columns]
    if missing:
        raise EvaluationInputError(f"held-out data lacks the {name} model's feature(s) {', '.join(missing)}")
    return np.asarray(inference.predict_fn(frame[model["features"]], model), dtype="float64")


def score_model(archive: Path, frame: pd.DataFrame, work: Path, name: str) -> tuple[str, np.ndarray]:
    """The kind of the model in ``archive`` (:func:`archive_kind`) and its churn probability per row."""
    model_dir = work / name
    model_dir.mkdir(parents=True)
    safe_extract(archive, model_dir)
    kind = archive_kind(model_dir, archive, name)
    if kind == BUILTIN_XGBOOST:
        probabilities = score_builtin_xgboost(model_dir, frame, name)
    else:
        probabilities = score_script_mode(model_dir, frame, name)
    if probabilities.shape != (len(frame),) or not np.isfinite(probabilities).all():
        raise EvaluationInputError(f"{name} model returned no finite probability per row")
    if ((probabilities < 0) | (probabilities > 1)).any():
        raise EvaluationInputError(f"{name} model returned values outside [0, 1]: no probabilities")
    return kind, probabilities


def binary_metrics(truth: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, Any]:
    """Ranking, probability and thresholded metrics of one model; counts and its confusion matrix."""
    predicted = (proba >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(truth, predicted, labels=[0, 1]).ravel()
    return {
        "auc": float(roc_auc_score(truth, proba)),
        "pr_auc": float(average_precision_score(truth, proba)),
        "log_loss": float(log_loss(truth, np.column_stack([1 - proba, proba]), labels=[0, 1])),
        "brier": float(brier_score_loss(truth, proba)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision": float(precision_score(truth, predicted, zero_division=0)),
        "recall": float(recall_score(truth, predicted, zero_division=0)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
        "n": int(len(truth)),
        "positives": int(truth.sum()),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def _value(value: float) -> dict[str, Any]:
    return {"value": value, "standard_deviation": "NaN"}


def model_quality(metrics: dict[str, Any], truth: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Model Monitor's model-quality statistics (``binary_classification_metrics``) for one model.

    The confusion matrix is keyed actual label → predicted label → count, as Model Monitor writes it.
    """
    cm = metrics["confusion_matrix"]
    n, positives = metrics["n"], metrics["positives"]
    negatives = n - positives
    fpr, tpr, _ = roc_curve(truth, proba)
    precisions, recalls, _ = precision_recall_curve(truth, proba)

    def f_beta(beta: float) -> float:
        p, r = metrics["precision"], metrics["recall"]
        return 0.0 if p + r == 0 else (1 + beta**2) * p * r / (beta**2 * p + r)

    majority = max(positives, negatives) / n
    return {
        "version": 0.0,
        "dataset": {
            "item_count": n,
            "evaluation_time": datetime.now(UTC_ZONE).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
        "binary_classification_metrics": {
            "confusion_matrix": {
                "0": {"0": cm["tn"], "1": cm["fp"]},
                "1": {"0": cm["fn"], "1": cm["tp"]},
            },
            "recall": _value(metrics["recall"]),
            "precision": _value(metrics["precision"]),
            "accuracy": _value(metrics["accuracy"]),
            # Always predicting "churned" (recall 1, precision = prevalence), or the majority class.
            "recall_best_constant_classifier": _value(1.0),
            "precision_best_constant_classifier": _value(positives / n),
            "accuracy_best_constant_classifier": _value(majority),
            "true_positive_rate": _value(cm["tp"] / positives),
            "true_negative_rate": _value(cm["tn"] / negatives),
            "false_positive_rate": _value(cm["fp"] / negatives),
            "false_negative_rate": _value(cm["fn"] / positives),
            "receiver_operating_characteristic_curve": {
                "false_positive_rates": [float(x) for x in fpr],
                "true_positive_rates": [float(x) for x in tpr],
            },
            "precision_recall_curve": {
                "precisions": [float(x) for x in precisions],
                "recalls": [float(x) for x in recalls],
            },
            "auc": _value(metrics["auc"]),
            "f0_5": _value(f_beta(0.5)),
            "f1": _value(metrics["f1"]),
            "f2": _value(f_beta(2.0)),
            # Beyond Model Monitor's list, under the same shape:
            "pr_auc": _value(metrics["pr_auc"]),
            "log_loss": _value(metrics["log_loss"]),
            "brier": _value(metrics["brier"]),
        },
    }


def _save(figure: Any, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    pyplot().close(figure)
    return path.name


def plot_curves(truth: np.ndarray, scores: dict[str, np.ndarray], metrics: dict, out: Path) -> list[str]:
    """ROC and precision-recall curves of every model, one figure each."""
    plt = pyplot()
    roc, axis = plt.subplots(figsize=(5, 5))
    for name, proba in scores.items():
        fpr, tpr, _ = roc_curve(truth, proba)
        axis.plot(fpr, tpr, color=COLOURS[name], label=f"{name} (AUC {metrics[name]['auc']:.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axis.legend(loc="lower right")
    names = [_save(roc, out / "roc.png")]

    pr, axis = plt.subplots(figsize=(5, 5))
    for name, proba in scores.items():
        precision, recall, _ = precision_recall_curve(truth, proba)
        axis.step(recall, precision, where="post", color=COLOURS[name])
        axis.lines[-1].set_label(f"{name} (AP {metrics[name]['pr_auc']:.3f})")
    axis.axhline(truth.mean(), color="grey", linestyle=":", label="prevalence")
    axis.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", ylim=(0, 1.02))
    axis.legend(loc="upper right")
    names.append(_save(pr, out / "precision_recall.png"))
    return names


def plot_confusion(name: str, metrics: dict[str, Any], threshold: float, out: Path) -> str:
    cm = metrics["confusion_matrix"]
    cells = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    figure, axis = pyplot().subplots(figsize=(4, 4))
    axis.imshow(cells, cmap="Blues")
    for (row, col), count in np.ndenumerate(cells):
        colour = "white" if count > cells.max() / 2 else "black"
        axis.text(col, row, str(count), ha="center", va="center", color=colour)
    axis.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["0", "1"],
        yticklabels=["0", "1"],
        xlabel="predicted churned",
        ylabel="actual churned",
        title=f"{name}, threshold {threshold:g}",
    )
    return _save(figure, out / f"confusion_{name}.png")


def plot_calibration(truth: np.ndarray, scores: dict[str, np.ndarray], out: Path) -> str:
    figure, axis = pyplot().subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for name, proba in scores.items():
        observed, predicted = calibration_curve(truth, proba, n_bins=CALIBRATION_BINS, strategy="uniform")
        axis.plot(predicted, observed, marker="o", color=COLOURS[name], label=name)
    axis.set(
        xlabel="mean predicted probability",
        ylabel="observed churn rate",
        title=f"Calibration ({CALIBRATION_BINS} bins)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    axis.legend(loc="upper left")
    return _save(figure, out / "calibration.png")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def render_html(report: dict[str, Any], images: list[str]) -> str:
    """A one-page, self-contained HTML report (inline CSS, no script) linking the PNGs beside it."""
    models = list(report["models"])
    rows = []
    for metric in (*COMPARED, "n", "positives"):
        cells = "".join(f"<td>{_fmt(report['models'][m][metric])}</td>" for m in models)
        if report["difference"] is not None:
            diff = report["difference"].get(metric)
            cells += f"<td>{'' if diff is None else f'{diff:+.4f}'}</td>"
        rows.append(f"<tr><th>{metric}</th>{cells}</tr>")
    head = "".join(f"<th>{html.escape(m)}</th>" for m in models)
    if report["difference"] is not None:
        head += "<th>challenger − champion</th>"
    figures = "".join(
        f'<figure><a href="{name}"><img src="{name}" alt="{name}" width="360"></a>'
        f"<figcaption>{name}</figcaption></figure>"
        for name in images
    )
    champion_note = "" if "champion" in models else "<p>No champion: the challenger alone is reported.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Churn model evaluation</title>
<style>
body{{font-family:sans-serif;margin:1.5em;max-width:1200px}}
table{{border-collapse:collapse}} th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
th:first-child{{text-align:left}} figure{{display:inline-block;margin:.5em}}
</style></head><body>
<h1>Churn model evaluation</h1>
<p>Held-out rows: {report["n"]}, churned: {report["positives"]}; threshold {report["threshold"]:g};
evaluated {html.escape(report["evaluated_at"])}.</p>
{champion_note}
<table><tr><th>metric</th>{head}</tr>
{"".join(rows)}
</table>
<p>Thresholded metrics (accuracy, precision, recall, f1) at the threshold; pr_auc is average precision;
log_loss and brier: lower is better. Raw figures: <a href="{METRICS_FILE}">{METRICS_FILE}</a>,
<a href="{MODEL_QUALITY_FILE}">{MODEL_QUALITY_FILE}</a>.</p>
{figures}
</body></html>
"""


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score the models, write every report file into the output dir; return the metrics document."""
    if not 0.0 < args.threshold < 1.0:
        raise EvaluationInputError(f"--threshold={args.threshold} must be between 0 and 1")
    frame = load_holdout(container_path(args.holdout))
    truth = frame[LABEL].to_numpy()
    archives = {"challenger": model_archive(container_path(args.challenger), required=True)}
    champion = model_archive(container_path(args.champion), required=False) if args.champion else None
    if champion is not None:
        archives["champion"] = champion
    with tempfile.TemporaryDirectory(prefix="evaluate-") as work:
        scored = {name: score_model(path, frame, Path(work), name) for name, path in archives.items()}
    scores = {name: proba for name, (_, proba) in scored.items()}
    for name, (kind, _) in scored.items():
        print(f"{name}: {kind} model {archives[name]}")

    metrics = {name: binary_metrics(truth, proba, args.threshold) for name, proba in scores.items()}
    difference = (
        {m: metrics["challenger"][m] - metrics["champion"][m] for m in COMPARED} if champion else None
    )
    report = {
        "threshold": args.threshold,
        "n": int(len(truth)),
        "positives": int(truth.sum()),
        "evaluated_at": datetime.now(UTC_ZONE).isoformat(timespec="seconds"),
        "models": metrics,
        "difference": difference,
        "files": {},
    }
    out = container_path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    images = plot_curves(truth, scores, metrics, out)
    images += [plot_confusion(name, metrics[name], args.threshold, out) for name in scores]
    images.append(plot_calibration(truth, scores, out))
    quality = {MODEL_QUALITY_FILE: "challenger"}
    if champion:
        quality[CHAMPION_MODEL_QUALITY_FILE] = "champion"
    for file_name, name in quality.items():
        statistics = model_quality(metrics[name], truth, scores[name])
        (out / file_name).write_text(json.dumps(statistics, indent=2))
    report["files"] = {"images": images, "model_quality": quality, "report": REPORT_FILE}
    (out / METRICS_FILE).write_text(json.dumps(report, indent=2, sort_keys=True))
    (out / REPORT_FILE).write_text(render_html(report, images))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except EvaluationInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        message = container_path(FAILURE_MESSAGE)
        try:
            message.parent.mkdir(parents=True, exist_ok=True)
            message.write_text(str(exc))
        except OSError:
            pass
        return 2
    for name, metrics in report["models"].items():
        print(f"{name}: " + ", ".join(f"{m}={metrics[m]:.6f}" for m in COMPARED))
    print(f"evaluated {report['n']} held-out rows ({report['positives']} churned)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
