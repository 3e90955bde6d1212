"""DAG params: JSON Schema validation in draft-07, what every DAG's settings params accept."""

from __future__ import annotations

import pytest
from airflow.sdk import Param
from airflow.sdk.exceptions import ParamValidationError
from jsonschema.validators import Draft7Validator, validator_for

from sagelake.config.params import param, pipeline_params, setting_params
from sagelake.config.settings import default_params


def test_a_param_is_validated_as_draft_07() -> None:
    assert validator_for(param("x", type="string").schema) is Draft7Validator
    assert validator_for(Param("x", type="string").schema) is not Draft7Validator  # what it saves


def test_a_param_still_rejects_what_its_schema_forbids() -> None:
    dt = pipeline_params(dt_fallback="today's")["dt"]
    assert dt.resolve("2026-11-29") == "2026-11-29"
    assert dt.resolve(None) is None
    with pytest.raises(ParamValidationError, match="does not match"):
        dt.resolve("29/11/2026")


def test_a_param_without_a_default_must_be_given() -> None:
    required = param(type="string")
    with pytest.raises(ParamValidationError, match="No value passed"):
        required.resolve()
    assert required.resolve("arn") == "arn"


def test_settings_params_default_to_the_settings_and_refuse_empty_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGELAKE_BUCKET", "team-lake")
    params = setting_params(*default_params())
    assert {name: p.resolve() for name, p in params.items()} == default_params()
    assert params["bucket"].resolve() == "team-lake"
    with pytest.raises(ParamValidationError):
        params["bucket"].resolve("")
    with pytest.raises(ParamValidationError, match="is not of type 'string'"):
        params["glue_database"].resolve(3)


def test_a_dag_gets_only_the_settings_it_names_and_a_misspelt_one_is_refused() -> None:
    params = pipeline_params("today's", "bucket", "glue_database")
    assert list(params) == ["dt", "bucket", "glue_database"]
    assert setting_params() == {}
    with pytest.raises(KeyError, match=r"no setting param \['glue_db'\]; the settings are \['athena_"):
        setting_params("bucket", "glue_db")
