"""End-to-end tests: DAG runs against a local control plane; ``live/``: against a real local stack."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _shared_spark(spark_gateway_dir: str) -> str:
    """Every Glue run of the end-to-end tests, in-process or in a live stack, on one warm Spark JVM."""
    return spark_gateway_dir
