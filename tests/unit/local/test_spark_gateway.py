"""Leasing the warm Spark JVM (no JVM here: a record and a lock file are all a lease looks at)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sagelake.local import spark_gateway


def record(directory: Path, pid: int) -> None:
    (directory / spark_gateway.GATEWAY_FILE).write_text(
        json.dumps({"port": 4711, "secret": "s3cr3t", "pid": pid})
    )


def test_a_recorded_live_gateway_is_leased_with_what_pyspark_reads(tmp_path: Path) -> None:
    record(tmp_path, os.getpid())
    with spark_gateway.lease(tmp_path) as gateway:
        assert gateway is not None
        assert gateway.env() == {"PYSPARK_GATEWAY_PORT": "4711", "PYSPARK_GATEWAY_SECRET": "s3cr3t"}


@pytest.mark.parametrize("content", [None, "not json", '{"port": 1}'])
def test_no_record_or_a_broken_one_means_no_gateway(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / spark_gateway.GATEWAY_FILE).write_text(content)
    with spark_gateway.lease(tmp_path) as gateway:
        assert gateway is None
    with spark_gateway.lease(None) as gateway:
        assert gateway is None


def test_the_record_of_a_gateway_that_died_is_ignored(tmp_path: Path) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    record(tmp_path, ended.pid)
    with spark_gateway.lease(tmp_path) as gateway:
        assert gateway is None


def test_a_busy_gateway_is_waited_for_then_given_up(tmp_path: Path) -> None:
    record(tmp_path, os.getpid())
    with spark_gateway.lease(tmp_path) as first:
        assert first is not None
        started = time.monotonic()
        with spark_gateway.lease(tmp_path, wait_s=0.5) as second:
            assert second is None  # the run starts its own JVM instead
        assert time.monotonic() - started >= 0.5
    with spark_gateway.lease(tmp_path, wait_s=0) as again:
        assert again is not None  # released with the first lease


def test_the_host_refuses_a_bad_command_line() -> None:
    assert spark_gateway.main(["nonsense"]) == 2
