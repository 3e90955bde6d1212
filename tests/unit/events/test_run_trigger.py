"""How run-creation failures map to answers (happy paths: test_webhook_api_server, on a real DB)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from sagelake.events import run_trigger
from sagelake.events.eventbridge import RunRequest, UnroutedEvent

REQUEST = RunRequest("churn_prepare", "eventbridge__abc", {"dt": "2026-11-26", "event": {"id": "abc"}}, "raw")


class FakeRun:
    run_id, state = "eventbridge__abc", "queued"


class Calls(list):
    """trigger_dag calls made; ``outcomes`` is what the next calls raise or return, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[object] = []


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    import airflow.api.common.trigger_dag as module

    recorded = Calls()

    def fake_trigger_dag(dag_id: str, **kwargs: object) -> object:
        recorded.append({"dag_id": dag_id, **kwargs})
        outcome = recorded.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(module, "trigger_dag", fake_trigger_dag)
    monkeypatch.setattr(run_trigger.time, "sleep", lambda _: None)
    return recorded


def locked() -> OperationalError:
    return OperationalError("INSERT …", {}, Exception("database is locked"))


def test_a_busy_database_is_retried_then_the_run_is_created(calls) -> None:
    calls.outcomes += [locked(), locked(), FakeRun()]
    outcome = run_trigger.trigger_run(REQUEST)
    assert outcome == run_trigger.TriggerOutcome("eventbridge__abc", "queued", created=True)
    assert len(calls) == 3
    assert calls[0]["run_id"] == "eventbridge__abc" and calls[0]["logical_date"] is None
    assert calls[0]["conf"] == REQUEST.conf


def test_a_database_that_stays_busy_asks_the_sender_to_retry(calls) -> None:
    calls.outcomes += [locked() for _ in range(5)]
    with pytest.raises(run_trigger.TriggerUnavailable, match="busy"):
        run_trigger.trigger_run(REQUEST)
    assert len(calls) == 5


def test_an_unknown_dag_asks_the_sender_to_retry(calls) -> None:
    from airflow.exceptions import DagNotFound

    calls.outcomes.append(DagNotFound("no such dag"))
    with pytest.raises(run_trigger.TriggerUnavailable, match="churn_prepare"):
        run_trigger.trigger_run(REQUEST)


@pytest.mark.parametrize(
    "error",
    [DataError("INSERT …", {}, Exception("unsupported Unicode escape sequence")), ValueError("bad conf")],
    ids=["unstorable-conf", "refused-conf"],
)
def test_a_run_the_database_or_dag_refuses_is_a_client_error(calls, error) -> None:
    calls.outcomes.append(error)
    with pytest.raises(UnroutedEvent):
        run_trigger.trigger_run(REQUEST)


def test_losing_an_insert_race_returns_the_winners_run(calls, monkeypatch: pytest.MonkeyPatch) -> None:
    calls.outcomes.append(IntegrityError("INSERT …", {}, Exception("UNIQUE constraint failed")))
    winner = run_trigger.TriggerOutcome("eventbridge__abc", "running", created=False)
    monkeypatch.setattr(run_trigger, "_existing", lambda dag_id, run_id: winner)
    assert run_trigger.trigger_run(REQUEST) == winner
