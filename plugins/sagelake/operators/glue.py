"""Glue: the job operator that runs locally on Spark, and Data Catalog partition registration."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowFailException

from sagelake.config.target import is_local
from sagelake.lake import catalog
from sagelake.lake.layout import Lake

if TYPE_CHECKING:
    from airflow.sdk import Context


def register_partitions(
    glue: Any, database: str, bucket: str, dt: str, tables: Sequence[str]
) -> dict[str, str]:
    """Ensure ``database`` and the lake's tables exist, then create or update partition ``dt`` of ``tables``.

    Idempotent (a retry updates what the first attempt created). Returns each table's partition location.
    """
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, Lake(bucket))
    return {table: catalog.register_partition(glue, database, table, dt) for table in tables}


class SagelakeGlueJobOperator(GlueJobOperator):
    """The provider's ``GlueJobOperator``; on the local target the same script runs on local Spark.

    Extends :class:`airflow.providers.amazon.aws.operators.glue.GlueJobOperator` and adds no argument:
    ``script_location`` is the script's path in ``include/glue/``. On the ``aws`` target the provider
    uploads it to ``s3_bucket``, creates or updates the Glue job and runs it (deferrable as usual).

    On the ``local`` target :func:`sagelake.local.glue_runner.run_glue_script` stages the ``--input_*``
    prefixes, runs the script on local Spark and replaces the ``--output_*`` partitions, synchronously:
    ``deferrable``, ``wait_for_completion`` and the Glue job settings (``create_job_kwargs``, ``iam_role_*``,
    ``num_of_dpus``…) have no effect, and the returned run id is ``local-<Airflow run id>``. A script that
    rejects its input (exit code 65) fails the task without retries, with the script's one-line reason.
    """

    def execute(self, context: Context) -> str | None:
        if not is_local():
            return super().execute(context)
        from sagelake.local.glue_runner import InputRejectedError, run_glue_script

        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        with tempfile.TemporaryDirectory(prefix="sagelake-glue-") as work:
            try:
                result = run_glue_script(Path(self.script_location), dict(self.script_args), s3, Path(work))
            except InputRejectedError as error:  # the same input is rejected again: no retry
                raise AirflowFailException(str(error)) from error
        self.log.info("Local Glue run of %s finished in %.1fs", self.job_name, result.duration_s)
        for name, uris in result.outputs.items():
            self.log.info("%s: %d object(s) written", name, len(uris))
        return f"local-{context['run_id']}"


class GlueCatalogPartitionOperator(AwsBaseOperator[GlueCatalogHook]):
    """Ensure the lake's Glue tables exist and register one ``dt`` partition of the given tables.

    Not a provider operator (the provider has no partition-registering one): an ``AwsBaseOperator`` on the
    provider's ``GlueCatalogHook``. A control-plane operation only, identical on the ``aws`` target and
    on the local control plane. Returns ``{table: partition location}``; safe to retry.

    :param database: Glue database of the lake's tables, created if missing. (templated)
    :param bucket: the lake's S3 bucket; table locations derive from it. (templated)
    :param dt: the partition to register, ``YYYY-MM-DD``. (templated)
    :param tables: names of the lake tables whose ``dt`` partition is registered. (templated)
    """

    aws_hook_class = GlueCatalogHook
    template_fields: Sequence[str] = aws_template_fields("database", "bucket", "dt", "tables")

    def __init__(self, *, database: str, bucket: str, dt: str, tables: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.bucket = bucket
        self.dt = dt
        self.tables = tables

    def execute(self, context: Context) -> dict[str, str]:
        locations = register_partitions(self.hook.conn, self.database, self.bucket, self.dt, self.tables)
        for table, location in locations.items():
            self.log.info("%s.%s partition dt=%s → %s", self.database, table, self.dt, location)
        return locations
