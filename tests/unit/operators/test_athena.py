"""The quality gate without Athena: it defers on AWS, and turns the query result into a verdict that passes,
warns or fails the task. Athena's hook is mocked; the checks are small files written by each test."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.triggers.athena import AthenaTrigger
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from sagelake.operators.athena import QualityCheckOperator, check_verdict, rows_from_athena_results
from tests.support.constants import CHECKS_DIR
from tests.support.pipeline import DT


def test_rows_from_athena_results() -> None:
    response = {
        "ResultSet": {"Rows": [{"Data": [{"VarCharValue": "value"}]}, {"Data": [{"VarCharValue": "42"}]}]}
    }
    assert rows_from_athena_results(response) == (["value"], [("42",)])
    assert rows_from_athena_results({"ResultSet": {"Rows": []}}) == ([], [])


def athena_results(*values: str) -> dict[str, Any]:
    """A ``GetQueryResults`` response of ``SELECT … AS value``: the header row, then one row per value."""
    rows = [{"Data": [{"VarCharValue": "value"}]}] + [{"Data": [{"VarCharValue": v}]} for v in values]
    return {"ResultSet": {"Rows": rows}}


def write_check(directory: Path, name: str, severity: str, expect: str) -> Path:
    path = directory / f"{name}.sql"
    path.write_text(
        f"-- description: {name} for the test\n-- severity: {severity}\n-- expect: {expect}\n"
        "SELECT count(*) AS value FROM {{ params.glue_database }}.churn_features\n"
    )
    return path


@pytest.fixture()
def row_count(tmp_path: Path) -> Path:
    return write_check(tmp_path, "row_count", "error", "value >= 500")


@pytest.fixture()
def zero_event_share(tmp_path: Path) -> Path:
    return write_check(tmp_path, "zero_event_share", "warn", "value <= 0.2")


def quality_check(check_file: Path, **kwargs: Any) -> QualityCheckOperator:
    return QualityCheckOperator(
        **{
            "task_id": f"check_{check_file.stem}",
            "check_file": check_file,
            "database": "sagelake",
            "output_location": "s3://lake/athena-results/",
            "deferrable": True,
            "sleep_time": 5,
            **kwargs,
        }
    )


def test_check_verdict_passes_warns_or_fails(row_count: Path, zero_event_share: Path) -> None:
    result, failure = check_verdict(row_count, ["value"], [("812",)])
    assert (result.passed, result.value, failure) == (True, 812.0, None)

    result, failure = check_verdict(zero_event_share, ["value"], [("0.35",)])
    assert (result.passed, result.severity, failure) == (False, "warn", None)  # reported, not fatal

    result, failure = check_verdict(row_count, ["value"], [("12",)])
    assert not result.passed
    assert (
        failure
        == "quality check row_count failed: value=12.0 does not satisfy value >= 500 (row_count for the test)"
    )


def query_info(scanned: int) -> dict[str, Any]:
    """A ``GetQueryExecution`` response of a finished query that scanned ``scanned`` bytes."""
    return {
        "QueryExecution": {"Status": {"State": "SUCCEEDED"}, "Statistics": {"DataScannedInBytes": scanned}}
    }


class TestQualityCheckOperator:
    @pytest.fixture(autouse=True)
    def get_query_info(self) -> Any:
        with mock.patch.object(AthenaHook, "get_query_info", return_value=query_info(123_456)) as patched:
            yield patched

    @mock.patch.object(AthenaHook, "run_query", return_value="qid-0001")
    def test_deferred(self, run_query, row_count, aws_target, context) -> None:
        op = quality_check(row_count)
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context)

        trigger = deferred.value.trigger
        assert isinstance(trigger, AthenaTrigger)
        assert trigger.serialize()[1]["query_execution_id"] == "qid-0001"
        assert trigger.waiter_delay == 5
        assert deferred.value.method_name == "execute_complete"
        assert (
            run_query.call_args.args[0] == f"{row_count.parent.name}/row_count.sql"
        )  # the file is the query

    @mock.patch.object(AthenaHook, "get_query_results")
    def test_execute_complete_returns_the_verdict(self, get_query_results, row_count, context) -> None:
        get_query_results.return_value = athena_results("812")
        verdict = quality_check(row_count).execute_complete(context, {"status": "success", "value": "qid-1"})
        assert verdict == {
            "name": "row_count",
            "value": 812.0,
            "expectation": "value >= 500",
            "passed": True,
            "severity": "error",
            "bytes_scanned": 123_456,  # Athena's statistics of the query
        }
        get_query_results.assert_called_once_with("qid-1")

    @mock.patch.object(AthenaHook, "get_query_results")
    def test_execute_complete_fails_on_a_violated_error_check(self, get_query_results, row_count, context):
        get_query_results.return_value = athena_results("12")
        with pytest.raises(AirflowFailException, match="value=12.0 does not satisfy value >= 500"):
            quality_check(row_count).execute_complete(context, {"status": "success", "value": "qid-1"})

    @mock.patch.object(AthenaHook, "get_query_results")
    def test_execute_complete_reports_a_violated_warn_check(
        self, get_query_results, zero_event_share, context
    ) -> None:
        get_query_results.return_value = athena_results("0.35")
        event = {"status": "success", "value": "qid-1"}
        verdict = quality_check(zero_event_share).execute_complete(context, event)
        assert (verdict["passed"], verdict["value"]) == (False, 0.35)

    @mock.patch.object(AthenaHook, "get_query_results")
    def test_execute_complete_fails_on_a_failure_event(self, get_query_results, row_count, context) -> None:
        with pytest.raises(AirflowException, match="Error while waiting"):
            quality_check(row_count).execute_complete(context, {"status": "error", "message": "FAILED"})
        get_query_results.assert_not_called()

    @mock.patch.object(AthenaHook, "get_query_results", return_value=None)
    def test_execute_complete_fails_without_results(self, get_query_results, row_count, context) -> None:
        with pytest.raises(AirflowException, match="no results for Athena query qid-1"):
            quality_check(row_count).execute_complete(context, {"status": "success", "value": "qid-1"})

    @mock.patch.object(AthenaHook, "get_query_results", return_value=athena_results("812"))
    @mock.patch.object(AthenaHook, "poll_query_status", return_value="SUCCEEDED")
    @mock.patch.object(AthenaHook, "run_query", return_value="qid-0001")
    def test_execute_without_deferral_returns_the_verdict(self, _, __, ___, row_count, aws_target, context):
        verdict = quality_check(row_count, deferrable=False).execute(context)
        assert (verdict["name"], verdict["passed"]) == ("row_count", True)

    def test_template_fields(self, render) -> None:
        with DAG("t", schedule=None, template_searchpath=[str(CHECKS_DIR.parent)]):
            op = quality_check(
                CHECKS_DIR / "row_count.sql",
                database="{{ params.glue_database }}",
                output_location="s3://{{ params.bucket }}/athena-results/",
                workgroup="{{ params.athena_workgroup }}",
                dt="{{ params.dt or ds }}",
                results_bucket="{{ params.bucket }}",
                version="{{ params.version }}",
            )
        render(
            op,
            params={
                "glue_database": "sagelake",
                "bucket": "lake",
                "athena_workgroup": "wg",
                "dt": None,
                "version": "v1",
            },
            ds=DT,
        )
        assert (op.database, op.output_location, op.workgroup) == (
            "sagelake",
            "s3://lake/athena-results/",
            "wg",
        )
        assert (op.dt, op.results_bucket, op.version) == (DT, "lake", "v1")
        assert "FROM sagelake.churn_features" in op.query  # the check file, rendered
        assert f"dt = '{DT}'" in op.query
        assert op.template_fields_renderers == {"query": "sql"}
