"""The Glue job script on local Spark and local files: one Spark driver runs it twice into the same output.

Every expectation is recomputed independently (pandas on the raw files) and compared with the real Parquet
and JSON the script wrote.
"""

from __future__ import annotations

import importlib.util
import io
import json
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devstack.datagen import generate_day
from sagelake.lake.contracts import load_contracts, to_job_argument
from tests.support.constants import GLUE_SCRIPT
from tests.support.contract import FEATURES_SCHEMA
from tests.support.spark_driver import STOP_CONTEXT_AT_EXIT, run_driver

DT = "2024-05-17"
OUTPUTS = ("output_features", "output_processed_events", "output_quarantine", "output_metrics")


# Hand-made bad records appended to the generated day, to exercise the rules the generator never triggers.
EXTRA_CUSTOMERS = [
    ("invalid_customer", "C777001,2024-01-01,gold,9.99,30,north,0,0"),
    ("malformed_csv", "C777002,2024-01-01,basic,9.99,abc,north,0,1"),
    ("duplicate_customer_id", "C777003,2024-01-01,basic,9.99,30,north,0,0"),
    ("duplicate_customer_id", "C777003,2024-01-01,basic,12.99,30,north,1,0"),
]
EXTRA_EVENTS = [
    (
        "invalid_event",
        '{"event_id": "x1", "customer_id": "C000001", "ts": "2024-05-17T10:00:00Z", '
        '"event_type": "click", "amount": 0.0, "duration_s": 5.0}',
    ),
    (
        "invalid_event",
        '{"event_id": "x2", "customer_id": "C000001", "ts": "yesterday", '
        '"event_type": "login", "amount": 0.0, "duration_s": 5.0}',
    ),
]

DRIVER = STOP_CONTEXT_AT_EXIT + textwrap.dedent(
    """
    import runpy, shutil, sys
    script, args_file, out_root, snapshot = sys.argv[1:5]
    args = open(args_file).read().split("\\n")
    for run in (1, 2):
        sys.argv = [script, *args]
        runpy.run_path(script, run_name="__main__")
        if run == 1:
            shutil.copytree(out_root, snapshot)
    """
)


@pytest.fixture(scope="module")
def job(tmp_path_factory, spark_gateway_dir):
    """Generate a small day, run the script twice (same outputs) on the session's warm Spark JVM as local
    Glue runs do (its own JVM if that one is busy), return paths, raw files and the log."""
    root = tmp_path_factory.mktemp("glue_script")
    files = generate_day(DT, n_customers=300, seed=11)
    (root / "in" / "customers").mkdir(parents=True)
    (root / "in" / "events").mkdir(parents=True)
    extra_customers = "".join(line + "\n" for _, line in EXTRA_CUSTOMERS).encode()
    extra_events = "".join(line + "\n" for _, line in EXTRA_EVENTS).encode()
    (root / "in" / "customers" / "customers.csv").write_bytes(files.customers_csv + extra_customers)
    (root / "in" / "events" / "events.jsonl").write_bytes(files.events_jsonl + extra_events)
    args = {
        "JOB_NAME": "churn_features_test",
        "dt": DT,
        "contracts": to_job_argument(load_contracts()),
        "input_customers": str(root / "in" / "customers"),
        "input_events": str(root / "in" / "events"),
        **{name: str(root / "out" / name) for name in OUTPUTS},
        "job-bookmark-option": "job-bookmark-disable",  # a Glue argument the script must ignore
    }
    (root / "args.txt").write_text("\n".join(part for k, v in args.items() for part in (f"--{k}", v)))
    (root / "driver.py").write_text(DRIVER)
    proc = run_driver(
        [root / "driver.py", GLUE_SCRIPT, root / "args.txt", root / "out", root / "run1"],
        root,
        spark_gateway_dir,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"root": root, "files": files, "log": proc.stdout + proc.stderr}


def read_dir(path: Path) -> pa.Table:
    return pq.read_table(path)


def data_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_")))


def raw_customers(files) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(files.customers_csv), dtype={"customer_id": str, "signup_date": str})


def raw_events(files) -> tuple[list[dict], list[str]]:
    parsed, malformed = [], []
    for line in files.events_jsonl.decode().splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            malformed.append(line)
    return parsed, malformed


def expected_features(files) -> pd.DataFrame:
    """The curated table recomputed with pandas from the raw files."""
    customers = raw_customers(files).drop_duplicates().dropna(subset=["customer_id", "churned"])
    customers["age"] = customers["age"].fillna(customers["age"].median())
    plan_fee = customers.groupby("plan")["monthly_fee"].transform("median")
    customers["monthly_fee"] = customers["monthly_fee"].fillna(plan_fee)
    parsed, _ = raw_events(files)
    events = pd.DataFrame(parsed).drop_duplicates()
    events = events[events.amount.between(0, 10000) & events.duration_s.between(0, 86400)]
    events = events[events.customer_id.isin(customers.customer_id)]
    agg = events.groupby("customer_id").agg(
        n_events=("event_id", "size"),
        n_logins=("event_type", lambda s: int((s == "login").sum())),
        n_purchases=("event_type", lambda s: int((s == "purchase").sum())),
        total_amount=("amount", "sum"),
        avg_session_s=("duration_s", "mean"),
    )
    out = customers.merge(agg, on="customer_id", how="left").fillna(
        {"n_events": 0, "n_logins": 0, "n_purchases": 0, "total_amount": 0.0, "avg_session_s": 0.0}
    )
    out["tenure_days"] = (pd.Timestamp(DT) - pd.to_datetime(out.signup_date)).dt.days
    return out.set_index("customer_id").sort_index()


@pytest.mark.spark
def test_features_have_the_curated_schema_exactly(job):
    table = read_dir(job["root"] / "out" / "output_features")
    assert [(f.name, f.type) for f in table.schema] == [(f.name, f.type) for f in FEATURES_SCHEMA]
    assert 1 <= len(data_files(job["root"] / "out" / "output_features")) <= 4


@pytest.mark.spark
def test_one_complete_row_per_valid_customer(job):
    features = read_dir(job["root"] / "out" / "output_features").to_pandas()
    expected = expected_features(job["files"])
    assert features.customer_id.is_unique
    assert sorted(features.customer_id) == sorted(expected.index)
    assert not features.isna().any().any()
    assert list(features.customer_id) == sorted(features.customer_id)
    assert (features.avg_session_s >= 0).all() and (features.tenure_days >= 1).all()


@pytest.mark.spark
def test_feature_values_match_an_independent_computation(job):
    got = read_dir(job["root"] / "out" / "output_features").to_pandas().set_index("customer_id").sort_index()
    want = expected_features(job["files"])
    for column in ("plan", "region", "support_tickets", "tenure_days", "n_events", "n_logins", "n_purchases"):
        assert (got[column] == want[column].astype(got[column].dtype)).all(), column
    assert (got.churned == want.churned.astype(int)).all()
    for column in ("monthly_fee", "age", "total_amount", "avg_session_s"):
        assert got[column].to_numpy() == pytest.approx(want[column].to_numpy(), abs=1e-3), column


@pytest.mark.spark
def test_quarantine_matches_the_injected_defects(job):
    quarantine = read_dir(job["root"] / "out" / "output_quarantine")
    assert quarantine.schema.names == ["source", "reason", "record"]
    assert all(field.type == pa.string() for field in quarantine.schema)
    q = quarantine.to_pandas()
    injected = job["files"].injected
    counts = q.groupby(["source", "reason"]).size().to_dict()
    assert counts == {
        ("customers", "missing_churned"): injected["missing_churned"],
        ("customers", "missing_customer_id"): injected["missing_customer_id"],
        ("customers", "invalid_customer"): 1,
        ("customers", "malformed_csv"): 1,
        ("customers", "duplicate_customer_id"): 2,
        ("events", "malformed_json"): injected["malformed_lines"],
        ("events", "outlier"): injected["outlier_events"],
        ("events", "unknown_customer"): injected["unknown_customer_events"],
        ("events", "invalid_event"): 2,
    }
    assert list(q[q.reason == "malformed_csv"].record) == [EXTRA_CUSTOMERS[1][1]]
    assert set(json.loads(r)["event_id"] for r in q[q.reason == "invalid_event"].record) == {"x1", "x2"}
    _, malformed = raw_events(job["files"])
    assert sorted(q[q.reason == "malformed_json"].record) == sorted(malformed)
    assert all(record.startswith(",") for record in q[q.reason == "missing_customer_id"].record)
    for record in q[q.reason == "outlier"].record:
        event = json.loads(record)
        assert not (0 <= event["amount"] <= 10000 and 0 <= event["duration_s"] <= 86400)


@pytest.mark.spark
def test_processed_events_are_clean(job):
    table = read_dir(job["root"] / "out" / "output_processed_events")
    assert table.schema.names == ["event_id", "customer_id", "ts", "event_type", "amount", "duration_s"]
    assert pa.types.is_timestamp(table.schema.field("ts").type)
    events = table.to_pandas()
    features = read_dir(job["root"] / "out" / "output_features").to_pandas()
    assert events.event_id.is_unique
    assert set(events.customer_id) <= set(features.customer_id)
    assert events.amount.between(0, 10000).all() and events.duration_s.between(0, 86400).all()
    assert len(events) == features.n_events.sum()
    assert (events.ts.dt.strftime("%Y-%m-%d") == DT).all()


@pytest.mark.spark
def test_metrics_are_one_json_object_consistent_with_the_files(job):
    out = job["root"] / "out"
    parts = data_files(out / "output_metrics")
    assert len(parts) == 1 and parts[0].suffix == ".json"
    lines = parts[0].read_text().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    injected = job["files"].injected
    quarantine = read_dir(out / "output_quarantine").to_pandas()
    assert metrics["dt"] == DT
    landed = job["root"] / "in"
    csv_lines = (landed / "customers" / "customers.csv").read_text().splitlines()
    assert metrics["customers_landed"] == len(csv_lines) - 1  # the header
    assert metrics["events_landed"] == len((landed / "events" / "events.jsonl").read_text().splitlines())
    assert metrics["features_rows"] == read_dir(out / "output_features").num_rows
    assert metrics["events_cleaned"] == read_dir(out / "output_processed_events").num_rows
    assert metrics["quarantined"] == len(quarantine)
    by_reason = {reason: n for reason, n in metrics["quarantined_by_reason"].items() if n}
    assert by_reason == quarantine.reason.value_counts().to_dict()
    assert sum(metrics["quarantined_by_source"].values()) == metrics["quarantined"]
    assert metrics["duplicates_by_source"] == {
        "customers": injected["duplicate_customers"],
        "events": injected["duplicate_events"],
    }
    assert metrics["duplicates_dropped"] == injected["duplicate_customers"] + injected["duplicate_events"]
    imputed = {"age": injected["missing_age"], "monthly_fee": injected["missing_monthly_fee"]}
    assert metrics["imputed"] == imputed
    assert metrics["imputed_total"] == injected["missing_age"] + injected["missing_monthly_fee"]
    assert metrics["schema_drift"] == {"customers": [], "events": []} and metrics["schema_drift_columns"] == 0
    assert metrics["input_files"] == {"customers": ["customers.csv"], "events": ["events.jsonl"]}
    dups, quar = metrics["duplicates_by_source"], metrics["quarantined_by_source"]
    assert metrics["customers_landed"] == metrics["features_rows"] + dups["customers"] + quar["customers"]
    assert metrics["events_landed"] == metrics["events_cleaned"] + dups["events"] + quar["events"]


@pytest.mark.spark
def test_rerun_into_the_same_output_is_identical(job):
    first, second = job["root"] / "run1", job["root"] / "out"
    for name in OUTPUTS:
        assert len(data_files(first / name)) == len(data_files(second / name)), name
        if name == "output_metrics":
            assert data_files(first / name)[0].read_text() == data_files(second / name)[0].read_text()
        else:
            assert read_dir(first / name).equals(read_dir(second / name)), name
        # Really rewritten (Spark names files with a fresh UUID per write), with no leftover of run 1.
        names = {p.name for p in data_files(first / name)}
        assert names.isdisjoint(p.name for p in data_files(second / name))


def load_script_module():
    spec = importlib.util.spec_from_file_location("churn_features_under_test", GLUE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_local_resolved_options_follows_the_glue_contract():
    script = load_script_module()
    argv = ["s.py", "--JOB_NAME", "j", "--job-bookmark-option", "job-bookmark-disable", "--dt=2024-01-02"]
    assert script.local_resolved_options(argv, ["JOB_NAME", "dt"]) == {"JOB_NAME": "j", "dt": "2024-01-02"}
    with pytest.raises(SystemExit, match="--input_events"):
        script.local_resolved_options(argv, ["JOB_NAME", "input_events"])
