"""Athena data-quality gate: one check per task, run on Athena (AWS) or on DuckDB (local)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sagelake.config.target import is_local
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.quality import checks as quality
from sagelake.quality import results as quality_results

if TYPE_CHECKING:
    from airflow.sdk import Context


def rows_from_athena_results(response: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """Columns and rows of a ``GetQueryResults`` response of a SELECT (first row is the header)."""
    rows = [[cell.get("VarCharValue") for cell in row["Data"]] for row in response["ResultSet"]["Rows"]]
    if not rows:
        return [], []
    return rows[0], [tuple(row) for row in rows[1:]]


def check_verdict(
    check_file: Path, columns: list[str], rows: list[tuple]
) -> tuple[quality.CheckResult, str | None]:
    """The verdict of the check in ``check_file`` on its query's result, and why the task must fail, if so.

    Only a violated ``error`` check fails the task; a violated ``warn`` check is reported (``passed`` false).
    """
    spec = quality.load_check(check_file)
    result = quality.evaluate(spec, quality.value_from_result(columns, rows))
    if result.passed or spec.severity != "error":
        return result, None
    return result, (
        f"quality check {spec.name} failed: value={result.value} does not satisfy "
        f"{result.expectation} ({spec.description})"
    )


class QualityCheckOperator(AthenaOperator):
    """Run one declarative check from ``include/sql/checks/`` and fail the task when it is violated.

    Extends :class:`airflow.providers.amazon.aws.operators.athena.AthenaOperator`: ``query`` is set from
    ``check_file`` (a Jinja template rendered by Airflow from the DAG's ``template_searchpath``); the other
    arguments are the provider's. The check's verdict (:meth:`sagelake.quality.checks.CheckResult.as_dict`)
    is returned as XCom instead of the query execution id.

    On the ``aws`` target the provider runs the query on Athena (deferrable as usual) and the verdict is
    computed from ``GetQueryResults``. On the ``local`` target the rendered SQL runs synchronously on DuckDB
    (the local Athena engine, ``LocalAthenaEngine``) against the local Glue catalog, and the result CSV is
    written to ``output_location`` as Athena would; ``deferrable``, ``workgroup`` and ``catalog`` have no
    effect there, except that the workgroup's ``BytesScannedCutoffPerQuery`` (read from the control plane)
    fails a query that would scan more.

    The bytes the query scanned are logged and returned with the verdict (Athena's ``DataScannedInBytes``;
    locally the size of the files read). With ``results_bucket`` and ``dt``, the verdict is also recorded
    as a row of the ``quality_results`` table (:mod:`sagelake.quality.results`), failed checks included.

    :param check_file: the check's ``.sql`` file; its header comments declare the expectation and severity
        (see :mod:`sagelake.quality.checks`) and its body becomes ``query``.
    :param dt: the partition the check audits, the ``dt`` of its ``quality_results`` row. (templated)
    :param results_bucket: the lake bucket whose ``quality_results`` table records the verdict; None
        records nothing. (templated)
    :param version: the staged version the check audits, recorded with the verdict. (templated)
    :param bytes_scanned_cutoff: local target only: fail a query that would scan more bytes; None: the
        workgroup's ``BytesScannedCutoffPerQuery``, if it has one.
    """

    template_fields: Sequence[str] = (*AthenaOperator.template_fields, "dt", "results_bucket", "version")

    def __init__(
        self,
        *,
        check_file: Path,
        dt: str | None = None,
        results_bucket: str | None = None,
        version: str | None = None,
        bytes_scanned_cutoff: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.check_file = Path(check_file)
        self.dt = dt
        self.results_bucket = results_bucket
        self.version = version
        self.bytes_scanned_cutoff = bytes_scanned_cutoff
        self.bytes_scanned: int | None = None
        super().__init__(query=f"{self.check_file.parent.name}/{self.check_file.name}", **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        if not is_local():
            query_execution_id = super().execute(context)
            return self._evaluate(context, *self._athena_results(query_execution_id))
        columns, rows = self._run_locally()
        return self._evaluate(context, columns, rows)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        query_execution_id = super().execute_complete(context, event)
        return self._evaluate(context, *self._athena_results(query_execution_id))

    def _athena_results(self, query_execution_id: str | None) -> tuple[list[str], list[tuple]]:
        response = self.hook.get_query_results(query_execution_id) if query_execution_id else None
        if response is None:  # the hook answers None for a query that did not succeed
            raise AirflowException(f"no results for Athena query {query_execution_id}")
        info = self.hook.get_query_info(query_execution_id)
        scanned = info.get("QueryExecution", {}).get("Statistics", {}).get("DataScannedInBytes")
        self.bytes_scanned = int(scanned) if scanned is not None else None
        return rows_from_athena_results(response)

    def _run_locally(self) -> tuple[list[str], list[tuple]]:
        from sagelake.local.athena.engine import LocalAthenaEngine
        from sagelake.local.aws_session import access_from_hook

        access = access_from_hook(self.hook)
        session = self.hook.get_session()
        cutoff = self.bytes_scanned_cutoff
        if cutoff is None and self.workgroup:  # the workgroup's limit, as Athena enforces it
            from sagelake.lake.setup import workgroup_limits

            cutoff = workgroup_limits(self.hook.get_conn(), self.workgroup).bytes_scanned_cutoff
        with LocalAthenaEngine(
            session.client("glue", endpoint_url=access.endpoint("glue"), region_name=access.region),
            s3_endpoint_url=access.endpoint("s3"),
            region=access.region,
            access_key_id=access.access_key_id,
            secret_access_key=access.secret_access_key,
            session_token=access.session_token,
            bytes_scanned_cutoff=cutoff,
        ) as engine:
            result = engine.execute(self.query, self.database)
        self.bytes_scanned = result.bytes_scanned
        if self.output_location:
            self.query_execution_id = str(uuid.uuid4())
            bucket, prefix = split_s3_uri(self.output_location.rstrip("/") + "/")
            s3 = session.client("s3", endpoint_url=access.endpoint("s3"), region_name=access.region)
            s3.put_object(Bucket=bucket, Key=f"{prefix}{self.query_execution_id}.csv", Body=result.to_csv())
            self.log.info("Local query %s results in %s", self.query_execution_id, self.output_location)
        return result.columns, result.rows

    def _evaluate(self, context: Context, columns: list[str], rows: list[tuple]) -> dict[str, Any]:
        result, failure = check_verdict(self.check_file, columns, rows)
        self.log.info(
            "check %s: value=%s expect %s → %s (%s bytes scanned)",
            result.name,
            result.value,
            result.expectation,
            "PASS" if result.passed else "FAIL",
            self.bytes_scanned,
        )
        if self.results_bucket and self.dt:
            self._record(context, result)
        if failure:
            raise AirflowFailException(failure)  # no retry: the data is wrong, not the run
        return {**result.as_dict(), "bytes_scanned": self.bytes_scanned}

    def _record(self, context: Context, result: quality.CheckResult) -> None:
        """Append the verdict to the ``quality_results`` table (one row per check and run)."""
        row = quality_results.result_row(
            quality.load_check(self.check_file),
            result,
            dag_id=self.dag_id,
            run_id=context["run_id"],
            version=self.version,
            bytes_scanned=self.bytes_scanned,
            checked_at=datetime.now(UTC),
        )
        s3 = S3Hook(aws_conn_id=self.aws_conn_id).get_conn()
        glue = GlueCatalogHook(aws_conn_id=self.aws_conn_id).get_conn()
        uri = quality_results.record(s3, glue, self.database, Lake(self.results_bucket), self.dt, row)
        self.log.info("verdict recorded in %s", uri)
