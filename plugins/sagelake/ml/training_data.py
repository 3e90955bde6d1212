"""Training data for SageMaker's built-in XGBoost: a window of published days as CSV channels.

The built-in algorithm reads CSV with **the label in the first column, no header, numbers only**. The
curated ``churn_features`` rows become such rows in one fixed order, :data:`CSV_FEATURE_COLUMNS`:

1. the numeric features, in catalog order: ``monthly_fee, age, support_tickets, tenure_days, n_events,
   n_logins, n_purchases, total_amount, avg_session_s``;
2. ``plan`` one-hot over ``basic, standard, premium``, then ``region`` one-hot over
   ``north, south, east, west`` (:data:`CATEGORY_VOCABULARY`: the Glue job quarantines any other value,
   so one outside it here is refused, never silently zeroed).

Training, validation and serving rows (the same columns without the label) share this order, so a
model trained on one window answers requests encoded by :func:`to_csv_rows` at serving time.

The **window** (:func:`choose_window`) is the last N published partitions up to the run's day; its newest
day (or a fixed, hash-chosen share of that day's customers) is held out for evaluation and never trained on.

:func:`prepare_channels` writes the built-in algorithm's two channels (``validation`` = the held-out rows).
:func:`prepare_training_data` is what the pipeline uses: the held-out rows go to a separate ``holdout``
Parquet folder that only the evaluation job reads, a fixed hash-chosen share of the *training* rows is
the ``validation`` channel the tuning objective is measured on, and the training channels come in either
layout — ``csv`` (built-in XGBoost: ``train`` + ``validation`` CSV) or ``parquet`` (script mode: one
``train`` Parquet file with named columns; the script splits its own validation rows).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sagelake.lake.catalog import CHURN_FEATURES_COLUMNS
from sagelake.lake.layout import check_dt, split_s3_uri
from sagelake.lake.objects import put_only

LABEL = "churned"
KEY = "customer_id"
CATEGORY_VOCABULARY: dict[str, tuple[str, ...]] = {
    "plan": ("basic", "standard", "premium"),
    "region": ("north", "south", "east", "west"),
}
NUMERIC_TYPES = ("double", "int", "bigint", "float", "smallint", "tinyint")
NUMERIC_FEATURES: tuple[str, ...] = tuple(
    name for name, kind in CHURN_FEATURES_COLUMNS if kind in NUMERIC_TYPES and name != LABEL
)
ONE_HOT_FEATURES: tuple[str, ...] = tuple(
    f"{column}_{value}" for column, values in CATEGORY_VOCABULARY.items() for value in values
)
CSV_FEATURE_COLUMNS: tuple[str, ...] = NUMERIC_FEATURES + ONE_HOT_FEATURES
CHANNELS = ("train", "validation")
LAYOUTS = ("csv", "parquet")
HOLDOUT = "holdout"


class TrainingDataError(ValueError):
    """The window or the rows cannot make a training set (nothing published, too few days, bad rows)."""


@dataclass(frozen=True)
class TrainingWindow:
    """Which published partitions a model trains and is evaluated on.

    ``train`` and ``holdout`` map dt → location, oldest first. With ``holdout_share`` 1.0 the newest
    day is entirely in ``holdout``; below 1.0 that day is in both maps and :func:`split_holdout` decides
    row by row (its held-out rows never reach the train channel).
    """

    train: dict[str, str]
    holdout: dict[str, str]
    holdout_share: float

    @property
    def days(self) -> list[str]:
        return sorted(set(self.train) | set(self.holdout))

    @property
    def newest(self) -> str:
        return max(self.holdout)


@dataclass(frozen=True)
class ChannelSet:
    """The CSV channels written for one training job, with what they were built from (lineage)."""

    uris: dict[str, str]  # channel name → S3 prefix (the channel's S3Uri)
    rows: dict[str, int]
    window: TrainingWindow
    columns: tuple[str, ...] = field(default=CSV_FEATURE_COLUMNS)


def choose_window(
    published: Mapping[str, str],
    days: int,
    *,
    as_of: str | None = None,
    holdout_share: float = 1.0,
    min_days: int | None = None,
) -> TrainingWindow:
    """The last ``days`` published partitions up to ``as_of`` (inclusive), newest held out.

    :param published: dt → location of every published partition (e.g. from the catalog).
    :param days: how many partitions the window spans, holdout included.
    :param as_of: the run's day; later partitions are ignored (a backfill sees the lake as of its day).
    :param holdout_share: share of the newest day's customers held out; 1.0 holds out the whole day.
    :param min_days: refuse a window with fewer partitions (default: ``days``).
    """
    if days < 1:
        raise TrainingDataError(f"window of {days} days: it needs at least 1")
    if not 0 < holdout_share <= 1:
        raise TrainingDataError(f"holdout_share={holdout_share}: it must be in (0, 1]")
    minimum = days if min_days is None else min_days
    if not 1 <= minimum <= days:
        raise TrainingDataError(f"min_days={min_days}: it must be between 1 and days={days}")
    if as_of is not None:
        check_dt(as_of)
    candidates = sorted(check_dt(dt) for dt in published if as_of is None or dt <= as_of)
    if not candidates:
        limit = f" up to {as_of}" if as_of else ""
        raise TrainingDataError(f"no published partition{limit}: publish a day with churn_prepare first")
    chosen = candidates[-days:]
    if len(chosen) < minimum:
        raise TrainingDataError(
            f"only {len(chosen)} published partition(s) up to {chosen[-1]} ({', '.join(chosen)}), "
            f"the window needs at least {minimum}: publish more days or lower min_days"
        )
    newest = chosen[-1]
    if holdout_share >= 1:
        if len(chosen) < 2:
            raise TrainingDataError(
                f"holding out the whole newest day ({newest}) leaves nothing to train on: "
                "widen the window or hold out a share of the day (holdout_share < 1)"
            )
        train_days = chosen[:-1]
    else:
        train_days = chosen
    return TrainingWindow(
        train={dt: published[dt] for dt in train_days},
        holdout={newest: published[newest]},
        holdout_share=float(holdout_share),
    )


def holdout_mask(keys: pd.Series, dt: str, share: float) -> np.ndarray:
    """Rows whose ``sha256(dt/key)`` falls below ``share``: the same rows on every run, any machine."""
    if share >= 1:
        return np.ones(len(keys), dtype=bool)
    scale = float(2**64)
    draws = [
        int.from_bytes(hashlib.sha256(f"{dt}/{key}".encode()).digest()[:8], "big") / scale
        for key in keys.astype(str)
    ]
    return np.asarray(draws, dtype=float) < share


def encode_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The numeric feature matrix, columns exactly :data:`CSV_FEATURE_COLUMNS`, as float64."""
    missing = [c for c in (*NUMERIC_FEATURES, *CATEGORY_VOCABULARY) if c not in frame.columns]
    if missing:
        raise TrainingDataError(f"feature rows lack column(s) {missing}: expected the churn_features columns")
    encoded = pd.DataFrame(index=frame.index)
    for column in NUMERIC_FEATURES:
        try:
            encoded[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            raise TrainingDataError(f"feature {column!r} is not numeric: {exc}") from None
    for column, vocabulary in CATEGORY_VOCABULARY.items():
        values = frame[column]
        unknown = sorted({str(v) for v in values[~values.isin(vocabulary)].unique()})
        if unknown:
            raise TrainingDataError(
                f"{column} value(s) {unknown} are outside the vocabulary {list(vocabulary)}: "
                "the feature contract changed; extend CATEGORY_VOCABULARY and retrain"
            )
        for value in vocabulary:
            encoded[f"{column}_{value}"] = (values == value).astype("float64")
    return encoded[list(CSV_FEATURE_COLUMNS)]


def labelled_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """``churned`` first, then :data:`CSV_FEATURE_COLUMNS`: the channel's row layout."""
    if LABEL not in frame.columns:
        raise TrainingDataError(f"feature rows lack the label column {LABEL!r}")
    labels = frame[LABEL]
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise TrainingDataError(f"{LABEL} must be 0 or 1 on every row")
    matrix = encode_features(frame)
    matrix.insert(0, LABEL, labels.astype("int64"))
    return matrix


def to_csv_rows(matrix: pd.DataFrame) -> bytes:
    """CSV without header or index, ``\\n`` line ends, floats in shortest round-trip form."""
    return matrix.to_csv(header=False, index=False, lineterminator="\n").encode()


def serving_csv(frame: pd.DataFrame) -> bytes:
    """Rows for a built-in XGBoost endpoint (``text/csv``): the features in channel order, no label."""
    return to_csv_rows(encode_features(frame))


def split_window(frames: Mapping[str, pd.DataFrame], window: TrainingWindow) -> dict[str, pd.DataFrame]:
    """Feature rows by day → ``{"train": ..., "validation": ...}`` labelled matrices.

    The held-out rows of the newest day go to validation only; every other row of the window to train.
    Rows are sorted by (dt, customer_id) so the same window gives the same bytes.
    """
    missing = [dt for dt in window.days if dt not in frames]
    if missing:
        raise TrainingDataError(f"no rows read for day(s) {missing} of the window")
    train_parts, validation_parts = [], []
    for dt in window.days:
        frame = frames[dt].sort_values(KEY, kind="stable").reset_index(drop=True)
        if dt in window.holdout:
            held = holdout_mask(frame[KEY], dt, window.holdout_share)
            validation_parts.append(frame[held])
            if dt in window.train:
                train_parts.append(frame[~held])
        else:
            train_parts.append(frame)
    train = pd.concat(train_parts, ignore_index=True) if train_parts else pd.DataFrame()
    validation = pd.concat(validation_parts, ignore_index=True)
    for name, part in (("train", train), ("validation", validation)):
        if part.empty:
            raise TrainingDataError(
                f"the {name} channel of window {window.days} has no rows: widen the window or change "
                f"holdout_share={window.holdout_share}"
            )
    return {"train": labelled_matrix(train), "validation": labelled_matrix(validation)}


def read_partition(s3: Any, location: str) -> pd.DataFrame:
    """All Parquet files under a partition location (Spark's ``_SUCCESS`` and ``.crc`` files skipped)."""
    bucket, prefix = split_s3_uri(location if location.endswith("/") else location + "/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = sorted(
        obj["Key"]
        for page in pages
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".parquet") and not obj["Key"].rsplit("/", 1)[-1].startswith((".", "_"))
    )
    if not keys:
        raise TrainingDataError(f"no Parquet files under {location}")
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) for key in keys]
    return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def write_channels(s3: Any, matrices: Mapping[str, pd.DataFrame], root_uri: str) -> dict[str, str]:
    """Write each matrix to ``<root>/<channel>/<channel>.csv``; return channel → prefix (its S3Uri).

    Other objects under a channel's prefix are deleted first: SageMaker would read them as data.
    """
    root = root_uri.rstrip("/")
    uris = {}
    for channel, matrix in matrices.items():
        uris[channel] = f"{root}/{channel}/"
        put_only(s3, uris[channel], f"{channel}.csv", to_csv_rows(matrix), "text/csv")
    return uris


def prepare_channels(
    s3: Any,
    published: Mapping[str, str],
    root_uri: str,
    *,
    days: int,
    as_of: str | None = None,
    holdout_share: float = 1.0,
    min_days: int | None = None,
) -> ChannelSet:
    """Choose the window, read its partitions, write the train/validation CSV channels under ``root_uri``."""
    window = choose_window(published, days, as_of=as_of, holdout_share=holdout_share, min_days=min_days)
    frames = {dt: read_partition(s3, location) for dt, location in {**window.train, **window.holdout}.items()}
    matrices = split_window(frames, window)
    uris = write_channels(s3, matrices, root_uri)
    return ChannelSet(uris=uris, rows={k: len(v) for k, v in matrices.items()}, window=window)


@dataclass(frozen=True)
class TrainingData:
    """What :func:`prepare_training_data` wrote: channel → S3 prefix, the holdout prefix, row counts."""

    channels: dict[str, str]
    holdout_uri: str
    rows: dict[str, int]
    window: TrainingWindow
    layout: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (XCom): channels, holdout, rows, layout and the window's days."""
        return {
            "channels": dict(self.channels),
            "holdout_uri": self.holdout_uri,
            "rows": dict(self.rows),
            "layout": self.layout,
            "train_days": sorted(self.window.train),
            "window": {dt: self.window.train.get(dt) or self.window.holdout[dt] for dt in self.window.days},
            "holdout_day": self.window.newest,
            "holdout_share": self.window.holdout_share,
        }


def split_training_rows(
    frames: Mapping[str, pd.DataFrame], window: TrainingWindow, validation_share: float
) -> dict[str, pd.DataFrame]:
    """Feature rows by day → ``{"train", "validation", "holdout"}`` frames (named columns, label included).

    ``holdout``: the held-out rows of the newest day (:func:`holdout_mask`); ``validation``: the rows of
    the other rows whose ``sha256(validation/dt/key)`` falls below ``validation_share`` (0: none); ``train``:
    the rest. The three never share a row; the same window gives the same rows on every run.
    """
    if not 0 <= validation_share < 1:
        raise TrainingDataError(f"validation_share={validation_share}: it must be in [0, 1)")
    missing = [dt for dt in window.days if dt not in frames]
    if missing:
        raise TrainingDataError(f"no rows read for day(s) {missing} of the window")
    parts: dict[str, list[pd.DataFrame]] = {"train": [], "validation": [], HOLDOUT: []}
    for dt in window.days:
        frame = frames[dt].sort_values(KEY, kind="stable").reset_index(drop=True)
        held = holdout_mask(frame[KEY], dt, window.holdout_share) if dt in window.holdout else None
        if held is not None:
            parts[HOLDOUT].append(frame[held])
        if dt not in window.train:
            continue
        rest = frame if held is None else frame[~held].reset_index(drop=True)
        checked = holdout_mask(rest[KEY], f"validation/{dt}", validation_share) if validation_share else None
        if checked is None:
            parts["train"].append(rest)
        else:
            parts["validation"].append(rest[checked])
            parts["train"].append(rest[~checked])
    split = {
        name: pd.concat(frames_, ignore_index=True) if frames_ else pd.DataFrame()
        for name, frames_ in parts.items()
    }
    for name in ("train", HOLDOUT) + (("validation",) if validation_share else ()):
        if split[name].empty:
            raise TrainingDataError(
                f"the {name} rows of window {window.days} are empty: widen the window or change "
                f"holdout_share={window.holdout_share} / validation_share={validation_share}"
            )
    return split


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    body = io.BytesIO()
    frame.to_parquet(body, index=False)
    return body.getvalue()


def prepare_training_data(
    s3: Any,
    published: Mapping[str, str],
    root_uri: str,
    *,
    days: int,
    layout: str,
    as_of: str | None = None,
    holdout_share: float = 0.25,
    validation_share: float = 0.2,
    min_days: int = 1,
) -> TrainingData:
    """Choose the window, split it (:func:`split_training_rows`) and write under ``root_uri``:
    ``holdout/holdout.parquet`` always; ``layout="csv"``: ``train/train.csv`` and
    ``validation/validation.csv`` (label first, no header); ``layout="parquet"``: ``train/train.parquet``
    holding the training *and* validation rows (the script-mode entry point splits its own)."""
    if layout not in LAYOUTS:
        raise TrainingDataError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    window = choose_window(published, days, as_of=as_of, holdout_share=holdout_share, min_days=min_days)
    frames = {dt: read_partition(s3, location) for dt, location in {**window.train, **window.holdout}.items()}
    split = split_training_rows(frames, window, validation_share)
    root = root_uri.rstrip("/")
    holdout_uri = f"{root}/{HOLDOUT}/"
    put_only(
        s3, holdout_uri, f"{HOLDOUT}.parquet", _parquet_bytes(split[HOLDOUT]), "application/octet-stream"
    )
    if layout == "csv":
        written = {name: labelled_matrix(split[name]) for name in CHANNELS}
        for name, matrix in written.items():
            put_only(s3, f"{root}/{name}/", f"{name}.csv", to_csv_rows(matrix), "text/csv")
    else:
        written = {"train": pd.concat([split["train"], split["validation"]], ignore_index=True)}
        put_only(
            s3,
            f"{root}/train/",
            "train.parquet",
            _parquet_bytes(written["train"]),
            "application/octet-stream",
        )
    return TrainingData(
        channels={name: f"{root}/{name}/" for name in written},
        holdout_uri=holdout_uri,
        rows={**{name: len(frame) for name, frame in written.items()}, HOLDOUT: len(split[HOLDOUT])},
        window=window,
        layout=layout,
    )
