"""Operator unit tests: the ``aws`` target without AWS, and template rendering as the provider tests it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from tests.support.constants import REGION

# Nothing listens on port 9: a call a test forgot to mock fails at once instead of reaching anything.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture()
def aws_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """``SAGELAKE_TARGET=aws`` with a placeholder ``aws_default`` connection (no network, no retries)."""
    monkeypatch.setenv("SAGELAKE_TARGET", "aws")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {
                    "region_name": REGION,
                    "endpoint_url": UNREACHABLE,
                    "config_kwargs": {"retries": {"max_attempts": 1}},
                },
            }
        ),
    )


@pytest.fixture()
def context() -> dict[str, Any]:
    """The slice of a task context the operators read: the run id and a task instance to push XCom to."""
    ti = mock.MagicMock(dag_id="dag", task_id="task", run_id="manual__1", map_index=-1, try_number=1)
    return {"ti": ti, "task_instance": ti, "run_id": "manual__1"}


def validate_template_fields(operator: Any) -> None:
    """Every declared template field is an attribute of the operator (the provider's own test)."""
    missing = [field for field in operator.template_fields if not hasattr(operator, field)]
    assert not missing, f"{type(operator).__name__} declares template fields it lacks: {missing}"


@pytest.fixture()
def render() -> Callable[..., Any]:
    """``render(op, **context)``: check the template fields exist, render them; returns ``op``."""

    def _render(operator: Any, **context: Any) -> Any:
        validate_template_fields(operator)
        operator.render_template_fields(context)
        return operator

    return _render
