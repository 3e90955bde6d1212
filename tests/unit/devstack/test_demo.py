"""``make demo``: argument checks, the summary report and following the pipeline's two runs."""

from __future__ import annotations


def test_demo_refuses_the_aws_target_and_bad_dates(monkeypatch, capsys) -> None:
    from devstack import demo

    monkeypatch.setenv("SAGELAKE_TARGET", "aws")
    assert demo.main([]) == 1
    assert "unset SAGELAKE_TARGET" in capsys.readouterr().err
    monkeypatch.setenv("SAGELAKE_TARGET", "local")
    assert demo.main(["--dt", "2026-13-01"]) == 1
    assert "YYYY-MM-DD" in capsys.readouterr().err


def summary(**overrides: object) -> dict:
    return {
        "dt": "2026-11-26",
        "version": "20261126T101500000000Z-abcd1234",
        "etl": {
            "customers_landed": 10,
            "events_landed": 90,
            "features_rows": 9,
            "events_cleaned": 80,
            "quarantined": 11,
            "quarantined_by_reason": {"outlier": 11},
        },
        "checks": [
            {
                "name": "row_count",
                "value": 9.0,
                "expectation": "value >= 5",
                "passed": True,
                "severity": "error",
                "bytes_scanned": 2048,
            },
            {
                "name": "zero_event_share",
                "value": 0.5,
                "expectation": "value <= 0.2",
                "passed": False,
                "severity": "warn",
            },
        ],
        "model": {
            "training_job": "churn-20261126-abc-002-1f2e3d4c",
            "metrics": {"validation:auc": 0.8123},
            "mlflow": {"url": "http://127.0.0.1:5000/#/experiments/1/runs/abc"},
            "trials": 3,
            "tuning_job": "churn-20261126-abc",
        },
        "evaluation": {
            "report": "s3://lake/metrics/evaluation/report.html",
            "report_url": "http://127.0.0.1:4566/lake/metrics/evaluation/report.html?X-Amz-Signature=s",
            "challenger": {"auc": 0.8051, "log_loss": 0.41},
            "champion": None,
        },
        "decision": {
            "outcome": "approve",
            "reasons": ["no champion; auc=0.8051 meets the floor 0.7500"],
            "waiting": False,
            "where": "http://airflow/dags/churn_train_deploy/runs/r/tasks/ask_a_person/required_actions",
            "deployed": True,
        },
        "package": {
            "arn": "arn:aws:sagemaker:us-east-1:1:model-package/g/1",
            "status": "Approved",
            "description": "policy approve: no champion",
        },
        "endpoint": {"name": "sagelake-churn", "status": "InService"},
        "prediction": {"input": {"plan": "basic"}, "output": {"churn_probability": 0.25, "churned": 0}},
        "profile": {
            "report": "s3://lake/profiles/churn_features/r.html",
            "report_url": "http://x/r.html",
        },
        "warehouse": {"customers": 9, "plans": 3},
    } | overrides


def test_demo_summary_names_every_stage() -> None:
    from devstack.demo import format_summary

    text = format_summary(summary())
    for expected in (
        "dt=2026-11-26",
        "published version 20261126T101500000000Z-abcd1234",
        "customers=10",
        "feature rows=9",
        "quarantined  11",
        "PASS  row_count",
        "2048 B scanned",
        "WARN  zero_event_share",
        "tuning       churn-20261126-abc: 3 trials; best churn-20261126-abc-002-1f2e3d4c",
        "validation:auc=0.8123",
        "mlflow       http://127.0.0.1:5000/#/experiments/1/runs/abc",
        "held out: auc=0.8051 log_loss=0.4100  (no champion yet)",
        "report: s3://lake/metrics/evaluation/report.html",
        "open: http://127.0.0.1:4566/lake/metrics/evaluation/report.html?X-Amz-Signature=s",
        "decision     approve: no champion; auc=0.8051 meets the floor 0.7500",
        "when the policy asks, a person answers at http://airflow/dags/churn_train_deploy/runs/r/tasks/",
        "(InService)  now serving this model",
        "model-package/g/1  status=Approved",
        "sagelake-churn  (InService)",
        '"churn_probability": 0.25',
        "profile      s3://lake/profiles/churn_features/r.html",
        "open: http://x/r.html",
        "warehouse    9 customers of dt=2026-11-26 loaded (3 plans",
    ):
        assert expected in text, expected


def test_demo_summary_says_where_a_waiting_person_answers() -> None:
    from devstack.demo import format_summary

    text = format_summary(
        summary(
            evaluation={
                "report": "r.html",
                "report_url": "u",
                "challenger": {"auc": 0.81},
                "champion": {"auc": 0.80},
            },
            decision={
                "outcome": "ask",
                "reasons": ["auc 0.8100 vs champion 0.8000: below the margin"],
                "waiting": True,
                "where": "http://airflow/required",
                "deployed": False,
            },
        )
    )
    assert "held out: auc=0.8100 (champion 0.8000)" in text
    assert "waiting for a person: approve or reject at http://airflow/required" in text
    assert "still serving the champion" in text


class FakeApi:
    """Airflow runs that end at once in the given states; the runs after publishing are asset-triggered."""

    def __init__(self, prepare_state: str, train_state: str = "success", waiting: str | None = None) -> None:
        self.waiting = waiting  # a training run already waiting for a person when the demo starts
        self.states = {
            "churn_prepare": prepare_state,
            "churn_train_deploy": train_state,
            "lake_profile": "success",
            "warehouse_load": "success",
        }
        self.followed: list[str] = []

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        if run_id == self.waiting:
            return [{"task_id": "ask_a_person", "state": "awaiting_input"}]
        return [{"task_id": "only", "state": self.states[dag_id]}]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        self.followed.append(run_id)
        return {"state": self.states[dag_id]}

    def dag_runs(self, dag_id: str, **query) -> list[dict]:
        if query.get("state") == "running":
            return [{"dag_run_id": self.waiting}] if self.waiting and dag_id == "churn_train_deploy" else []
        return [
            {"dag_run_id": "scheduled", "run_type": "scheduled", "run_after": "2026-11-27T00:00:00"},
            {"dag_run_id": f"{dag_id}-1", "run_type": "asset_triggered", "run_after": "2026-11-26T10:00:01"},
        ]


def test_follow_pipeline_returns_the_runs_the_asset_event_started(capsys) -> None:
    from devstack.demo import follow_pipeline

    api = FakeApi("success")
    runs = follow_pipeline(api, "http://airflow", "prep-1", "2026-11-26T10:00:00", 5)
    assert runs == {d: f"{d}-1" for d in ("churn_train_deploy", "lake_profile", "warehouse_load")}
    assert api.followed == ["prep-1", "churn_train_deploy-1"]  # to the first prediction, no further
    assert "churn_train_deploy run churn_train_deploy-1 started" in capsys.readouterr().out


def test_the_runs_beside_training_are_followed_afterwards_and_every_stage_is_timed(capsys) -> None:
    from devstack.demo import Clock, follow_beside, follow_pipeline

    api, clock = FakeApi("success"), Clock()
    runs = follow_pipeline(api, "http://airflow", "prep-1", "2026-11-26T10:00:00", 5, clock)
    assert follow_beside(api, "http://airflow", runs, 5, clock)
    assert api.followed == ["prep-1", "churn_train_deploy-1", "lake_profile-1", "warehouse_load-1"]
    names = [name for name, _ in clock.stages]
    assert names == [
        "churn_prepare: partition checked and published",
        "churn_train_deploy: tuned, evaluated, decided, deployed",
        "lake_profile done",
        "warehouse_load done",
    ]
    times = [at for _, at in clock.stages]
    assert times == sorted(times)
    out = capsys.readouterr().out
    assert "s] [churn_prepare] only" in out  # each state change carries the elapsed time
    table = clock.table().splitlines()
    assert table[1] == "stage times (s):" and len(table) == 2 + len(names)
    assert table[-1].endswith("warehouse_load done")

    api = FakeApi("success")
    api.states["warehouse_load"] = "failed"
    assert not follow_beside(api, "http://airflow", runs, 5)
    assert "warehouse_load failed" in capsys.readouterr().err


def test_follow_asks_for_the_run_state_only_once_no_task_is_left_to_run(monkeypatch, capsys) -> None:
    from devstack import demo

    class Running:
        """A run whose one task is queued, then running for two polls, then done."""

        def __init__(self) -> None:
            self.states = iter(["queued", "running", "running", "success"])
            self.run_asked_after: list[str] = []
            self.state = "none"

        def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
            self.state = next(self.states, self.state)
            return [{"task_id": "only", "state": self.state}, {"task_id": "branch", "state": "skipped"}]

        def dag_run(self, dag_id: str, run_id: str) -> dict:
            self.run_asked_after.append(self.state)
            return {"state": "success" if self.state == "success" else "running"}

    monkeypatch.setattr(demo, "POLL_S", 0.0)
    api = Running()
    assert demo.follow(api, "churn_prepare", "run-1", timeout_s=5) == "success"
    assert api.run_asked_after == ["success"]  # not at every poll while a task was queued or running
    assert [line.split()[-1] for line in capsys.readouterr().out.splitlines()] == [
        "queued",
        "skipped",
        "running",
        "success",
    ]

    # a run that ends with tasks left to run (marked failed, say) is seen at the next periodic ask
    monkeypatch.setattr(demo, "RUN_STATE_EVERY_S", 0.0)
    api = Running()
    api.dag_run = lambda dag_id, run_id: {"state": "failed"}
    assert demo.follow(api, "churn_prepare", "run-1", timeout_s=5) == "failed"


def test_follow_pipeline_stops_at_the_first_failed_run(capsys) -> None:
    from devstack.demo import follow_pipeline

    api = FakeApi("failed")
    assert follow_pipeline(api, "http://airflow", "prep-1", "2026-11-26T10:00:00", 5) is None
    assert api.followed == ["prep-1"]
    assert "churn_prepare failed; see the Airflow UI at http://airflow" in capsys.readouterr().err
    api = FakeApi("success", train_state="failed")
    assert follow_pipeline(api, "http://airflow", "prep-1", "2026-11-26T10:00:00", 5) is None
    assert "churn_train_deploy failed" in capsys.readouterr().err


def test_follow_pipeline_does_not_wait_for_a_person(capsys) -> None:
    from devstack.demo import follow_pipeline

    api = FakeApi("success", train_state="awaiting_input")  # the run stays "running" until someone answers
    runs = follow_pipeline(api, "http://airflow", "prep-1", "2026-11-26T10:00:00", 5)
    assert runs is not None and runs["churn_train_deploy"] == "churn_train_deploy-1"
    assert "churn_train_deploy failed" not in capsys.readouterr().err


def test_a_day_published_already_is_landed_as_a_new_export() -> None:
    from botocore.exceptions import ClientError

    from devstack.demo import export_seed

    class Glue:
        def __init__(self, partition: dict | None) -> None:
            self.partition = partition

        def get_partition(self, **_: object) -> dict:
            if self.partition is None:
                raise ClientError({"Error": {"Code": "EntityNotFoundException"}}, "GetPartition")
            return {"Partition": self.partition}

    assert export_seed(Glue(None), "sagelake", "2026-11-26", now=1_790_000_000.5) == 0
    published = {"StorageDescriptor": {"Location": "s3://lake/curated/x/"}, "Parameters": {}}
    assert export_seed(Glue(published), "sagelake", "2026-11-26", now=1_790_000_000.5) == 1_790_000_000


def test_a_training_run_waiting_for_a_person_is_reported_not_waited_for(capsys) -> None:
    from devstack.demo import follow_pipeline

    api = FakeApi("success", waiting="asset_triggered__earlier")  # max_active_runs=1: the new day queues
    runs = follow_pipeline(api, "http://airflow", "prep-1", "2026-11-26T10:00:00", 5)
    assert runs is not None and runs["churn_train_deploy"] == "asset_triggered__earlier"
    out = capsys.readouterr().out
    assert "churn_train_deploy run asset_triggered__earlier is waiting for a person" in out
    assert "churn_train_deploy run churn_train_deploy-1 started" not in out
