"""The local stack launcher: occupied ports, PID bookkeeping, stopping by recorded PID."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from devstack import stack
from tests.support.constants import ACCOUNT_ID, ROOT


def test_occupied_port_is_a_clear_error(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = stack.Stack(local_dir=tmp_path)
        with pytest.raises(stack.StackError, match=f"port {port} is in use.*SAGELAKE_ENDPOINT_PORT"):
            stack.start_process(s, "endpoint", [sys.executable, "-c", "pass"], {}, port)
    assert not s.pid_file("endpoint").exists()


def test_down_stops_the_recorded_process_group_only(tmp_path) -> None:
    s = stack.Stack(local_dir=tmp_path)
    free = stack.socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    # A parent that starts a child in the same process group: both must go.
    sleeper = "import time; time.sleep(60)"
    code = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {sleeper!r}]); {sleeper}"
    pid = stack.start_process(s, "endpoint", [sys.executable, "-c", code], {}, port)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert stack.running_pid(s, "endpoint") == pid
        assert stack.down(s) == ["endpoint"]
        assert stack.running_pid(s, "endpoint") is None
        with pytest.raises(ProcessLookupError):
            import os

            os.killpg(pid, 0)
        assert bystander.poll() is None  # never by name: other python processes live on
    finally:
        bystander.kill()
    assert stack.down(s) == []


def test_stale_pid_file_is_ignored(tmp_path) -> None:
    s = stack.Stack(local_dir=tmp_path)
    s.pid_file("airflow").parent.mkdir(parents=True)
    s.pid_file("airflow").write_text("999999999")
    assert stack.running_pid(s, "airflow") is None
    assert not s.pid_file("airflow").exists()


def test_airflow_env_points_aws_default_at_the_local_services(tmp_path) -> None:
    s = stack.Stack(local_dir=tmp_path, ports=stack.Ports(control_plane=1111, endpoint=2222, airflow=3333))
    env = stack.airflow_env(s, "the-key", f"http://127.0.0.1:1111/{ACCOUNT_ID}/q")
    conn = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn["conn_type"] == "aws"
    assert conn["extra"]["endpoint_url"] == "http://127.0.0.1:1111"
    assert conn["extra"]["service_config"]["sagemaker-runtime"]["endpoint_url"] == "http://127.0.0.1:2222"
    assert env["AIRFLOW_HOME"].startswith(str(tmp_path))
    # its own metadata DB, never the caller's (a test session's runs must not leak into a stack's scheduler)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{s.airflow_home / 'airflow.db'}"
    assert env["AIRFLOW__API__PORT"] == "3333"
    assert env["SAGELAKE_TARGET"] == "local"
    assert json.loads(env["AIRFLOW_CONN_EVENTBRIDGE_WEBHOOK"])["password"] == "the-key"
    assert env["SAGELAKE_EVENTS_QUEUE_URL"] == f"http://127.0.0.1:1111/{ACCOUNT_ID}/q"


def test_webhook_key_is_generated_once_private_and_kept(tmp_path) -> None:
    s = stack.Stack(local_dir=tmp_path / "local")
    key = stack.webhook_key(s)
    assert len(key) >= 32
    assert s.webhook_key_file.stat().st_mode & 0o777 == 0o600
    assert stack.webhook_key(s) == key  # kept across starts
    assert stack.webhook_key(stack.Stack(local_dir=tmp_path / "other")) != key  # random per checkout


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1"])
def test_bad_port_setting_is_a_clear_error(monkeypatch, value) -> None:
    monkeypatch.setenv("SAGELAKE_AIRFLOW_PORT", value)
    with pytest.raises(stack.StackError, match="SAGELAKE_AIRFLOW_PORT=.*is not a TCP port"):
        stack.Ports()


@pytest.mark.parametrize(
    ("argv", "preloaded"), [(["airflow", "scheduler"], True), (["airflow", "triggerer"], False)]
)
def test_only_the_scheduler_preloads_what_tasks_import(tmp_path, monkeypatch, argv, preloaded) -> None:
    """Its LocalExecutor's task processes are forked from it; the other Airflow processes skip the cost."""
    monkeypatch.setattr(stack, "PRELOADED_MODULES", ("json.tool", "no_such_module_anywhere"))
    monkeypatch.setattr(stack, "PRELOADED_AWS_SERVICES", ("sqs", "glue"))
    path = stack.write_local_settings(stack.Stack(local_dir=tmp_path))
    assert path == tmp_path / "airflow" / "config" / "airflow_local_settings.py"
    probe = (  # sys.argv as the Airflow process has it: [airflow, command]
        "import inspect, os, runpy, sys; sys.argv = sys.argv[1:]; "
        "settings = runpy.run_path(os.environ['SETTINGS']); "
        "from sagelake.config.botocore_data import parsed_services; import json.tool; "
        "mapped = inspect.modulesbyfile.get(os.path.realpath(json.tool.__file__)) == 'json.tool'; "
        "print('json.tool' in sys.modules and mapped, settings['__all__'], sorted(parsed_services()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        env={"SETTINGS": str(path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "plugins")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(" ", 2)
    # a missing module is skipped; no name is taken for a policy; the services' models are parsed; the
    # module files are mapped for inspect (the provider hooks' inspect.stack() in every task)
    assert out == [str(preloaded), "[]", "['glue', 'sqs']\n" if preloaded else "[]\n"]
