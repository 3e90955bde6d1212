"""The local stack's MLflow server: its command line, its port setting, the address Airflow's tasks get."""

from __future__ import annotations

import socket
import sys

import pytest

from devstack import stack


def test_mlflow_server_keeps_its_store_and_artefacts_under_the_local_state(tmp_path) -> None:
    s = stack.Stack(
        local_dir=tmp_path, ports=stack.Ports(control_plane=1, endpoint=2, airflow=3, mlflow=5151)
    )
    argv = stack.mlflow_server_argv(s)
    assert argv[0] == str(stack.Path(sys.executable).with_name("mlflow")) and argv[1] == "server"

    def option(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert option("--backend-store-uri") == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert option("--artifacts-destination") == str(tmp_path / "mlflow" / "artifacts")
    assert "--serve-artifacts" in argv
    assert (option("--host"), option("--port"), option("--workers")) == ("127.0.0.1", "5151", "1")
    assert (tmp_path / "mlflow").is_dir()
    assert s.mlflow_url == "http://127.0.0.1:5151"


def test_airflow_tasks_get_the_stack_mlflow_address(tmp_path) -> None:
    s = stack.Stack(
        local_dir=tmp_path, ports=stack.Ports(control_plane=1, endpoint=2, airflow=3, mlflow=5151)
    )
    env = stack.airflow_env(s, "key", "http://queue")
    assert env["SAGELAKE_MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5151"


def test_mlflow_port_setting(monkeypatch) -> None:
    monkeypatch.delenv("SAGELAKE_MLFLOW_PORT", raising=False)
    assert stack.Ports().mlflow == 5000
    monkeypatch.setenv("SAGELAKE_MLFLOW_PORT", "5999")
    assert stack.Ports().mlflow == 5999
    monkeypatch.setenv("SAGELAKE_MLFLOW_PORT", "mlflow")
    with pytest.raises(stack.StackError, match="SAGELAKE_MLFLOW_PORT='mlflow' is not a TCP port"):
        stack.Ports()


def test_a_throwaway_stack_has_its_own_mlflow_port() -> None:
    s = stack.throwaway_stack()
    ports = (s.ports.control_plane, s.ports.endpoint, s.ports.airflow, s.ports.mlflow)
    assert len(set(ports)) == 4 and s.ports.mlflow != 5000
    s.local_dir.rmdir()


def test_an_occupied_mlflow_port_names_its_setting(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = stack.Stack(local_dir=tmp_path, ports=stack.Ports(mlflow=port))
        with pytest.raises(stack.StackError, match=f"port {port} is in use.*SAGELAKE_MLFLOW_PORT"):
            stack.start_mlflow(s)
    assert not s.pid_file("mlflow").exists()
