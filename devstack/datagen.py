"""Synthetic customer-churn data for one day: a customers CSV and an events JSON-lines file.

Deterministic for a given ``(dt, seed)``. The churn label carries a real signal (few logins/plays, many
support tickets, short tenure and a high monthly fee raise churn risk) and the files carry realistic defects
whose exact counts are returned in :attr:`DayFiles.injected`. Defects are disjoint by construction (a
duplicated row has no missing values, an outlier event is not duplicated, ...), so every defect maps to
exactly one outcome of the Glue ETL:

* ``missing_customer_id`` / ``missing_churned`` customer rows → quarantined;
* ``missing_age`` / ``missing_monthly_fee`` → imputed (``missing_values`` is the sum of the four);
* ``duplicate_customers`` / ``duplicate_events`` → extra exact copies, dropped;
* ``outlier_events`` (amount < 0 or > 10000, duration_s < 0 or > 86400) → quarantined;
* ``malformed_lines`` (truncated or garbage JSON) → quarantined;
* ``unknown_customer_events`` (events of customers that are quarantined or absent from the CSV) →
  quarantined.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sagelake.lake.layout import Lake, check_dt, split_s3_uri

CUSTOMER_COLUMNS = (
    "customer_id",
    "signup_date",
    "plan",
    "monthly_fee",
    "age",
    "region",
    "support_tickets",
    "churned",
)
EVENT_KEYS = ("event_id", "customer_id", "ts", "event_type", "amount", "duration_s")
PLANS = ("basic", "standard", "premium")
PLAN_FEES = (9.99, 15.99, 22.99)
REGIONS = ("north", "south", "east", "west")
EVENT_TYPES = ("login", "play", "purchase", "support")

CUSTOMERS_FILE = "customers.csv"
EVENTS_FILE = "events.jsonl"


@dataclass(frozen=True)
class DayFiles:
    """The raw files of one day and the number of each defect injected into them."""

    customers_csv: bytes
    events_jsonl: bytes
    injected: dict[str, int] = field(default_factory=dict)


def day_seed(dt: str, seed: int = 0) -> int:
    """A 64-bit seed derived from the partition date and an optional extra seed."""
    digest = hashlib.sha256(f"sagelake|{check_dt(dt)}|{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _count(n: int, rate: float, minimum: int = 1) -> int:
    return max(minimum, round(n * rate)) if n else 0


def _zscore(x: np.ndarray) -> np.ndarray:
    std = x.std()
    return (x - x.mean()) / std if std > 0 else x * 0.0


def _customers(rng: np.random.Generator, dt: str, n: int) -> dict[str, np.ndarray]:
    plan = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    fee = np.round(np.asarray(PLAN_FEES)[plan] * rng.uniform(0.75, 1.3, size=n), 2)
    tenure = np.clip(rng.exponential(450.0, size=n), 1, 3650).astype(np.int64)
    signup = (np.datetime64(dt, "D") - tenure.astype("timedelta64[D]")).astype(str)
    age = np.clip(np.round(rng.normal(41, 13, size=n)), 18, 90).astype(np.int64)
    tickets = rng.poisson(1.0, size=n)
    engagement = rng.lognormal(0.0, 0.6, size=n)
    logins = rng.poisson(4.5 * engagement)
    plays = rng.poisson(6.0 * engagement)
    purchases = rng.poisson(0.6 + 0.6 * engagement)
    logit = (
        -1.5
        - 1.1 * _zscore(np.log1p(logins))
        - 0.7 * _zscore(np.log1p(plays))
        + 0.8 * _zscore(tickets.astype(float))
        - 0.8 * _zscore(np.log(tenure))
        + 0.6 * _zscore(fee)
        - 0.15 * _zscore(age.astype(float))
    )
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return {
        "customer_id": np.asarray([f"C{i:06d}" for i in range(1, n + 1)]),
        "signup_date": signup,
        "plan": np.asarray(PLANS)[plan],
        "monthly_fee": fee,
        "age": age,
        "region": np.asarray(REGIONS)[rng.integers(0, 4, size=n)],
        "support_tickets": tickets,
        "churned": churned,
        "logins": logins,
        "plays": plays,
        "purchases": purchases,
    }


def _events(rng: np.random.Generator, dt: str, owner: np.ndarray, counts: dict[str, np.ndarray]) -> dict:
    """One day of events: per customer ``counts[type][i]`` events of each type, sorted by timestamp."""
    kinds = [np.full(int(counts[t].sum()), k) for k, t in enumerate(EVENT_TYPES)]
    who = [np.repeat(np.arange(len(owner)), counts[t]) for t in EVENT_TYPES]
    kind = np.concatenate(kinds)
    cust = np.concatenate(who)
    m = len(kind)
    seconds = rng.integers(0, 86400, size=m)
    order = np.lexsort((cust, seconds))
    kind, cust, seconds = kind[order], cust[order], seconds[order]
    amount = np.where(kind == 2, np.round(rng.lognormal(2.3, 0.8, size=m), 2), 0.0)
    duration = np.select(
        [kind == 0, kind == 1, kind == 2],
        [rng.integers(5, 300, size=m), rng.integers(60, 5400, size=m), rng.integers(20, 240, size=m)],
        rng.integers(120, 2400, size=m),
    ).astype(float)
    ts = (np.datetime64(dt, "s") + seconds.astype("timedelta64[s]")).astype(str)
    compact = dt.replace("-", "")
    return {
        "event_id": np.asarray([f"ev-{compact}-{i:07d}" for i in range(m)]),
        "customer_id": owner[cust],
        "ts": np.char.add(ts, "Z"),
        "event_type": np.asarray(EVENT_TYPES)[kind],
        "amount": amount,
        "duration_s": duration,
    }


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CUSTOMER_COLUMNS)
    writer.writerows(rows)
    return buf.getvalue().encode()


def _malformed(rng: np.random.Generator, line: str) -> str:
    if rng.random() < 0.2:
        return ("<html><body>502 Bad Gateway</body></html>", "\x00\x00garbage", "{{not json}}")[
            int(rng.integers(0, 3))
        ]
    return line[: int(rng.integers(1, len(line) - 1))]


CUSTOMER_DEFECT_RATES = {
    "missing_customer_id": 0.002,
    "missing_churned": 0.003,
    "missing_age": 0.03,
    "missing_monthly_fee": 0.03,
    "duplicate_customers": 0.01,
}
# The CSV column that each missing-value defect blanks.
MISSING_COLUMNS = {
    "missing_customer_id": CUSTOMER_COLUMNS.index("customer_id"),
    "missing_churned": CUSTOMER_COLUMNS.index("churned"),
    "missing_age": CUSTOMER_COLUMNS.index("age"),
    "missing_monthly_fee": CUSTOMER_COLUMNS.index("monthly_fee"),
}
DUPLICATE_EVENT_RATE, OUTLIER_EVENT_RATE, MALFORMED_LINE_RATE = 0.02, 0.005, 0.005
GHOST_CUSTOMER_RATE = 0.005


@dataclass(frozen=True)
class EventDefects:
    """Disjoint sets of event indices (all of known, valid customers): copied, made outliers, malformed."""

    duplicates: np.ndarray
    outliers: np.ndarray
    malformed: frozenset[int]


def _pick_customer_defects(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Disjoint sets of customer indices, one per defect of ``CUSTOMER_DEFECT_RATES`` (in that order)."""
    perm = rng.permutation(n)
    picked: dict[str, np.ndarray] = {}
    start = 0
    for name, rate in CUSTOMER_DEFECT_RATES.items():
        size = _count(n, rate)
        picked[name] = perm[start : start + size]
        start += size
    return picked


def _customer_rows(
    rng: np.random.Generator, cust: dict[str, np.ndarray], picked: dict[str, np.ndarray]
) -> list[list[str]]:
    """The CSV rows: picked values blanked, picked duplicates copied exactly, all rows shuffled."""
    columns = (
        cust["customer_id"].tolist(),
        cust["signup_date"].tolist(),
        cust["plan"].tolist(),
        [f"{fee:.2f}" for fee in cust["monthly_fee"].tolist()],
        [str(age) for age in cust["age"].tolist()],
        cust["region"].tolist(),
        [str(tickets) for tickets in cust["support_tickets"].tolist()],
        [str(churned) for churned in cust["churned"].tolist()],
    )
    rows = [list(row) for row in zip(*columns, strict=True)]
    for name, col in MISSING_COLUMNS.items():
        for i in picked[name].tolist():
            rows[i][col] = ""
    rows.extend(list(rows[i]) for i in picked["duplicate_customers"].tolist())
    return [rows[i] for i in rng.permutation(len(rows)).tolist()]


def _day_events(
    rng: np.random.Generator, dt: str, cust: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Events of every customer in the CSV plus a few of customers who signed up after the export.

    Returns the events and their possible owners: the CSV's customers, then the ghosts.
    """
    n = len(cust["customer_id"])
    n_ghosts = _count(n, GHOST_CUSTOMER_RATE)
    owners = np.concatenate([cust["customer_id"], [f"C{i:06d}" for i in range(n + 1, n + 1 + n_ghosts)]])
    counts = {
        "login": np.concatenate([cust["logins"], rng.integers(1, 4, size=n_ghosts)]),
        "play": np.concatenate([cust["plays"], rng.integers(0, 4, size=n_ghosts)]),
        "purchase": np.concatenate([cust["purchases"], np.zeros(n_ghosts, dtype=np.int64)]),
        "support": np.concatenate([cust["support_tickets"], np.zeros(n_ghosts, dtype=np.int64)]),
    }
    return _events(rng, dt, owners, counts), owners


def _unknown_events(
    customer_ids: np.ndarray, owners: np.ndarray, n_customers: int, picked: dict[str, np.ndarray]
) -> np.ndarray:
    """Boolean mask of the events whose customer is a ghost or a quarantined (id- or label-less) CSV row."""
    invalid = np.ones(len(owners), dtype=bool)
    invalid[:n_customers] = False
    invalid[picked["missing_customer_id"]] = True
    invalid[picked["missing_churned"]] = True
    owner_index = {cid: i for i, cid in enumerate(owners.tolist())}
    index = np.fromiter(
        (owner_index[c] for c in customer_ids.tolist()), dtype=np.int64, count=len(customer_ids)
    )
    return invalid[index]


def _pick_event_defects(rng: np.random.Generator, unknown: np.ndarray) -> EventDefects:
    """Pick disjoint duplicate, outlier and malformed events among those of known, valid customers."""
    m = len(unknown)
    chosen = rng.permutation(np.flatnonzero(~unknown))
    n_dup, n_out, n_bad = (
        _count(m, rate) for rate in (DUPLICATE_EVENT_RATE, OUTLIER_EVENT_RATE, MALFORMED_LINE_RATE)
    )
    return EventDefects(
        duplicates=chosen[:n_dup],
        outliers=chosen[n_dup : n_dup + n_out],
        malformed=frozenset(chosen[n_dup + n_out : n_dup + n_out + n_bad].tolist()),
    )


def _inject_outliers(rng: np.random.Generator, ev: dict[str, np.ndarray], outliers: np.ndarray) -> None:
    """Make each picked event an outlier, in place, cycling through the four kinds of out-of-range value."""
    for k, i in enumerate(outliers):
        which = k % 4
        if which == 0:
            ev["amount"][i] = -round(float(rng.uniform(1, 500)), 2)
        elif which == 1:
            ev["amount"][i] = round(float(rng.uniform(10_001, 1e7)), 2)
        elif which == 2:
            ev["duration_s"][i] = -float(rng.integers(1, 3600))
        else:
            ev["duration_s"][i] = float(rng.integers(86_401, 10_000_000))


def _event_lines(rng: np.random.Generator, ev: dict[str, np.ndarray], malformed: frozenset[int]) -> list[str]:
    """One JSON line per event, in order; the ``malformed`` ones truncated or replaced by garbage."""
    columns = (
        ev["event_id"].tolist(),
        ev["customer_id"].tolist(),
        ev["ts"].tolist(),
        ev["event_type"].tolist(),
        ev["amount"].tolist(),
        ev["duration_s"].tolist(),
    )
    lines = []
    for i, values in enumerate(zip(*columns, strict=True)):
        line = json.dumps(dict(zip(EVENT_KEYS, values, strict=True)))
        lines.append(_malformed(rng, line) if i in malformed else line)
    return lines


def insert_copies(lines: list[str], copies: list[str], positions: list[int]) -> list[str]:
    """``lines`` with each ``copies[k]`` inserted just before original line ``positions[k]`` (0..len(lines)).

    Copies sharing a position come out in sorted order: the result equals inserting the ``(position, copy)``
    pairs one by one with ``list.insert`` in descending order, built in linear time instead of quadratic.
    """
    out: list[str] = []
    done = 0
    for pos, copy in sorted(zip(positions, copies, strict=True)):
        if pos > done:
            out.extend(lines[done:pos])
            done = pos
        out.append(copy)
    out.extend(lines[done:])
    return out


def _with_duplicates(rng: np.random.Generator, lines: list[str], duplicates: np.ndarray) -> list[str]:
    """``lines`` plus an exact copy of each line in ``duplicates``, each at a random position."""
    copies = [lines[i] for i in duplicates.tolist()]
    positions = rng.integers(0, len(lines) + 1, size=len(copies))
    return insert_copies(lines, copies, positions.tolist())


def _injected(picked: dict[str, np.ndarray], defects: EventDefects, unknown: np.ndarray) -> dict[str, int]:
    """The number of each defect injected into the day's files (see the module doc)."""
    injected = {name: len(rows) for name, rows in picked.items()}
    injected["missing_values"] = sum(size for name, size in injected.items() if name.startswith("missing_"))
    injected["duplicate_events"] = len(defects.duplicates)
    injected["outlier_events"] = len(defects.outliers)
    injected["malformed_lines"] = len(defects.malformed)
    injected["unknown_customer_events"] = int(unknown.sum())
    return injected


def generate_day(dt: str, n_customers: int = 2000, seed: int = 0) -> DayFiles:
    """Generate the raw customers CSV and events JSON lines of day ``dt`` with ``n_customers`` customers."""
    check_dt(dt)
    if n_customers < 10:
        raise ValueError(f"n_customers={n_customers} is too small: generate at least 10 customers")
    # The order of the steps below fixes the random stream: keep it, or the bytes of a day change.
    rng = np.random.default_rng(day_seed(dt, seed))
    cust = _customers(rng, dt, n_customers)
    picked = _pick_customer_defects(rng, n_customers)
    rows = _customer_rows(rng, cust, picked)
    ev, owners = _day_events(rng, dt, cust)
    unknown = _unknown_events(ev["customer_id"], owners, n_customers, picked)
    defects = _pick_event_defects(rng, unknown)
    _inject_outliers(rng, ev, defects.outliers)
    lines = _with_duplicates(rng, _event_lines(rng, ev, defects.malformed), defects.duplicates)
    return DayFiles(
        customers_csv=_csv_bytes(rows),
        events_jsonl=("\n".join(lines) + "\n").encode(),
        injected=_injected(picked, defects, unknown),
    )


def land_day(s3_client, lake: Lake, dt: str, files: DayFiles) -> list[str]:
    """Upload one day's raw files into the lake's raw partitions of ``dt``; return their ``s3://`` URIs."""
    uris = [lake.raw_customers(dt) + CUSTOMERS_FILE, lake.raw_events(dt) + EVENTS_FILE]
    payloads = [(files.customers_csv, "text/csv"), (files.events_jsonl, "application/x-ndjson")]
    for uri, (body, content_type) in zip(uris, payloads, strict=True):
        bucket, key = split_s3_uri(uri)
        s3_client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return uris


def curated_features(
    n: int, seed: int, *, churn_p: float = 0.2, zero_event_p: float = 0.05, id_prefix: str | None = None
) -> Any:
    """A pandas frame of ``n`` customers shaped like the curated ``churn_features`` table (its columns and
    types), for tests and benchmarks that need published rows without running the ETL."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_events = rng.poisson(20, n) * (rng.random(n) >= zero_event_p)
    n_logins = rng.binomial(n_events, 0.5)
    n_purchases = rng.binomial(n_events - n_logins, 0.3)
    prefix = f"c{seed}-" if id_prefix is None else id_prefix
    return pd.DataFrame(
        {
            "customer_id": [f"{prefix}{i:05d}" for i in range(n)],
            "plan": rng.choice(["basic", "standard", "premium"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "monthly_fee": rng.choice([9.99, 14.99, 19.99], n),
            "age": rng.integers(18, 80, n).astype(float),
            "support_tickets": rng.poisson(1.0, n).astype("int32"),
            "tenure_days": rng.integers(0, 2000, n).astype("int32"),
            "n_events": n_events.astype("int64"),
            "n_logins": n_logins.astype("int64"),
            "n_purchases": n_purchases.astype("int64"),
            "total_amount": np.round(n_purchases * rng.uniform(1, 20, n), 2),
            "avg_session_s": np.where(n_events > 0, rng.uniform(30, 600, n), 0.0),
            "churned": (rng.random(n) < churn_p).astype("int32"),
        }
    )
