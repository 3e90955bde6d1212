"""Sending the metrics from tasks: the ``aws_default`` CloudWatch client and the calls the DAGs make.

Metrics are observability, never a reason to fail the pipeline: :func:`emit` logs a failed
``PutMetricData`` and carries on (a missing freshness datum still fires the freshness alarm). Airflow and
the provider are imported inside the functions, so DAG files may import this module at parse time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sagelake.config.settings import AWS_CONN_ID

log = logging.getLogger(__name__)


def cloudwatch_client() -> Any:
    """CloudWatch of the ``aws_default`` connection (moto's on the local target)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="cloudwatch").conn


def emit(data: list[dict[str, Any]], *, cloudwatch: Any = None) -> int:
    """Put ``data`` into the ``sagelake`` namespace; returns how many items were sent (0 after an error,
    which is logged, not raised)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from sagelake.monitoring.metrics import NAMESPACE, put_metrics

    if not data:
        return 0
    try:
        sent = put_metrics(cloudwatch or cloudwatch_client(), NAMESPACE, data)
    except (BotoCoreError, ClientError) as error:
        log.warning("CloudWatch metrics not sent (%d items): %s", len(data), error)
        return 0
    log.info(
        "sent %d CloudWatch metric data to %s: %s", sent, NAMESPACE, sorted({d["MetricName"] for d in data})
    )
    return sent


def emit_published(s3: Any, etl_metrics_location: str) -> int:
    """``RowsPublished``, ``RowsQuarantined``, ``QuarantineRatio`` of the version just published."""
    from botocore.exceptions import BotoCoreError, ClientError

    from sagelake.monitoring.metrics import publish_metrics, read_etl_record

    try:
        record = read_etl_record(s3, etl_metrics_location)
    except (FileNotFoundError, BotoCoreError, ClientError) as error:
        log.warning("no publish metrics: %s", error)
        return 0
    return emit(publish_metrics(record, timestamp=datetime.now(UTC)))


def emit_check_verdict(context: Any) -> int:
    """Success and failure callback of a ``QualityCheckOperator`` that records its verdicts: its
    ``quality_results`` row of this run as ``CheckFailed``, ``CheckValue`` and ``FailedChecks``. A check that
    recorded nothing (its query failed) sends nothing: the failure notification reports it."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from sagelake.lake.layout import Lake
    from sagelake.monitoring.metrics import check_metrics, read_verdict

    task = context["task"]
    if not (task.results_bucket and task.dt):
        return 0
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
    row = read_verdict(
        s3,
        Lake(task.results_bucket),
        task.dt,
        dag_id=task.dag_id,
        run_id=context["run_id"],
        check=task.check_file.stem,
    )
    if row is None:
        log.warning(
            "check %s recorded no verdict in run %s: no metric", task.check_file.stem, context["run_id"]
        )
        return 0
    return emit(check_metrics([row], timestamp=datetime.now(UTC)))


def emit_freshness(glue: Any, database: str, *, now: datetime | None = None) -> int:
    """``HoursSinceLastPublish`` of ``churn_features`` from the catalog's published partitions."""
    from botocore.exceptions import ClientError

    from sagelake.aws_errors import has_code
    from sagelake.lake.publish import published_partitions
    from sagelake.monitoring.metrics import FEATURES, freshness_metrics

    try:
        published = published_partitions(glue, database, FEATURES)
    except ClientError as error:  # no table yet: nothing was ever published
        if not has_code(error, "EntityNotFoundException"):
            raise
        published = {}
    data = freshness_metrics(published, now=now or datetime.now(UTC))
    if not data:
        log.warning(
            "%s.%s has no published partition: no freshness datum (the alarm fires)", database, FEATURES
        )
    return emit(data)


def emit_model(report_models: dict[str, Any], model_package_group: str) -> int:
    """``ModelQuality`` of every candidate the evaluation scored."""
    from sagelake.monitoring.metrics import model_metrics

    return emit(
        model_metrics(report_models, model_package_group=model_package_group, timestamp=datetime.now(UTC))
    )
