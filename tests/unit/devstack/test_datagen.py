"""The synthetic day: deterministic, schema as contracted, defects as reported, a real churn signal."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter

import pytest

from devstack.datagen import CUSTOMER_COLUMNS, EVENT_KEYS, generate_day, insert_copies

DT = "2024-03-01"


@pytest.fixture(scope="module")
def day():
    return generate_day(DT, n_customers=2000)


def customer_rows(files) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(files.customers_csv.decode()))
    assert tuple(reader.fieldnames) == CUSTOMER_COLUMNS
    return list(reader)


def event_lines(files) -> list[str]:
    text = files.events_jsonl.decode()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def parse(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def is_outlier(event: dict) -> bool:
    return not (0 <= event["amount"] <= 10000 and 0 <= event["duration_s"] <= 86400)


def test_same_dt_and_seed_give_identical_bytes(day):
    again = generate_day(DT, n_customers=2000)
    assert again == day
    assert generate_day(DT, n_customers=2000, seed=1).events_jsonl != day.events_jsonl
    assert generate_day("2024-03-02", n_customers=2000).customers_csv != day.customers_csv


def test_customers_schema_and_values(day):
    rows = customer_rows(day)
    for row in rows:
        assert row["plan"] in {"basic", "standard", "premium"}
        assert row["region"] in {"north", "south", "east", "west"}
        assert row["churned"] in {"0", "1", ""}
        assert row["signup_date"] <= DT and len(row["signup_date"]) == 10
        assert int(row["support_tickets"]) >= 0
        if row["age"]:
            assert 18 <= int(row["age"]) <= 90
        if row["monthly_fee"]:
            assert float(row["monthly_fee"]) > 0


def test_events_schema(day):
    events = [e for e in map(parse, event_lines(day)) if e is not None]
    assert 10 <= len(events) / 2000 <= 20
    for event in events:
        assert tuple(event) == EVENT_KEYS
        assert event["event_type"] in {"login", "play", "purchase", "support"}
        assert event["ts"].startswith(DT + "T") and event["ts"].endswith("Z")
        assert isinstance(event["amount"], float) and isinstance(event["duration_s"], float)
        if event["event_type"] != "purchase" and not is_outlier(event):
            assert event["amount"] == 0


def test_customer_defects_match_injected(day):
    rows = customer_rows(day)
    injected = day.injected
    lines = [tuple(row.values()) for row in rows]
    assert len(lines) - len(set(lines)) == injected["duplicate_customers"]
    unique = [dict(zip(CUSTOMER_COLUMNS, line, strict=True)) for line in set(lines)]
    missing = {col: sum(1 for row in unique if row[col] == "") for col in CUSTOMER_COLUMNS}
    assert missing["customer_id"] == injected["missing_customer_id"] >= 1
    assert missing["churned"] == injected["missing_churned"] >= 1
    assert missing["age"] == injected["missing_age"]
    assert missing["monthly_fee"] == injected["missing_monthly_fee"]
    assert injected["missing_values"] == sum(missing.values())
    assert 0.02 <= injected["missing_age"] / 2000 <= 0.04
    assert 0.005 <= injected["duplicate_customers"] / 2000 <= 0.015


def test_event_defects_match_injected(day):
    lines = event_lines(day)
    parsed = [(line, parse(line)) for line in lines]
    malformed = [line for line, event in parsed if event is None]
    good = [line for line, event in parsed if event is not None]
    assert len(malformed) == day.injected["malformed_lines"]
    assert len(good) - len(set(good)) == day.injected["duplicate_events"]
    unique = [json.loads(line) for line in set(good)]
    assert sum(map(is_outlier, unique)) == day.injected["outlier_events"]
    valid_ids = {r["customer_id"] for r in customer_rows(day) if r["customer_id"] and r["churned"]}
    unknown = [e for e in unique if e["customer_id"] not in valid_ids]
    assert len(unknown) == day.injected["unknown_customer_events"] > 0
    assert not any(map(is_outlier, unknown))
    assert len({e["event_id"] for e in unique}) == len(unique)
    total = len(lines)
    assert 0.015 <= day.injected["duplicate_events"] / total <= 0.025
    assert 0.003 <= day.injected["outlier_events"] / total <= 0.007
    assert 0.003 <= day.injected["malformed_lines"] / total <= 0.007


def test_churners_behave_differently(day):
    rows = {r["customer_id"]: r for r in customer_rows(day) if r["customer_id"] and r["churned"]}
    logins = Counter(
        e["customer_id"] for e in map(parse, event_lines(day)) if e and e["event_type"] == "login"
    )

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    churners = [r for r in rows.values() if r["churned"] == "1"]
    stayers = [r for r in rows.values() if r["churned"] == "0"]
    assert 0.15 <= len(churners) / len(rows) <= 0.45
    assert mean([logins[r["customer_id"]] for r in churners]) < 0.7 * mean(
        [logins[r["customer_id"]] for r in stayers]
    )
    assert mean([int(r["support_tickets"]) for r in churners]) > mean(
        [int(r["support_tickets"]) for r in stayers]
    )
    assert (
        sorted(r["signup_date"] for r in churners)[len(churners) // 2]
        > sorted(r["signup_date"] for r in stayers)[len(stayers) // 2]
    )


def test_gradient_boosting_learns_churn_from_the_raw_files(day):
    """The label is learnable: a small GBM on per-customer aggregates of the raw files beats AUC 0.75."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    customers = pd.DataFrame(customer_rows(day)).drop_duplicates()
    customers = customers[(customers.customer_id != "") & (customers.churned != "")]
    good = [e for e in map(parse, event_lines(day)) if e and not is_outlier(e)]
    events = pd.DataFrame(good).drop_duplicates()
    counts = pd.crosstab(events.customer_id, events.event_type)
    data = customers.join(counts, on="customer_id")
    data[counts.columns] = data[counts.columns].fillna(0)
    data["tenure_days"] = (pd.Timestamp(DT) - pd.to_datetime(data.signup_date)).dt.days
    data["plan"] = data.plan.map({"basic": 0, "standard": 1, "premium": 2})
    for column in ("monthly_fee", "age", "support_tickets"):
        data[column] = pd.to_numeric(data[column].replace("", None))
    x = data[["plan", "monthly_fee", "age", "support_tickets", "tenure_days", "login", "play", "purchase"]]
    y = data.churned.astype(int)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.08, random_state=0)
    model.fit(x_train, y_train)
    assert roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]) > 0.75


def insert_one_by_one(lines: list[str], copies: list[str], positions: list[int]) -> list[str]:
    """The reference: ``list.insert`` of each (position, copy) pair, highest position first."""
    out = list(lines)
    for pos, line in sorted(zip(positions, copies, strict=True), reverse=True):
        out.insert(pos, line)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_duplicate_insertion_matches_inserting_one_by_one(seed):
    rnd = random.Random(seed)
    lines = [f"line-{i}" for i in range(rnd.randint(0, 30))]
    copies = [rnd.choice(lines) if lines else "only" for _ in range(rnd.randint(0, 12))]
    # Few distinct positions so that several copies share one, including both ends.
    positions = [rnd.choice([0, len(lines), rnd.randint(0, len(lines))]) for _ in copies]
    expected = insert_one_by_one(lines, copies, positions)
    assert insert_copies(lines, copies, positions) == expected
    assert len(expected) == len(lines) + len(copies)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        generate_day("2024/03/01")
    with pytest.raises(ValueError, match="at least 10"):
        generate_day(DT, n_customers=3)
