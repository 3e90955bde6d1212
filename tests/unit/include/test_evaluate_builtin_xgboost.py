"""``include/evaluation/evaluate.py`` with built-in XGBoost models (an ``xgboost-model`` and no
``code/inference.py``): its copy of the CSV channels' encoding equals ``sagelake.ml.training_data``'s, a
built-in challenger and a script-mode champion are scored on the same rows, and archives it cannot score
are refused naming the archive."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from sagelake.ml import training_data
from sagelake.ml.artifacts import package_source_dir
from tests.support.evaluation import (
    EVALUATE_SCRIPT,
    expected_metrics,
    holdout_frame,
    load_evaluate,
    model_probabilities,
    train_model,
)
from tests.support.training_data import synthetic_features, write_channel

CHALLENGER = "/opt/ml/processing/input/challenger"
CHAMPION = "/opt/ml/processing/input/champion"
REPORT = "opt/ml/processing/output/report"


@pytest.fixture(scope="module")
def evaluate():
    return load_evaluate()


def train_booster(seed: int, objective: str = "binary:logistic", rounds: int = 20) -> xgb.Booster:
    """A booster trained as the built-in algorithm trains: on the channel layout's feature matrix."""
    matrix = training_data.labelled_matrix(synthetic_features(500, seed))
    data = xgb.DMatrix(matrix.drop(columns="churned").to_numpy(), label=matrix["churned"].to_numpy())
    params = {"objective": objective, "max_depth": 3, "eta": 0.3, "seed": seed, "base_score": 0.5}
    return xgb.train(params, data, num_boost_round=rounds)


def builtin_archive(booster: xgb.Booster, work: Path) -> bytes:
    """The built-in algorithm's ``model.tar.gz``: one ``xgboost-model`` file (UBJSON, as the runner saves)."""
    (work / "model").mkdir(parents=True)
    (work / "model" / "xgboost-model").write_bytes(bytes(booster.save_raw(raw_format="ubj")))
    return package_source_dir(work / "model")


def serving_probabilities(booster: xgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """What the booster answers for the rows encoded by sagelake's own encoding (the serving path)."""
    features = training_data.encode_features(frame).to_numpy()
    return booster.predict(xgb.DMatrix(features, missing=np.nan)).astype("float64")


def lay_out(root: Path, models: dict[str, bytes]) -> Path:
    """The container's input dirs below ``root``, the held-out day of :func:`holdout_frame` included."""
    for name, body in models.items():
        folder = root / "opt/ml/processing/input" / name
        folder.mkdir(parents=True)
        (folder / "model.tar.gz").write_bytes(body)
    write_channel(root / "opt/ml/processing/input/holdout", {"2026-11-26": holdout_frame()})
    return root


def run(evaluate, root: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    monkeypatch.setenv("SAGELAKE_PROCESSING_ROOT", str(root))
    return evaluate.main(["--challenger", CHALLENGER, *extra])


def report_of(root: Path) -> dict:
    return json.loads((root / REPORT / "metrics.json").read_text())


def test_the_encoding_is_sagelakes_own(evaluate) -> None:
    assert evaluate.NUMERIC_FEATURES == training_data.NUMERIC_FEATURES
    assert evaluate.CATEGORY_VOCABULARY == training_data.CATEGORY_VOCABULARY
    assert evaluate.CSV_FEATURE_COLUMNS == training_data.CSV_FEATURE_COLUMNS
    frame = synthetic_features(200, 5)
    frame.loc[3, "age"] = np.nan  # missing stays missing
    frame = frame[list(reversed(frame.columns))]  # column order of the Parquet does not matter
    pd.testing.assert_frame_equal(evaluate.encode_features(frame), training_data.encode_features(frame))


def test_a_category_outside_the_vocabulary_is_refused_by_both(evaluate) -> None:
    frame = synthetic_features(20, 5)
    frame.loc[0, "region"] = "mars"
    with pytest.raises(training_data.TrainingDataError, match="mars"):
        training_data.encode_features(frame)
    with pytest.raises(evaluate.EvaluationInputError, match=r"region value\(s\) \['mars'\]"):
        evaluate.encode_features(frame)


def test_a_builtin_challenger_and_a_script_mode_champion_on_the_same_rows(
    evaluate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    booster = train_booster(seed=31)
    models = {
        "challenger": builtin_archive(booster, tmp_path / "xgb"),
        "champion": train_model(tmp_path / "sk", seed=32, max_iter=30),
    }
    root = lay_out(tmp_path / "c", models)
    assert run(evaluate, root, monkeypatch, "--champion", CHAMPION) == 0

    report = report_of(root)
    frame = holdout_frame()
    truth = frame["churned"].to_numpy()
    expected = {
        "challenger": expected_metrics(truth, serving_probabilities(booster, frame)),
        "champion": expected_metrics(truth, model_probabilities(models["champion"], frame, tmp_path / "u")),
    }
    for name, metrics in expected.items():
        got = report["models"][name]
        assert {k: got[k] for k in metrics} == pytest.approx(metrics, abs=1e-12), name
    # The same shape for both kinds: the policy reads the same keys of either model.
    assert set(report["models"]["challenger"]) == set(report["models"]["champion"])
    assert set(report["difference"]) == set(evaluate.COMPARED)
    quality = json.loads((root / REPORT / "model_quality.json").read_text())
    assert quality["binary_classification_metrics"]["auc"]["value"] == report["models"]["challenger"]["auc"]


def test_two_builtin_models(evaluate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    boosters = {"challenger": train_booster(seed=41, rounds=30), "champion": train_booster(seed=42, rounds=3)}
    models = {name: builtin_archive(b, tmp_path / name) for name, b in boosters.items()}
    root = lay_out(tmp_path / "c", models)
    assert run(evaluate, root, monkeypatch, "--champion", CHAMPION) == 0
    report = report_of(root)
    truth = holdout_frame()["churned"].to_numpy()
    for name, booster in boosters.items():
        expected = expected_metrics(truth, serving_probabilities(booster, holdout_frame()))["auc"]
        assert report["models"][name]["auc"] == pytest.approx(expected, abs=1e-12)
    assert report["models"]["challenger"]["auc"] != report["models"]["champion"]["auc"]


def test_a_logitraw_booster_is_scored_by_its_probability(
    evaluate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    booster = train_booster(seed=51, objective="binary:logitraw")
    root = lay_out(tmp_path / "c", {"challenger": builtin_archive(booster, tmp_path / "m")})
    assert run(evaluate, root, monkeypatch) == 0
    frame = holdout_frame()
    margin = serving_probabilities(booster, frame)
    assert ((margin < 0) | (margin > 1)).any()  # raw logits: not probabilities themselves
    expected = expected_metrics(frame["churned"].to_numpy(), 1 / (1 + np.exp(-margin)))
    got = report_of(root)["models"]["challenger"]
    assert {k: got[k] for k in expected} == pytest.approx(expected, abs=1e-12)


def failure(evaluate, root: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> str:
    assert run(evaluate, root, monkeypatch, *extra) == 2
    assert not (root / REPORT / "metrics.json").exists()
    return (root / "opt/ml/output/message").read_text()


def test_an_archive_of_neither_kind_is_named(evaluate, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "model.pkl").write_bytes(b"not a model")
    models = {"challenger": builtin_archive(train_booster(seed=61), tmp_path / "m")}
    models["champion"] = package_source_dir(tmp_path / "odd")
    message = failure(evaluate, lay_out(tmp_path / "c", models), monkeypatch, "--champion", CHAMPION)
    assert "champion model archive" in message and "input/champion/model.tar.gz" in message
    assert "neither code/inference.py" in message and "xgboost-model" in message and "model.pkl" in message


def test_an_objective_without_probabilities_is_refused(evaluate, tmp_path: Path, monkeypatch) -> None:
    booster = train_booster(seed=71, objective="reg:squarederror")
    root = lay_out(tmp_path / "c", {"challenger": builtin_archive(booster, tmp_path / "m")})
    message = failure(evaluate, root, monkeypatch)
    assert "objective reg:squarederror" in message and "binary:logistic" in message


def test_a_booster_of_other_features_is_refused(evaluate, tmp_path: Path, monkeypatch) -> None:
    data = xgb.DMatrix(np.random.default_rng(0).random((50, 4)), label=np.arange(50) % 2)
    booster = xgb.train({"objective": "binary:logistic"}, data, num_boost_round=2)
    root = lay_out(tmp_path / "c", {"challenger": builtin_archive(booster, tmp_path / "m")})
    assert "trained on 4 features" in failure(evaluate, root, monkeypatch)


def test_without_xgboost_the_xgboost_image_is_named(evaluate, tmp_path: Path, monkeypatch) -> None:
    root = lay_out(tmp_path / "c", {"challenger": builtin_archive(train_booster(seed=81), tmp_path / "m")})
    monkeypatch.setitem(sys.modules, "xgboost", None)  # the scikit-learn container has no xgboost
    message = failure(evaluate, root, monkeypatch)
    assert "no xgboost" in message and "evaluation_image_uri" in message


def test_the_script_parses_as_python_3_8() -> None:
    """The XGBoost 1.7-1 container runs Python 3.8: no newer syntax (match, except*, ...) in the script."""
    ast.parse(EVALUATE_SCRIPT.read_text(), feature_version=(3, 8))
    with pytest.raises(SyntaxError):  # the check itself is not vacuous
        ast.parse("match x:\n    case 1:\n        pass\n", feature_version=(3, 8))


def test_an_xgboost_model_that_does_not_load_is_named(evaluate, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "xgboost-model").write_bytes(b"\x00not a booster")
    root = lay_out(tmp_path / "c", {"challenger": package_source_dir(tmp_path / "m")})
    assert "the challenger model's xgboost-model does not load" in failure(evaluate, root, monkeypatch)
