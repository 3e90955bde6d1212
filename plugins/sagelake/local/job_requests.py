"""What the local SageMaker job runners (training, processing) share: reading a request, reporting a log."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

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
) -> subprocess.CompletedProcess[str]:
    """Run the container command of ``kind`` job ``job`` (``training``, ``processing``): ``error`` when it
    exceeds ``StoppingCondition.MaxRuntimeInSeconds`` (``timeout``), the tail of its output in ``logger``."""
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
    return proc
