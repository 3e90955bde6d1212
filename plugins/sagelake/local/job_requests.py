"""What the local SageMaker job runners (training, processing) share: reading a request, running the
container's command (on its framework's pinned versions, :mod:`sagelake.local.framework_env`), reporting
a log."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from sagelake.local.framework_env import FrameworkEnv, FrameworkEnvError, container_command

LOG_TAIL_LINES = 50


def required(request: dict, *path: str, operation: str, error: type[Exception]) -> Any:
    """``request[path[0]][path[1]]…``, or ``error`` naming the missing field of the ``operation`` request."""
    node: Any = request
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise error(f"{operation} request lacks {'.'.join(path)}: add it to the job config")
        node = node[key]
    return node


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a job's output."""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_container(
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float | None,
    job: str,
    kind: str,
    error: type[Exception],
    logger: logging.Logger,
    image_uri: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the container command of ``kind`` job ``job`` (``training``, ``processing``): ``error`` when it
    exceeds ``StoppingCondition.MaxRuntimeInSeconds`` (``timeout``), the tail of its output in ``logger``.

    With ``image_uri`` naming a framework container (:func:`sagelake.local.framework_env.framework_for`),
    a command starting with Python runs on that container's pinned versions; a failed run's stderr ends
    with a line naming them (an ImportError there is likely an API newer than the container's).
    """
    try:
        cmd, framework = container_command(cmd, image_uri)
    except FrameworkEnvError as exc:
        raise error(f"{kind} job {job}: {exc}") from None
    if framework is not None:
        logger.info("%s job %s: on the local environment of %s", kind, job, framework.describe())
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise error(
            f"{kind} job {job} exceeded StoppingCondition.MaxRuntimeInSeconds={timeout}: {tail(stderr, 5)}"
        ) from None
    for stream, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        for line in text.splitlines()[-LOG_TAIL_LINES:]:
            logger.info("[%s %s] %s", job, stream, line)
    if proc.returncode != 0 and framework is not None:
        proc.stderr = (proc.stderr or "") + versions_note(framework)
    return proc


def versions_note(framework: FrameworkEnv) -> str:
    """The line ending a failed job's stderr when it ran on a framework environment."""
    return (
        f"\nsagelake: this job ran locally on {framework.describe()}, as its container on AWS; a failure "
        "importing or calling scikit-learn, numpy or pandas may be an API newer than these versions "
        "(SAGELAKE_LOCAL_FRAMEWORK_ENVS=false runs it on the Airflow venv's versions)\n"
    )
