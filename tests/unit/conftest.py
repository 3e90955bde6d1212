"""The unit tier runs with no servers: asking for the control plane is a mistake, not a slow test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def control_plane_url() -> str:
    pytest.fail(
        "unit tests run without servers: move a test that needs the control plane to tests/integration"
    )
