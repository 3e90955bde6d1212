"""``POST /eventbridge``: the FastAPI app that turns EventBridge API-destination deliveries into DAG runs.

Mounted by the ``sagelake_webhook`` plugin under ``/webhooks`` on the Airflow API server. Answers:
202 run created · 200 already created by an earlier delivery of the same event · 400 not JSON / not an
EventBridge event · 401 missing or wrong key / signature · 413 body over 1 MiB (not read further) ·
422 a valid event no route maps to a run · 503 not configured, DAG not parsed yet, or database busy
(EventBridge retries 5xx, not 4xx). Client input never causes a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sagelake.events.eventbridge import EventRejected, Route, RunRequest, parse_envelope, route_event
from sagelake.events.run_trigger import TriggerOutcome, TriggerUnavailable
from sagelake.events.webhook_auth import Unauthorized, WebhookNotConfigured, WebhookSettings, authenticate

MAX_BODY = 1024 * 1024
log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """The body is over ``MAX_BODY`` bytes."""


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refusing (without reading on) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, **content: object) -> JSONResponse:
    return JSONResponse(status_code=status, content=content)


def create_app(
    settings: Callable[[], WebhookSettings],
    routes: Callable[[], list[Route]],
    trigger: Callable[[RunRequest], TriggerOutcome],
) -> FastAPI:
    """The webhook app; its three collaborators are passed in so that tests can choose them."""
    app = FastAPI(title="sagelake EventBridge webhook", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/eventbridge")
    async def eventbridge(request: Request) -> JSONResponse:
        try:
            body = await read_body(request)
        except BodyTooLarge:
            log.warning("refused a body over %d bytes", MAX_BODY)
            return _answer(413, error=f"body over {MAX_BODY} bytes")
        try:
            auth, table = await run_in_threadpool(settings), await run_in_threadpool(routes)
        except (WebhookNotConfigured, ValueError) as error:
            log.error("webhook refused a delivery: %s", error)
            return _answer(503, error="webhook not configured; see the Airflow API server log")
        try:
            authenticate(auth, request.headers, body, time.time())
        except Unauthorized as error:
            log.warning("unauthorized delivery: %s", error)
            return _answer(401, error="unauthorized")
        try:
            run = route_event(parse_envelope(body), table)
            outcome = await run_in_threadpool(trigger, run)
        except EventRejected as error:  # from the event, or from the DAG refusing the run's conf
            log.warning("rejected event (%d): %s", error.status, error)
            return _answer(error.status, error=str(error))
        except TriggerUnavailable as error:
            log.warning("could not create run %s yet: %s", run.run_id, error)
            return _answer(503, error=str(error), dag_id=run.dag_id, dag_run_id=run.run_id)
        log.info(
            "event %s via route %s → %s run %s (%s)",
            run.conf["event"]["id"],
            run.route,
            run.dag_id,
            outcome.run_id,
            "created" if outcome.created else "already existed",
        )
        return _answer(
            202 if outcome.created else 200,
            dag_id=run.dag_id,
            dag_run_id=outcome.run_id,
            state=outcome.state,
            duplicate=not outcome.created,
        )

    return app
