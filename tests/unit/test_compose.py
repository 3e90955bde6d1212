"""Offline validation of docker-compose.yaml and the Dockerfile (no Docker engine needed).

The Compose Specification schema comes vendored with check-jsonschema; the rest are cross-checks a schema
cannot express: references between services, host paths, the image/requirements pin, the sagelake commands.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests.support.constants import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yaml"
SAGELAKE_SERVICES = ("control-plane", "endpoint-server")


def load_compose() -> dict[str, Any]:
    """The compose file as plain data (``safe_load`` resolves anchors and ``<<`` merge keys)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_schema() -> dict[str, Any]:
    """The Compose Specification JSON schema vendored by check-jsonschema (raises if it is missing)."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Every schema violation in ``doc``, as ``path: message`` lines."""
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def dependencies(service: dict[str, Any]) -> dict[str, str]:
    """``depends_on`` as {target: condition}, for both the list and the mapping syntax."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def mount_sources(service: dict[str, Any]) -> list[str]:
    """Sources of the service's mounts (short and long syntax): host paths or named volumes."""
    return [v["source"] if isinstance(v, dict) else v.split(":", 1)[0] for v in service.get("volumes", [])]


def is_host_path(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def command_argv(service: dict[str, Any]) -> list[str]:
    """The service's command as an argv list."""
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(arg) for arg in command]


def published_ports(services: dict[str, Any]) -> dict[int, int]:
    """Published ports as {container port: host port}, from short (``"8080:8080"``) and long syntax."""
    ports = {}
    for service in services.values():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                ports[int(port["target"])] = int(port["published"])
            elif ":" in str(port):
                *_, host, container = str(port).split("/")[0].split(":")
                ports[int(container)] = int(host)
    return ports


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_schema_check_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["control-plane"]["ports"] = 4566
    broken["services"]["postgres"]["helthcheck"] = {}
    errors = schema_errors(broken)
    assert any("control-plane/ports" in error for error in errors)
    assert any("helthcheck" in error for error in errors)


def test_dependencies_are_defined_and_healthchecked(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in dependencies(service).items():
            assert target in services, f"{name} depends on undefined service {target}"
            if condition == "service_healthy":
                healthcheck = services[target].get("healthcheck", {})
                assert healthcheck.get("test") and not healthcheck.get("disable"), (
                    f"{name} waits for {target} to be healthy, but {target} has no healthcheck"
                )


def test_airflow_services_wait_for_the_control_plane(services: dict[str, Any]) -> None:
    airflow = [name for name in services if name.startswith("airflow-")]
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"} <= set(
        airflow
    )
    for name in [*airflow, "endpoint-server"]:
        assert dependencies(services[name]).get("control-plane") == "service_healthy", name


def test_mounts_exist(compose: dict[str, Any], services: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source in mount_sources(service):
            if is_host_path(source):
                assert (ROOT / source).is_dir(), f"{name} bind-mounts {source}: not a folder in the repo"
            else:
                assert source in named, f"{name} mounts undeclared volume {source}"
    assert {"./dags", "./plugins", "./include"} <= set(mount_sources(services["airflow-scheduler"]))


def test_dockerfile_base_image_matches_the_pins() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^FROM apache/airflow:(\S+)-python(\d+\.\d+)\s*$", dockerfile, re.MULTILINE)
    assert match, "Dockerfile must start FROM apache/airflow:<version>-python<X.Y>"
    pin = re.search(r"^apache-airflow==(\S+)\s*$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pin, "requirements.txt must pin apache-airflow"
    assert match.group(1) == pin.group(1)
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f"{match.group(2)}.0" in SpecifierSet(requires_python)
    for source in re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+\S+\s*$", dockerfile, re.MULTILINE):
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


@pytest.mark.parametrize("name", SAGELAKE_SERVICES)
def test_sagelake_service_modules_exist(services: dict[str, Any], name: str) -> None:
    service = services[name]
    argv = command_argv(service)
    assert argv[:2] == ["python", "-m"], f"{name} must run `python -m <module>`"
    module = argv[2]
    assert module.startswith("sagelake.local.")
    assert (ROOT / "plugins" / (module.replace(".", "/") + ".py")).is_file(), f"{module} has no source file"
    assert service["environment"]["PYTHONPATH"] == "/opt/airflow/plugins"
    assert "./plugins:/opt/airflow/plugins" in service["volumes"]
    port = int(argv[argv.index("--port") + 1])
    assert published_ports({name: service}).get(port) == port, f"{name} must publish {port}:{port}"
    assert str(port) in " ".join(service["healthcheck"]["test"])


def test_aws_default_connection_points_at_the_local_services(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if not name.startswith("airflow-"):
            continue
        env = service["environment"]
        assert env["SAGELAKE_TARGET"] == "${SAGELAKE_TARGET:-local}", name
        conn = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
        assert conn["conn_type"] == "aws", name
    extra = conn["extra"]
    urls = [extra["endpoint_url"], extra["service_config"]["sagemaker-runtime"]["endpoint_url"]]
    for url in urls:
        host, port = urlsplit(url).hostname, urlsplit(url).port
        assert host in services, f"{url} names no compose service"
        assert port in published_ports({host: services[host]}), f"{url}: {host} does not publish {port}"


def test_webhook_key_and_events_queue_come_from_the_environment(services: dict[str, Any]) -> None:
    """No key is written in the file: the webhook connection's password is ${SAGELAKE_WEBHOOK_KEY}."""
    for name, service in services.items():
        if not name.startswith("airflow-"):
            continue
        env = service["environment"]
        conn = json.loads(env["AIRFLOW_CONN_EVENTBRIDGE_WEBHOOK"])
        assert conn == {"conn_type": "generic", "password": "${SAGELAKE_WEBHOOK_KEY:-}"}, name
        assert env["SAGELAKE_EVENTS_QUEUE_URL"] == "${SAGELAKE_EVENTS_QUEUE_URL:-}", name


@pytest.mark.parametrize("port", [8080, 4566, 8085])
def test_expected_ports_are_published(services: dict[str, Any], port: int) -> None:
    assert published_ports(services).get(port) == port


@pytest.mark.parametrize("name", SAGELAKE_SERVICES)
def test_sagelake_service_flags_are_accepted(services: dict[str, Any], name: str) -> None:
    argv = command_argv(services[name])
    help_text = subprocess.run(
        [sys.executable, "-m", argv[2], "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    accepted = set(re.findall(r"(--[a-z][a-z-]*)", help_text))
    assert {arg for arg in argv if arg.startswith("--")} <= accepted
