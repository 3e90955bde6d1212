"""The built-in XGBoost channel: fixed column order, one-hot vocabulary, the window and its holdout."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from sagelake.lake.catalog import CHURN_FEATURES_COLUMNS
from sagelake.ml.training_data import (
    CATEGORY_VOCABULARY,
    CSV_FEATURE_COLUMNS,
    LABEL,
    TrainingDataError,
    choose_window,
    encode_features,
    holdout_mask,
    labelled_matrix,
    serving_csv,
    split_training_rows,
    split_window,
    to_csv_rows,
)
from tests.support.training_data import synthetic_features

PUBLISHED = {
    f"2024-01-0{d}": f"s3://lake/curated/churn_features/dt=2024-01-0{d}/version=v{d}/" for d in range(1, 7)
}


def test_column_order_is_fixed_and_documented() -> None:
    assert CSV_FEATURE_COLUMNS == (
        "monthly_fee",
        "age",
        "support_tickets",
        "tenure_days",
        "n_events",
        "n_logins",
        "n_purchases",
        "total_amount",
        "avg_session_s",
        "plan_basic",
        "plan_standard",
        "plan_premium",
        "region_north",
        "region_south",
        "region_east",
        "region_west",
    )
    # every curated column is either a feature, one-hot encoded, the label or the key
    catalog = {name for name, _ in CHURN_FEATURES_COLUMNS}
    assert catalog == {*CSV_FEATURE_COLUMNS[:9], *CATEGORY_VOCABULARY, LABEL, "customer_id"}


def test_rows_put_the_label_first_and_one_hot_the_categories() -> None:
    frame = synthetic_features(6, 3)
    shuffled = frame[list(reversed(frame.columns))]  # input column order does not matter
    matrix = labelled_matrix(shuffled)
    assert list(matrix.columns) == [LABEL, *CSV_FEATURE_COLUMNS]
    assert matrix[LABEL].tolist() == frame[LABEL].tolist()
    for column, vocabulary in CATEGORY_VOCABULARY.items():
        one_hot = matrix[[f"{column}_{v}" for v in vocabulary]].to_numpy()
        assert (one_hot.sum(axis=1) == 1).all()
        assert [vocabulary[i] for i in one_hot.argmax(axis=1)] == frame[column].tolist()

    rows = to_csv_rows(matrix).decode().splitlines()
    assert len(rows) == 6 and all(len(r.split(",")) == 1 + len(CSV_FEATURE_COLUMNS) for r in rows)
    assert not rows[0].startswith(LABEL)  # no header row
    parsed = pd.read_csv(io.StringIO("\n".join(rows)), header=None).to_numpy()
    np.testing.assert_array_equal(parsed, matrix.to_numpy())  # floats survive the round trip exactly


def test_vocabulary_is_fixed_whatever_values_a_batch_holds() -> None:
    only_basic = synthetic_features(20, 4).assign(plan="basic", region="west")
    encoded = encode_features(only_basic)
    assert list(encoded.columns) == list(CSV_FEATURE_COLUMNS)
    assert encoded["plan_basic"].eq(1).all() and encoded["plan_premium"].eq(0).all()
    # serving rows: the same columns, no label
    first = serving_csv(only_basic.head(1)).decode().strip().split(",")
    assert [float(v) for v in first] == encoded.iloc[0].tolist()


def test_unknown_category_and_missing_columns_are_refused() -> None:
    frame = synthetic_features(5, 5)
    frame.loc[2, "plan"] = "enterprise"
    with pytest.raises(
        TrainingDataError, match=r"plan value\(s\) \['enterprise'\] are outside the vocabulary"
    ):
        encode_features(frame)
    with pytest.raises(TrainingDataError, match=r"lack column\(s\) \['region'\]"):
        encode_features(synthetic_features(5, 5).drop(columns=["region"]))
    with pytest.raises(TrainingDataError, match="churned must be 0 or 1"):
        labelled_matrix(synthetic_features(5, 5).assign(churned=2))


def test_window_takes_the_last_days_up_to_the_run_and_holds_out_the_newest() -> None:
    window = choose_window(PUBLISHED, 3, as_of="2024-01-05")
    assert list(window.train) == ["2024-01-03", "2024-01-04"]
    assert list(window.holdout) == ["2024-01-05"]
    assert window.train["2024-01-04"] == PUBLISHED["2024-01-04"]
    assert not set(window.train) & set(window.holdout)
    latest = choose_window(PUBLISHED, 4)
    assert latest.days == ["2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"]
    assert latest.newest == "2024-01-06"


def test_empty_and_short_windows_are_refused() -> None:
    with pytest.raises(TrainingDataError, match="no published partition up to 2023-12-31"):
        choose_window(PUBLISHED, 3, as_of="2023-12-31")
    with pytest.raises(TrainingDataError, match="no published partition: publish a day"):
        choose_window({}, 3)
    with pytest.raises(TrainingDataError, match=r"only 2 published partition\(s\) up to 2024-01-02"):
        choose_window(PUBLISHED, 5, as_of="2024-01-02")
    with pytest.raises(TrainingDataError, match="leaves nothing to train on"):
        choose_window(PUBLISHED, 3, as_of="2024-01-01", min_days=1)
    for kwargs, message in (
        ({"days": 0}, "at least 1"),
        ({"days": 3, "holdout_share": 0}, "holdout_share=0"),
        ({"days": 3, "min_days": 4}, "min_days=4"),
    ):
        with pytest.raises(TrainingDataError, match=message):
            choose_window(PUBLISHED, **kwargs)


def test_a_short_window_is_accepted_down_to_min_days() -> None:
    window = choose_window(PUBLISHED, 5, as_of="2024-01-02", min_days=2)
    assert list(window.train) == ["2024-01-01"] and list(window.holdout) == ["2024-01-02"]


def test_whole_day_holdout_never_reaches_the_train_channel() -> None:
    frames = {dt: synthetic_features(50, i) for i, dt in enumerate(sorted(PUBLISHED), start=1)}
    window = choose_window(PUBLISHED, 3)
    channels = split_window(frames, window)
    assert len(channels["validation"]) == 50
    assert len(channels["train"]) == 100
    newest = labelled_matrix(frames["2024-01-06"]).to_numpy()
    np.testing.assert_array_equal(np.sort(channels["validation"].to_numpy(), axis=0), np.sort(newest, axis=0))
    train_rows = {tuple(r) for r in channels["train"].to_numpy()}
    assert not train_rows & {tuple(r) for r in newest}


def test_share_holdout_splits_the_newest_day_by_customer_without_overlap() -> None:
    frames = {dt: synthetic_features(400, i) for i, dt in enumerate(sorted(PUBLISHED), start=1)}
    window = choose_window(PUBLISHED, 2, holdout_share=0.25)
    assert list(window.train) == ["2024-01-05", "2024-01-06"] and list(window.holdout) == ["2024-01-06"]
    channels = split_window(frames, window)
    newest = frames["2024-01-06"].sort_values("customer_id").reset_index(drop=True)
    held = holdout_mask(newest["customer_id"], "2024-01-06", 0.25)
    assert 60 < held.sum() < 140  # about a quarter
    assert len(channels["validation"]) == held.sum()
    assert len(channels["train"]) == 400 + (400 - held.sum())
    held_rows = {tuple(r) for r in labelled_matrix(newest[held]).to_numpy()}
    assert {tuple(r) for r in channels["validation"].to_numpy()} == held_rows
    assert not {tuple(r) for r in channels["train"].to_numpy()} & held_rows
    # the same customers every time, whatever order the rows arrive in
    again = split_window(
        {**frames, "2024-01-06": frames["2024-01-06"].sample(frac=1, random_state=9)}, window
    )
    np.testing.assert_array_equal(again["validation"].to_numpy(), channels["validation"].to_numpy())


def test_an_empty_channel_is_refused() -> None:
    frames = {dt: synthetic_features(3, 1) for dt in PUBLISHED}
    window = choose_window(PUBLISHED, 1, holdout_share=0.0001)
    with pytest.raises(TrainingDataError, match="validation channel of window"):
        split_window(frames, window)
    with pytest.raises(TrainingDataError, match=r"no rows read for day\(s\)"):
        split_window({}, window)


def test_the_pipeline_split_keeps_holdout_validation_and_train_apart() -> None:
    frames = {dt: synthetic_features(400, i) for i, dt in enumerate(sorted(PUBLISHED), start=1)}
    window = choose_window(PUBLISHED, 3, holdout_share=0.25)
    split = split_training_rows(frames, window, validation_share=0.2)
    keys = {
        name: set(zip(part["customer_id"], part["monthly_fee"], strict=True)) for name, part in split.items()
    }
    assert not keys["train"] & keys["validation"]
    assert not keys["holdout"] & (keys["train"] | keys["validation"])
    assert sum(len(part) for part in split.values()) == 3 * 400  # every row of the window, once
    newest = frames["2024-01-06"].sort_values("customer_id").reset_index(drop=True)
    held = holdout_mask(newest["customer_id"], "2024-01-06", 0.25)
    assert sorted(split["holdout"]["customer_id"]) == sorted(newest["customer_id"][held])
    assert 0.1 < len(split["validation"]) / (len(split["train"]) + len(split["validation"])) < 0.3
    again = split_training_rows(
        {dt: frame.sample(frac=1, random_state=3) for dt, frame in frames.items()}, window, 0.2
    )
    for name, part in split.items():  # the same rows whatever order they arrive in
        pd.testing.assert_frame_equal(part, again[name])


def test_the_pipeline_split_without_validation_and_bad_shares() -> None:
    frames = {dt: synthetic_features(50, 1) for dt in PUBLISHED}
    window = choose_window(PUBLISHED, 2, holdout_share=1.0)
    split = split_training_rows(frames, window, validation_share=0)
    assert (len(split["train"]), len(split["validation"]), len(split["holdout"])) == (50, 0, 50)
    with pytest.raises(TrainingDataError, match="validation_share=1"):
        split_training_rows(frames, window, validation_share=1)
    tiny = {dt: synthetic_features(2, 1) for dt in PUBLISHED}
    with pytest.raises(TrainingDataError, match="validation rows of window"):
        split_training_rows(tiny, choose_window(PUBLISHED, 1, holdout_share=0.5), validation_share=0.001)
