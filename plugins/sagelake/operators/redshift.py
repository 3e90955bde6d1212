"""Redshift Data API: the provider's operator on AWS, the local Redshift engine on the local target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator

from sagelake.config.settings import local_state_dir
from sagelake.config.target import is_local
from sagelake.lake.layout import check_dt

if TYPE_CHECKING:
    from airflow.sdk import Context


def role_arn(role: str, caller_arn: str) -> str:
    """An IAM role name as an ARN in the caller's account and partition (an ARN is returned as is).

    ``caller_arn`` is STS ``GetCallerIdentity``'s ``Arn``, so no account is ever written down.
    """
    if role.startswith("arn:"):
        return role
    parts = caller_arn.split(":")
    if len(parts) < 6 or not parts[4]:
        raise ValueError(f"cannot read the account of caller ARN {caller_arn!r}")
    return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"


def window_start(dt: str, days: int) -> str:
    """The first day of the ``days``-day window ending at ``dt`` (``YYYY-MM-DD``)."""
    from datetime import date, timedelta

    if days < 1:
        raise ValueError(f"a window has at least one day, not {days}")
    return (date.fromisoformat(check_dt(dt)) - timedelta(days=days - 1)).isoformat()


def result_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A ``GetStatementResult`` response as one dict per record (column name → value, NULL → None)."""
    names = [column["name"] for column in result.get("ColumnMetadata", [])]
    rows = []
    for record in result.get("Records", []):
        values = [None if f.get("isNull") else next(iter(f.values()), None) for f in record]
        rows.append(dict(zip(names, values, strict=True)))
    return rows


def data_api_parameters(parameters: Sequence[Mapping[str, str]] | None) -> dict[str, str] | None:
    """The Data API's ``[{"name": …, "value": …}]`` as ``{name: value}``."""
    if not parameters:
        return None
    return {str(p["name"]): str(p["value"]) for p in parameters}


class SagelakeRedshiftDataOperator(RedshiftDataOperator):
    """The provider's ``RedshiftDataOperator``; on the local target the SQL runs on the local Redshift engine.

    Extends :class:`airflow.providers.amazon.aws.operators.redshift_data.RedshiftDataOperator` (all its
    arguments; ``sql`` may name ``.sql`` files, rendered from the DAG's ``template_searchpath``). On the
    ``aws`` target it is the provider's code path against a Redshift Serverless workgroup (or a cluster),
    deferrable as usual; an empty ``secret_arn`` means none (the Data API's temporary credentials).

    On the ``local`` target :class:`sagelake.local.redshift.engine.LocalRedshiftEngine` runs the statements
    synchronously in the DuckDB file of ``workgroup_name`` (or ``cluster_identifier``) and ``database``
    under the local state directory: a string is ``ExecuteStatement``, a list ``BatchExecuteStatement`` (one
    transaction, all or nothing). It returns what the provider returns: the statement id (the sub-statement
    ids of a batch) or, with ``return_sql_result``, one ``GetStatementResult`` response per (sub-)statement.
    ``deferrable``, ``wait_for_completion``, ``poll_interval``, ``db_user``, ``secret_arn`` and
    ``with_event`` have no effect there; sessions (``session_id``) are refused.

    :param secret_arn: the name or ARN of the secret that enables db access; empty means none. (templated)
    """

    template_fields = (*RedshiftDataOperator.template_fields, "secret_arn")
    template_fields_renderers = {"sql": "sql"}

    def execute(self, context: Context) -> list[Any]:
        self.secret_arn = self.secret_arn or None
        if not is_local():
            return super().execute(context)
        return self._execute_locally()

    def _execute_locally(self) -> list[Any]:
        from sagelake.local.aws_session import access_from_hook
        from sagelake.local.redshift.engine import LocalRedshiftEngine, database_path

        if self.session_id is not None or self.session_keep_alive_seconds is not None:
            raise ValueError("Redshift Data API sessions are not supported on the local target")
        if sum(x is not None for x in (self.cluster_identifier, self.workgroup_name)) != 1:
            raise ValueError("Exactly one of cluster_identifier or workgroup_name must be provided")
        if not self.database:
            raise ValueError("database is required on the local target")
        parameters = data_api_parameters(self.parameters)
        if isinstance(self.sql, list) and parameters:
            raise ValueError("BatchExecuteStatement takes no parameters: render values into the SQL instead")
        access = access_from_hook(self.hook)
        glue = GlueCatalogHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        engine = LocalRedshiftEngine(
            database_path(local_state_dir(), self.workgroup_name or self.cluster_identifier, self.database),
            glue,
            s3_endpoint_url=access.endpoint("s3"),
            region=access.region,
            access_key_id=access.access_key_id,
            secret_access_key=access.secret_access_key,
            session_token=access.session_token,
        )
        self.log.info("Executing statement locally in %s: %s", engine.path, self.sql)
        if isinstance(self.sql, list):
            run = engine.batch_execute_statement(self.sql)
        else:
            run = engine.execute_statement(self.sql, parameters)
        self.statement_id = run.id
        for statement in run.statements:
            self.log.info("Statement %s finished: %s row(s)", statement.id, statement.result_rows)
        if self.return_sql_result:
            return [statement.get_statement_result() for statement in run.statements]
        return run.statement_ids
