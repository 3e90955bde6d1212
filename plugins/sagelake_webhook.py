"""Airflow plugin: the EventBridge webhook, on the Airflow API server at ``POST /webhooks/eventbridge``.

A top-level file on purpose: Airflow's plugin loader imports every module under ``plugins/`` except what
``.airflowignore`` excludes (the ``sagelake`` package), so plugins live beside the package, not in it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sagelake.events.eventbridge import load_routes
from sagelake.events.run_trigger import trigger_run
from sagelake.events.webhook_app import create_app
from sagelake.events.webhook_auth import cached, load_settings

URL_PREFIX = "/webhooks"


class SagelakeWebhookPlugin(AirflowPlugin):
    name = "sagelake_webhook"
    fastapi_apps = [
        {
            "app": create_app(settings=cached(load_settings), routes=load_routes, trigger=trigger_run),
            "url_prefix": URL_PREFIX,
            "name": "sagelake EventBridge webhook",
        }
    ]
