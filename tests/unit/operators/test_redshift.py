"""The Redshift Data operator without Redshift: the provider's path on AWS, template fields (the warehouse
SQL files render), and the plain helpers the warehouse DAG uses."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator
from airflow.sdk import DAG

from sagelake.config.settings import SQL_DIR
from sagelake.operators.redshift import (
    SagelakeRedshiftDataOperator,
    data_api_parameters,
    result_rows,
    role_arn,
    window_start,
)


def test_role_arn_takes_account_and_partition_from_the_caller() -> None:
    caller = "arn:aws-cn:sts::210987654321:assumed-role/airflow/session"
    assert role_arn("spectrum", caller) == "arn:aws-cn:iam::210987654321:role/spectrum"
    assert role_arn("arn:aws:iam::1:role/given", caller) == "arn:aws:iam::1:role/given"
    with pytest.raises(ValueError, match="cannot read the account"):
        role_arn("spectrum", "not-an-arn")


def test_window_start() -> None:
    assert window_start("2026-03-02", 7) == "2026-02-24"
    assert window_start("2026-03-02", 1) == "2026-03-02"
    with pytest.raises(ValueError):
        window_start("2026-3-2", 7)


def test_result_rows_reads_every_field_kind() -> None:
    result = {
        "ColumnMetadata": [{"name": n} for n in ("s", "l", "d", "b", "n")],
        "Records": [
            [
                {"stringValue": "a"},
                {"longValue": 3},
                {"doubleValue": 0.5},
                {"booleanValue": True},
                {"isNull": True},
            ]
        ],
    }
    assert result_rows(result) == [{"s": "a", "l": 3, "d": 0.5, "b": True, "n": None}]
    assert result_rows({"ColumnMetadata": [], "Records": []}) == []


def test_data_api_parameters() -> None:
    assert data_api_parameters([{"name": "dt", "value": "2026-01-01"}]) == {"dt": "2026-01-01"}
    assert data_api_parameters(None) is None


def operator(**kwargs: Any) -> SagelakeRedshiftDataOperator:
    return SagelakeRedshiftDataOperator(
        **{"task_id": "q", "sql": "SELECT 1", "workgroup_name": "wg", "database": "dev", **kwargs}
    )


def test_on_aws_it_is_the_providers_operator(aws_target, context) -> None:
    op = operator(secret_arn="", deferrable=True)
    with mock.patch.object(RedshiftDataOperator, "execute", return_value=["sid"]) as provider:
        assert op.execute(context) == ["sid"]
    provider.assert_called_once_with(context)
    assert op.secret_arn is None  # an empty setting is no secret, not SecretArn=""


def test_template_fields_render_the_warehouse_sql(render) -> None:
    warehouse = {"warehouse_table": "wh", "spectrum_schema": "lake"}
    with DAG(
        "warehouse_test",
        schedule=None,
        template_searchpath=[str(SQL_DIR)],
        user_defined_macros={"warehouse": warehouse},
    ):
        op = operator(
            sql=["warehouse/delete_day.sql", "warehouse/insert_day.sql"],
            workgroup_name="{{ params.redshift_workgroup }}",
            database="{{ params.redshift_database }}",
            secret_arn="{{ params.redshift_secret_arn }}",
        )
    assert set(RedshiftDataOperator.template_fields) < set(op.template_fields)
    assert "secret_arn" in op.template_fields and op.template_fields_renderers["sql"] == "sql"
    load = {"dt": "2026-11-27", "version": "v7"}
    op.resolve_template_files()
    render(
        op,
        params={
            "redshift_workgroup": "wg-1",
            "redshift_database": "analytics",
            "redshift_secret_arn": "arn:secret",
        },
        warehouse=warehouse,
        ti=SimpleNamespace(xcom_pull=lambda task_ids: load if task_ids == "plan_load" else None),
    )
    assert (op.workgroup_name, op.database, op.secret_arn) == ("wg-1", "analytics", "arn:secret")
    delete, insert = op.sql
    assert "DELETE FROM public.wh" in delete and "WHERE dt = '2026-11-27'::DATE" in delete
    assert "FROM lake.churn_features AS f" in insert and "'v7'" in insert
    assert "WHERE f.dt = '2026-11-27'" in insert
