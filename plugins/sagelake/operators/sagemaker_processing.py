"""SageMaker Processing: the provider's operator on AWS, the same request run for real locally."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator, serialize
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.config.target import is_local
from sagelake.lake.layout import split_s3_uri
from sagelake.ml.naming import free_name

if TYPE_CHECKING:
    from airflow.sdk import Context

NOT_FOUND_CODE = "ValidationException"  # SageMaker's (and moto's) answer to DescribeProcessingJob of no job


class ProcessingJobNameTakenError(AirflowFailException):
    """A processing job of that name exists and ``action_if_job_exists="fail"`` forbids another name."""


def processing_job_name(base: str, describe: Any, *, fail_if_exists: bool) -> str:
    """``base`` if no processing job has that name, else ``base-r2``, ``base-r3``… (or
    :class:`ProcessingJobNameTakenError`); ``describe(name)`` is ``DescribeProcessingJob``."""
    return free_name(
        base,
        describe,
        fail_if_exists=fail_if_exists,
        kind="processing job",
        error=ProcessingJobNameTakenError,
    )


def read_output_files(s3: Any, config: dict[str, Any], wanted: list[dict[str, str]] | None) -> dict:
    """The provider's ``output_files_to_xcom`` result (``{"OutputFiles": {result_name: json}}``), read with
    ``s3``; a missing output or file is left out, as the provider does."""
    if not wanted:
        return {}
    outputs = {o["OutputName"]: o for o in (config.get("ProcessingOutputConfig") or {}).get("Outputs", [])}
    files: dict[str, Any] = {}
    for entry in wanted:
        missing = {"result_name", "output_name", "file_name"} - entry.keys()
        if missing:
            raise ValueError(f"output_files_to_xcom entry missing required keys: {missing}")
        output = outputs.get(entry["output_name"])
        if output is None:
            continue
        bucket, key = split_s3_uri(f"{output['S3Output']['S3Uri'].rstrip('/')}/{entry['file_name']}")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if has_code(error, "NoSuchKey"):
                continue
            raise
        files[entry["result_name"]] = json.loads(body)
    return {"OutputFiles": files} if files else {}


class SagelakeProcessingOperator(SageMakerProcessingOperator):
    """The provider's ``SageMakerProcessingOperator``; locally the processing container's work really runs.

    Extends :class:`airflow.providers.amazon.aws.operators.sagemaker.SageMakerProcessingOperator` and adds no
    argument. On the ``aws`` target it is the provider's operator unchanged (deferrable as usual).

    On the ``local`` target the same CreateProcessingJob request is executed synchronously by
    :func:`sagelake.local.processing_runner.run_processing_job` (inputs downloaded, the entry point run in a
    subprocess, outputs uploaded to their S3 URIs), then recorded in the control plane, where
    ``DescribeProcessingJob`` reads ``Completed``; ``deferrable``, ``wait_for_completion`` and ``print_log``
    have no effect. A job name already taken (a retry) becomes ``<name>-r2``, ``-r3``…
    (:func:`processing_job_name`) where the provider appends a timestamp; with ``action_if_job_exists="fail"``
    it raises, as a non-retryable failure. Returns what the provider returns: ``{"Processing": <describe>}``
    plus ``OutputFiles`` when ``output_files_to_xcom`` is set.
    """

    def execute(self, context: Context) -> dict:
        if not is_local():
            return super().execute(context)
        from sagelake.local.processing_runner import record_processing_job, run_processing_job

        self.preprocess_config()
        self.config["ProcessingJobName"] = processing_job_name(
            self.config["ProcessingJobName"],
            self.hook.describe_processing_job,
            fail_if_exists=self.action_if_job_exists == "fail",
        )
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        with tempfile.TemporaryDirectory(prefix="sagelake-processing-") as work:
            result = run_processing_job(self.config, s3, Path(work))
        for name, uri in result.outputs.items():
            self.log.info("output %s: %d file(s) at %s", name, result.uploaded.get(name, 0), uri)
        self.serialized_job = serialize(record_processing_job(self.hook.conn, self.config))
        return {"Processing": self.serialized_job} | read_output_files(
            s3, self.config, self.output_files_to_xcom
        )
