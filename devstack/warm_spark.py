"""The local stack's warm Spark JVM (:mod:`sagelake.local.spark_gateway`): started with the stack, warmed
up by one run of the Glue script on a tiny generated day, so even the pipeline's first Glue run is warm."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack.datagen import generate_day
from sagelake.config.settings import GLUE_SCRIPT
from sagelake.lake.contracts import load_contracts, to_job_argument
from sagelake.local import spark_gateway
from sagelake.local.glue_runner import spark_env

GLUE_OUTPUTS = ("output_features", "output_processed_events", "output_quarantine", "output_metrics")
WARM_UP_DT = "2024-01-01"
WARM_UP_CUSTOMERS = 200


class GatewayError(RuntimeError):
    """The warm Spark JVM did not start."""


def warm_up_arguments(directory: Path) -> list[str]:
    """The Glue script and its arguments for a tiny day generated (afresh) under ``directory/warm-up``."""
    day = Path(directory) / "warm-up"
    shutil.rmtree(day, ignore_errors=True)
    files = generate_day(WARM_UP_DT, n_customers=WARM_UP_CUSTOMERS, seed=0)
    inputs = {
        "customers": ("customers.csv", files.customers_csv),
        "events": ("events.jsonl", files.events_jsonl),
    }
    args = [str(GLUE_SCRIPT), "--JOB_NAME", "warm_up", "--dt", WARM_UP_DT]
    args += ["--contracts", to_job_argument(load_contracts())]
    for source, (name, body) in inputs.items():
        folder = day / "in" / source
        folder.mkdir(parents=True)
        (folder / name).write_bytes(body)
        args += [f"--input_{source}", str(folder)]
    for output in GLUE_OUTPUTS:
        args += [f"--{output}", str(day / "out" / output)]
    return args


def start(directory: Path, log: Path, warm_up: bool = True) -> int | None:
    """Start a gateway recorded in ``directory`` (logging to ``log``); its PID, or ``None`` when one is
    already running there (it is left alone)."""
    directory = Path(directory)
    if spark_gateway.read_gateway(directory) is not None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, spark_gateway.__file__, "serve", str(directory)]
    if warm_up:
        argv += warm_up_arguments(directory)
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
