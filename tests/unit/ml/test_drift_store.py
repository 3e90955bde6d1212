"""Where baselines and drift reports live, which baseline a deployed model names, data capture records
decoded back into feature rows, and the retraining request's ``extra``."""

from __future__ import annotations

import base64
import json

import pandas as pd
import pytest

from sagelake.ml import drift_store
from sagelake.ml.naming import resource_name
from sagelake.ml.retraining import request_extra, retraining_requested
from sagelake.ml.training_data import CSV_FEATURE_COLUMNS, NUMERIC_FEATURES, serving_csv
from tests.support.lake_days import features
from tests.support.pipeline import DT, RUN_ID


def test_the_deployed_model_names_its_training_runs_baseline() -> None:
    baseline = drift_store.baseline_id(DT, RUN_ID)
    assert baseline == resource_name("churn", DT, RUN_ID)  # the tuning job's name
    deployed = resource_name("churn", DT, RUN_ID, "v3")  # churn_train_deploy's endpoint_request
    assert drift_store.baseline_id_of_model(deployed) == baseline
    assert drift_store.baseline_id_of_model(baseline) == baseline
    assert drift_store.baseline_id_of_model("someone-elses-model") is None


def test_layout() -> None:
    assert drift_store.baseline_uri("lake", "churn-20261126-abcd1234") == (
        "s3://lake/monitoring/baseline/churn-20261126-abcd1234/"
    )
    assert drift_store.report_uri("lake", "2026-11-26") == "s3://lake/metrics/drift/dt=2026-11-26/"
    assert (
        drift_store.report_uri("lake", "2026-11-26", "traffic")
        == "s3://lake/metrics/drift/dt=2026-11-26/traffic/"
    )
    with pytest.raises(ValueError):
        drift_store.baseline_uri("lake", "a/b")
    with pytest.raises(ValueError):
        drift_store.report_uri("lake", "26-11-2026")


def capture_record(body: str, *, encoding: str = "CSV", content_type: str = "text/csv") -> str:
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": "0.1",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-11-26T10:00:00Z"},
            "eventVersion": "0",
        }
    )


def test_captured_requests_decode_back_into_feature_rows() -> None:
    rows = features(6, 5)
    body = serving_csv(rows).decode()  # what a client sends the endpoint
    first, rest = body.splitlines()[:2], body.splitlines()[2:]
    lines = [
        capture_record("\n".join(first)),
        capture_record("\n".join(rest), encoding="BASE64"),
        capture_record("1,2,3"),  # another width: skipped
        capture_record('{"instances": []}', content_type="application/json"),  # not CSV: ignored
        "",
    ]
    frame, skipped = drift_store.captured_frame(lines)
    assert skipped == 1
    assert list(frame.columns) == [*NUMERIC_FEATURES, "plan", "region"]
    pd.testing.assert_series_equal(frame["plan"], rows["plan"].reset_index(drop=True), check_dtype=False)
    pd.testing.assert_series_equal(frame["region"], rows["region"].reset_index(drop=True), check_dtype=False)
    for column in NUMERIC_FEATURES:
        assert frame[column].tolist() == pytest.approx(rows[column].astype(float).tolist()), column


def test_a_row_without_exactly_one_category_set_has_no_category() -> None:
    values = ["1"] * len(CSV_FEATURE_COLUMNS)  # every one-hot column set
    frame, skipped = drift_store.captured_frame([capture_record(",".join(values))])
    assert skipped == 0 and frame["plan"].tolist() == [None] and frame["region"].tolist() == [None]


def test_no_capture_gives_an_empty_frame() -> None:
    frame, skipped = drift_store.captured_frame([])
    assert frame.empty and skipped == 0


def test_retraining_request() -> None:
    extra = request_extra("2026-11-26", ["plan: L-infinity 0.3"], baseline_id="churn-x", report="s3://l/r/")
    assert extra == {
        "dt": "2026-11-26",
        "reasons": ["plan: L-infinity 0.3"],
        "baseline_id": "churn-x",
        "report": "s3://l/r/",
    }
    with pytest.raises(ValueError, match="reason"):
        request_extra("2026-11-26", [], baseline_id="churn-x", report="s3://l/r/")
    assert retraining_requested().name == "retraining_requested"
