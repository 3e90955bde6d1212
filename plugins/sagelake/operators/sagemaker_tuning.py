"""SageMaker hyperparameter tuning: the provider's operator on AWS, real local trials on ``local``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTuningOperator, serialize
from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.config.target import is_local
from sagelake.ml.tuning import tuning_job_name

if TYPE_CHECKING:
    from airflow.sdk import Context

# What SageMaker (and moto) answer DescribeHyperParameterTuningJob for an unknown name.
NOT_FOUND_CODES = ("ResourceNotFound", "ValidationException")


class SagelakeTuningOperator(SageMakerTuningOperator):
    """The provider's ``SageMakerTuningOperator``; locally every trial really trains.

    Extends :class:`airflow.providers.amazon.aws.operators.sagemaker.SageMakerTuningOperator` and adds no
    argument. On the ``aws`` target it is the provider's operator unchanged (deferrable as usual). Build
    ``config`` with :func:`sagelake.ml.tuning.tuning_request`.

    On the ``local`` target the tuning job is created in the control plane, then
    :func:`sagelake.local.tuning_runner.run_tuning_job` runs its trials as real training jobs (at most
    ``min(MaxParallelTrainingJobs, cores)`` at a time) and records them, and the task returns what the
    provider returns: ``{"Tuning": DescribeHyperParameterTuningJob}``, whose ``BestTrainingJob`` is the real
    best trial. ``deferrable``, ``wait_for_completion`` and ``check_interval`` have no effect locally. A
    tuning job of the same name that already completed is returned as it is (a retry or a clear trains
    nothing again); one left unfinished by a killed attempt makes the run use ``<name>-r2``, ``-r3``…

    :param config: the CreateHyperParameterTuningJob request, as for the provider's operator. (templated)
    """

    def execute(self, context: Context) -> dict:
        if not is_local():
            return super().execute(context)
        from sagelake.local.tuning_runner import run_tuning_job

        self.preprocess_config()
        name = self.config["HyperParameterTuningJobName"]
        existing = self._describe(name)
        if existing is not None and existing["HyperParameterTuningJobStatus"] == "Completed":
            self.log.info("Tuning job %s completed already; returning its result", name)
            return {"Tuning": serialize(existing)}
        if existing is not None:
            name = tuning_job_name(name, lambda candidate: self._describe(candidate) is not None)
            self.log.info(
                "Tuning job %s is %s; running as %s",
                self.config["HyperParameterTuningJobName"],
                existing["HyperParameterTuningJobStatus"],
                name,
            )
            self.config["HyperParameterTuningJobName"] = name
        self.log.info("Creating SageMaker Hyper-Parameter Tuning Job %s", name)
        self.hook.create_tuning_job(self.config, wait_for_completion=False)
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        with tempfile.TemporaryDirectory(prefix="sagelake-tuning-") as work:
            result = run_tuning_job(
                self.config,
                sagemaker=self.hook.conn,
                s3=s3,
                logs=self.hook.logs_hook.get_conn(),
                credentials=self.hook.get_credentials(),
                work_dir=Path(work),
            )
        for trial in result.trials:
            self.log.info(
                "trial %s %s objective=%s %s",
                trial.name,
                trial.status,
                trial.objective,
                trial.hyperparameters,
            )
        return {"Tuning": serialize(self.hook.describe_tuning_job(name))}

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            return self.hook.describe_tuning_job(name)
        except ClientError as error:
            if has_code(error, *NOT_FOUND_CODES):
                return None
            raise
