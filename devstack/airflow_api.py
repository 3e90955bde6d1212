"""A minimal client of Airflow 3's REST API (``/auth/token`` JWT + ``/api/v2``), stdlib only."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class AirflowApiError(RuntimeError):
    """An unexpected answer from the Airflow API."""


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._token: str | None = None

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise AirflowApiError(f"{method} {path} → HTTP {error.code}: {detail}") from None
        return json.loads(raw) if raw else None

    def token(self) -> str:
        if self._token is None:
            answer = self._request(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            self._token = answer["access_token"]
        return self._token

    def get(self, path: str, **query: Any) -> Any:
        suffix = f"?{urllib.parse.urlencode(query, doseq=True)}" if query else ""
        return self._request("GET", path + suffix)

    def wait_for_dag(self, dag_id: str, timeout_s: float = 180) -> dict[str, Any]:
        """Wait until the DAG processor has parsed ``dag_id``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.get(f"/api/v2/dags/{dag_id}")
            except AirflowApiError as error:
                if "404" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})

    def unpaused_dags(self) -> list[str]:
        """The ids of the DAGs that are not paused."""
        return [dag["dag_id"] for dag in self.get("/api/v2/dags", paused="false", limit=100)["dags"]]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def dag_runs(self, dag_id: str, **query: Any) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", **query)["dag_runs"]

    def unfinished_runs(self) -> list[dict[str, Any]]:
        """Every DAG's runs that are queued or running."""
        return self.get("/api/v2/dags/~/dagRuns", state=["queued", "running"], limit=100)["dag_runs"]

    def fail_run(self, dag_id: str, run_id: str) -> None:
        """Mark a run failed (its unfinished tasks end), as "Mark as failed" in the UI does."""
        run = urllib.parse.quote(run_id, safe="")
        self._request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run}", {"state": "failed"})

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        run = urllib.parse.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        run = urllib.parse.quote(run_id, safe="")
        entry = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/xcomEntries/{key}",
            deserialize="true",
        )
        return entry["value"]

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        """Start a run of ``dag_id`` now, with ``conf`` (its params)."""
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        return self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)

    def set_variable(self, key: str, value: str) -> None:
        """Create or replace the Airflow Variable ``key``."""
        body = {"key": key, "value": value}
        try:
            self._request("PATCH", f"/api/v2/variables/{urllib.parse.quote(key)}", body)
        except AirflowApiError as error:
            if "404" not in str(error):
                raise
            self._request("POST", "/api/v2/variables", body)

    def delete_variable(self, key: str) -> None:
        """Remove the Airflow Variable ``key`` (nothing to do if there is none)."""
        try:
            self._request("DELETE", f"/api/v2/variables/{urllib.parse.quote(key)}")
        except AirflowApiError as error:
            if "404" not in str(error):
                raise

    def _hitl_path(self, dag_id: str, run_id: str, task_id: str) -> str:
        run = urllib.parse.quote(run_id, safe="")
        return f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/-1/hitlDetails"

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The human-in-the-loop request of a task (what the Required Actions page shows)."""
        return self.get(self._hitl_path(dag_id, run_id, task_id))

    def respond(
        self, dag_id: str, run_id: str, task_id: str, option: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Answer a human-in-the-loop request as the logged-in user (``PATCH …/hitlDetails``)."""
        body = {"chosen_options": [option], "params_input": params or {}}
        return self._request("PATCH", self._hitl_path(dag_id, run_id, task_id), body)
