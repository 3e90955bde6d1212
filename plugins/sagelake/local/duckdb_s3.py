"""DuckDB reading S3 — the control plane's or AWS's — for the local engines (Athena, Redshift, profiler)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import duckdb

from sagelake.local.aws_session import AwsAccess


class DuckDBS3Error(RuntimeError):
    """DuckDB cannot be set up to read S3 (missing extension, malformed endpoint)."""


def httpfs_extension_path() -> Path:
    """The httpfs extension shipped by the ``duckdb_extension_httpfs`` package for this DuckDB version."""
    import duckdb_extension_httpfs

    path = (
        Path(duckdb_extension_httpfs.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "httpfs.duckdb_extension"
    )
    if not path.is_file():
        raise DuckDBS3Error(
            f"DuckDB httpfs extension not found at {path}: "
            f"install duckdb-extension-httpfs=={duckdb.__version__}"
        )
    return path


def check_endpoint(endpoint_url: str | None) -> None:
    """Raise ValueError unless ``endpoint_url`` is None or an ``http(s)://host:port`` URL."""
    if endpoint_url:
        url = urlparse(endpoint_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"s3_endpoint_url={endpoint_url!r} is not an http(s)://host:port URL")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_s3(con: duckdb.DuckDBPyConnection, access: AwsAccess, *, temporary: bool = False) -> None:
    """Load httpfs into ``con`` and give it ``access``'s credentials, region and S3 endpoint (path-style for
    a custom endpoint such as the control plane's). ``temporary``: a secret that is not persisted in a
    database file."""
    endpoint = access.endpoint("s3")
    check_endpoint(endpoint)
    con.execute(f"LOAD {_literal(str(httpfs_extension_path()))}")
    options = [
        "TYPE s3",
        f"KEY_ID {_literal(access.access_key_id)}",
        f"SECRET {_literal(access.secret_access_key)}",
        f"REGION {_literal(access.region)}",
    ]
    if access.session_token:
        options.append(f"SESSION_TOKEN {_literal(access.session_token)}")
    if endpoint:
        url = urlparse(endpoint)
        options += [
            f"ENDPOINT {_literal(url.netloc)}",
            "URL_STYLE 'path'",
            f"USE_SSL {'true' if url.scheme == 'https' else 'false'}",
        ]
    kind = "OR REPLACE TEMPORARY SECRET" if temporary else "SECRET"
    con.execute(f"CREATE {kind} sagelake_s3 ({', '.join(options)})")


def connect(access: AwsAccess) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection that reads S3 with ``access``."""
    con = duckdb.connect(":memory:")
    load_s3(con, access)
    return con
