"""SageMaker inference handlers for the churn model (scikit-learn container 1.4-2 and the local endpoint).

``train.py`` copies this file to ``<model dir>/code/inference.py``. Requests are ``text/csv`` (one
customer per line, feature values in the model's feature order, no header) or ``application/json``
(``{"instances": [{feature: value, ...}, ...]}`` or a bare list of such objects). Responses are
JSON ``{"predictions": [{"churn_probability": p, "churned": 0|1}, ...]}`` or CSV probabilities.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any

import joblib
import numpy as np
import pandas as pd

JSON = "application/json"
CSV = "text/csv"
MODEL_FILE = "model.joblib"
THRESHOLD = 0.5


def model_fn(model_dir: str) -> dict:
    """Load ``model.joblib``: ``{"pipeline": Pipeline, "features": [...], "categorical": [...]}``."""
    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: the model archive must hold the {MODEL_FILE} train.py writes"
        )
    return joblib.load(path)


def _media_type(value: str | None) -> str:
    """``text/csv; charset=utf-8`` → ``text/csv``; empty or ``*/*`` → JSON (the container's default)."""
    media = (value or "").split(";", 1)[0].strip().lower()
    return JSON if media in ("", "*/*") else media


def input_fn(request_body: bytes | str, request_content_type: str | None) -> list:
    """Deserialize a request: CSV → list of rows (lists of strings); JSON → list of instance dicts."""
    media = _media_type(request_content_type)
    if media not in (CSV, JSON):
        raise ValueError(
            f"unsupported content type {request_content_type!r}: send text/csv or application/json"
        )
    try:
        text = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
    except UnicodeDecodeError:
        raise ValueError(f"{media} request body is not UTF-8 text") from None
    if media == CSV:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
        if not rows:
            raise ValueError("text/csv request has no rows: send one line of feature values per customer")
        return rows
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"application/json request is not valid JSON: {exc}") from None
    instances = payload.get("instances") if isinstance(payload, dict) else payload
    if not isinstance(instances, list) or not instances or not all(isinstance(i, dict) for i in instances):
        raise ValueError(
            'application/json request must be {"instances": [{feature: value, ...}, ...]} '
            "or a non-empty list of such objects"
        )
    return instances


def _number(value: Any, feature: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, bool):
        raise ValueError(f"feature {feature}={value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"feature {feature}={value!r} is not a number") from None


def to_frame(data: list | pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    """Build the model's input frame (feature order, typed columns) from rows or instance dicts."""
    if isinstance(data, pd.DataFrame):
        data = data.to_dict(orient="records")
    records = []
    for index, item in enumerate(data):
        if isinstance(item, dict):
            missing = [name for name in features if name not in item]
            if missing:
                raise ValueError(f"instance {index} lacks feature(s) {', '.join(missing)}")
            records.append([item[name] for name in features])
        else:
            if len(item) != len(features):
                raise ValueError(
                    f"row {index} has {len(item)} values, the model expects {len(features)}: "
                    f"{','.join(features)}"
                )
            records.append(list(item))
    columns = {}
    for position, name in enumerate(features):
        values = [record[position] for record in records]
        if name in categorical:
            columns[name] = ["" if value is None else str(value).strip() for value in values]
        else:
            columns[name] = [_number(value, name) for value in values]
    return pd.DataFrame(columns, columns=features)


def predict_fn(data: list | pd.DataFrame, model: dict) -> np.ndarray:
    """Churn probabilities, one per instance."""
    frame = to_frame(data, model["features"], model.get("categorical", []))
    return model["pipeline"].predict_proba(frame)[:, 1]


def output_fn(prediction: np.ndarray, accept: str | None) -> tuple[str, str]:
    """Serialize probabilities as JSON (default) or CSV; returns ``(body, content_type)``."""
    probabilities = [float(p) for p in np.asarray(prediction).ravel()]
    media = _media_type(accept)
    if media == JSON:
        predictions = [{"churn_probability": p, "churned": int(p >= THRESHOLD)} for p in probabilities]
        return json.dumps({"predictions": predictions}), JSON
    if media == CSV:
        return "".join(f"{p!r}\n" for p in probabilities), CSV
    raise ValueError(f"unsupported accept type {accept!r}: ask for application/json or text/csv")
