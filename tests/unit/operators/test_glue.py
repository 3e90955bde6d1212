"""Glue operators without Glue: the job operator defers on AWS and runs the script locally; partition
registration is idempotent. Hooks are mocked; the catalog is a small in-memory fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from sagelake.local import glue_runner
from sagelake.local.glue_runner import GlueRunResult
from sagelake.operators.glue import SagelakeGlueJobOperator
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
        monkeypatch.setenv("SAGELAKE_SPARK_GATEWAY_DIR", "/stack/spark-gateway")
        runs: list[tuple[Path, dict, Path]] = []

        def run_glue_script(script: Path, args: dict, s3: Any, work: Path, *, spark_gateway_dir: Path):
            runs.append((script, args, spark_gateway_dir))
            return GlueRunResult(outputs={"output_features": ["s3://lake/x.parquet"]}, duration_s=1.5)

        monkeypatch.setattr(glue_runner, "run_glue_script", run_glue_script)
        with (
            mock.patch.object(S3Hook, "get_conn"),
            mock.patch.object(GlueJobHook, "initialize_job") as initialize_job,
        ):
            run_id = glue_job().execute(context)  # deferrable=True: no deferral locally

        assert run_id == "local-manual__1"
        assert runs == [(GLUE_SCRIPT, SCRIPT_ARGS, Path("/stack/spark-gateway"))]
        initialize_job.assert_not_called()

    def test_a_rejected_input_fails_locally_without_retries(self, aws_target, monkeypatch, context) -> None:
        monkeypatch.setenv("SAGELAKE_TARGET", "local")

        def run_glue_script(script: Path, args: dict, s3: Any, work: Path, **_: Any) -> GlueRunResult:
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
