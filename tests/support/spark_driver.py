"""Test drivers that run the Glue script on the session's warm Spark JVM, as local Glue runs do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sagelake.local.glue_runner import spark_env
from sagelake.local.spark_gateway import lease

# The first lines of a driver script: however it ends, on the shared JVM it leaves no Spark context behind
# (as sagelake.local.spark_gateway.host does for a leased Glue run); a JVM of its own ends with it anyway.
STOP_CONTEXT_AT_EXIT = """
import atexit, os

def _stop_spark_context():
    from pyspark import SparkContext
    if "PYSPARK_GATEWAY_PORT" in os.environ and SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()

atexit.register(_stop_spark_context)
"""


def run_driver(
    args: list, root: Path, gateway_dir: str, timeout_s: float = 600
) -> subprocess.CompletedProcess:
    """``python ARGS…`` in ``root``, Spark's scratch space under ``root/spark``, on the warm JVM of
    ``gateway_dir`` (a JVM of its own if that one stays busy: :func:`sagelake.local.spark_gateway.lease`)."""
    (root / "spark").mkdir(exist_ok=True)
    with lease(Path(gateway_dir)) as gateway:
        return subprocess.run(
            [sys.executable, *args],
            env={**spark_env(root / "spark"), **(gateway.env() if gateway else {})},
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
