"""SageMaker batch transform: the provider's operator on AWS, the same request scored for real locally."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator
from airflow.sdk.exceptions import AirflowFailException

from sagelake.config.target import is_local
from sagelake.ml.naming import free_name

if TYPE_CHECKING:
    from airflow.sdk import Context

NOT_FOUND_CODE = "ValidationException"  # SageMaker's (and moto's) answer to Describe* of an unknown name


class TransformNameTakenError(AirflowFailException):
    """A transform job (or model) of that name exists and ``action_if_*_exists="fail"`` forbids another."""


class SagelakeTransformOperator(SageMakerTransformOperator):
    """The provider's ``SageMakerTransformOperator``; locally the batch transform's scoring really runs.

    Extends :class:`airflow.providers.amazon.aws.operators.sagemaker.SageMakerTransformOperator` and adds no
    argument. On the ``aws`` target it is the provider's operator unchanged (deferrable as usual).

    On the ``local`` target the same CreateTransformJob request is executed synchronously by
    :func:`sagelake.local.transform_runner.run_transform_job` (the model the request names, loaded from its
    ``ModelDataUrl``; its inference code in a worker on the image's framework environment, or the built-in
    XGBoost algorithm with the xgboost library; ``<input>.out`` objects under ``S3OutputPath``), then
    recorded in the control plane, where ``DescribeTransformJob`` reads ``Completed``; ``deferrable``,
    ``wait_for_completion`` and ``check_interval`` have no effect. A ``Model`` in the config is created in the
    control plane first, as the provider does. A job or model name already taken (a retry) becomes
    ``<name>-r2``, ``-r3``… where the provider appends a timestamp; with ``action_if_job_exists="fail"``
    (``action_if_model_exists``) it raises, as a non-retryable failure. Returns what the provider returns:
    ``{"Model": <DescribeModel>, "Transform": <DescribeTransformJob>}``.

    :param config: ``CreateTransformJob`` request, or ``{"Model": ..., "Transform": ...}``, as in the
        provider. (templated)
    """

    def execute(self, context: Context) -> dict[str, dict]:
        if not is_local():
            return super().execute(context)
        from sagelake.local.transform_runner import record_transform_job, run_transform_job

        self.preprocess_config()
        transform = self.config.get("Transform", self.config)
        if self.check_if_job_exists:
            transform["TransformJobName"] = free_name(
                transform["TransformJobName"],
                self.hook.describe_transform_job,
                fail_if_exists=self.action_if_job_exists == "fail",
                kind="transform job",
                error=TransformNameTakenError,
            )
        model = self.config.get("Model")
        if model:
            if self.check_if_model_exists:
                model["ModelName"] = free_name(
                    model["ModelName"],
                    self.hook.describe_model,
                    fail_if_exists=self.action_if_model_exists == "fail",
                    kind="model",
                    error=TransformNameTakenError,
                )
                transform["ModelName"] = model["ModelName"]
            self.hook.create_model(model)
        name = transform["TransformJobName"]
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        with tempfile.TemporaryDirectory(prefix="sagelake-transform-") as work:
            result = run_transform_job(transform, self.hook.conn, s3, Path(work))
        self.log.info(
            "transform job %s: %d record(s) in %d request(s) on %s",
            name,
            result.records,
            result.requests,
            result.served_on,
        )
        for source, target in result.outputs.items():
            self.log.info("output of %s: %s", source, target)
        record_transform_job(self.hook.conn, transform)
        return self.serialize_result(name)
