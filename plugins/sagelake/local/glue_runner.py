"""The local Glue engine: run a Glue job script on local Spark, reading from and writing to S3.

Arguments are Glue job arguments exactly as ``GlueJobOperator(script_args=...)`` passes them
(``{"--input_events": "s3://...", "--dt": "2024-01-01"}``). Convention:

* ``--input_*`` whose value is an ``s3://`` URI: every object under that prefix (a trailing ``/`` is
  implied) is downloaded into a local directory whose path replaces the URI; no object there →
  :class:`MissingInputError` before anything runs.
* ``--output_*`` whose value is an ``s3://`` URI: the script gets an empty local directory instead. Only
  after the script exits 0 (and every output directory holds files) is each output's S3 prefix replaced:
  its existing objects are deleted, then every produced file except Spark's ``.crc`` checksums is uploaded
  under the same relative path. On failure nothing is uploaded or deleted (:class:`GlueJobFailedError`);
  a script that exits with code 65 (``REJECTED_EXIT_CODE``) rejected its input, and its last printed line is
  the reason (:class:`InputRejectedError`).
* Every other argument passes through unchanged; ``--JOB_NAME`` (set by Glue itself on AWS) defaults to
  the script's file stem.
* The script runs with ``work_dir`` as its working directory (Spark's scratch space goes there too).

The script runs as ``python script.py --NAME value ...`` with ``JAVA_HOME`` from
:func:`sagelake.local.java.find_java_home` and ``PYSPARK_SUBMIT_ARGS`` for a small ``local[2]`` Spark; of
the caller's environment it sees only what :func:`sagelake.local.subprocess_env.job_environment` allows
(no Airflow connection or secret, no ``SAGELAKE_*`` setting).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelake.config.settings import spark_java_options
from sagelake.lake.layout import split_s3_uri
from sagelake.local import spark_gateway
from sagelake.local.java import find_java_home
from sagelake.local.subprocess_env import job_environment

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 60
# Room to cache a 1e7-event day (≈1 GiB) without spilling and recomputing it; the JVM takes it only when
# the data needs it (peak ≈3.8 GiB for the whole process tree at 1e7 events, ≈1 GiB at 1e5).
DRIVER_MEMORY = "4g"
SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    # Tiny local data: adaptive re-planning only costs start-up time.
    "spark.sql.adaptive.enabled": "false",
    # Cached DataFrames uncompressed: dictionary-encoding the cached events was ≈15% of the job's CPU, and
    # each cache is read a few times within one run.
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
}


class GlueRunError(RuntimeError):
    """A local Glue run could not complete."""


class MissingInputError(GlueRunError):
    """An ``--input_*`` S3 prefix holds no object."""


class GlueJobFailedError(GlueRunError):
    """The job script exited non-zero (or produced nothing for an output); nothing was written to S3."""

    def __init__(self, message: str, returncode: int | None, log_tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.log_tail = log_tail


class InputRejectedError(GlueJobFailedError):
    """The script rejected its input (exit code :data:`REJECTED_EXIT_CODE`); the message is its reason.

    The same input would be rejected again: callers should fail without retrying.
    """


REJECTED_EXIT_CODE = 65  # include/glue/churn_features.py's exit code for a rejected input or argument


@dataclass
class GlueRunResult:
    """A local Glue run: URIs uploaded per output and staged per input (keys: argument names sans ``--``)."""

    outputs: dict[str, list[str]]
    inputs: dict[str, list[str]] = field(default_factory=dict)
    duration_s: float = 0.0
    log_tail: str = ""


def spark_submit_args(local_dir: Path | None = None) -> str:
    """``PYSPARK_SUBMIT_ARGS`` for a small local Spark (ends with ``pyspark-shell``)."""
    conf = dict(SPARK_CONF)
    if local_dir is not None:
        conf["spark.local.dir"] = str(local_dir)
    args = [
        "--master",
        "local[2]",
        "--driver-memory",
        DRIVER_MEMORY,
        "--driver-java-options",
        spark_java_options(),
    ]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return shlex.join([*args, "pyspark-shell"])


def spark_env(local_dir: Path | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a PySpark subprocess: Java, this interpreter for workers, local Spark settings, and
    of ``base`` (default: this process's environment) only what :func:`job_environment` allows."""
    parent = os.environ if base is None else base
    contract = {
        "JAVA_HOME": str(find_java_home()),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_SUBMIT_ARGS": spark_submit_args(local_dir),
        "SPARK_LOCAL_IP": parent.get("SPARK_LOCAL_IP") or "127.0.0.1",
    }
    return job_environment(contract, base=parent)


def _prefix(uri: str, arg: str) -> tuple[str, str]:
    bucket, key = split_s3_uri(uri)
    if not key.strip("/"):
        raise ValueError(f"{arg}={uri} names a whole bucket: point it at a prefix such as s3://bucket/path/")
    return bucket, key if key.endswith("/") else key + "/"


def _list_keys(s3_client: Any, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
    return sorted(keys)


def _is_s3(value: str) -> bool:
    return isinstance(value, str) and value.startswith("s3://")


def _fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (whatever an earlier run left there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _tail(lines: collections.deque[str]) -> str:
    return "\n".join(lines)


def _kill(proc: subprocess.Popen) -> None:
    """Kill the script and its JVM (they share a process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout_s: float | None) -> tuple[int, str]:
    """Run ``cmd``, streaming its merged stdout/stderr to the log; return (exit code, last lines)."""
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    timer = None
    if timeout_s is not None:
        timer = threading.Timer(timeout_s, _kill, args=(proc,))
        timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log.info("glue| %s", line)
        returncode = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            _kill(proc)
            proc.wait()
    return returncode, _tail(tail)


def _replace_prefix(s3_client: Any, bucket: str, prefix: str, local_dir: Path) -> list[str]:
    """Delete every object under ``prefix``, then upload ``local_dir``'s files (not ``.crc``) there."""
    stale = _list_keys(s3_client, bucket, prefix)
    for start in range(0, len(stale), 1000):
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3_client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    uploaded = []
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file() and not p.name.endswith(".crc")):
        key = prefix + path.relative_to(local_dir).as_posix()
        s3_client.upload_file(str(path), bucket, key)
        uploaded.append(f"s3://{bucket}/{key}")
    return uploaded


@dataclass(frozen=True)
class _GluePlan:
    """A validated local Glue run: what to stage, what to publish, nothing touched yet."""

    script: Path
    work_dir: Path  # absolute
    spark_tmp: Path  # Spark's scratch space (spark.local.dir), inside work_dir
    env: dict[str, str]
    argv: dict[str, str]  # the script's arguments as given, plus --JOB_NAME
    inputs: dict[str, tuple[str, str, list[str]]]  # --input_* name -> (bucket, prefix, keys)
    outputs: dict[str, tuple[str, str]]  # --output_* name -> (bucket, prefix)
    gateway_dir: Path | None = None  # a warm Spark JVM to use if free (sagelake.local.spark_gateway)


def _plan_run(
    script: Path, arguments: dict[str, str], s3_client: Any, work_dir: Path, gateway_dir: Path | None = None
) -> _GluePlan:
    """Validate the call and list every input; fail (e.g. :class:`MissingInputError`) before any write."""
    script = Path(script)
    if not script.is_file():
        raise FileNotFoundError(f"Glue script {script} not found: pass the path of a file in include/glue/")
    for name in arguments:
        if not name.startswith("--"):
            raise ValueError(f"Glue job argument {name!r} must be spelled '--{name}' (as in script_args)")
    work_dir = Path(work_dir).resolve()
    spark_tmp = work_dir / "spark-local"
    env = spark_env(spark_tmp)  # fails fast (JavaNotFoundError) before anything is staged
    argv: dict[str, str] = {"--JOB_NAME": script.stem, **{k: str(v) for k, v in arguments.items()}}
    inputs: dict[str, tuple[str, str, list[str]]] = {}
    outputs: dict[str, tuple[str, str]] = {}
    for name, value in argv.items():
        if not _is_s3(value):
            continue
        if name.startswith("--input_"):
            bucket, prefix = _prefix(value, name)
            keys = _list_keys(s3_client, bucket, prefix)
            if not keys:
                raise MissingInputError(
                    f"{name}: no object under s3://{bucket}/{prefix}: land the input files there first"
                )
            inputs[name] = (bucket, prefix, keys)
        elif name.startswith("--output_"):
            outputs[name] = _prefix(value, name)
    return _GluePlan(script, work_dir, spark_tmp, env, argv, inputs, outputs, gateway_dir)


def _stage_inputs(plan: _GluePlan, s3_client: Any) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Download each input into a fresh local dir; return (argument -> local dir, input -> staged URIs)."""
    local_dirs: dict[str, str] = {}
    staged: dict[str, list[str]] = {}
    for name, (bucket, prefix, keys) in plan.inputs.items():
        local = _fresh_dir(plan.work_dir / "inputs" / name[2:])
        for key in keys:
            target = local / key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3_client.download_file(bucket, key, str(target))
        local_dirs[name] = str(local)
        staged[name[2:]] = [f"s3://{bucket}/{key}" for key in keys]
    return local_dirs, staged


def _prepare_outputs(plan: _GluePlan) -> dict[str, Path]:
    """An empty local directory per output (argument -> directory)."""
    return {name: _fresh_dir(plan.work_dir / "outputs" / name[2:]) for name in plan.outputs}


def _run_script(plan: _GluePlan, argv: dict[str, str], timeout_s: float | None) -> tuple[int, str]:
    """Run the script with the local ``argv`` in the work dir (on the warm Spark JVM if it is free);
    return (exit code, last log lines)."""
    args = [str(plan.script.resolve())]
    for name, value in argv.items():
        args += [name, value]
    plan.spark_tmp.mkdir(parents=True, exist_ok=True)
    log.info("Running Glue script %s locally: %s", plan.script, shlex.join(args))
    with spark_gateway.lease(plan.gateway_dir) as gateway:
        if gateway is None:
            return _run([sys.executable, *args], plan.env, plan.work_dir, timeout_s)
        log.info("On the warm Spark JVM of %s (pid %d)", plan.gateway_dir, gateway.pid)
        cmd = [sys.executable, spark_gateway.__file__, "run", *args]
        return _run(cmd, {**plan.env, **gateway.env()}, plan.work_dir, timeout_s)


def _check_outputs(plan: _GluePlan, returncode: int, tail: str, output_dirs: dict[str, Path]) -> None:
    """Raise :class:`GlueJobFailedError` unless the script exited 0 and wrote files into every output."""
    script = plan.script.name
    if returncode == REJECTED_EXIT_CODE:
        reason = tail.strip().splitlines()[-1] if tail.strip() else "no reason printed"
        raise InputRejectedError(
            f"Glue script {script} rejected its input; nothing was written to S3: {reason}", returncode, tail
        )
    if returncode != 0:
        raise GlueJobFailedError(
            f"Glue script {script} failed with exit code {returncode}; nothing was written to S3. "
            f"Last log lines:\n{tail}",
            returncode,
            tail,
        )
    empty = [name for name, local in output_dirs.items() if not any(p.is_file() for p in local.rglob("*"))]
    if empty:
        raise GlueJobFailedError(
            f"Glue script {script} wrote nothing for {', '.join(empty)}; nothing was written to S3: "
            "make the script write every --output_* directory",
            returncode,
            tail,
        )


def _publish_outputs(plan: _GluePlan, s3_client: Any, output_dirs: dict[str, Path]) -> dict[str, list[str]]:
    """Replace each output's S3 prefix with its local directory; return the uploaded URIs per output."""
    return {
        name[2:]: _replace_prefix(s3_client, bucket, prefix, output_dirs[name])
        for name, (bucket, prefix) in plan.outputs.items()
    }


def run_glue_script(
    script: Path,
    arguments: dict[str, str],
    s3_client: Any,
    work_dir: Path,
    *,
    timeout_s: float | None = None,
    spark_gateway_dir: Path | None = None,
) -> GlueRunResult:
    """Run Glue job ``script`` on local Spark; stage S3 inputs, replace S3 outputs (see the module doc).

    ``spark_gateway_dir``: a shared warm Spark JVM (:mod:`sagelake.local.spark_gateway`) the run uses when
    one is running there and free; otherwise the script starts its own.
    """
    started = time.monotonic()
    plan = _plan_run(script, arguments, s3_client, work_dir, spark_gateway_dir)
    input_dirs, staged = _stage_inputs(plan, s3_client)
    output_dirs = _prepare_outputs(plan)
    local_argv = {**plan.argv, **input_dirs, **{name: str(path) for name, path in output_dirs.items()}}
    returncode, tail = _run_script(plan, local_argv, timeout_s)
    _check_outputs(plan, returncode, tail, output_dirs)
    uploaded = _publish_outputs(plan, s3_client, output_dirs)
    duration = time.monotonic() - started
    log.info("Glue script %s finished in %.1fs", plan.script.name, duration)
    return GlueRunResult(outputs=uploaded, inputs=staged, duration_s=duration, log_tail=tail)
