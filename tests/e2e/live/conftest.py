"""A real local stack (``airflow standalone`` + moto + endpoint server + MLflow, on free ports in a temp dir)
for the tests of this folder, which ask for ``live``.

Starting one costs 50–100 s of a 2-core machine, so they share one: ``make test`` runs this folder as one
unit on one worker (``tests/support/xdist_units.py``); the stack starts for the first test and stops after
the last. They must not depend on each other's order: each uses days of its own
(``tests.support.live_stack.LIVE_DAYS``) and finds every DAG paused, no run unfinished and no Variable set,
as it leaves them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.live_stack import LIVE_ENV
from tests.support.network import free_port


class LiveStack:
    """The one live stack of this test process: started when a test first asks for it, stopped once the
    next test does not (:func:`pytest_runtest_teardown`) or the session ends."""

    def __init__(self) -> None:
        self.stack: Any = None
        self._env = pytest.MonkeyPatch()

    def get(self, tmp_path_factory: pytest.TempPathFactory) -> Any:
        from devstack import stack as local_stack

        if self.stack is None:
            for name, value in LIVE_ENV.items():
                self._env.setenv(name, value)  # `up` (a test's restart too) passes them to Airflow
            stack = local_stack.Stack(
                local_dir=tmp_path_factory.mktemp("stack"),
                ports=local_stack.Ports(
                    control_plane=free_port(), endpoint=free_port(), airflow=free_port(), mlflow=free_port()
                ),
            )
            try:
                local_stack.up(stack)
            except BaseException:
                local_stack.down(stack)
                self._env.undo()
                raise
            self.stack = stack
        return self.stack

    def stop(self) -> None:
        from devstack import stack as local_stack

        if self.stack is not None:
            stack, self.stack = self.stack, None
            try:
                local_stack.down(stack)
            finally:
                self._env.undo()


_LIVE = LiveStack()


@pytest.fixture
def live(tmp_path_factory: pytest.TempPathFactory):
    """The shared live stack and clients of it; afterwards every DAG is paused, none has a run queued or
    running, and no Variable is set."""
    from devstack import stack as local_stack
    from devstack.airflow_api import AirflowApi

    stack = _LIVE.get(tmp_path_factory)
    session = local_stack.boto3_session()
    clients = {
        "stack": stack,
        "api": AirflowApi(stack.airflow_url, local_stack.LOCAL_USER, local_stack.LOCAL_PASSWORD),
        "s3": session.client("s3", endpoint_url=stack.control_plane_url),
        "sqs": session.client("sqs", endpoint_url=stack.control_plane_url),
    }
    yield clients
    if _LIVE.stack is stack:  # still up (a failed restart leaves nothing to tidy)
        api = clients["api"]  # its token outlives a restart: the secret is in the stack's airflow.cfg
        for dag_id in api.unpaused_dags():
            api.pause(dag_id)
        for run in api.unfinished_runs():  # or it would start (or go on) in the next test
            api.fail_run(run["dag_id"], run["dag_run_id"])
        for variable in api.get("/api/v2/variables", limit=100)["variables"]:
            api.delete_variable(variable["key"])


@pytest.hookimpl(trylast=True)  # after the test's own fixtures are torn down (they may use the stack)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or "live" not in getattr(nextitem, "fixturenames", ()):
        _LIVE.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _LIVE.stop()
