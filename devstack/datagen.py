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


def generate_day(dt: str, n_customers: int = 2000, seed: int = 0) -> DayFiles:
    """Generate the raw customers CSV and events JSON lines of day ``dt`` with ``n_customers`` customers."""
    check_dt(dt)
    if n_customers < 10:
        raise ValueError(f"n_customers={n_customers} is too small: generate at least 10 customers")
    rng = np.random.default_rng(day_seed(dt, seed))
    cust = _customers(rng, dt, n_customers)
    n = n_customers

    # Customer-row defects on disjoint sets of rows.
    perm = rng.permutation(n)
    sizes = {
        "missing_customer_id": _count(n, 0.002),
        "missing_churned": _count(n, 0.003),
        "missing_age": _count(n, 0.03),
        "missing_monthly_fee": _count(n, 0.03),
        "duplicate_customers": _count(n, 0.01),
    }
    picked: dict[str, np.ndarray] = {}
    start = 0
    for name, size in sizes.items():
        picked[name] = perm[start : start + size]
        start += size
    quarantined = np.zeros(n, dtype=bool)
    quarantined[picked["missing_customer_id"]] = True
    quarantined[picked["missing_churned"]] = True

    rows = [
        [
            cust["customer_id"][i],
            cust["signup_date"][i],
            cust["plan"][i],
            f"{cust['monthly_fee'][i]:.2f}",
            str(cust["age"][i]),
            cust["region"][i],
            str(cust["support_tickets"][i]),
            str(cust["churned"][i]),
        ]
        for i in range(n)
    ]
    for col, name in (
        (0, "missing_customer_id"),
        (7, "missing_churned"),
        (4, "missing_age"),
        (3, "missing_monthly_fee"),
    ):
        for i in picked[name]:
            rows[i][col] = ""
    rows.extend(list(rows[i]) for i in picked["duplicate_customers"])
    rows = [rows[i] for i in rng.permutation(len(rows))]

    # Events of every customer in the CSV plus a few of customers who signed up after the export.
    n_ghosts = _count(n, 0.005)
    owners = np.concatenate([cust["customer_id"], [f"C{i:06d}" for i in range(n + 1, n + 1 + n_ghosts)]])
    counts = {
        "login": np.concatenate([cust["logins"], rng.integers(1, 4, size=n_ghosts)]),
        "play": np.concatenate([cust["plays"], rng.integers(0, 4, size=n_ghosts)]),
        "purchase": np.concatenate([cust["purchases"], np.zeros(n_ghosts, dtype=np.int64)]),
        "support": np.concatenate([cust["support_tickets"], np.zeros(n_ghosts, dtype=np.int64)]),
    }
    ev = _events(rng, dt, owners, counts)
    m = len(ev["event_id"])
    owner_index = {cid: i for i, cid in enumerate(owners)}
    unknown = np.asarray([owner_index[c] >= n or quarantined[owner_index[c]] for c in ev["customer_id"]])
    clean = np.flatnonzero(~unknown)
    chosen = rng.permutation(clean)
    n_dup, n_out, n_bad = _count(m, 0.02), _count(m, 0.005), _count(m, 0.005)
    dup_idx = chosen[:n_dup]
    out_idx = chosen[n_dup : n_dup + n_out]
    bad_idx = set(chosen[n_dup + n_out : n_dup + n_out + n_bad].tolist())
    for k, i in enumerate(out_idx):
        which = k % 4
        if which == 0:
            ev["amount"][i] = -round(float(rng.uniform(1, 500)), 2)
        elif which == 1:
            ev["amount"][i] = round(float(rng.uniform(10_001, 1e7)), 2)
        elif which == 2:
            ev["duration_s"][i] = -float(rng.integers(1, 3600))
        else:
            ev["duration_s"][i] = float(rng.integers(86_401, 10_000_000))

    lines = []
    for i in range(m):
        line = json.dumps(
            {
                "event_id": str(ev["event_id"][i]),
                "customer_id": str(ev["customer_id"][i]),
                "ts": str(ev["ts"][i]),
                "event_type": str(ev["event_type"][i]),
                "amount": float(ev["amount"][i]),
                "duration_s": float(ev["duration_s"][i]),
            }
        )
        lines.append(_malformed(rng, line) if i in bad_idx else line)
    copies = [lines[i] for i in dup_idx]
    positions = rng.integers(0, m + 1, size=n_dup)
    for pos, line in sorted(zip(positions.tolist(), copies, strict=True), reverse=True):
        lines.insert(pos, line)

    injected = dict(sizes)
    injected["missing_values"] = sum(sizes[k] for k in sizes if k.startswith("missing_"))
    injected["duplicate_events"] = n_dup
    injected["outlier_events"] = n_out
    injected["malformed_lines"] = n_bad
    injected["unknown_customer_events"] = int(unknown.sum())
    return DayFiles(
        customers_csv=_csv_bytes(rows),
        events_jsonl=("\n".join(lines) + "\n").encode(),
        injected=injected,
    )


def land_day(s3_client, lake: Lake, dt: str, files: DayFiles) -> list[str]:
    """Upload one day's raw files into the lake's raw partitions of ``dt``; return their ``s3://`` URIs."""
    uris = [lake.raw_customers(dt) + CUSTOMERS_FILE, lake.raw_events(dt) + EVENTS_FILE]
    payloads = [(files.customers_csv, "text/csv"), (files.events_jsonl, "application/x-ndjson")]
    for uri, (body, content_type) in zip(uris, payloads, strict=True):
        bucket, key = split_s3_uri(uri)
        s3_client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return uris
