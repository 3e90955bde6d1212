"""Glue: the provider's job operator, run on local Spark on the local target."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.sdk.exceptions import AirflowFailException

from sagelake.config.target import is_local

if TYPE_CHECKING:
    from airflow.sdk import Context


class SagelakeGlueJobOperator(GlueJobOperator):
    """The provider's ``GlueJobOperator``; on the local target the same script runs on local Spark.

    Extends :class:`airflow.providers.amazon.aws.operators.glue.GlueJobOperator` and adds no argument:
    ``script_location`` is the script's path in ``include/glue/``. On the ``aws`` target the provider
    uploads it to ``s3_bucket``, creates or updates the Glue job and runs it (deferrable as usual).

    On the ``local`` target :func:`sagelake.local.glue_runner.run_glue_script` stages the ``--input_*``
    prefixes, runs the script on local Spark (the stack's warm JVM when it is free,
    :mod:`sagelake.local.spark_gateway`) and replaces the ``--output_*`` partitions, synchronously:
    ``deferrable``, ``wait_for_completion`` and the Glue job settings (``create_job_kwargs``, ``iam_role_*``,
    ``num_of_dpus``…) have no effect, and the returned run id is ``local-<Airflow run id>``. A script that
    rejects its input (exit code 65) fails the task without retries, with the script's one-line reason.
    """

    def execute(self, context: Context) -> str | None:
        if not is_local():
            return super().execute(context)
        from sagelake.config.settings import spark_gateway_dir
        from sagelake.local.glue_runner import InputRejectedError, run_glue_script

        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        with tempfile.TemporaryDirectory(prefix="sagelake-glue-") as work:
            try:
                result = run_glue_script(
                    Path(self.script_location),
                    dict(self.script_args),
                    s3,
                    Path(work),
                    spark_gateway_dir=spark_gateway_dir(),
                )
            except InputRejectedError as error:  # the same input is rejected again: no retry
                raise AirflowFailException(str(error)) from error
        self.log.info("Local Glue run of %s finished in %.1fs", self.job_name, result.duration_s)
        for name, uris in result.outputs.items():
            self.log.info("%s: %d object(s) written", name, len(uris))
        return f"local-{context['run_id']}"
