"""Start and stop the local stack's shared Spark JVM (:mod:`sagelake.local.spark_gateway`): the stack
starts one once Airflow is up, the test session one per test process; Glue runs keep it warm."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sagelake.local import spark_gateway
from sagelake.local.glue_runner import spark_env


class GatewayError(RuntimeError):
    """The warm Spark JVM did not start."""


def start(directory: Path, log: Path) -> int | None:
    """Start a gateway recorded in ``directory`` (logging to ``log``); its PID, or ``None`` when one is
    already running there (it is left alone)."""
    directory = Path(directory)
    if spark_gateway.read_gateway(directory) is not None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, spark_gateway.__file__, "serve", str(directory)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=spark_env(directory / "spark-local"),  # what a Glue run's JVM gets, nothing more
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def wait_until_recorded(directory: Path, pid: int, log: Path, timeout_s: float = 60) -> spark_gateway.Gateway:
    """The gateway once ``directory`` records it; :class:`GatewayError` if process ``pid`` ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        gateway = spark_gateway.read_gateway(directory)
        if gateway is not None:
            return gateway
        if not alive(pid):
            raise GatewayError(f"the Spark gateway exited during start-up: see {log}")
        time.sleep(0.2)
    raise GatewayError(
        f"the Spark gateway was not recorded in {directory} within {timeout_s:.0f}s: see {log}"
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):  # reap our own exited child
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def stop(pid: int, timeout_s: float = 20) -> None:
    """Stop the gateway ``pid`` and its JVM (its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
