"""Where drift baselines and reports live, which baseline production's model was trained with, and the
endpoint's captured traffic as feature rows.

- Baselines: ``s3://<bucket>/monitoring/baseline/<baseline id>/statistics.json|constraints.json`` (and
  ``baseline.json``: what the baseline describes). The id is the training run's resource name,
  ``churn-<yyyymmdd>-<run hash>`` (:func:`baseline_id`): the prefix of the tuning job's name and of the
  model ``churn_train_deploy`` deploys (``churn-<yyyymmdd>-<run hash>-v<package version>``), so the model an
  endpoint serves names its baseline (:func:`baseline_id_of_model`).
- Reports: ``s3://<bucket>/metrics/drift/dt=<dt>/[traffic/]`` — ``constraint_violations.json``,
  ``drift_scores.json``, ``statistics.json`` (the monitored data's), ``plots/<feature>.png``.
- Captured traffic: SageMaker's data capture files (``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/
  *.jsonl``, one JSON record per request with ``captureData.endpointInput``), decoded back into feature
  columns from the serving CSV (``sagelake.ml.training_data.CSV_FEATURE_COLUMNS``).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake.layout import check_dt, split_s3_uri
from sagelake.ml.naming import resource_name
from sagelake.ml.serving import serving_model
from sagelake.ml.training_data import CATEGORY_VOCABULARY, CSV_FEATURE_COLUMNS, NUMERIC_FEATURES

STATISTICS = "statistics.json"
CONSTRAINTS = "constraints.json"
MANIFEST = "baseline.json"
VIOLATIONS = "constraint_violations.json"
SCORES = "drift_scores.json"
_MODEL = re.compile(r"^(churn-\d{8}-[0-9a-f]{8})(?:-v\d+)?$")


def baseline_id(dt: str, run_id: str) -> str:
    """The baseline of one training run: ``churn-<yyyymmdd>-<run hash>`` (its tuning job's name)."""
    return resource_name("churn", dt, run_id)


def baseline_id_of_model(model_name: str) -> str | None:
    """The baseline id of a model ``churn_train_deploy`` deployed (``…-v<version>`` dropped), else None."""
    match = _MODEL.match(model_name)
    return match.group(1) if match else None


def baseline_uri(bucket: str, baseline: str) -> str:
    if not baseline or "/" in baseline:
        raise ValueError(f"baseline id {baseline!r} must be a non-empty name without '/'")
    return f"s3://{bucket}/monitoring/baseline/{baseline}/"


def report_uri(bucket: str, dt: str, source: str = "partition") -> str:
    """Where one day's drift report goes: the partition's at ``dt=<dt>/``, the traffic's in ``traffic/``."""
    root = f"s3://{bucket}/metrics/drift/dt={check_dt(dt)}/"
    return root if source == "partition" else f"{root}{source}/"


def put_json(s3: Any, uri: str, document: Any) -> None:
    bucket, key = split_s3_uri(uri)
    body = json.dumps(document, indent=2, allow_nan=False, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_json(s3: Any, uri: str) -> Any:
    bucket, key = split_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def exists(s3: Any, uri: str) -> bool:
    bucket, key = split_s3_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if has_code(error, "404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def write_baseline(
    s3: Any,
    bucket: str,
    baseline: str,
    statistics: Mapping[str, Any],
    constraints: Mapping[str, Any],
    about: Mapping[str, Any],
) -> dict[str, str]:
    """Write a baseline's ``statistics.json``, ``constraints.json`` and ``baseline.json`` (``about``: the
    window, the run); returns the URIs."""
    root = baseline_uri(bucket, baseline)
    uris = {"statistics": root + STATISTICS, "constraints": root + CONSTRAINTS, "manifest": root + MANIFEST}
    put_json(s3, uris["statistics"], statistics)
    put_json(s3, uris["constraints"], constraints)
    written_at = datetime.now(UTC).isoformat()
    put_json(s3, uris["manifest"], {"baseline_id": baseline, "written_at": written_at, **about})
    return uris


def newest_baseline(s3: Any, bucket: str) -> str | None:
    """The id of the baseline written last (S3's ``LastModified`` of its ``statistics.json``; within the
    same second, the ``written_at`` of the manifests), or None if there is none."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="monitoring/baseline/")
    found = [
        (o["LastModified"], o["Key"].split("/")[2])
        for page in pages
        for o in page.get("Contents", [])
        if o["Key"].endswith("/" + STATISTICS) and o["Key"].count("/") == 3
    ]
    if not found:
        return None
    latest = max(when for when, _ in found)
    tied = sorted(name for when, name in found if when == latest)
    if len(tied) == 1:
        return tied[0]

    def written_at(name: str) -> str:
        try:
            return str(get_json(s3, baseline_uri(bucket, name) + MANIFEST).get("written_at", ""))
        except ClientError:
            return ""

    return max(tied, key=lambda name: (written_at(name), name))


def resolve_baseline(s3: Any, sagemaker: Any, bucket: str, endpoint_name: str) -> dict[str, str]:
    """The baseline to compare with: the one of the model production serves when it has one, else the
    newest written (``how`` says which). LookupError when no baseline was ever written."""
    serving = serving_model(sagemaker, endpoint_name)
    model = serving.model_name if serving else None
    served = baseline_id_of_model(model) if model else None
    if served and exists(s3, baseline_uri(bucket, served) + STATISTICS):
        chosen, how = served, f"serving: endpoint {endpoint_name} serves {model}"
    else:
        chosen = newest_baseline(s3, bucket)
        if chosen is None:
            raise LookupError(
                f"no drift baseline under s3://{bucket}/monitoring/baseline/: run churn_train_deploy first"
            )
        how = f"newest: {'no endpoint ' + endpoint_name if not model else f'{model} has no baseline'}"
    root = baseline_uri(bucket, chosen)
    return {
        "baseline_id": chosen,
        "how": how,
        "statistics": root + STATISTICS,
        "constraints": root + CONSTRAINTS,
    }


# ------------------------------------------------------------------------------------ captured traffic


def capture_destination(bucket: str) -> str:
    """Where the production endpoint captures its traffic (``DataCaptureConfig.DestinationS3Uri``):
    ``SAGELAKE_DATA_CAPTURE_URI``, else the lake's ``monitoring/capture/``."""
    from sagelake.config.settings import drift_settings

    return str(drift_settings()["capture_uri"]) or f"s3://{bucket}/monitoring/capture/"


def capture_keys(s3: Any, capture_uri: str, endpoint_name: str, dt: str) -> list[str]:
    """Every data capture file of ``endpoint_name`` written on day ``dt`` (any variant, any hour)."""
    bucket, prefix = split_s3_uri(capture_uri.rstrip("/") + f"/{endpoint_name}/")
    day = "/" + check_dt(dt).replace("-", "/") + "/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(
        f"s3://{bucket}/{o['Key']}"
        for page in pages
        for o in page.get("Contents", [])
        if day in o["Key"][len(prefix) :] and o["Key"].endswith(".jsonl")
    )


def _request_rows(record: Mapping[str, Any]) -> list[list[str]]:
    captured = record.get("captureData", {}).get("endpointInput", {})
    data = str(captured.get("data", ""))
    if captured.get("encoding", "CSV").upper() == "BASE64":
        data = base64.b64decode(data).decode()
    if "csv" not in str(captured.get("observedContentType", "text/csv")).lower():
        return []
    return [row for row in csv.reader(io.StringIO(data)) if row]


def captured_frame(lines: Iterable[str]) -> tuple[pd.DataFrame, int]:
    """Feature rows from data capture records (JSON lines): each request's CSV rows in serving order,
    numeric features as numbers, one-hot groups decoded back to their category (None unless exactly one
    is set). Returns ``(frame, rows skipped)``: rows of another width or not numbers are skipped."""
    rows, skipped = [], 0
    for line in lines:
        if not line.strip():
            continue
        for row in _request_rows(json.loads(line)):
            try:
                values = [float(v) for v in row]
            except ValueError:
                skipped += 1
                continue
            if len(values) != len(CSV_FEATURE_COLUMNS):
                skipped += 1
                continue
            rows.append(values)
    matrix = pd.DataFrame(rows, columns=list(CSV_FEATURE_COLUMNS), dtype=float)
    frame = matrix[list(NUMERIC_FEATURES)].copy()
    for column, vocabulary in CATEGORY_VOCABULARY.items():
        hot = matrix[[f"{column}_{v}" for v in vocabulary]].to_numpy()
        single = (hot == 1).sum(axis=1) == 1
        picked = (
            np.array(vocabulary, dtype=object)[hot.argmax(axis=1)] if len(hot) else np.array([], dtype=object)
        )
        frame[column] = pd.Series(np.where(single, picked, None), dtype=object)
    return frame, skipped


def read_captured(s3: Any, keys: Iterable[str]) -> tuple[pd.DataFrame, int]:
    """:func:`captured_frame` of the capture files at ``keys`` (S3 URIs)."""
    lines: list[str] = []
    for uri in keys:
        bucket, key = split_s3_uri(uri)
        lines += s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    return captured_frame(lines)


def write_training_baseline(
    s3: Any,
    bucket: str,
    baseline: str,
    window: Mapping[str, str],
    thresholds: Any,
    *,
    run_id: str = "",
) -> dict[str, str]:
    """Baseline of a training window (dt → published location): its rows' ``statistics.json`` and
    ``constraints.json`` (with ``thresholds``, a :class:`sagelake.ml.drift.Thresholds`) written under
    :func:`baseline_uri`; returns the URIs and the id."""
    from sagelake.ml import drift
    from sagelake.ml.training_data import read_partition

    if not window:
        raise ValueError("a baseline needs at least one partition in its window")
    frame = pd.concat([read_partition(s3, window[dt]) for dt in sorted(window)], ignore_index=True)
    statistics, constraints = drift.baseline(frame, thresholds=thresholds)
    about = {"train_days": sorted(window), "locations": dict(window), "rows": len(frame), "run_id": run_id}
    return {"baseline_id": baseline, **write_baseline(s3, bucket, baseline, statistics, constraints, about)}


def write_report(
    s3: Any,
    report: str,
    frame: pd.DataFrame,
    baseline_statistics: Mapping[str, Any],
    thresholds: Any,
    **context: Any,
) -> dict[str, Any]:
    """Compare ``frame`` with the baseline and write the report under ``report``: the monitored data's
    ``statistics.json``, ``constraint_violations.json``, ``drift_scores.json`` and a plot per drifted
    feature (``plots/<feature>.png``). Returns a summary: ``report``, ``rows``, ``drifted``, ``reasons``
    (``"<feature>: <why>"``) and the per-feature ``scores`` (JSON-able)."""
    from sagelake.ml import drift

    scores = drift.drift(baseline_statistics, frame, thresholds)
    names = [f["name"] for f in baseline_statistics["features"]]
    document = drift.scores_document(scores, thresholds=thresholds, rows=len(frame), **context)
    put_json(s3, report + STATISTICS, drift.statistics(frame, [n for n in names if n in frame.columns]))
    put_json(s3, report + VIOLATIONS, drift.violations(scores, baseline_statistics, frame.columns))
    put_json(s3, report + SCORES, document)
    bucket, key = split_s3_uri(report)
    by_name = {f["name"]: f for f in baseline_statistics["features"]}
    for name in drift.drifted(scores):
        png = drift.plot(by_name[name], frame[name], title=f"{name}: baseline vs {context.get('source', '')}")
        s3.put_object(Bucket=bucket, Key=f"{key}plots/{name}.png", Body=png, ContentType="image/png")
    return {
        "report": report,
        "rows": len(frame),
        "drifted": document["drifted"],
        "reasons": [f"{name}: {reason}" for name, s in scores.items() for reason in s.reasons if s.drifted],
        "scores": document["features"],
    }
