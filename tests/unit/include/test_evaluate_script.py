"""``include/evaluation/evaluate.py`` on its own: both models scored on the same held-out rows through their
``code/inference.py``, metrics equal to scikit-learn's, every report file written, clear input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.evaluation import (
    expected_metrics,
    holdout_frame,
    load_evaluate,
    model_probabilities,
    train_model,
)
from tests.support.training_data import write_channel

IMAGES = ["roc.png", "precision_recall.png", "confusion_challenger.png", "calibration.png"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("models")
    return {
        "challenger": train_model(base / "a", seed=11, max_iter=60),
        "champion": train_model(base / "b", seed=12, max_iter=15, max_depth=2),
    }


def lay_out(root: Path, models: dict[str, bytes], names: tuple[str, ...]) -> Path:
    """The container's input dirs below ``root`` (as the processing runner lays them out)."""
    for name in names:
        folder = root / "opt/ml/processing/input" / name
        folder.mkdir(parents=True)
        (folder / "model.tar.gz").write_bytes(models[name])
    write_channel(root / "opt/ml/processing/input/holdout", {"2026-11-26": holdout_frame()})
    return root


def run(root: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    monkeypatch.setenv("SAGELAKE_PROCESSING_ROOT", str(root))
    return load_evaluate().main([*extra])


def test_both_models_on_the_same_rows_match_scikit_learn(models, tmp_path, monkeypatch) -> None:
    root = lay_out(tmp_path / "c", models, ("challenger", "champion"))
    assert run(root, monkeypatch, "--champion", "/opt/ml/processing/input/champion") == 0

    out = root / "opt/ml/processing/output/report"
    report = json.loads((out / "metrics.json").read_text())
    frame = holdout_frame()
    truth = frame["churned"].to_numpy()
    assert set(report["models"]) == {"challenger", "champion"}
    for name in ("challenger", "champion"):
        proba = model_probabilities(models[name], frame, tmp_path / f"unpacked-{name}")
        expected = expected_metrics(truth, proba)
        got = report["models"][name]
        assert {k: got[k] for k in expected} == pytest.approx(expected, abs=1e-12)
    for metric, diff in report["difference"].items():
        assert diff == pytest.approx(
            report["models"]["challenger"][metric] - report["models"]["champion"][metric]
        )
    assert report["models"]["challenger"]["auc"] != report["models"]["champion"]["auc"]

    for image in [*IMAGES, "confusion_champion.png"]:
        assert (out / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image
    page = (out / "report.html").read_text()
    assert all(f'src="{image}"' in page for image in IMAGES) and "champion" in page
    quality = json.loads((out / "model_quality.json").read_text())["binary_classification_metrics"]
    challenger = report["models"]["challenger"]
    assert quality["auc"]["value"] == challenger["auc"]
    cm = challenger["confusion_matrix"]
    assert quality["confusion_matrix"] == {
        "0": {"0": cm["tn"], "1": cm["fp"]},
        "1": {"0": cm["fn"], "1": cm["tp"]},
    }
    assert cm["tp"] + cm["fn"] == challenger["positives"] and sum(cm.values()) == challenger["n"] == 300
    champion_quality = json.loads((out / "champion_model_quality.json").read_text())
    assert (
        champion_quality["binary_classification_metrics"]["auc"]["value"]
        == report["models"]["champion"]["auc"]
    )


def test_without_a_champion_only_the_challenger_is_reported(models, tmp_path, monkeypatch) -> None:
    root = lay_out(tmp_path / "c", models, ("challenger",))
    assert run(root, monkeypatch) == 0
    out = root / "opt/ml/processing/output/report"
    report = json.loads((out / "metrics.json").read_text())
    assert list(report["models"]) == ["challenger"] and report["difference"] is None
    assert (
        not (out / "confusion_champion.png").exists() and not (out / "champion_model_quality.json").exists()
    )
    assert "No champion" in (out / "report.html").read_text()


def test_an_empty_champion_input_means_no_champion(models, tmp_path, monkeypatch) -> None:
    root = lay_out(tmp_path / "c", models, ("challenger",))
    (root / "opt/ml/processing/input/champion").mkdir()
    assert run(root, monkeypatch, "--champion", "/opt/ml/processing/input/champion") == 0
    report = json.loads((root / "opt/ml/processing/output/report/metrics.json").read_text())
    assert list(report["models"]) == ["challenger"]


def test_held_out_data_with_one_class_fails_with_the_reason(models, tmp_path, monkeypatch, capsys) -> None:
    root = tmp_path / "c"
    (root / "opt/ml/processing/input/challenger").mkdir(parents=True)
    (root / "opt/ml/processing/input/challenger/model.tar.gz").write_bytes(models["challenger"])
    frame = holdout_frame()
    write_channel(root / "opt/ml/processing/input/holdout", {"2026-11-26": frame[frame["churned"] == 0]})
    assert run(root, monkeypatch) == 2
    message = (root / "opt/ml/output/message").read_text()
    assert "classes [0]" in message and message in capsys.readouterr().err
    assert not (root / "opt/ml/processing/output/report/metrics.json").exists()


def test_a_missing_challenger_model_fails_with_the_reason(tmp_path, monkeypatch) -> None:
    root = tmp_path / "c"
    write_channel(root / "opt/ml/processing/input/holdout", {"2026-11-26": holdout_frame()})
    assert run(root, monkeypatch) == 2
    assert "has no files: give the model's model.tar.gz" in (root / "opt/ml/output/message").read_text()
