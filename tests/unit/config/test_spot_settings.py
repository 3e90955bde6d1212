"""``spot_training_settings``: managed spot training is a deployment setting read from the environment."""

from __future__ import annotations

import pytest

from sagelake.config.settings import spot_training_settings
from sagelake.ml.spot import SpotSettings, SpotSettingsError

VARIABLES = (
    "SAGELAKE_SPOT_TRAINING",
    "SAGELAKE_SPOT_MAX_WAIT_SECONDS",
    "SAGELAKE_SPOT_CHECKPOINT_BUCKET",
    "SAGELAKE_BUCKET",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_off_by_default_with_the_lake_bucket_for_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    assert spot_training_settings() == SpotSettings(False, None, "sagelake-lake")
    monkeypatch.setenv("SAGELAKE_BUCKET", "my-lake")
    assert spot_training_settings().checkpoint_bucket == "my-lake"


def test_turned_on_by_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGELAKE_SPOT_TRAINING", "true")
    monkeypatch.setenv("SAGELAKE_SPOT_MAX_WAIT_SECONDS", "5400")
    monkeypatch.setenv("SAGELAKE_SPOT_CHECKPOINT_BUCKET", "ckpt")
    assert spot_training_settings() == SpotSettings(True, 5400, "ckpt")


def test_a_bad_value_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGELAKE_SPOT_TRAINING", "sometimes")
    with pytest.raises(SpotSettingsError, match="SAGELAKE_SPOT_TRAINING"):
        spot_training_settings()
