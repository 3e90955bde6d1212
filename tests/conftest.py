"""Shared fixtures: a local control plane (moto server with sagelake's extensions) on a free port.

The tiers are folders: ``tests/unit`` (no servers), ``tests/integration`` (the control-plane fixture, local
engines), ``tests/e2e`` (DAG runs). Each test is marked with its tier, so ``-m unit`` works too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import boto3
import pytest

from tests.support.constants import REGION
from tests.support.network import free_port

# Airflow reads its configuration once, at first import: give the whole test session its own home,
# metadata database and settings before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="sagelake-test-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(__file__), "..", "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = os.path.join(os.path.dirname(__file__), "..", "plugins")
os.environ.setdefault("SAGELAKE_TARGET", "local")
# The local engines' state (the local warehouse's database files…) of this test session, never `.local/`.
os.environ["SAGELAKE_LOCAL_DIR"] = tempfile.mkdtemp(prefix="sagelake-test-state-")
# DAG runs in the tests track their trials in a SQLite MLflow store (the local stack serves one over HTTP).
os.environ["SAGELAKE_MLFLOW_TRACKING_URI"] = f"sqlite:///{os.environ['SAGELAKE_LOCAL_DIR']}/mlflow.db"


@pytest.fixture(scope="session")
def control_plane_url() -> Iterator[str]:
    """A moto server (with the sagelake extensions) for the whole session; yields its URL."""
    from sagelake.local import control_plane

    port = free_port()
    server = control_plane.start("127.0.0.1", port)
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def spark_gateway_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One shared Spark JVM for this test process (``devstack.warm_spark``), named to every local Glue run of
    the session through ``SAGELAKE_SPARK_GATEWAY_DIR`` (live stacks share it too); yields its directory."""
    from devstack import warm_spark

    directory = tmp_path_factory.mktemp("spark-gateway")
    log = directory / "gateway.log"
    pid = warm_spark.start(directory, log)
    assert pid is not None
    warm_spark.wait_until_recorded(directory, pid, log)
    os.environ["SAGELAKE_SPARK_GATEWAY_DIR"] = str(directory)
    yield str(directory)
    os.environ.pop("SAGELAKE_SPARK_GATEWAY_DIR", None)
    warm_spark.stop(pid)


@pytest.fixture()
def aws_env(control_plane_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 and the ``aws_default`` connection at the local control plane."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SAGELAKE_TARGET", "local")
    return control_plane_url


@pytest.fixture()
def s3(aws_env: str):
    """A boto3 S3 client on the local control plane."""
    return boto3.client("s3", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def bucket(s3) -> str:
    """A fresh, uniquely named bucket for one test."""
    import uuid

    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture()
def restore_mlflow_tracking_uri() -> Iterator[None]:
    """``sagelake.ml.tracking.client`` sets MLflow's process-wide tracking URI (and its variable): undo."""
    import mlflow

    before, env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    yield
    mlflow.set_tracking_uri(before)
    if env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = env


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with the tier its folder names."""
    root = config.rootpath / "tests"
    for item in items:
        tier = item.path.relative_to(root).parts[0]
        if tier in TIERS:
            item.add_marker(tier)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object):
    """``--dist loadfile``: a unit per test file, one per shared folder (``tests/support/xdist_units.py``)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.support.xdist_units import FileOrFolderScheduling

    return FileOrFolderScheduling(config, log)
