"""Create a DAG run for an event, at most once per run id, inside the Airflow API server's process.

The metadata database's unique (dag_id, run_id) key makes this idempotent: a replayed event finds its
run, and of two concurrent first deliveries the loser's insert fails and it returns the winner's run.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sagelake.events.eventbridge import RunRequest, UnroutedEvent

log = logging.getLogger(__name__)
TRIGGERED_BY = "eventbridge-webhook"
_ONE_AT_A_TIME = threading.Lock()  # keeps this process's inserts from contending (SQLite locks the file)


class TriggerUnavailable(RuntimeError):
    """The run cannot be created right now (DAG not parsed yet, database busy): the sender should retry."""


@dataclass(frozen=True)
class TriggerOutcome:
    run_id: str
    state: str
    created: bool


def _existing(dag_id: str, run_id: str) -> TriggerOutcome | None:
    from airflow.models import DagRun

    run = DagRun.find_duplicate(dag_id=dag_id, run_id=run_id)
    return None if run is None else TriggerOutcome(run.run_id, str(run.state), created=False)


def trigger_run(request: RunRequest, attempts: int = 5) -> TriggerOutcome:
    """The run ``request`` asks for: created now, or the one an earlier delivery created."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists, ParamValidationError
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy.exc import DataError, IntegrityError, OperationalError

    with _ONE_AT_A_TIME:
        for attempt in range(attempts):
            try:
                run = trigger_dag(
                    request.dag_id,
                    run_id=request.run_id,
                    conf=request.conf,
                    logical_date=None,
                    triggered_by=DagRunTriggeredByType.REST_API,
                    triggering_user_name=TRIGGERED_BY,
                )
                return TriggerOutcome(run.run_id, str(run.state), created=True)
            except DagRunAlreadyExists as error:
                return TriggerOutcome(error.dag_run.run_id, str(error.dag_run.state), created=False)
            except IntegrityError:
                found = _existing(request.dag_id, request.run_id)
                if found is not None:
                    return found
                raise
            except DagNotFound:
                raise TriggerUnavailable(f"DAG {request.dag_id!r} is not known to Airflow (yet)") from None
            except (ParamValidationError, ValueError) as error:
                raise UnroutedEvent(f"DAG {request.dag_id!r} refused the run: {error}") from None
            except DataError:  # e.g. a NUL character, which PostgreSQL's JSON columns refuse
                raise UnroutedEvent("the event's values cannot be stored as the run's conf") from None
            except OperationalError as error:  # e.g. "database is locked": back off, then try again
                log.warning("metadata database busy (attempt %d/%d): %s", attempt + 1, attempts, error.orig)
                time.sleep(0.2 * 2**attempt)
    raise TriggerUnavailable("the metadata database stayed busy; retry later")
