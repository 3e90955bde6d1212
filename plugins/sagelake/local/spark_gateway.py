"""A warm Spark JVM that local Glue runs share, instead of starting one each (≈10 s saved per run).

Starting Spark costs a local Glue run more than its data does at a day's size: ≈16 s cold against ≈5 s in a
JVM that has run the script before (its classes loaded, its query plans' code already generated and
compiled). The local stack keeps one such JVM, a *gateway*:

* ``python -m sagelake.local.spark_gateway serve DIR`` (started by ``make up``, with the environment of
  :func:`sagelake.local.glue_runner.spark_env`) starts PySpark's JVM gateway, writes its port and secret to
  ``DIR/gateway.json`` and holds it until stopped; the JVM ends with it. Its first run is still slow-ish
  (≈15 s: nothing is compiled yet); every later one is warm. (Warming it up with a tiny run at start was
  tried: on 2 cores it slowed Airflow's start, or made the first real run wait for it.)
* :func:`lease` gives one run at a time the gateway (a file lock, ``DIR/lease.lock``); a run that cannot
  have it within ``wait_s`` — or finds no live gateway — starts its own JVM as before. Same script, same
  Spark, same results: only the JVM's start-up is shared.
* The leased run is ``python spark_gateway.py run SCRIPT ARGS…`` (:func:`host`): it connects to the gateway,
  stops a Spark context a killed earlier run left behind, runs the script as ``__main__`` with its own
  arguments and stops its Spark context whatever happens, so the next run starts clean.

Spark's own log lines of a leased run go to the gateway's log (the script's prints stay in the task's).
This module imports only the standard library at the top: :func:`host` runs as a plain script.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GATEWAY_FILE = "gateway.json"
LEASE_FILE = "lease.lock"
# A warm run is ≈10 s faster than a cold one: waiting this long for the gateway still wins on average.
LEASE_WAIT_S = 10.0


@dataclass(frozen=True)
class Gateway:
    """A live gateway: where to connect, and the process that holds its JVM."""

    port: int
    secret: str
    pid: int

    def env(self) -> dict[str, str]:
        """What PySpark reads to use this JVM instead of starting one."""
        return {"PYSPARK_GATEWAY_PORT": str(self.port), "PYSPARK_GATEWAY_SECRET": self.secret}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_gateway(directory: Path) -> Gateway | None:
    """The gateway recorded in ``directory`` if its process is alive, else ``None``."""
    try:
        info = json.loads((Path(directory) / GATEWAY_FILE).read_text())
        gateway = Gateway(port=int(info["port"]), secret=str(info["secret"]), pid=int(info["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return gateway if _alive(gateway.pid) else None


@contextlib.contextmanager
def lease(directory: Path | None, wait_s: float = LEASE_WAIT_S) -> Iterator[Gateway | None]:
    """The gateway of ``directory`` for one run (``None``: none is running, or it stayed busy ``wait_s``)."""
    gateway = read_gateway(directory) if directory is not None else None
    if gateway is None:
        yield None
        return
    with open(Path(directory) / LEASE_FILE, "a+") as lock:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield None
                    return
                time.sleep(0.2)
        try:
            yield gateway
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def serve(directory: Path) -> None:
    """Start the JVM (``PYSPARK_SUBMIT_ARGS`` from the environment), record it and hold it until SIGTERM."""
    from pyspark.java_gateway import launch_gateway

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    gateway = launch_gateway()
    params = gateway.gateway_parameters
    record = directory / GATEWAY_FILE
    partial = record.with_suffix(".tmp")
    partial.write_text(json.dumps({"port": params.port, "secret": params.auth_token, "pid": os.getpid()}))
    partial.chmod(0o600)  # the secret lets anyone drive the JVM
    partial.replace(record)
    print(f"Spark gateway on 127.0.0.1:{params.port} (pid {os.getpid()}), recorded in {record}", flush=True)

    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            signal.pause()
    finally:
        record.unlink(missing_ok=True)  # the JVM exits when this process does (its stdin closes)


def host(script: str, argv: list[str]) -> None:
    """Run ``script`` as ``__main__`` with ``argv`` on the gateway named by the environment; stop its Spark
    context after it, whatever happened."""
    import runpy

    from pyspark import SparkContext

    SparkContext._ensure_initialized()  # connects to PYSPARK_GATEWAY_PORT
    companion = getattr(getattr(SparkContext._jvm.org.apache.spark, "SparkContext$"), "MODULE$")
    left = companion.getActive()  # Scala's private[spark] SparkContext.getActive: no static forwarder
    if left.isDefined():  # a run killed mid-way (timeout, kill -9) could not stop its context
        left.get().stop()
    sys.argv = [script, *argv]
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        if SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "serve":
        serve(Path(argv[1]))
        return 0
    if len(argv) >= 2 and argv[0] == "run":
        sys.path[0] = str(Path(argv[1]).resolve().parent)  # as ``python SCRIPT`` has it, not this folder
        host(argv[1], argv[2:])
        return 0
    print("usage: spark_gateway.py serve DIR | run SCRIPT [ARG...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
