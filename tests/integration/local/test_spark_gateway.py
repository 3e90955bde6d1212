"""Local Glue runs on the shared warm Spark JVM: the same results as a JVM of their own, and a run killed
mid-way does not spoil the JVM for the next one."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devstack.datagen import generate_day
from sagelake.lake.contracts import load_contracts, to_job_argument
from sagelake.local.glue_runner import GlueJobFailedError, run_glue_script
from tests.support.constants import GLUE_SCRIPT

pytestmark = pytest.mark.spark

WARM = "On the warm Spark JVM"
DT = "2024-01-01"
OUTPUTS = ("output_features", "output_processed_events", "output_quarantine", "output_metrics")


def churn_run(tmp_path: Path, name: str, gateway: str | None, caplog: pytest.LogCaptureFixture) -> Path:
    """The Glue script on a tiny generated day (local folders, as the runner stages them); its outputs."""
    root = tmp_path / name
    files = generate_day(DT, n_customers=200, seed=0)
    arguments = {"--dt": DT, "--contracts": to_job_argument(load_contracts())}
    for source, file, body in (
        ("customers", "c.csv", files.customers_csv),
        ("events", "e.jsonl", files.events_jsonl),
    ):
        (root / "in" / source).mkdir(parents=True)
        (root / "in" / source / file).write_bytes(body)
        arguments[f"--input_{source}"] = str(root / "in" / source)
    arguments |= {f"--{output}": str(root / "out" / output) for output in OUTPUTS}
    caplog.clear()
    run_glue_script(GLUE_SCRIPT, arguments, None, root / "work", spark_gateway_dir=gateway)
    assert (WARM in caplog.text) == (gateway is not None)
    return root / "out"


def rows(out: Path, table: str, key: str) -> list[dict]:
    return sorted(pq.read_table(out / table).to_pylist(), key=lambda row: str(row[key]))


def test_a_run_on_the_warm_jvm_computes_what_a_run_on_its_own_jvm_does(spark_gateway_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sagelake.local.glue_runner")
    own = churn_run(tmp_path, "own", None, caplog)
    warm = churn_run(tmp_path, "warm", spark_gateway_dir, caplog)
    assert rows(warm, "output_features", "customer_id") == rows(own, "output_features", "customer_id")
    assert rows(warm, "output_processed_events", "event_id") == rows(
        own, "output_processed_events", "event_id"
    )
    assert rows(warm, "output_quarantine", "record") == rows(own, "output_quarantine", "record")
    metrics = [
        json.loads(p.read_text()) for out in (own, warm) for p in (out / "output_metrics").glob("*.json")
    ]
    assert len(metrics) == 2 and metrics[0] == metrics[1]


def test_a_run_killed_with_its_spark_context_open_does_not_spoil_the_jvm(spark_gateway_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sagelake.local.glue_runner")
    hangs = tmp_path / "hangs.py"
    hangs.write_text(
        textwrap.dedent(
            """
            import time
            from pyspark.sql import SparkSession
            SparkSession.builder.getOrCreate().range(10).count()
            print("context open", flush=True)
            time.sleep(120)
            """
        )
    )
    (tmp_path / "out").mkdir()
    with pytest.raises(GlueJobFailedError) as killed:
        run_glue_script(
            hangs,
            {"--output_x": str(tmp_path / "out")},
            None,
            tmp_path / "work",
            timeout_s=10,
            spark_gateway_dir=spark_gateway_dir,
        )
    assert "context open" in killed.value.log_tail  # killed after its context was up
    out = churn_run(tmp_path, "after", spark_gateway_dir, caplog)
    assert pq.read_table(out / "output_features").num_rows > 0
