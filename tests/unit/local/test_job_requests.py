"""What the local job runners share: a missing request field is named, a slow container is stopped."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from sagelake.local.job_requests import required, run_container, tail


def test_a_missing_field_is_named_with_its_operation() -> None:
    request = {"AppSpecification": {"ImageUri": "img"}}
    assert required(request, "AppSpecification", "ImageUri", operation="CreateX", error=KeyError) == "img"
    with pytest.raises(ValueError, match="CreateX request lacks AppSpecification.ContainerEntrypoint"):
        required(request, "AppSpecification", "ContainerEntrypoint", operation="CreateX", error=ValueError)


def test_the_container_runs_logs_its_output_and_stops_at_the_time_limit(tmp_path: Path, caplog) -> None:
    logger = logging.getLogger("test-jobs")
    with caplog.at_level(logging.INFO, logger="test-jobs"):
        proc = run_container(
            [sys.executable, "-c", "print('hello')"],
            cwd=tmp_path,
            env={},
            timeout=30,
            job="j1",
            kind="processing",
            error=RuntimeError,
            logger=logger,
        )
    assert proc.returncode == 0 and "[j1 stdout] hello" in caplog.text
    slow = [
        sys.executable,
        "-c",
        "import sys,time; print('late', file=sys.stderr, flush=True); time.sleep(30)",
    ]
    with pytest.raises(
        RuntimeError, match=r"^processing job j2 exceeded StoppingCondition.MaxRuntimeInSeconds=1"
    ):
        run_container(
            slow,
            cwd=tmp_path,
            env={},
            timeout=1,
            job="j2",
            kind="processing",
            error=RuntimeError,
            logger=logger,
        )
    assert tail("a\nb\nc\n", 2) == "b\nc"
