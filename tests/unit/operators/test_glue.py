"""Glue operators without Glue: the job operator defers on AWS and runs the script locally; partition
registration is idempotent. Hooks are mocked; the catalog is a small in-memory fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from botocore.exceptions import ClientError

from sagelake.lake import catalog
from sagelake.lake.layout import Lake
from sagelake.local import glue_runner
from sagelake.local.glue_runner import GlueRunResult
from sagelake.operators.glue import GlueCatalogPartitionOperator, SagelakeGlueJobOperator, register_partitions
from tests.support.constants import GLUE_SCRIPT
from tests.support.pipeline import DT

JOB = "sagelake-churn-features"
SCRIPT_ARGS = {"--dt": DT, "--output_features": f"s3://lake/curated/churn_features/dt={DT}/"}


def glue_job(**kwargs: Any) -> SagelakeGlueJobOperator:
    return SagelakeGlueJobOperator(
        **{
            "task_id": "glue_churn_features",
            "job_name": JOB,
            "script_location": str(GLUE_SCRIPT),
            "s3_bucket": "lake",
            "iam_role_name": "sagelake-glue",
            "script_args": dict(SCRIPT_ARGS),
            "deferrable": True,
            "waiter_delay": 30,
            **kwargs,
        }
    )


class TestSagelakeGlueJobOperator:
    @mock.patch.object(S3Hook, "load_file")
    @mock.patch.object(GlueJobHook, "initialize_job", return_value={"JobRunId": "jr_0123"})
    def test_deferred(self, initialize_job, load_file, aws_target, context) -> None:
        op = glue_job()
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context)

        trigger = deferred.value.trigger
        assert isinstance(trigger, GlueJobCompleteTrigger)
        assert (trigger.job_name, trigger.run_id, trigger.waiter_delay) == (JOB, "jr_0123", 30)
        assert deferred.value.method_name == "execute_complete"
        assert load_file.call_args.args[0] == str(GLUE_SCRIPT)  # the script in include/glue/ goes to S3
        script_args = initialize_job.call_args.args[0]
        assert {k: script_args[k] for k in SCRIPT_ARGS} == SCRIPT_ARGS

    def test_execute_complete(self, context) -> None:
        op = glue_job()
        assert op.execute_complete(context, {"status": "success", "run_id": "jr_0123"}) == "jr_0123"
        with pytest.raises(AirflowException, match="Error in glue job"):
            op.execute_complete(context, {"status": "error", "message": "AWS Glue job failed."})

    def test_local_target_runs_the_script_on_spark_without_glue(self, aws_target, monkeypatch, context):
        monkeypatch.setenv("SAGELAKE_TARGET", "local")
        runs: list[tuple[Path, dict]] = []

        def run_glue_script(script: Path, args: dict, s3: Any, work: Path) -> GlueRunResult:
            runs.append((script, args))
            return GlueRunResult(outputs={"output_features": ["s3://lake/x.parquet"]}, duration_s=1.5)

        monkeypatch.setattr(glue_runner, "run_glue_script", run_glue_script)
        with (
            mock.patch.object(S3Hook, "get_conn"),
            mock.patch.object(GlueJobHook, "initialize_job") as initialize_job,
        ):
            run_id = glue_job().execute(context)  # deferrable=True: no deferral locally

        assert run_id == "local-manual__1"
        assert runs == [(GLUE_SCRIPT, SCRIPT_ARGS)]
        initialize_job.assert_not_called()

    def test_a_rejected_input_fails_locally_without_retries(self, aws_target, monkeypatch, context) -> None:
        monkeypatch.setenv("SAGELAKE_TARGET", "local")

        def run_glue_script(script: Path, args: dict, s3: Any, work: Path) -> GlueRunResult:
            raise glue_runner.InputRejectedError("raw_customers: s3://lake/c.csv: lacks column 'age'", 65, "")

        monkeypatch.setattr(glue_runner, "run_glue_script", run_glue_script)
        with mock.patch.object(S3Hook, "get_conn"), pytest.raises(AirflowFailException, match="lacks column"):
            glue_job().execute(context)

    def test_template_fields(self, render) -> None:
        op = render(
            glue_job(
                job_name="{{ params.glue_job_name }}",
                s3_bucket="{{ params.bucket }}",
                script_args={"--dt": "{{ params.dt }}", "--input": "s3://{{ params.bucket }}/raw/"},
            ),
            params={"glue_job_name": JOB, "bucket": "lake", "dt": DT},
        )
        assert (op.job_name, op.s3_bucket) == (JOB, "lake")
        assert op.script_args == {"--dt": DT, "--input": "s3://lake/raw/"}
        assert op.template_fields_renderers["script_args"] == "json"


def already_exists(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "AlreadyExistsException", "Message": "exists"}}, operation)


class FakeGlue:
    """The Glue Data Catalog calls the catalog module makes, in memory, with Glue's AlreadyExists errors."""

    def __init__(self) -> None:
        self.databases: set[str] = set()
        self.tables: dict[tuple[str, str], dict] = {}
        self.partitions: dict[tuple[str, str, str], dict] = {}
        self.updated_partitions = 0

    def create_database(self, DatabaseInput: dict) -> None:
        if DatabaseInput["Name"] in self.databases:
            raise already_exists("CreateDatabase")
        self.databases.add(DatabaseInput["Name"])

    def create_table(self, DatabaseName: str, TableInput: dict) -> None:
        if (DatabaseName, TableInput["Name"]) in self.tables:
            raise already_exists("CreateTable")
        self.update_table(DatabaseName, TableInput)

    def update_table(self, DatabaseName: str, TableInput: dict) -> None:
        self.tables[DatabaseName, TableInput["Name"]] = TableInput

    def get_table(self, DatabaseName: str, Name: str) -> dict:
        return {"Table": self.tables[DatabaseName, Name]}

    def create_partition(self, DatabaseName: str, TableName: str, PartitionInput: dict) -> None:
        key = (DatabaseName, TableName, PartitionInput["Values"][0])
        if key in self.partitions:
            raise already_exists("CreatePartition")
        self.partitions[key] = PartitionInput

    def update_partition(self, DatabaseName: str, TableName: str, PartitionValueList: list, PartitionInput):
        self.partitions[DatabaseName, TableName, PartitionValueList[0]] = PartitionInput
        self.updated_partitions += 1


class TestGlueCatalogPartitionOperator:
    def test_registers_partitions_under_the_table_roots_and_a_retry_updates_them(self) -> None:
        glue = FakeGlue()
        expected = {
            "raw_customers": f"s3://lake/raw/customers/dt={DT}/",
            "raw_events": f"s3://lake/raw/events/dt={DT}/",
        }
        assert register_partitions(glue, "sagelake", "lake", DT, ["raw_customers", "raw_events"]) == expected
        assert glue.databases == {"sagelake"}  # and every lake table:
        assert {name for _, name in glue.tables} == set(catalog.table_inputs(Lake("lake")))

        # a retry: everything exists already, the same partitions are updated in place
        assert register_partitions(glue, "sagelake", "lake", DT, ["raw_customers", "raw_events"]) == expected
        assert sorted(glue.partitions) == [("sagelake", t, DT) for t in ("raw_customers", "raw_events")]
        assert glue.updated_partitions == 2
        stored = glue.partitions["sagelake", "raw_customers", DT]["StorageDescriptor"]
        assert stored["Location"] == expected["raw_customers"]

    def test_a_malformed_dt_registers_nothing(self) -> None:
        glue = FakeGlue()
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            register_partitions(glue, "sagelake", "lake", "26/11/2026", ["churn_features"])
        assert glue.partitions == {}

    def test_execute_returns_the_locations_from_the_hooks_client(self, aws_target, context) -> None:
        glue = FakeGlue()
        op = GlueCatalogPartitionOperator(
            task_id="register", database="sagelake", bucket="lake", dt=DT, tables=["churn_features"]
        )
        with mock.patch.object(GlueCatalogHook, "conn", new_callable=mock.PropertyMock, return_value=glue):
            locations = op.execute(context)
        assert locations == {"churn_features": f"s3://lake/curated/churn_features/dt={DT}/"}
        assert list(glue.partitions) == [("sagelake", "churn_features", DT)]

    def test_template_fields(self, render) -> None:
        op = GlueCatalogPartitionOperator(
            task_id="register",
            database="{{ params.glue_database }}",
            bucket="{{ params.bucket }}",
            dt="{{ params.dt or ds }}",
            tables=["raw_{{ params.kind }}"],
        )
        render(
            op, params={"glue_database": "sagelake", "bucket": "lake", "dt": None, "kind": "events"}, ds=DT
        )
        assert (op.database, op.bucket, op.dt, op.tables) == ("sagelake", "lake", DT, ["raw_events"])
