"""Checkpoints of the training script (``include/training/train.py``): saved in stages, resumed from the
newest usable one, and a resumed model equal to an uninterrupted one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from tests.support.training_data import load_script, synthetic_features, write_channel

MAX_ITER = 30
EVERY = 10


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Gradient boosting's OpenMP threads spin when the machine is busy: one is faster for tiny data."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def train() -> ModuleType:
    return load_script("train")


@pytest.fixture(scope="module")
def rows(train: ModuleType) -> pd.DataFrame:
    data = synthetic_features(400, 3)[train.FEATURES + [train.LABEL]].copy()
    data[train.CATEGORICAL] = data[train.CATEGORICAL].astype(str)
    data[train.NUMERIC] = data[train.NUMERIC].astype("float64")
    return data


def pipeline(train: ModuleType, max_iter: int = MAX_ITER):
    return train.build_pipeline(max_iter, 3, 0.1, 5)


def stamp(train: ModuleType, rows: pd.DataFrame, max_iter: int = MAX_ITER) -> str:
    return train.fingerprint(rows, {"max_iter": max_iter, "max_depth": 3, "seed": 5})


def fit(train: ModuleType, rows: pd.DataFrame, directory: Path | None, max_iter: int = MAX_ITER):
    return train.fit(
        pipeline(train, max_iter),
        rows,
        max_iter=max_iter,
        checkpoint_dir=directory,
        every=EVERY,
        stamp=stamp(train, rows, max_iter),
    )


def proba(train: ModuleType, model, rows: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(rows[train.FEATURES])


def test_checkpointed_fit_is_the_uninterrupted_fit(
    train: ModuleType, rows: pd.DataFrame, tmp_path: Path
) -> None:
    plain, plain_start = fit(train, rows, None)
    staged, staged_start = fit(train, rows, tmp_path)
    assert plain_start == staged_start == 0
    assert staged.named_steps["model"].n_iter_ == MAX_ITER
    assert staged.get_params()["model__warm_start"] is False
    np.testing.assert_array_equal(proba(train, staged, rows), proba(train, plain, rows))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"checkpoint-{n:06d}.joblib" for n in (20, 30)]  # the newest CHECKPOINTS_KEPT, no temp


def test_a_restart_resumes_from_the_newest_checkpoint_to_the_same_model(
    train: ModuleType, rows: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit(train, rows, tmp_path)
    (tmp_path / "checkpoint-000030.joblib").unlink()  # killed after iteration 20 was saved
    capsys.readouterr()
    resumed, start = fit(train, rows, tmp_path)
    assert start == 20
    assert "resuming from iteration 20" in capsys.readouterr().out
    plain, _ = fit(train, rows, None)
    np.testing.assert_array_equal(proba(train, resumed, rows), proba(train, plain, rows))


def test_an_unreadable_newest_checkpoint_falls_back_to_the_older(
    train: ModuleType, rows: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit(train, rows, tmp_path)
    (tmp_path / "checkpoint-000030.joblib").write_bytes(b"truncated")
    capsys.readouterr()
    resumed, start = fit(train, rows, tmp_path)
    assert start == 20
    assert "checkpoint-000030.joblib is unreadable" in capsys.readouterr().out
    assert resumed.named_steps["model"].n_iter_ == MAX_ITER


def test_checkpoints_of_other_hyperparameters_or_data_are_not_resumed(
    train: ModuleType, rows: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit(train, rows, tmp_path, max_iter=20)
    capsys.readouterr()
    _, start = fit(train, rows, tmp_path)
    assert start == 0
    assert "made for other data or hyperparameters" in capsys.readouterr().out
    _, start = fit(train, rows.iloc[1:], tmp_path)  # a checkpoint of these 30 iterations, other rows
    assert start == 0


def test_max_iter_not_a_multiple_of_the_interval_ends_on_max_iter(
    train: ModuleType, rows: pd.DataFrame, tmp_path: Path
) -> None:
    model, _ = fit(train, rows, tmp_path, max_iter=25)
    assert model.named_steps["model"].n_iter_ == 25
    assert (tmp_path / "checkpoint-000025.joblib").exists()
    again, start = fit(train, rows, tmp_path, max_iter=25)  # a finished job's retry only reloads
    assert start == 25
    np.testing.assert_array_equal(proba(train, again, rows), proba(train, model, rows))


def test_main_writes_checkpoints_from_sm_checkpoint_dir(
    train: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = write_channel(tmp_path / "train", {"2024-01-01": synthetic_features(200, 4)})
    monkeypatch.setenv("SM_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    args = ["--train", str(channel), "--model-dir", str(tmp_path / "model"), "--max_iter", "12"]
    assert train.main([*args, "--checkpoint_every", "5"]) == 0
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "checkpoint-000010.joblib",
        "checkpoint-000012.joblib",
    ]
    assert train.main([*args, "--checkpoint_every", "0"]) == 2
