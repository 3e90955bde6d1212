"""The local Spark a Glue run starts: its submit arguments and environment."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from sagelake.local.glue_runner import spark_env, spark_submit_args


def test_the_driver_gets_the_configured_jvm_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGELAKE_SPARK_JAVA_OPTIONS", "-XX:+UseParallelGC -XX:TieredStopAtLevel=1")
    args = shlex.split(spark_submit_args(Path("/work/spark-local")))
    assert args[args.index("--driver-java-options") + 1] == "-XX:+UseParallelGC -XX:TieredStopAtLevel=1"
    assert "spark.local.dir=/work/spark-local" in args and args[-1] == "pyspark-shell"


def test_a_jvms_environment_carries_its_options_but_not_the_setting_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGELAKE_SPARK_JAVA_OPTIONS", "-XX:+UseSerialGC")
    env = spark_env(base={"PATH": "/usr/bin", "SAGELAKE_SPARK_JAVA_OPTIONS": "-XX:+UseSerialGC"})
    assert "--driver-java-options -XX:+UseSerialGC" in env["PYSPARK_SUBMIT_ARGS"]
    assert "SAGELAKE_SPARK_JAVA_OPTIONS" not in env
