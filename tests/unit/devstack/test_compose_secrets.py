"""The compose stack's secrets: generated once, kept across restarts, overridable, private files."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

from devstack import compose_secrets
from devstack.compose_secrets import FILES, SECRETS, ensure_secrets, main


def read(directory: Path) -> dict[str, str]:
    return {name: (directory / name).read_text() for name in FILES}


def test_first_start_generates_every_secret_and_the_files_derived_from_them(tmp_path: Path) -> None:
    created = ensure_secrets(tmp_path / "s", environ={}, chown=False)
    assert created == list(SECRETS)
    values = read(tmp_path / "s")
    assert all(values.values())
    assert len(base64.urlsafe_b64decode(values["fernet_key"])) == 32  # a valid Fernet key
    assert len({values[name] for name in SECRETS}) == len(SECRETS)  # all different
    assert values["sql_alchemy_conn"] == (
        f"postgresql+psycopg2://airflow:{values['postgres_password']}@postgres/airflow"
    )
    assert json.loads(values["connections.json"]) == {
        "eventbridge_webhook": {"conn_type": "generic", "password": values["webhook_key"]}
    }
    for name in FILES:
        assert stat.S_IMODE((tmp_path / "s" / name).stat().st_mode) == 0o400, name


def test_a_restart_keeps_the_secrets(tmp_path: Path) -> None:
    ensure_secrets(tmp_path, environ={}, chown=False)
    before = read(tmp_path)
    assert ensure_secrets(tmp_path, environ={}, chown=False) == []
    assert read(tmp_path) == before


def test_a_missing_secret_is_regenerated_and_the_derived_files_follow(tmp_path: Path) -> None:
    ensure_secrets(tmp_path, environ={}, chown=False)
    before = read(tmp_path)
    (tmp_path / "postgres_password").unlink()
    assert ensure_secrets(tmp_path, environ={}, chown=False) == ["postgres_password"]
    after = read(tmp_path)
    assert after["postgres_password"] != before["postgres_password"]
    assert after["postgres_password"] in after["sql_alchemy_conn"]
    assert after["fernet_key"] == before["fernet_key"]


def test_values_from_the_environment_are_used_on_first_start(tmp_path: Path) -> None:
    environ = {"_AIRFLOW_WWW_USER_PASSWORD": "chosen-password", "SAGELAKE_WEBHOOK_KEY": "chosen-key"}
    ensure_secrets(tmp_path, environ=environ, chown=False)
    values = read(tmp_path)
    assert values["admin_password"] == "chosen-password"
    assert json.loads(values["connections.json"])["eventbridge_webhook"]["password"] == "chosen-key"
    ensure_secrets(tmp_path, environ={"SAGELAKE_WEBHOOK_KEY": "another"}, chown=False)
    assert read(tmp_path)["webhook_key"] == "chosen-key"  # generated once, then kept


def test_main_reports_what_it_generated_and_kept(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path)]) == 0
    assert main([str(tmp_path)]) == 0
    first, second = capsys.readouterr().out.strip().splitlines()
    assert "generated ['fernet_key'" in first and "kept none" in first
    assert "generated none" in second


def test_each_file_is_given_to_its_reader(tmp_path: Path, monkeypatch) -> None:
    """Airflow's files to ``AIRFLOW_UID``:0, the database password to the postgres user; again on a
    restart (``AIRFLOW_UID`` may have changed)."""
    owners: dict[str, tuple[int, int]] = {}
    monkeypatch.setattr(
        compose_secrets.os, "chown", lambda path, uid, gid: owners.__setitem__(Path(path).name, (uid, gid))
    )
    ensure_secrets(tmp_path, environ={"AIRFLOW_UID": "1234"}, chown=True)
    written = {name.removeprefix(".").removesuffix(".tmp"): owner for name, owner in owners.items()}
    assert written == {
        **dict.fromkeys(FILES, (1234, 0)),
        "postgres_password": (compose_secrets.POSTGRES_UID, compose_secrets.POSTGRES_UID),
    }
    owners.clear()
    ensure_secrets(tmp_path, environ={"AIRFLOW_UID": "4321"}, chown=True)
    assert owners["fernet_key"] == (4321, 0)
