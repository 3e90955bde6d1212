"""Which framework environment an image runs on: the URI → pins table, unknown images, the switch, and
which commands get the environment's Python (no venv is built here)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from sagelake.config.settings import local_framework_envs
from sagelake.local import framework_env
from sagelake.local.endpoint_server import serving_interpreter
from sagelake.local.framework_env import (
    FRAMEWORK_ENVS,
    FrameworkEnvError,
    container_command,
    framework_for,
    framework_python,
    interpreter_for,
    parse_image,
)
from sagelake.local.job_requests import run_container
from sagelake.ml.aws_requests import SKLEARN_FRAMEWORK_VERSION
from sagelake.ml.images import sklearn_image_uri, xgboost_image_uri
from tests.support.constants import SKLEARN_IMAGE, SKLEARN_IMAGE_URI


@pytest.fixture()
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every framework environment looking built (a stamp of its current pins) under ``tmp_path``."""
    monkeypatch.setenv("SAGELAKE_FRAMEWORK_ENVS_DIR", str(tmp_path))
    monkeypatch.delenv("SAGELAKE_LOCAL_FRAMEWORK_ENVS", raising=False)
    for env in FRAMEWORK_ENVS:
        (tmp_path / env.name / "bin").mkdir(parents=True)
        (tmp_path / env.name / "bin" / "python").touch()
        (tmp_path / env.name / framework_env.STAMP).write_text(json.dumps({"digest": env.digest}))
    return tmp_path


def test_the_project_images_map_to_their_containers_pins() -> None:
    for uri in (sklearn_image_uri("eu-west-1", "ml.m5.large"), SKLEARN_IMAGE_URI):
        env = framework_for(uri)
        assert env is not None and env.version == SKLEARN_FRAMEWORK_VERSION
        # The 1.4-2 container ships scikit-learn 1.4.x: the pin follows the image's version.
        (sklearn,) = [r for r in env.requirements if r.startswith("scikit-learn==")]
        assert sklearn.split("==")[1].startswith(SKLEARN_FRAMEWORK_VERSION.split("-")[0] + ".")


def test_every_requirement_is_an_exact_pin_named_once() -> None:
    for env in FRAMEWORK_ENVS:
        names = [r.split("==")[0] for r in env.requirements]
        assert all("==" in r and r.split("==")[1] for r in env.requirements)
        assert len(names) == len(set(names))
        assert {"scikit-learn", "numpy", "pandas", "pyarrow", "joblib", "matplotlib"} <= set(names)


def test_image_uris_are_parsed_by_repository_and_tag() -> None:
    assert parse_image(f"{SKLEARN_IMAGE}:1.4-2-cpu-py3") == ("sagemaker-scikit-learn", "1.4-2-cpu-py3")
    assert parse_image(f"{SKLEARN_IMAGE}@sha256:abc") == ("sagemaker-scikit-learn", None)
    mirrored = "localhost:5000/team/sagemaker-scikit-learn:1.4-2"
    assert parse_image(mirrored) == ("sagemaker-scikit-learn", "1.4-2")


def test_images_without_an_environment_run_on_the_airflow_venv() -> None:
    custom = "1234.dkr.ecr.eu-west-1.amazonaws.com/mine:1"
    for uri in (None, "", "img", xgboost_image_uri("us-east-1"), custom):
        assert framework_for(uri) is None


def test_an_unknown_version_of_a_known_framework_is_refused_clearly() -> None:
    for uri in (f"{SKLEARN_IMAGE}:1.2-1-cpu-py3", f"{SKLEARN_IMAGE}:1.4-20", f"{SKLEARN_IMAGE}@sha256:abc"):
        with pytest.raises(FrameworkEnvError, match="1.4-2.*SAGELAKE_LOCAL_FRAMEWORK_ENVS=false"):
            framework_for(uri)


def test_changed_pins_make_the_environment_stale(built: Path) -> None:
    env = FRAMEWORK_ENVS[0]
    assert framework_env.is_built(env)
    changed = framework_env.FrameworkEnv(env.repository, env.version, (*env.requirements, "six==1.17.0"))
    assert changed.digest != env.digest and not framework_env.is_built(changed)


def test_python_commands_get_the_framework_python(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(framework_env, "_build", lambda *_: pytest.fail("a built env was rebuilt"))
    python = str(built / FRAMEWORK_ENVS[0].name / "bin" / "python")
    for first in (sys.executable, "python3", "/usr/bin/python3"):
        cmd, env = container_command([first, "train.py", "--x", "1"], SKLEARN_IMAGE_URI)
        assert cmd == [python, "train.py", "--x", "1"] and env is FRAMEWORK_ENVS[0]
    assert container_command(["bash", "run.sh"], SKLEARN_IMAGE_URI) == (["bash", "run.sh"], None)
    assert container_command([sys.executable, "t.py"], "img") == ([sys.executable, "t.py"], None)


def test_the_switch_falls_back_to_the_airflow_venv(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_framework_envs() and interpreter_for(SKLEARN_IMAGE_URI) is not None
    assert serving_interpreter() is framework_python and serving_interpreter(False) is None
    monkeypatch.setenv("SAGELAKE_LOCAL_FRAMEWORK_ENVS", "false")
    assert interpreter_for(SKLEARN_IMAGE_URI) is None and serving_interpreter() is None
    assert serving_interpreter(True) is framework_python  # an explicit choice wins over the setting
    assert interpreter_for(f"{SKLEARN_IMAGE}:1.2-1-cpu-py3") is None  # off: not even checked
    assert container_command([sys.executable, "t.py"], SKLEARN_IMAGE_URI) == ([sys.executable, "t.py"], None)
    monkeypatch.setenv("SAGELAKE_LOCAL_FRAMEWORK_ENVS", "maybe")
    with pytest.raises(ValueError, match="SAGELAKE_LOCAL_FRAMEWORK_ENVS='maybe'"):
        local_framework_envs()


def test_a_job_on_an_unknown_framework_version_fails_before_running(built: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    refused = "training job j1: no local environment for sagemaker-scikit-learn:1.2-1"
    with pytest.raises(RuntimeError, match=refused):
        run_container(
            [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
            cwd=tmp_path,
            env={},
            timeout=30,
            job="j1",
            kind="training",
            error=RuntimeError,
            logger=logging.getLogger("test-jobs"),
            image_uri=f"{SKLEARN_IMAGE}:1.2-1-cpu-py3",
        )
    assert not marker.exists()


def test_without_the_containers_python_the_env_is_built_on_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYENV_ROOT", "/nonexistent")
    env = framework_env.FrameworkEnv(
        "sagemaker-scikit-learn", "1.4-2", ("scikit-learn==1.4.2",), python="3.99"
    )
    assert framework_env.base_python(env) == (sys.executable, sys.version.split()[0])
