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


def test_the_events_queue_comes_from_the_environment(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name.startswith("airflow-"):
            queue = service["environment"]["SAGELAKE_EVENTS_QUEUE_URL"]
            assert queue == "${SAGELAKE_EVENTS_QUEUE_URL:-}", name


# --- secrets: generated on first start, never written in the file -------------------------------------

SECRETS_DIR = "/opt/airflow/secrets"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|_KEY$|_KEY_|TOKEN|SQL_ALCHEMY_CONN")
EMPTY_DEFAULT = re.compile(r"^\$\{[A-Z_]+:-\}$")  # ${VAR:-}: from .env, else generated
MOTO_PLACEHOLDERS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# where secrets come from, not secrets (the connections file is checked below)
SECRETS_BACKEND = {"AIRFLOW__SECRETS__BACKEND", "AIRFLOW__SECRETS__BACKEND_KWARGS"}
READ_COMMAND = re.compile(rf"^cat {re.escape(SECRETS_DIR)}/([a-z_.]+)$")


def secret_files() -> tuple[str, ...]:
    """The files devstack.compose_secrets writes."""
    from devstack.compose_secrets import FILES

    return FILES


def secrets_mount(service: dict[str, Any]) -> str | None:
    """Where the service mounts the ``sagelake-secrets`` volume (None: it does not)."""
    for volume in service.get("volumes", []):
        source, target, *_ = (volume.split(":") + [""])[:3] if isinstance(volume, str) else ("", "")
        if source == "sagelake-secrets":
            return target
    return None


def test_no_secret_is_written_in_the_file(services: dict[str, Any]) -> None:
    """Every secret-looking variable is read from a file (``*_CMD``, ``*_FILE``) or left to .env with an
    empty default; only moto's placeholder credentials are literals; no URL carries a password."""
    for name, service in services.items():
        for var, value in (service.get("environment") or {}).items():
            value = str(value)
            assert not re.search(r"://[^/:@\s]+:[^/@\s]+@", value), f"{name}: {var} holds a password"
            if var.startswith("AIRFLOW_CONN_"):
                conn = json.loads(value)
                assert conn.get("password") in (None, "testing"), f"{name}: {var} holds a password"
            if not SECRET_NAME.search(var) or var.endswith(("_CMD", "_FILE")) or var in SECRETS_BACKEND:
                continue
            if var in MOTO_PLACEHOLDERS:
                assert value == MOTO_PLACEHOLDERS[var], f"{name}: {var}"
            else:
                assert EMPTY_DEFAULT.match(value), f"{name}: {var}={value!r} is a fixed secret"


def test_the_file_would_catch_a_fixed_secret(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "airflow"
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        test_no_secret_is_written_in_the_file(broken["services"])


def test_secrets_are_generated_before_any_service_starts(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    init = services["secrets-init"]
    assert init["entrypoint"] == ["python", "-m", "devstack.compose_secrets", SECRETS_DIR]
    assert "./devstack:/opt/airflow/devstack:ro" in init["volumes"]
    assert secrets_mount(init) == SECRETS_DIR
    assert "sagelake-secrets" in compose["volumes"]
    for name in ("postgres", *[n for n in services if n.startswith("airflow-")]):
        assert dependencies(services[name]).get("secrets-init") == "service_completed_successfully", name


def test_every_secret_a_service_reads_is_a_generated_file(services: dict[str, Any]) -> None:
    """Airflow's secrets (database, Fernet, JWT, API key, admin password) come from ``*_CMD`` reading a
    generated file in the read-only secrets mount; postgres' password from ``POSTGRES_PASSWORD_FILE``."""
    files = set(secret_files())
    needed = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
        "AIRFLOW__CORE__FERNET_KEY_CMD",
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD",
        "AIRFLOW__API__SECRET_KEY_CMD",
    }
    for name, service in services.items():
        if not name.startswith("airflow-"):
            continue
        env = service["environment"]
        assert needed <= set(env), name
        assert secrets_mount(service) == SECRETS_DIR, name
        assert f"sagelake-secrets:{SECRETS_DIR}:ro" in service["volumes"], name
        for var in [v for v in env if v.endswith("_CMD")]:
            match = READ_COMMAND.match(env[var])
            assert match and match.group(1) in files, f"{name}: {var}={env[var]!r} reads no generated file"
        backend = json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])
        assert backend["connections_file_path"] == f"{SECRETS_DIR}/connections.json", name
        assert "AIRFLOW_CONN_EVENTBRIDGE_WEBHOOK" not in env, name
    assert services["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_PASSWORD_CMD"] == (
        f"cat {SECRETS_DIR}/admin_password"
    )
    postgres = services["postgres"]
    mount = secrets_mount(postgres)
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == f"{mount}/postgres_password"
    assert "postgres_password" in files


@pytest.mark.parametrize("name", SAGELAKE_SERVICES)
def test_the_aws_stand_ins_see_no_secret(services: dict[str, Any], name: str) -> None:
    assert secrets_mount(services[name]) is None


def test_the_init_bootstraps_the_control_plane_as_the_local_launcher(services: dict[str, Any]) -> None:
    """``devstack.stack bootstrap`` (bucket, roles, queue, lake set-up) on the compose control plane."""
    init = services["airflow-init"]
    script = init["command"][-1]
    match = re.search(r"python -m devstack\.stack bootstrap --control-plane-url (\S+)", script)
    assert match, "airflow-init must run `python -m devstack.stack bootstrap`"
    url = urlsplit(match.group(1))
    assert url.hostname == "control-plane" and url.port in published_ports({"cp": services["control-plane"]})
    assert "PYTHONPATH=/opt/airflow/plugins:/opt/airflow" in script
    assert "./devstack:/opt/airflow/devstack:ro" in init["volumes"]
    assert dependencies(init).get("control-plane") == "service_healthy"
    help_text = subprocess.run(
        [sys.executable, "-m", "devstack.stack", "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "bootstrap" in help_text and "--control-plane-url" in help_text


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
