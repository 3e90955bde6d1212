"""Glue: the job operator that runs locally on Spark, and Data Catalog partition registration."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from sagelake.config.target import is_local
from sagelake.lake import catalog
from sagelake.lake.layout import Lake


class SagelakeGlueJobOperator(GlueJobOperator):
    """The provider's ``GlueJobOperator``; on the local target the same script runs on local Spark.

    ``script_location`` is the script's path in ``include/glue/``: on AWS the provider uploads it to
    ``s3_bucket`` and runs a Glue job; locally :func:`sagelake.local.glue_runner.run_glue_script` stages
    the ``--input_*`` prefixes, runs the script, and replaces the ``--output_*`` partitions.
    """

    def execute(self, context: Any) -> str | None:
        if not is_local():
            return super().execute(context)
        from sagelake.local.glue_runner import run_glue_script

        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        with tempfile.TemporaryDirectory(prefix="sagelake-glue-") as work:
            result = run_glue_script(Path(self.script_location), dict(self.script_args), s3, Path(work))
        self.log.info("Local Glue run of %s finished in %.1fs", self.job_name, result.duration_s)
        for name, uris in result.outputs.items():
            self.log.info("%s: %d object(s) written", name, len(uris))
        return f"local-{context['run_id']}"


class GlueCatalogPartitionOperator(AwsBaseOperator[GlueCatalogHook]):
    """Ensure the lake's Glue tables exist and register one ``dt`` partition of the given tables.

    A control-plane operation only: identical on AWS and on the local control plane.
    """

    aws_hook_class = GlueCatalogHook
    template_fields: Sequence[str] = aws_template_fields("database", "bucket", "dt", "tables")

    def __init__(self, *, database: str, bucket: str, dt: str, tables: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.bucket = bucket
        self.dt = dt
        self.tables = tables

    def execute(self, context: Any) -> dict[str, str]:
        glue = self.hook.conn
        catalog.ensure_database(glue, self.database)
        catalog.ensure_tables(glue, self.database, Lake(self.bucket))
        locations = {
            table: catalog.register_partition(glue, self.database, table, self.dt) for table in self.tables
        }
        for table, location in locations.items():
            self.log.info("%s.%s partition dt=%s → %s", self.database, table, self.dt, location)
        return locations
