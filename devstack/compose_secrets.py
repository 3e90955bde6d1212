"""The compose stack's secrets, generated on first start: ``python -m devstack.compose_secrets <dir>``.

``docker-compose.yaml``'s ``secrets-init`` service runs this (as root, standard library only) before any
other service, into the named volume ``sagelake-secrets``. A file already there is kept, so the secrets
survive restarts; ``docker compose down -v`` forgets them (and the database they protect). A value given
in the environment (``.env``) is used instead of a generated one the first time:
``_AIRFLOW_WWW_USER_PASSWORD`` (the admin's password) and ``SAGELAKE_WEBHOOK_KEY`` (the EventBridge
webhook's API key).

Each file is readable only by the services that need it: the Airflow files by ``AIRFLOW_UID`` (group 0),
``postgres_password`` by the postgres image's user; the AWS stand-ins mount none of them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

POSTGRES_UID = 999  # the postgres image's user
DEFAULT_AIRFLOW_UID = 50000
DB_USER = DB_NAME = "airflow"
DB_HOST = "postgres"
WEBHOOK_CONN_ID = "eventbridge_webhook"


@dataclass(frozen=True)
class Secret:
    """A generated value and who reads its file."""

    generate: Callable[[], str]
    reader: str  # "airflow" or "postgres"
    env: str | None = None  # the variable that may give it instead


def fernet_key() -> str:
    """What ``cryptography.fernet.Fernet.generate_key()`` returns: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


SECRETS: dict[str, Secret] = {
    "fernet_key": Secret(fernet_key, "airflow"),
    "jwt_secret": Secret(lambda: secrets.token_urlsafe(48), "airflow"),
    "api_secret_key": Secret(lambda: secrets.token_urlsafe(32), "airflow"),
    "admin_password": Secret(lambda: secrets.token_urlsafe(18), "airflow", "_AIRFLOW_WWW_USER_PASSWORD"),
    "postgres_password": Secret(lambda: secrets.token_hex(24), "postgres"),
    "webhook_key": Secret(lambda: secrets.token_urlsafe(32), "airflow", "SAGELAKE_WEBHOOK_KEY"),
}
# Derived from the secrets above (rewritten on each run, so they always match them).
DERIVED = {"sql_alchemy_conn": "airflow", "connections.json": "airflow"}
FILES = (*SECRETS, *DERIVED)


def _write(path: Path, value: str, owner: tuple[int, int] | None) -> None:
    """``value`` in ``path``, mode 0400, owned by ``owner`` (when this process may chown)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as file:
        file.write(value)
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def ensure_secrets(
    directory: Path, environ: Mapping[str, str] | None = None, chown: bool | None = None
) -> list[str]:
    """Write every missing secret into ``directory`` and refresh the derived files; the names generated.

    ``chown`` (default: when running as root) gives each file to its reader: ``AIRFLOW_UID``:0 or the
    postgres user.
    """
    environ = os.environ if environ is None else environ
    chown = os.geteuid() == 0 if chown is None else chown
    airflow_uid = int(environ.get("AIRFLOW_UID") or DEFAULT_AIRFLOW_UID)
    owners = {"airflow": (airflow_uid, 0), "postgres": (POSTGRES_UID, POSTGRES_UID)}
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    created, values = [], {}
    for name, secret in SECRETS.items():
        path = directory / name
        if path.is_file() and path.read_text():
            values[name] = path.read_text()
            if chown:  # AIRFLOW_UID may have changed since the file was written
                os.chown(path, *owners[secret.reader])
            path.chmod(0o400)
            continue
        values[name] = (environ.get(secret.env) if secret.env else None) or secret.generate()
        _write(path, values[name], owners[secret.reader] if chown else None)
        created.append(name)
    conn = f"postgresql+psycopg2://{DB_USER}:{values['postgres_password']}@{DB_HOST}/{DB_NAME}"
    connections = {WEBHOOK_CONN_ID: {"conn_type": "generic", "password": values["webhook_key"]}}
    derived = {"sql_alchemy_conn": conn, "connections.json": json.dumps(connections)}
    for name, value in derived.items():
        _write(directory / name, value, owners[DERIVED[name]] if chown else None)
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where the secrets live (the secrets volume)")
    args = parser.parse_args(argv)
    created = ensure_secrets(args.directory)
    kept = [name for name in SECRETS if name not in created]
    print(f"secrets in {args.directory}: generated {created or 'none'}, kept {kept or 'none'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
