"""The SageMaker training script (``include/training/train.py``) and inference handlers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import joblib
import numpy as np
import pytest

from tests.support.constants import TRAINING_DIR
from tests.support.training_data import load_script, synthetic_features, write_channel


def sm_env(tmp_path: Path, channel: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
    }


def run_script(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TRAINING_DIR / "train.py"), *args], env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model dir trained in-process by ``train.main`` on two partitions."""
    root = tmp_path_factory.mktemp("trained")
    channel = write_channel(
        root / "train", {"2024-01-01": synthetic_features(300, 1), "2024-01-02": synthetic_features(300, 2)}
    )
    code = load_script("train").main(
        ["--train", str(channel), "--model-dir", str(root / "model"), "--output-data-dir", str(root / "out")]
    )
    assert code == 0
    return root


def test_script_mode_run_writes_model_code_and_evaluation(tmp_path: Path) -> None:
    channel = write_channel(
        tmp_path / "train",
        {"2024-01-01": synthetic_features(400, 3), "2024-01-02": synthetic_features(400, 4)},
    )
    proc = run_script(["--max_iter", "60", "--seed", "7"], sm_env(tmp_path, channel))
    assert proc.returncode == 0, proc.stderr

    evaluation = json.loads((tmp_path / "output" / "data" / "evaluation.json").read_text())
    assert evaluation["n_train"] + evaluation["n_validation"] == 800
    assert evaluation["n_validation"] == 160
    assert evaluation["metrics"]["auc"] > 0.75
    assert set(evaluation["metrics"]) == {"auc", "accuracy", "f1", "log_loss"}
    assert evaluation["hyperparameters"]["max_iter"] == 60 and evaluation["hyperparameters"]["seed"] == 7
    assert "dt" not in evaluation["features"] and "churned" not in evaluation["features"]
    for name, value in evaluation["metrics"].items():
        assert f"validation:{name}={value:.6f}" in proc.stdout.splitlines()

    bundle = joblib.load(tmp_path / "model" / "model.joblib")
    assert bundle["features"] == evaluation["features"]
    assert (tmp_path / "model" / "code" / "inference.py").read_text() == (
        TRAINING_DIR / "inference.py"
    ).read_text()


def test_same_seed_same_model_different_seed_different_split(tmp_path: Path) -> None:
    channel = write_channel(tmp_path / "train", {"2024-01-01": synthetic_features(300, 5)})
    module = load_script("train")
    metrics = []
    for run, seed in enumerate([11, 11, 12]):
        out = tmp_path / f"out{run}"
        args = [
            "--train",
            str(channel),
            "--model-dir",
            str(tmp_path / f"m{run}"),
            "--output-data-dir",
            str(out),
        ]
        assert module.main([*args, "--seed", str(seed), "--max_iter", "20"]) == 0
        metrics.append(json.loads((out / "evaluation.json").read_text())["metrics"])
    assert metrics[0] == metrics[1]
    assert metrics[0] != metrics[2]


def test_missing_channel_fails_with_one_clear_line(tmp_path: Path) -> None:
    proc = run_script([], sm_env(tmp_path, tmp_path / "nowhere"))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere" in lines[0] and "does not exist" in lines[0]
    assert not (tmp_path / "model" / "model.joblib").exists()
    assert (tmp_path / "output" / "failure").read_text() in lines[0]


def run_in_process(channel: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[int, list[str]]:
    """``train.main`` in this process (no interpreter start-up); returns (exit code, stderr lines)."""
    args = [
        "--train",
        str(channel),
        "--model-dir",
        str(tmp_path / "model"),
        "--output-data-dir",
        str(tmp_path),
    ]
    code = load_script("train").main(args)
    return code, capsys.readouterr().err.strip().splitlines()


def test_channel_without_parquet_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    channel = tmp_path / "train" / "dt=2024-01-01"
    channel.mkdir(parents=True)
    (channel / "_SUCCESS").write_text("")
    (channel / "notes.csv").write_text("a,b\n1,2\n")
    code, lines = run_in_process(tmp_path / "train", tmp_path, capsys)
    assert code != 0 and len(lines) == 1 and "no Parquet files" in lines[0]


def test_missing_column_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    frame = synthetic_features(100, 6).drop(columns=["tenure_days"])
    code, lines = run_in_process(write_channel(tmp_path / "train", {"2024-01-01": frame}), tmp_path, capsys)
    assert code != 0 and len(lines) == 1 and "tenure_days" in lines[0]
    assert not (tmp_path / "model" / "model.joblib").exists()


def test_single_class_labels_are_rejected(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    frame = synthetic_features(100, 7).assign(churned=0)
    code, lines = run_in_process(write_channel(tmp_path / "train", {"2024-01-01": frame}), tmp_path, capsys)
    assert code != 0 and len(lines) == 1 and "both churned classes" in lines[0]


# --- inference handlers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handlers(trained: Path) -> tuple[ModuleType, dict]:
    inference = load_script("inference")
    return inference, inference.model_fn(str(trained / "model"))


def test_model_fn_loads_what_train_wrote(handlers, trained: Path) -> None:
    inference, model = handlers
    frame = synthetic_features(20, 8)
    expected = joblib.load(trained / "model" / "model.joblib")["pipeline"].predict_proba(frame)[:, 1]
    got = inference.predict_fn(frame[model["features"]], model)
    np.testing.assert_array_equal(got, expected)


def test_json_round_trip(handlers) -> None:
    inference, model = handlers
    frame = synthetic_features(5, 9)
    expected = model["pipeline"].predict_proba(frame[model["features"]])[:, 1]
    instances = frame.drop(columns=["customer_id", "churned"]).to_dict(orient="records")
    for body in (json.dumps({"instances": instances}), json.dumps(instances).encode()):
        data = inference.input_fn(body, "application/json; charset=utf-8")
        payload, content_type = inference.output_fn(inference.predict_fn(data, model), "application/json")
        assert content_type == "application/json"
        predictions = json.loads(payload)["predictions"]
        assert [p["churn_probability"] for p in predictions] == expected.tolist()
        assert [p["churned"] for p in predictions] == (expected >= 0.5).astype(int).tolist()


def test_csv_round_trip(handlers) -> None:
    inference, model = handlers
    frame = synthetic_features(4, 10)[model["features"]]
    expected = model["pipeline"].predict_proba(frame)[:, 1]
    body = frame.to_csv(header=False, index=False)
    payload, content_type = inference.output_fn(
        inference.predict_fn(inference.input_fn(body.encode(), "text/csv"), model), "text/csv"
    )
    assert content_type == "text/csv"
    assert [float(line) for line in payload.splitlines()] == expected.tolist()


def test_default_accept_is_json(handlers) -> None:
    inference, _ = handlers
    payload, content_type = inference.output_fn(np.array([0.25, 0.75]), "*/*")
    assert content_type == "application/json"
    assert json.loads(payload) == {
        "predictions": [{"churn_probability": 0.25, "churned": 0}, {"churn_probability": 0.75, "churned": 1}]
    }


def test_bad_requests_raise_clear_errors(handlers) -> None:
    inference, model = handlers
    with pytest.raises(ValueError, match="unsupported content type 'application/x-npy'"):
        inference.input_fn(b"\x93NUMPY", "application/x-npy")
    with pytest.raises(ValueError, match="unsupported accept type 'text/html'"):
        inference.output_fn(np.array([0.5]), "text/html")
    with pytest.raises(ValueError, match="not valid JSON"):
        inference.input_fn(b"{oops", "application/json")
    with pytest.raises(ValueError, match="instances"):
        inference.input_fn(b'{"rows": []}', "application/json")
    with pytest.raises(ValueError, match="lacks feature"):
        inference.predict_fn(inference.input_fn(b'[{"plan": "basic"}]', "application/json"), model)
    with pytest.raises(ValueError, match="has 2 values"):
        inference.predict_fn(inference.input_fn(b"basic,north\n", "text/csv"), model)
    row = ",".join(["basic", "north"] + ["x"] * (len(model["features"]) - 2))
    with pytest.raises(ValueError, match="is not a number"):
        inference.predict_fn(inference.input_fn(row, "text/csv"), model)
