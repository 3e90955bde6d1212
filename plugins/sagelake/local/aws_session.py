"""What the local engines need from the ``aws_default`` connection: clients, endpoints, credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AwsAccess:
    """Credentials, region and per-service endpoints, read from an Airflow AWS connection."""

    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    endpoints: dict[str, str | None]

    def endpoint(self, service: str) -> str | None:
        return self.endpoints.get(service)


def access_from_hook(hook: Any) -> AwsAccess:
    """Build :class:`AwsAccess` from any provider ``AwsBaseHook``."""
    credentials = hook.get_credentials()
    wrapper = hook.conn_config
    services = ("s3", "glue", "sagemaker", "athena", "iam")
    return AwsAccess(
        region=hook.conn_region_name,
        access_key_id=credentials.access_key,
        secret_access_key=credentials.secret_key,
        session_token=credentials.token,
        endpoints={name: wrapper.get_service_endpoint_url(name) for name in services},
    )
