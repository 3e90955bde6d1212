"""Deployment settings: what a run's params can no longer change, and clear errors for bad values."""

from __future__ import annotations

import pytest

from sagelake.config.params import pipeline_params
from sagelake.config.settings import (
    SPARK_JAVA_OPTIONS,
    default_params,
    deployment_settings,
    model_settings,
    spark_java_options,
)

DEPLOYMENT_KEYS = {"glue_role", "sagemaker_role", "endpoint_name", "model_package_group"}


def test_roles_endpoint_and_registry_are_not_run_params() -> None:
    params = pipeline_params("today's", *default_params())
    assert not DEPLOYMENT_KEYS & set(params)
    assert set(deployment_settings()) == DEPLOYMENT_KEYS


def test_deployment_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGELAKE_ENDPOINT", "churn-prod")
    monkeypatch.setenv("SAGELAKE_SAGEMAKER_ROLE", "arn:aws:iam::111122223333:role/ml")
    settings = deployment_settings()
    assert (settings["endpoint_name"], settings["sagemaker_role"]) == (
        "churn-prod",
        "arn:aws:iam::111122223333:role/ml",
    )


def test_model_settings_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGELAKE_TRAINING_WINDOW_DAYS", "14")
    monkeypatch.setenv("SAGELAKE_HOLDOUT_SHARE", "1")
    monkeypatch.setenv("SAGELAKE_TUNING_MAX_JOBS", "6")
    monkeypatch.setenv("SAGELAKE_TUNING_MAX_PARALLEL", "3")
    settings = model_settings()
    assert (settings["window_days"], settings["holdout_share"]) == (14, 1.0)
    assert (settings["tuning_max_jobs"], settings["tuning_max_parallel"]) == (6, 3)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SAGELAKE_HOLDOUT_SHARE", "0", "SAGELAKE_HOLDOUT_SHARE='0' is not a number in"),
        ("SAGELAKE_HOLDOUT_SHARE", "half", "SAGELAKE_HOLDOUT_SHARE='half'"),
        ("SAGELAKE_VALIDATION_SHARE", "1", "SAGELAKE_VALIDATION_SHARE='1'"),
        ("SAGELAKE_TUNING_STRATEGY", "Grid", "is not Bayesian or Random"),
        ("SAGELAKE_TUNING_MAX_PARALLEL", "9", "exceeds SAGELAKE_TUNING_MAX_JOBS"),
        ("SAGELAKE_APPROVAL_TIMEOUT_MINUTES", "0", "SAGELAKE_APPROVAL_TIMEOUT_MINUTES='0'"),
    ],
)
def test_bad_model_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, name, value, message) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        model_settings()


def test_the_spark_jvm_options_are_a_setting_with_c1_only_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGELAKE_SPARK_JAVA_OPTIONS", raising=False)
    assert spark_java_options() == SPARK_JAVA_OPTIONS
    assert "-XX:TieredStopAtLevel=1" in SPARK_JAVA_OPTIONS.split()  # small days: C2 costs more than it saves
    monkeypatch.setenv("SAGELAKE_SPARK_JAVA_OPTIONS", " -XX:+UseParallelGC ")  # a large day: C2 back on
    assert spark_java_options() == "-XX:+UseParallelGC"
