"""The allow-listed environment of a job subprocess: the parent's allowed variables plus the contract."""

from __future__ import annotations

import pytest

from sagelake.local.subprocess_env import allowed, job_environment

PARENT = {
    "PATH": "/usr/bin",
    "HOME": "/home/dev",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TMPDIR": "/tmp/x",
    "JAVA_HOME": "/opt/jdk",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566",
    "AIRFLOW_CONN_EVENTBRIDGE_WEBHOOK": '{"password": "secret"}',
    "AIRFLOW_CONN_AWS_DEFAULT": '{"login": "testing"}',
    "AIRFLOW__CORE__FERNET_KEY": "fernet",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:pw@db/airflow",
    "SAGELAKE_EVENTS_QUEUE_URL": "http://queue",
    "PYTHONPATH": "/opt/airflow/plugins",
    "AWS_PROFILE": "production",
    "HTTPS_PROXY": "http://user:pw@proxy:3128",
}


def test_only_the_allowed_variables_of_the_parent_are_kept() -> None:
    env = job_environment({}, base=PARENT)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/dev",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp/x",
        "JAVA_HOME": "/opt/jdk",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566",
    }


def test_the_contract_is_passed_whatever_its_names_and_wins() -> None:
    contract = {"SM_MODEL_DIR": "/w/model", "SAGELAKE_PROCESSING_ROOT": "/w", "PATH": "/venv/bin", "N": 3}
    env = job_environment(contract, base=PARENT)
    assert env["SM_MODEL_DIR"] == "/w/model"
    assert env["SAGELAKE_PROCESSING_ROOT"] == "/w"
    assert env["PATH"] == "/venv/bin"
    assert env["N"] == "3"  # every value a string, as subprocess wants
    assert "SAGELAKE_EVENTS_QUEUE_URL" not in env


def test_extra_patterns_allow_more_of_the_parent() -> None:
    env = job_environment({}, base=PARENT, extra_allowed=("HTTPS_*",))
    assert env["HTTPS_PROXY"] == PARENT["HTTPS_PROXY"]
    assert "AIRFLOW__CORE__FERNET_KEY" not in env


def test_the_default_parent_is_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "fernet")
    monkeypatch.setenv("LC_CTYPE", "C.UTF-8")
    env = job_environment({})
    assert env["LC_CTYPE"] == "C.UTF-8"
    assert "AIRFLOW__CORE__FERNET_KEY" not in env


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("LC_MESSAGES", True),
        ("AWS_ENDPOINT_URL", True),
        ("AWS_ENDPOINT_URL_SAGEMAKER", True),
        ("OMP_NUM_THREADS", True),
        ("path", False),  # case-sensitive
        ("AWS_SHARED_CREDENTIALS_FILE", False),
        ("AWS_CONFIG_FILE", False),
        ("AIRFLOW_HOME", False),
        ("_AIRFLOW_WWW_USER_PASSWORD", False),
        ("MLFLOW_TRACKING_URI", False),
    ],
)
def test_allowed_names(name: str, expected: bool) -> None:
    assert allowed(name) is expected
