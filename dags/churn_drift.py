"""Drift → report → metrics → (above the thresholds) ask for retraining.

Runs when `churn_prepare` publishes a checked `churn_features` partition (its asset event's `extra` names
the `dt`, `version` and `location`), or manually with `{"dt": "YYYY-MM-DD"}` (the partition the Glue Data
Catalog publishes now). The same code on both targets: SageMaker Model Monitor is closed to new customers,
so drift is computed here, and written in Model Monitor's file formats so its tools still read them.
1. **published_partition** — the partition to check: the event's, or the catalog's for `dt`.
2. **baseline_in_use** — the training baseline (`monitoring/baseline/<id>/statistics.json` and
   `constraints.json`, written by `churn_train_deploy` for its training window) of the model the production
   endpoint serves; when that model has none (or nothing is deployed yet), the newest baseline written.
3. **partition_drift** — per feature, the partition against the baseline: PSI over the baseline's decile
   bins and the Kolmogorov–Smirnov test (numeric), L∞ and chi-squared (categorical). Writes
   `metrics/drift/dt=<dt>/`: `constraint_violations.json`, `drift_scores.json`, `statistics.json` and a
   baseline-vs-current plot per drifted feature.
4. **traffic_drift** — the same for the day's captured endpoint traffic (SageMaker data capture files under
   `SAGELAKE_DATA_CAPTURE_URI`, default the lake's `monitoring/capture/`) into `…/dt=<dt>/traffic/`;
   skipped when the endpoint captured nothing that day.
5. **emit_metrics** — every score to CloudWatch (namespace `sagelake`; dimensions `Feature`, `Source`).
6. **drift_above_threshold** — stops here unless a feature drifted (thresholds: `SAGELAKE_DRIFT_*`,
   deployment settings).
7. **request_retraining** — an event on the `retraining_requested` asset, `extra` = `{dt, reasons,
   baseline_id, report}`: it starts `churn_train_deploy` for that day.

See docs/drift.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import dag, task

from sagelake.config.params import pipeline_params, task_defaults
from sagelake.config.settings import AWS_CONN_ID, deployment_settings, drift_settings
from sagelake.lake.assets import curated_features
from sagelake.ml.retraining import retraining_requested

DEPLOYMENT = deployment_settings()  # production endpoint: not a run param
RETRAINING = retraining_requested()


def s3_client() -> Any:
    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


def thresholds() -> Any:
    from sagelake.ml.drift import Thresholds

    return Thresholds.from_settings(drift_settings())


@task
def published_partition(params: dict[str, Any], triggering_asset_events: Any = None) -> dict[str, str]:
    """``{dt, version, location}`` of the partition to check."""
    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
    from airflow.sdk.exceptions import AirflowFailException

    from sagelake.lake.layout import check_dt
    from sagelake.lake.profiles import newest_announcement, version_of
    from sagelake.lake.publish import published

    if params.get("dt"):
        dt = check_dt(params["dt"])
        glue = GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()
        found = published(glue, params["glue_database"], "churn_features", dt)
        if found is None:  # no retry: the catalog would not change
            raise AirflowFailException(f"churn_features dt={dt} is not published: run churn_prepare first")
        return {
            "dt": dt,
            "version": found.version or version_of(found.location) or "",
            "location": found.location,
        }
    events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
    return newest_announcement(getattr(e, "extra", None) for e in events)


@task
def baseline_in_use(params: dict[str, Any]) -> dict[str, str]:
    """The serving model's training baseline, else the newest one (``how`` says which)."""
    from sagelake.ml.drift_store import resolve_baseline

    sagemaker = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn
    chosen = resolve_baseline(s3_client(), sagemaker, params["bucket"], DEPLOYMENT["endpoint_name"])
    print(f"baseline {chosen['baseline_id']} ({chosen['how']})")
    return chosen


@task
def partition_drift(partition: dict[str, str], baseline: dict[str, str], params: dict[str, Any]) -> dict:
    """The published partition against the baseline; the report under ``metrics/drift/dt=<dt>/``."""
    from sagelake.ml.drift_store import get_json, report_uri, write_report
    from sagelake.ml.training_data import read_partition

    s3 = s3_client()
    summary = write_report(
        s3,
        report_uri(params["bucket"], partition["dt"]),
        read_partition(s3, partition["location"]),
        get_json(s3, baseline["statistics"]),
        thresholds(),
        source="partition",
        dt=partition["dt"],
        version=partition["version"],
        location=partition["location"],
        baseline_id=baseline["baseline_id"],
    )
    print(f"dt={partition['dt']}: drifted {summary['drifted'] or 'nothing'}; report {summary['report']}")
    return summary


@task
def traffic_drift(partition: dict[str, str], baseline: dict[str, str], params: dict[str, Any]) -> dict:
    """The day's captured endpoint traffic against the baseline (``…/traffic/``); empty when none."""
    from sagelake.ml.drift_store import (
        capture_destination,
        capture_keys,
        get_json,
        read_captured,
        report_uri,
        write_report,
    )

    s3 = s3_client()
    capture = capture_destination(params["bucket"])
    keys = capture_keys(s3, capture, DEPLOYMENT["endpoint_name"], partition["dt"])
    frame, skipped = read_captured(s3, keys)
    if frame.empty:
        print(f"no captured traffic of {DEPLOYMENT['endpoint_name']} on {partition['dt']} under {capture}")
        return {}
    summary = write_report(
        s3,
        report_uri(params["bucket"], partition["dt"], "traffic"),
        frame,
        get_json(s3, baseline["statistics"]),
        thresholds(),
        source="traffic",
        dt=partition["dt"],
        capture_files=len(keys),
        rows_skipped=skipped,
        baseline_id=baseline["baseline_id"],
    )
    print(f"traffic {partition['dt']}: {len(frame)} rows; drifted {summary['drifted'] or 'nothing'}")
    return summary


@task
def emit_metrics(partition_summary: dict, traffic_summary: dict) -> int:
    """Every drift score as a CloudWatch metric; returns how many were sent."""
    from datetime import UTC

    from sagelake.ml.drift import FeatureDrift, metric_data
    from sagelake.monitoring.metrics import NAMESPACE, put_metrics

    cloudwatch = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="cloudwatch").conn
    now = datetime.now(UTC)
    items = []
    for source, summary in (("partition", partition_summary), ("traffic", traffic_summary)):
        if summary:
            scores = {name: FeatureDrift(**score) for name, score in summary["scores"].items()}
            items += metric_data(scores, source=source, timestamp=now)
    return put_metrics(cloudwatch, NAMESPACE, items)


@task.short_circuit
def drift_above_threshold(partition_summary: dict, traffic_summary: dict) -> bool:
    """True when a feature of the partition or of the traffic drifted beyond the thresholds."""
    return bool(partition_summary["drifted"] or (traffic_summary or {}).get("drifted"))


@task(outlets=[RETRAINING])
def request_retraining(
    partition: dict[str, str],
    baseline: dict[str, str],
    partition_summary: dict,
    traffic_summary: dict,
    outlet_events: Any = None,
) -> dict[str, Any]:
    """Announce the retraining request: ``extra`` = ``{dt, reasons, baseline_id, report}``."""
    from sagelake.ml.retraining import request_extra

    reasons = [f"partition {r}" for r in partition_summary["reasons"]]
    reasons += [f"traffic {r}" for r in (traffic_summary or {}).get("reasons", [])]
    extra = request_extra(
        partition["dt"], reasons, baseline_id=baseline["baseline_id"], report=partition_summary["report"]
    )
    outlet_events[RETRAINING].extra = extra
    print(f"retraining requested for dt={partition['dt']}: {reasons}")
    return extra


@dag(
    dag_id="churn_drift",
    schedule=[curated_features()],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=pipeline_params("the triggering asset event's", "bucket", "glue_database"),
    default_args=task_defaults("ml-engineering"),
    tags=["sagelake", "monitoring", "drift"],
    doc_md=__doc__,
)
def churn_drift() -> None:
    partition = published_partition()
    baseline = baseline_in_use()
    on_partition = partition_drift(partition, baseline)
    on_traffic = traffic_drift(partition, baseline)
    emit_metrics(on_partition, on_traffic)
    gate = drift_above_threshold(on_partition, on_traffic)
    gate >> request_retraining(partition, baseline, on_partition, on_traffic)


churn_drift()
