"""Calls that exist only on the local control plane (recording a crawl or a tuning job's outcome), sent
signed like any AWS request, to the client's own endpoint."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


class ExtensionCallError(RuntimeError):
    """The control plane refused the call; the message is its answer."""


def call_extension(client: Any, credentials: Any, signing_name: str, target: str, body: dict) -> dict:
    """POST ``body`` as the JSON action ``target`` (``X-Amz-Target``) to ``client``'s endpoint, SigV4-signed
    for ``signing_name``; return the decoded answer."""
    request = AWSRequest(
        method="POST",
        url=client.meta.endpoint_url.rstrip("/") + "/",
        data=json.dumps(body).encode(),
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(credentials, signing_name, client.meta.region_name).add_auth(request)
    http = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(http, timeout=30) as response:  # the control plane's own URL
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise ExtensionCallError(error.read().decode(errors="replace")) from None
