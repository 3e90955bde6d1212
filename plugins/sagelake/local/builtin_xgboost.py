"""The local engine for SageMaker's built-in XGBoost algorithm (image ``sagemaker-xgboost:1.7-1``).

A CreateTrainingJob request on the XGBoost image without script-mode hyperparameters
(:func:`sagelake.ml.images.is_builtin_xgboost_training`) runs here instead of a user script:

- channels ``train`` (required) and ``validation`` (optional) are staged as for script mode, under
  ``<work>/input/data/<channel>``; they must be ``text/csv``: label first, no header, numbers only
  (``csv_weights=1``: instance weight in the second column);
- the hyperparameters are the algorithm's own names (``num_round``, ``eta``, ``max_depth``...), validated
  as the container does; an unknown name is refused;
- training runs on the installed ``xgboost`` library in a subprocess (``python -m
  sagelake.local.builtin_xgboost <work>``, reading ``<work>/input/config/*.json`` like the container
  reads ``/opt/ml/input/config``), bounded by ``StoppingCondition.MaxRuntimeInSeconds``;
- every round prints the line the container's log shows in CloudWatch, e.g.
  ``[3]#011train-auc:0.91429#011validation-auc:0.80998``, so the algorithm's metric regexes
  (:func:`sagelake.ml.images.xgboost_metric_definitions`) parse it;
- ``model.tar.gz`` holds ``xgboost-model`` (the booster) as the container's does;
- with ``CheckpointConfig`` (managed spot training) every round is saved as ``xgboost-checkpoint.<round>``
  in the checkpoint dir (the newest :data:`CHECKPOINTS_KEPT` kept, the sync mirrors deletions to S3), and a
  start resumes from the newest loadable one ("Resuming from iteration N": ``num_round`` minus the rounds
  done), as the container's ``checkpointing`` module does. With the same data and hyperparameters the
  resumed booster is the uninterrupted one (a continued booster adds the same trees).

Version differences with the 1.7-1 container are in ``docs/training.md`` ("Built-in XGBoost").
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagelake.lake.layout import split_s3_uri
from sagelake.local.checkpoint_sync import CONFIG_FILE, synced_checkpoints, write_checkpoint_config
from sagelake.local.job_requests import run_container, tail
from sagelake.local.subprocess_env import job_environment
from sagelake.local.training_runner import (
    TrainingJobFailedError,
    TrainingRequestError,
    TrainingRunResult,
    _failure_detail,
    _required,
    _upload,
    check_spot,
    download_channel,
    elapsed_seconds,
    parse_metrics,
)
from sagelake.ml.artifacts import package_source_dir
from sagelake.ml.images import xgboost_metric_definitions

log = logging.getLogger(__name__)

MODEL_FILE = "xgboost-model"  # the file name the container writes and its inference loads
CHANNELS = ("train", "validation")
CSV_CONTENT_TYPES = ("text/csv", "csv")
# The container's tree_method "auto" in 1.7: exact greedy below 2**22 rows, approx above.
EXACT_ROWS_LIMIT = 2**22
PLUGINS_DIR = Path(__file__).resolve().parents[2]  # the folder holding the ``sagelake`` package
# The container's checkpointing (sagemaker_xgboost_container.checkpointing)
CHECKPOINT_FILE = "xgboost-checkpoint"
CHECKPOINT_PATTERN = re.compile(r"^xgboost-checkpoint\.([0-9]+)$")
CHECKPOINTS_KEPT = 5
CHECKPOINT_LOAD_TRIES = 5
TEMP_SUFFIX = ".sagemaker-ignore"  # not uploaded by the checkpoint sync; renamed when complete


# --- hyperparameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One documented hyperparameter: how to parse its string value and what range it accepts."""

    kind: Callable[[str], Any]
    check: Callable[[Any], bool] = lambda _: True
    allowed: str = ""


def _int(value: str) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{value!r} is not an integer")
    return int(number)


def _float(value: str) -> float:
    number = float(value)
    if math.isnan(number):
        raise ValueError("NaN")
    return number


def _str(value: str) -> str:
    return str(value).strip()


def _str_list(value: str) -> list[str]:
    text = str(value).strip()
    if text.startswith("["):  # the SDK may send a JSON list
        return [str(v).strip() for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def _nonneg(v: float) -> bool:
    return v >= 0


def _unit(v: float) -> bool:
    return 0 <= v <= 1


def _open_unit(v: float) -> bool:
    return 0 < v <= 1


def _one_of(*values: Any) -> Spec:
    return Spec(_str, lambda v: v in values, f"one of {list(values)}")


OBJECTIVES = (
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "count:poisson",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
    "reg:linear",
    "reg:squarederror",
    "reg:logistic",
    "reg:gamma",
    "reg:pseudohubererror",
    "reg:squaredlogerror",
    "reg:tweedie",
    "reg:absoluteerror",
    "survival:aft",
    "survival:cox",
)
EVAL_METRICS = (
    "rmse",
    "rmsle",
    "mae",
    "mape",
    "mphe",
    "logloss",
    "error",
    "merror",
    "mlogloss",
    "auc",
    "aucpr",
    "ndcg",
    "map",
    "poisson-nloglik",
    "gamma-nloglik",
    "cox-nloglik",
    "gamma-deviance",
    "tweedie-nloglik",
    "aft-nloglik",
    "interval-regression-accuracy",
    "accuracy",
    "f1",
    "mse",
)

# The built-in algorithm's documented hyperparameters (SageMaker XGBoost 1.7-1), passed to xgboost as is.
HYPERPARAMETERS: dict[str, Spec] = {
    "num_round": Spec(_int, lambda v: v >= 1, ">= 1"),
    "num_class": Spec(_int, lambda v: v >= 2, ">= 2"),
    "alpha": Spec(_float, _nonneg, ">= 0"),
    "base_score": Spec(_float),
    "booster": _one_of("gbtree", "gblinear", "dart"),
    "colsample_bylevel": Spec(_float, _open_unit, "in (0, 1]"),
    "colsample_bynode": Spec(_float, _open_unit, "in (0, 1]"),
    "colsample_bytree": Spec(_float, _open_unit, "in (0, 1]"),
    "csv_weights": Spec(_int, lambda v: v in (0, 1), "0 or 1"),
    "early_stopping_rounds": Spec(_int, lambda v: v >= 1, ">= 1"),
    "eta": Spec(_float, _unit, "in [0, 1]"),
    "eval_metric": Spec(
        _str_list,
        lambda v: all(m.split("@")[0] in EVAL_METRICS for m in v),
        f"a comma-separated list of {list(EVAL_METRICS)}",
    ),
    "gamma": Spec(_float, _nonneg, ">= 0"),
    "grow_policy": _one_of("depthwise", "lossguide"),
    "interaction_constraints": Spec(_str),
    "lambda": Spec(_float, _nonneg, ">= 0"),
    "max_bin": Spec(_int, lambda v: v >= 2, ">= 2"),
    "max_delta_step": Spec(_float, _nonneg, ">= 0"),
    "max_depth": Spec(_int, _nonneg, ">= 0"),
    "max_leaves": Spec(_int, _nonneg, ">= 0"),
    "min_child_weight": Spec(_float, _nonneg, ">= 0"),
    "monotone_constraints": Spec(_str),
    "normalize_type": _one_of("tree", "forest"),
    "nthread": Spec(_int, lambda v: v >= 1, ">= 1"),
    "num_parallel_tree": Spec(_int, lambda v: v >= 1, ">= 1"),
    "objective": _one_of(*OBJECTIVES),
    "one_drop": Spec(_int, lambda v: v in (0, 1), "0 or 1"),
    "process_type": _one_of("default", "update"),
    "rate_drop": Spec(_float, _unit, "in [0, 1]"),
    "refresh_leaf": Spec(_int, lambda v: v in (0, 1), "0 or 1"),
    "sample_type": _one_of("uniform", "weighted"),
    "scale_pos_weight": Spec(_float, lambda v: v > 0, "> 0"),
    "seed": Spec(_int),
    "skip_drop": Spec(_float, _unit, "in [0, 1]"),
    "subsample": Spec(_float, _open_unit, "in (0, 1]"),
    "tree_method": _one_of("auto", "exact", "approx", "hist"),
    "tweedie_variance_power": Spec(_float, lambda v: 1 < v < 2, "in (1, 2)"),
    "updater": Spec(_str),
    "verbosity": Spec(_int, lambda v: 0 <= v <= 3, "0 to 3"),
    "aft_loss_distribution": _one_of("normal", "logistic", "extreme"),
    "aft_loss_distribution_scale": Spec(_float, lambda v: v > 0, "> 0"),
    "save_model_on_termination": _one_of("true", "false"),
    # set by SageMaker for a tuning job: its objective metric is added to eval_metric
    "_tuning_objective_metric": Spec(_str),
}
# Accepted by the 1.7-1 container but with no effect on a CPU result: accepted, logged, not passed on.
IGNORED = {
    "predictor": "xgboost 2 removed it; prediction on CPU is the same",
    "single_precision_histogram": "a GPU setting",
    "deterministic_histogram": "a GPU setting",
    "use_dask_gpu_training": "a GPU setting",
}
# Accepted by the container but changing its result in a way the local xgboost cannot reproduce: refused.
UNSUPPORTED = {
    "lambda_bias": "removed in xgboost 2 (gblinear bias regularisation)",
    "sketch_eps": "removed in xgboost 2 (the approx method uses max_bin)",
    "dsplit": "distributed training is not run locally",
    "_kfold": "k-fold cross-validation training is not run locally",
    "_num_cv_round": "k-fold cross-validation training is not run locally",
}
# Read by the training loop itself, not booster parameters.
NOT_PASSED = {
    "num_round",
    "early_stopping_rounds",
    "csv_weights",
    "_tuning_objective_metric",
    "save_model_on_termination",
}


def validate_hyperparameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The request's hyperparameters (string values) parsed and checked like the container does.

    Raises :class:`TrainingRequestError` naming every bad, unknown or unsupported name at once.
    """
    parsed: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in (raw or {}).items():
        if name in IGNORED:
            log.warning("hyperparameter %s=%s is ignored locally: %s", name, value, IGNORED[name])
            continue
        if name in UNSUPPORTED:
            problems.append(
                f"{name}: accepted by the container but not runnable locally ({UNSUPPORTED[name]})"
            )
            continue
        spec = HYPERPARAMETERS.get(name)
        if spec is None:
            problems.append(f"{name}: not a hyperparameter of the built-in XGBoost algorithm")
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            parsed[name] = spec.kind(text)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name}={value!r}: cannot be parsed ({exc})")
            continue
        if not spec.check(parsed[name]):
            problems.append(f"{name}={value!r}: must be {spec.allowed}")
    if "num_round" not in parsed and not any(p.startswith("num_round") for p in problems):
        problems.append("num_round: required")
    objective = parsed.get("objective", "reg:squarederror")
    if objective.startswith("multi:") and "num_class" not in parsed:
        problems.append(f"num_class: required with objective {objective}")
    metrics = [m.split("@")[0] for m in parsed.get("eval_metric", [])]
    if "auc" in metrics and not objective.startswith(("binary:", "rank:")):
        problems.append(f"eval_metric auc needs a binary: or rank: objective, not {objective}")
    if problems:
        allowed = ", ".join(sorted(n for n in HYPERPARAMETERS if not n.startswith("_")))
        raise TrainingRequestError(
            "built-in XGBoost hyperparameters refused: "
            + "; ".join(problems)
            + f". Documented names: {allowed}"
        )
    return parsed


def eval_metrics(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``eval_metric`` plus the tuning objective's metric (``validation:auc`` → ``auc``), as the container."""
    metrics = list(hyperparameters.get("eval_metric", []))
    tuning = hyperparameters.get("_tuning_objective_metric")
    if tuning:
        name = tuning.split(":", 1)[-1]
        if name not in metrics:
            metrics.append(name)
    return metrics


def booster_params(hyperparameters: Mapping[str, Any], rows: int) -> dict[str, Any]:
    """The ``xgb.train`` params: the hyperparameters, with the 1.7-1 container's defaults where xgboost 3
    changed them (objective ``reg:squarederror``, ``base_score`` 0.5, ``tree_method`` "auto" = exact
    below 2**22 rows, approx above)."""
    params = {k: v for k, v in hyperparameters.items() if k not in NOT_PASSED}
    params.setdefault("objective", "reg:squarederror")
    if params["objective"] != "survival:aft":
        params.setdefault("base_score", 0.5)
    if params.get("tree_method", "auto") == "auto" and "updater" not in params:
        params["tree_method"] = "exact" if rows < EXACT_ROWS_LIMIT else "approx"
    metrics = eval_metrics(hyperparameters)
    if metrics:
        params["eval_metric"] = metrics
    else:
        params.pop("eval_metric", None)
    return params


# --- the "container": runs in a subprocess -----------------------------------------------------------


def checkpoint_dir_of(config_dir: Path) -> Path | None:
    """``LocalPath`` of ``input/config/checkpointconfig.json`` (written when the job has CheckpointConfig)."""
    path = config_dir / CONFIG_FILE
    if not path.exists():
        return None
    local = json.loads(path.read_text()).get("LocalPath")
    return Path(local) if local else None


def checkpoint_files(directory: Path) -> list[tuple[int, Path]]:
    """``(round, path)`` of the ``xgboost-checkpoint.<round>`` files in ``directory``, newest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    return sorted(found, reverse=True)


def load_checkpoint(directory: Path | None):
    """``(booster, rounds done)`` from the newest loadable checkpoint (up to :data:`CHECKPOINT_LOAD_TRIES`
    tried), ``(None, 0)`` without one."""
    import xgboost as xgb

    if directory is None:
        return None, 0
    for number, path in checkpoint_files(directory)[:CHECKPOINT_LOAD_TRIES]:
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(path.read_bytes()))
        except (xgb.core.XGBoostError, OSError):
            print(f"INFO:root:Wrong checkpoint model format {path.name}, skipped", flush=True)
            continue
        print(f"INFO:root:Checkpoint loaded from {path}", flush=True)
        print(f"INFO:root:Resuming from iteration {number + 1}", flush=True)
        return booster, number + 1
    return None, 0


def save_checkpoint(directory: Path, booster, number: int) -> Path:
    """Write ``xgboost-checkpoint.<number>`` atomically (a ``.sagemaker-ignore`` temp file renamed); delete
    all but the newest :data:`CHECKPOINTS_KEPT`."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, suffix=TEMP_SUFFIX, delete=False) as handle:
        handle.write(bytes(booster.save_raw(raw_format="ubj")))
    target = directory / f"{CHECKPOINT_FILE}.{number}"
    os.replace(handle.name, target)
    for _, old in checkpoint_files(directory)[CHECKPOINTS_KEPT:]:
        old.unlink(missing_ok=True)
    return target


def metric_line(epoch: int, evals_log: Mapping[str, Mapping[str, list]]) -> str:
    """``[epoch]#011train-auc:0.91429#011validation-auc:0.80998``: the container's line as CloudWatch shows
    it (the container prints a tab; SageMaker's log capture renders it ``#011``)."""
    parts = [f"[{epoch}]"]
    for data, metrics in evals_log.items():
        for metric, values in metrics.items():
            score = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
            parts.append(f"#011{data}-{metric}:{score:.5f}")
    return "".join(parts)


def read_csv_channel(directory: Path, csv_weights: bool = False):
    """A CSV channel's files (sorted, hidden ones skipped) as ``(features, labels, weights or None)``."""
    import numpy as np
    import pandas as pd

    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    frames = []
    for path in files:
        if path.stat().st_size == 0:
            continue
        try:
            frame = pd.read_csv(path, header=None, dtype="float64", skip_blank_lines=True)
        except ValueError as exc:
            raise ValueError(
                f"{path.relative_to(directory.parent)}: non-numeric CSV ({exc}); the built-in algorithm "
                "reads numbers only, label first, no header row"
            ) from None
        frames.append(frame)
    if not frames:
        raise ValueError(f"no data in channel {directory.name}")
    widths = {f.shape[1] for f in frames}
    if len(widths) != 1:
        raise ValueError(f"channel {directory.name}: files have different column counts {sorted(widths)}")
    data = pd.concat(frames, ignore_index=True).to_numpy()
    first_feature = 2 if csv_weights else 1
    if data.shape[1] <= first_feature:
        raise ValueError(f"channel {directory.name}: {data.shape[1]} column(s), no feature after the label")
    if np.isnan(data[:, 0]).any():
        raise ValueError(f"channel {directory.name}: a row has no label in its first column")
    weights = data[:, 1] if csv_weights else None
    return data[:, first_feature:], data[:, 0], weights


def train(work: Path) -> int:
    """What the container's ``train`` does, on the local xgboost: return the process exit code.

    On failure the reason goes to ``<work>/output/failure`` (SageMaker's convention) and stderr.
    """
    import xgboost as xgb

    config_dir, output_dir = work / "input" / "config", work / "output"
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        raw = json.loads((config_dir / "hyperparameters.json").read_text())
        data_config = json.loads((config_dir / "inputdataconfig.json").read_text())
        hyperparameters = validate_hyperparameters(raw)
        csv_weights = hyperparameters.get("csv_weights", 0) == 1
        matrices = {}
        for channel in CHANNELS:
            if channel not in data_config:
                continue
            x, y, w = read_csv_channel(work / "input" / "data" / channel, csv_weights and channel == "train")
            matrices[channel] = xgb.DMatrix(x, label=y, weight=w, missing=float("nan"))
            print(f"INFO:root:{channel.capitalize()} matrix has {x.shape[0]} rows and {x.shape[1]} columns")
        widths = {m.num_col() for m in matrices.values()}
        if len(widths) > 1:
            raise ValueError(f"train and validation have different feature counts {sorted(widths)}")
        params = booster_params(hyperparameters, matrices["train"].num_row())
        watchlist = [(matrices[c], c) for c in CHANNELS if c in matrices]
        checkpoint_dir = checkpoint_dir_of(config_dir)
        resumed, start = load_checkpoint(checkpoint_dir)

        class PrintMetrics(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log) -> bool:
                print(metric_line(start + epoch, evals_log), flush=True)
                return False

        class SaveCheckpoint(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log) -> bool:
                save_checkpoint(checkpoint_dir, model, start + epoch)
                return False

        callbacks = [PrintMetrics()] + ([SaveCheckpoint()] if checkpoint_dir is not None else [])
        booster = xgb.train(
            params,
            matrices["train"],
            num_boost_round=max(hyperparameters["num_round"] - start, 0),
            evals=watchlist,
            early_stopping_rounds=hyperparameters.get("early_stopping_rounds"),
            callbacks=callbacks,
            verbose_eval=False,
            xgb_model=resumed,
        )
        model_dir = work / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / MODEL_FILE).write_bytes(bytes(booster.save_raw(raw_format="ubj")))
        print(f"INFO:root:Stored trained model at {model_dir / MODEL_FILE}", flush=True)
        return 0
    except Exception as exc:  # noqa: BLE001 - every failure is reported the container's way
        reason = f"{type(exc).__name__}: {exc}"
        (output_dir / "failure").write_text(reason)
        traceback.print_exc()
        print(reason, file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sagelake.local.builtin_xgboost <work dir>", file=sys.stderr)
        return 2
    return train(Path(args[0]))


# --- the training job: stage, run, upload --------------------------------------------------------------


def _check_channels(job: str, channels: list[dict]) -> None:
    names = [_required(c, "ChannelName") for c in channels]
    if "train" not in names:
        raise TrainingRequestError(
            f"training job {job}: the built-in XGBoost algorithm needs a 'train' channel"
        )
    unknown = sorted(set(names) - set(CHANNELS))
    if unknown:
        raise TrainingRequestError(
            f"training job {job}: channel(s) {unknown} are not read by the built-in XGBoost algorithm; "
            f"use {list(CHANNELS)}"
        )
    for channel in channels:
        content_type = str(channel.get("ContentType") or "").split(";")[0].strip().lower()
        if content_type not in CSV_CONTENT_TYPES:
            raise TrainingRequestError(
                f"training job {job}: channel {channel['ChannelName']!r} has ContentType "
                f"{channel.get('ContentType')!r}; set 'text/csv' (the container reads a channel without "
                "ContentType as libsvm, which the local engine does not)"
            )


def _write_config(request: dict, work: Path) -> None:
    config_dir = work / "input" / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    input_config = {
        c["ChannelName"]: {k: v for k, v in c.items() if k != "ChannelName"}
        for c in request.get("InputDataConfig") or []
    }
    resource = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    (config_dir / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters") or {}))
    (config_dir / "inputdataconfig.json").write_text(json.dumps(input_config))
    (config_dir / "resourceconfig.json").write_text(json.dumps(resource))


def _environment() -> dict[str, str]:
    """The algorithm's environment: ``sagelake`` importable, and only what :func:`job_environment` allows
    of this process's."""
    return job_environment({"PYTHONPATH": str(PLUGINS_DIR), "PYTHONUNBUFFERED": "1"})


def run_builtin_xgboost(request: dict, s3_client, work_dir: Path) -> TrainingRunResult:
    """Run a built-in XGBoost CreateTrainingJob request locally; upload model.tar.gz and output.tar.gz."""
    started = time.monotonic()
    job = _required(request, "TrainingJobName")
    output_path = _required(request, "OutputDataConfig", "S3OutputPath").rstrip("/")
    split_s3_uri(output_path + "/")
    validate_hyperparameters(request.get("HyperParameters") or {})
    checkpoint = check_spot(request)
    channels = request.get("InputDataConfig") or []
    _check_channels(job, channels)
    timeout = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")

    work = Path(work_dir)
    for stale in ("input", "model", "output", "checkpoints"):  # a reused work dir: no old artefacts
        shutil.rmtree(work / stale, ignore_errors=True)
    for channel in channels:
        count = download_channel(s3_client, channel, work / "input" / "data" / channel["ChannelName"])
        log.info("training job %s: channel %s: %d file(s) downloaded", job, channel["ChannelName"], count)
    _write_config(request, work)
    for directory in ("model", "output/data"):
        (work / directory).mkdir(parents=True, exist_ok=True)

    cmd = [sys.executable, "-m", "sagelake.local.builtin_xgboost", str(work)]
    log.info("training job %s: built-in XGBoost on the local xgboost library", job)
    with synced_checkpoints(s3_client, checkpoint, work, job) as checkpoint_dir:
        write_checkpoint_config(work / "input" / "config", checkpoint, checkpoint_dir)
        proc = run_container(
            cmd,
            cwd=work,
            env=_environment(),
            timeout=timeout,
            job=job,
            kind="training",
            error=TrainingJobFailedError,
            logger=log,
        )
    (work / "output" / "stdout.log").write_text(proc.stdout)
    (work / "output" / "stderr.log").write_text(proc.stderr)
    if proc.returncode != 0:
        detail = _failure_detail(work, proc.stderr)
        raise TrainingJobFailedError(f"training job {job} failed (exit {proc.returncode}): {detail}")

    prefix = f"{output_path}/{job}/output"
    model_uri = _upload(s3_client, f"{prefix}/model.tar.gz", package_source_dir(work / "model"))
    output_uri = _upload(s3_client, f"{prefix}/output.tar.gz", package_source_dir(work / "output" / "data"))
    log.info("training job %s: model artefacts at %s", job, model_uri)
    definitions = xgboost_metric_definitions() + list(
        (request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    )
    seconds = elapsed_seconds(started)
    return TrainingRunResult(
        job_name=job,
        model_artifacts=model_uri,
        output_data=output_uri,
        metrics=parse_metrics(proc.stdout.splitlines(), definitions),
        log_tail=tail(proc.stdout + "\n" + proc.stderr),
        training_seconds=seconds,
        billable_seconds=seconds,
    )


if __name__ == "__main__":
    sys.exit(main())
