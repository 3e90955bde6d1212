"""The Glue job reads its raw inputs by the schema contracts: each class of bad input, on local Spark.

Inputs that must load run as cases of one driver process (``main`` called once per case, on the session's
warm Spark JVM); inputs that must fail are rejected by the pre-flight before Spark starts, so they run
in-process here, plus once as a real ``python churn_features.py`` process to see its exit code and last
printed line.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import importlib.util
import io
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devstack.datagen import generate_day
from sagelake.lake.contracts import load_contracts, to_job_argument
from sagelake.local.glue_runner import spark_env
from tests.support.constants import GLUE_SCRIPT
from tests.support.spark_driver import STOP_CONTEXT_AT_EXIT, run_driver

DT = "2024-05-17"
OUTPUTS = ("output_features", "output_processed_events", "output_quarantine", "output_metrics")
CONTRACTS = load_contracts()
COLUMNS = CONTRACTS["raw_customers"].column_names
# Two numeric columns (monthly_fee, age) swapped, and every other column moved too.
REORDERED = [
    "churned",
    "age",
    "monthly_fee",
    "customer_id",
    "support_tickets",
    "region",
    "plan",
    "signup_date",
]

# Hand-made customers with known values, appended to a generated day.
KNOWN = [
    dict(zip(COLUMNS, ["K000001", "2023-02-01", "standard", "15.99", "42", "east", "3", "1"], strict=True)),
    dict(zip(COLUMNS, ["K000002", "2022-07-15", "premium", "22.99", "61", "north", "0", "0"], strict=True)),
]
# Rows whose values do not cast to the contract types: malformed, quarantined with the raw row as record.
NOT_CASTABLE = [
    dict(
        zip(
            COLUMNS, ["K000003", "2024-01-01", "basic, legacy", "9.99", "abc", "north", "0", "1"], strict=True
        )
    ),
    dict(zip(COLUMNS, ["K000004", "2024-1-5", "basic", "9.99", "30", "north", "0", "1"], strict=True)),
]
# Rows with the wrong number of fields (kept verbatim in every variant).
WRONG_WIDTH = ["K000005,2024-01-01,basic", "K000006,2024-01-01,basic,9.99,30,north,0,1,surplus,more"]
KNOWN_EVENTS = [
    {
        "event_id": "KE1",
        "customer_id": "K000001",
        "ts": f"{DT}T08:00:00Z",
        "event_type": "purchase",
        "amount": 12.5,
        "duration_s": 30.0,
    }
]
MALFORMED_EVENT = '{"event_id": "KE2", "customer_id": "K0'


def csv_bytes(
    header: list[str],
    rows: list[dict],
    extra: dict[str, str] | None = None,
    eol: str = "\n",
    wide: bool = True,
) -> bytes:
    """A CSV with ``header`` (plus ``extra`` columns at the end), then the wrong-width rows (``wide``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=eol)
    writer.writerow([*header, *(extra or {})])
    for row in rows:
        writer.writerow([*(row[c] for c in header), *(extra or {}).values()])
    for line in WRONG_WIDTH if wide else []:
        out.write(line + eol)
    return out.getvalue().encode()


def line_of(header: list[str], row: dict) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([row[c] for c in header])
    return out.getvalue()


def jsonl_bytes(lines: list[str], extra: dict | None = None, reverse: bool = False, eol: str = "\n") -> bytes:
    """Events as JSON lines; parseable ones get ``extra`` keys or their keys reversed, malformed ones stay."""
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        record = dict(reversed(record.items())) if reverse else record
        out.append(json.dumps({**record, **(extra or {})}))
    return "".join(line + eol for line in out).encode()


@pytest.fixture(scope="module")
def day():
    """A small generated day plus the hand-made rows: (customer rows, event lines, injected counts)."""
    files = generate_day(DT, n_customers=60, seed=7)
    rows = list(csv.DictReader(io.StringIO(files.customers_csv.decode())))
    events = files.events_jsonl.decode().splitlines()
    events += [json.dumps(e) for e in KNOWN_EVENTS] + [MALFORMED_EVENT]
    return rows + KNOWN + NOT_CASTABLE, events, files.injected


def load_cases(rows: list[dict], events: list[str]) -> dict[str, dict[str, dict[str, bytes]]]:
    """Per case, the files to land: {case: {"customers": {name: bytes}, "events": {name: bytes}}}."""
    clean_csv, clean_events = csv_bytes(COLUMNS, rows), jsonl_bytes(events)
    half = len(rows) // 2
    return {
        "clean": {
            "customers": {"customers.csv": clean_csv, "_SUCCESS": b"", ".customers.csv.crc": b"\x00\x01"},
            "events": {"events.jsonl": clean_events},
        },
        "reordered": {
            "customers": {"customers.csv": csv_bytes(REORDERED, rows)},
            "events": {"events.jsonl": jsonl_bytes(events, reverse=True)},
        },
        "drift": {
            "customers": {"customers.csv": csv_bytes(COLUMNS, rows, extra={"loyalty_tier": "gold"})},
            "events": {"events.jsonl": jsonl_bytes(events, extra={"app_version": "1.2.3"})},
        },
        "bom_crlf": {
            "customers": {"customers.csv": b"\xef\xbb\xbf" + csv_bytes(COLUMNS, rows, eol="\r\n")},
            "events": {"events.jsonl": b"\xef\xbb\xbf" + jsonl_bytes(events, eol="\r\n")},
        },
        "gzip": {
            "customers": {"customers.csv.gz": gzip.compress(clean_csv)},
            "events": {"events.jsonl.gz": gzip.compress(clean_events)},
        },
        "split": {  # two files per source: one clean, one reordered with drift (or gzipped): union by name
            "customers": {
                "part-0.csv": csv_bytes(COLUMNS, rows[:half], wide=False),
                "part-1.csv": csv_bytes(REORDERED, rows[half:], extra={"loyalty_tier": "gold"}),
            },
            "events": {
                "part-0.jsonl": jsonl_bytes(events[:100]),
                "part-1.jsonl.gz": gzip.compress(jsonl_bytes(events[100:])),
            },
        },
        "empty_allowed": {
            "customers": {"customers.csv": (",".join(COLUMNS) + "\n").encode()},
            "events": {"events.jsonl": b""},
        },
    }


DRIVER = STOP_CONTEXT_AT_EXIT + textwrap.dedent(
    """
    import json, runpy, sys
    script, plan_file, results_file = sys.argv[1:4]
    namespace = runpy.run_path(script, run_name="churn_features_driver")
    results = {}
    for case in json.load(open(plan_file)):
        try:
            namespace["main"]([script, *case["argv"]])
            results[case["name"]] = "ok"
        except SystemExit as exit:
            results[case["name"]] = f"exit: {exit.code}"
    json.dump(results, open(results_file, "w"))
    """
)


def contracts_argument(allow_empty: bool = False) -> str:
    if not allow_empty:
        return to_job_argument(CONTRACTS)
    return to_job_argument([dataclasses.replace(c, allow_empty=True) for c in CONTRACTS.values()])


def land(root: Path, files: dict[str, dict[str, bytes]]) -> dict[str, str]:
    """Write a case's input files under ``root/in``; return the job's arguments (outputs under root/out)."""
    args = {"JOB_NAME": "contracts_test", "dt": DT}
    for source, named in files.items():
        directory = root / "in" / source / f"dt={DT}"
        directory.mkdir(parents=True)
        for name, data in named.items():
            (directory / name).write_bytes(data)
        args[f"input_{source}"] = str(directory)
    return {**args, **{name: str(root / "out" / name) for name in OUTPUTS}}


def argv(args: dict[str, str]) -> list[str]:
    return [part for name, value in args.items() for part in (f"--{name}", value)]


@pytest.fixture(scope="module")
def loads(tmp_path_factory, day, spark_gateway_dir):
    """Run every loading case in one Spark driver, on the session's warm Spark JVM as local Glue runs do
    (its own JVM if that one is busy); return {case: (root, result)}."""
    root = tmp_path_factory.mktemp("glue_contracts")
    rows, events, _ = day
    plan, roots = [], {}
    for name, files in load_cases(rows, events).items():
        roots[name] = root / name
        args = land(roots[name], files)
        args["contracts"] = contracts_argument(allow_empty=name == "empty_allowed")
        plan.append({"name": name, "argv": argv(args)})
    (root / "plan.json").write_text(json.dumps(plan))
    (root / "driver.py").write_text(DRIVER)
    driver = [root / "driver.py", GLUE_SCRIPT, root / "plan.json", root / "results.json"]
    proc = run_driver(driver, root, spark_gateway_dir)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    results = json.loads((root / "results.json").read_text())
    assert results == {name: "ok" for name in roots}, log
    return roots


def table(root: Path, name: str):
    return pq.read_table(root / "out" / name)


def metrics(root: Path) -> dict:
    (part,) = [p for p in (root / "out" / "output_metrics").iterdir() if p.suffix == ".json"]
    return json.loads(part.read_text())


def sorted_quarantine(root: Path):
    return (
        table(root, "output_quarantine")
        .to_pandas()
        .sort_values(["source", "reason", "record"], ignore_index=True)
    )


def features_by_id(root: Path) -> dict[str, dict]:
    return {row["customer_id"]: row for row in table(root, "output_features").to_pylist()}


def without_files(m: dict) -> dict:
    return {key: value for key, value in m.items() if key != "input_files"}


@pytest.mark.spark
def test_clean_day_quarantines_malformed_rows_with_reasons_and_counts_as_before(loads, day):
    rows, events, injected = day
    root = loads["clean"]
    q = sorted_quarantine(root)
    counts = q.groupby(["source", "reason"]).size().to_dict()
    assert counts[("customers", "malformed_csv")] == len(NOT_CASTABLE) + len(WRONG_WIDTH)
    assert counts[("events", "malformed_json")] == injected["malformed_lines"] + 1
    assert counts[("customers", "missing_customer_id")] == injected["missing_customer_id"]
    assert counts[("customers", "missing_churned")] == injected["missing_churned"]
    # The record is the raw row: Spark's line, or (value not castable) the fields re-joined as CSV.
    assert sorted(q[q.reason == "malformed_csv"].record) == sorted(
        [line_of(COLUMNS, row) for row in NOT_CASTABLE] + WRONG_WIDTH
    )
    assert line_of(COLUMNS, NOT_CASTABLE[0]) == 'K000003,2024-01-01,"basic, legacy",9.99,abc,north,0,1'
    assert MALFORMED_EVENT in set(q[q.reason == "malformed_json"].record)
    m = metrics(root)
    assert m["schema_drift"] == {"customers": [], "events": []} and m["schema_drift_columns"] == 0
    # _SUCCESS and hidden files are not inputs.
    assert m["input_files"] == {"customers": ["customers.csv"], "events": ["events.jsonl"]}
    assert m["customers_landed"] == len(rows) + len(WRONG_WIDTH)
    assert m["events_landed"] == len(events)
    k1 = features_by_id(root)["K000001"]
    assert (k1["monthly_fee"], k1["age"], k1["support_tickets"], k1["churned"]) == (15.99, 42.0, 3, 1)
    assert (k1["plan"], k1["region"], k1["n_purchases"], k1["total_amount"]) == ("standard", "east", 1, 12.5)


@pytest.mark.spark
def test_reordered_columns_are_read_by_name(loads):
    root = loads["reordered"]
    features = features_by_id(root)
    k1, k2 = features["K000001"], features["K000002"]
    assert (k1["monthly_fee"], k1["age"], k1["support_tickets"], k1["churned"]) == (15.99, 42.0, 3, 1)
    assert (k2["monthly_fee"], k2["age"], k2["support_tickets"], k2["churned"]) == (22.99, 61.0, 0, 0)
    assert (k2["plan"], k2["region"], k2["tenure_days"]) == ("premium", "north", 672)
    clean = loads["clean"]
    for name in ("output_features", "output_processed_events"):
        assert table(root, name).equals(table(clean, name)), name
    assert without_files(metrics(root)) == without_files(metrics(clean))
    # A quarantined row keeps the file's own column order.
    records = set(sorted_quarantine(root).record)
    assert line_of(REORDERED, NOT_CASTABLE[0]) in records
    assert line_of(REORDERED, NOT_CASTABLE[0]).startswith("1,abc,9.99,K000003,")


@pytest.mark.spark
def test_added_columns_load_and_are_reported_as_drift(loads):
    root, clean = loads["drift"], loads["clean"]
    for name in ("output_features", "output_processed_events"):
        assert table(root, name).equals(table(clean, name)), name
    m = metrics(root)
    assert m["schema_drift"] == {"customers": ["loyalty_tier"], "events": ["app_version"]}
    assert m["schema_drift_columns"] == 2
    assert m["quarantined_by_reason"] == metrics(clean)["quarantined_by_reason"]


@pytest.mark.spark
@pytest.mark.parametrize("case", ["bom_crlf", "gzip"])
def test_bom_crlf_and_gzip_load_identically_to_the_clean_file(loads, case):
    root, clean = loads[case], loads["clean"]
    for name in ("output_features", "output_processed_events", "output_quarantine"):
        assert table(root, name).equals(table(clean, name)), name
    assert without_files(metrics(root)) == without_files(metrics(clean))
    if case == "gzip":
        assert metrics(root)["input_files"] == {
            "customers": ["customers.csv.gz"],
            "events": ["events.jsonl.gz"],
        }


@pytest.mark.spark
def test_files_with_different_headers_are_unioned_by_name(loads):
    root, clean = loads["split"], loads["clean"]
    for name in ("output_features", "output_processed_events"):
        assert table(root, name).equals(table(clean, name)), name
    m = metrics(root)
    assert m["input_files"] == {
        "customers": ["part-0.csv", "part-1.csv"],
        "events": ["part-0.jsonl", "part-1.jsonl.gz"],
    }
    assert m["schema_drift"] == {"customers": ["loyalty_tier"], "events": []}
    assert m["quarantined_by_reason"] == metrics(clean)["quarantined_by_reason"]


@pytest.mark.spark
def test_an_allowed_empty_day_loads_as_an_empty_day(loads):
    root = loads["empty_allowed"]
    for name in ("output_features", "output_processed_events", "output_quarantine"):
        assert table(root, name).num_rows == 0, name
    assert table(root, "output_features").schema.equals(table(loads["clean"], "output_features").schema)
    m = metrics(root)
    assert m["customers_landed"] == m["events_landed"] == m["features_rows"] == m["quarantined"] == 0
    assert m["input_files"] == {"customers": ["customers.csv"], "events": ["events.jsonl"]}


# --- Inputs that must fail: rejected by the pre-flight, before Spark starts and before any output ---------


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(f"churn_features_{uuid.uuid4().hex}", GLUE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def header_without(column: str) -> bytes:
    return csv_bytes([c for c in COLUMNS if c != column], KNOWN)


CLEAN_EVENTS = jsonl_bytes([json.dumps(e) for e in KNOWN_EVENTS])
CLEAN_CUSTOMERS = csv_bytes(COLUMNS, KNOWN)
PARQUET_HEAD = b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00\x08\x1c"
REJECTED = {
    # case: (customer files, event files, the file named (under in/<source>/dt=.../), the problem)
    "missing_column": (
        {"customers.csv": header_without("age")},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv",
        "lacks required column 'age' (header: customer_id, signup_date, plan, monthly_fee, region, "
        "support_tickets, churned)",
    ),
    "missing_column_in_second_file": (
        {"a.csv": CLEAN_CUSTOMERS, "b.csv": header_without("churned")},
        {"events.jsonl": CLEAN_EVENTS},
        "b.csv",
        "lacks required column 'churned' (header: customer_id, signup_date, plan, monthly_fee, age, region, "
        "support_tickets)",
    ),
    "column_name_case": (
        {"customers.csv": CLEAN_CUSTOMERS.replace(b",age,", b",Age,", 1)},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv",
        "lacks required column 'age' (header: customer_id, signup_date, plan, monthly_fee, Age, region, "
        "support_tickets, churned); names are case-sensitive: rename 'Age' to 'age'",
    ),
    "column_twice": (
        {"customers.csv": CLEAN_CUSTOMERS.replace(b",region,", b",age,", 1)},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv",
        "has column 'age' 2 times in its header row",
    ),
    "missing_key": (
        {"customers.csv": CLEAN_CUSTOMERS},
        {"events.jsonl": CLEAN_EVENTS.replace(b'"amount": 12.5, ', b"")},
        "events.jsonl",
        "lacks required key 'amount' (absent from all 1 records sampled)",
    ),
    "gzip_named_jsonl": (
        {"customers.csv": CLEAN_CUSTOMERS},
        {"events.jsonl": gzip.compress(CLEAN_EVENTS)},
        "events.jsonl",
        "is gzip-compressed but not named .gz: rename it to events.jsonl.gz",
    ),
    "gz_not_gzip": (
        {"customers.csv.gz": CLEAN_CUSTOMERS},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv.gz",
        "is named .gz but is not gzip-compressed (no gzip header)",
    ),
    "truncated_gz": (
        {"customers.csv": CLEAN_CUSTOMERS},
        {"events.jsonl.gz": gzip.compress(CLEAN_EVENTS * 20)[:-12]},
        "events.jsonl.gz",
        "is a truncated gzip file",
    ),
    "parquet_in_csv": (
        {"customers.csv": PARQUET_HEAD},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv",
        "holds Parquet data, not UTF-8 text",
    ),
    "binary_in_csv": (
        {"customers.csv": bytes(range(256)) * 4},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv",
        "is not UTF-8 text (byte 0x80 at offset 128): binary data or another encoding",
    ),
    "nul_bytes_in_csv": (
        {"customers.csv": CLEAN_CUSTOMERS.decode().encode("utf-16-le")},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv",
        "holds binary data (",
    ),
    "latin1_csv": (
        {"customers.csv": CLEAN_CUSTOMERS.replace(b"east", "est\u00e9".encode("latin-1"))},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv",
        "is not UTF-8 text (byte 0xe9 at offset",
    ),
    "csv_as_events": (
        {"customers.csv": CLEAN_CUSTOMERS},
        {"events.jsonl": CLEAN_CUSTOMERS},
        "events.jsonl",
        "none of its first 5 lines is a JSON object: not JSON lines",
    ),
    "empty_events": (
        {"customers.csv": CLEAN_CUSTOMERS},
        {"events.jsonl": b""},
        "events.jsonl",
        "is empty (0 bytes): an empty raw_events day is not allowed by its contract",
    ),
    "whitespace_events": (
        {"customers.csv": CLEAN_CUSTOMERS},
        {"events.jsonl": b"\n  \r\n\n"},
        "events.jsonl",
        "is empty (only whitespace): an empty raw_events day is not allowed by its contract",
    ),
    "header_only_customers": (
        {"customers.csv": b"\xef\xbb\xbf" + (",".join(COLUMNS) + "\r\n").encode()},
        {"events.jsonl": CLEAN_EVENTS},
        "customers.csv",
        "holds only the CSV header row, no record: an empty raw_customers day is not allowed by its contract",
    ),
    "empty_gz": (
        {"customers.csv": CLEAN_CUSTOMERS},
        {"events.jsonl.gz": gzip.compress(b"")},
        "events.jsonl.gz",
        "is empty (0 bytes once decompressed): an empty raw_events day is not allowed by its contract",
    ),
    "no_file": (
        {"_SUCCESS": b""},
        {"events.jsonl": CLEAN_EVENTS},
        "",
        "no input file (hidden and _-prefixed ones are ignored)",
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_bad_input_fails_with_one_line_naming_the_file_and_writes_nothing(script, tmp_path, case, capsys):
    customers, events, named, problem = REJECTED[case]
    args = land(tmp_path, {"customers": customers, "events": events})
    args["contracts"] = contracts_argument()
    with pytest.raises(SystemExit) as exit:
        script.main(["churn_features.py", *argv(args)])
    assert exit.value.code == script.REJECTED_EXIT_CODE
    message = capsys.readouterr().err.splitlines()[-1]
    source = "events" if named.startswith("events") else "customers"
    path = Path(args[f"input_{source}"], named) if named else Path(args[f"input_{source}"])
    assert "\n" not in message
    assert message.startswith(f"raw_{source}: {path}: {problem}"), message
    assert not (tmp_path / "out").exists()


def test_an_empty_file_with_allow_empty_passes_the_preflight(script, tmp_path):
    args = land(tmp_path, {"customers": {"customers.csv": CLEAN_CUSTOMERS}, "events": {"events.jsonl": b""}})
    args["contracts"] = contracts_argument(allow_empty=True)
    inputs = script.prepare(args)
    assert [f.empty for f in inputs["events"].files] == [True] and inputs["events"].readable == []
    assert [f.empty for f in inputs["customers"].files] == [False]


def test_only_the_head_of_a_big_file_is_checked(script, tmp_path, monkeypatch):
    """A record cut by the end of the sample is not judged; a gzip sample is inflated as far as it goes."""
    monkeypatch.setattr(script, "SAMPLE_BYTES", 300)
    many = CLEAN_EVENTS * 50
    assert len(many) > 20 * 300 and many.count(b"\n") == 50
    files = {"events.jsonl": many, "more.jsonl.gz": gzip.compress(many, mtime=0)}
    args = land(tmp_path, {"customers": {"customers.csv": CLEAN_CUSTOMERS}, "events": files})
    args["contracts"] = contracts_argument()
    inputs = script.prepare(args)
    assert [(f.name, f.empty, f.drift) for f in inputs["events"].files] == [
        ("events.jsonl", False, []),
        ("more.jsonl.gz", False, []),
    ]


def test_csv_fields_are_named_by_the_header_unless_blank_repeated_or_clashing(script):
    assert script.spark_field_names(["a", "b.c", " d "]) == ["a", "b.c", " d "]
    assert script.spark_field_names(["a", "A", "", "_corrupt_record", "e"]) == [
        "_c0",
        "_c1",
        "_c2",
        "_c3",
        "e",
    ]
    assert script.spark_field_names(["_c1", ""]) == ["_c0", "_c1"]  # "_c1" would clash: all positional


def test_s3_inputs_are_listed_and_checked_through_boto3(script, s3, bucket, aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_env)
    script.s3_client.cache_clear()
    prefix = f"raw/customers/dt={DT}/"
    for key, body in {
        "customers.csv.gz": gzip.compress(CLEAN_CUSTOMERS),
        "_SUCCESS": b"",
        "late/extra.csv": csv_bytes(REORDERED, KNOWN, extra={"loyalty_tier": "gold"}),
    }.items():
        s3.put_object(Bucket=bucket, Key=prefix + key, Body=body)
    s3.put_object(Bucket=bucket, Key=f"raw/events/dt={DT}/events.jsonl", Body=b"")
    args = {
        "dt": DT,
        "contracts": contracts_argument(allow_empty=True),
        "input_customers": f"s3://{bucket}/{prefix}",
        "input_events": f"s3://{bucket}/raw/events/dt={DT}",  # no trailing slash: the same directory
    }
    try:
        inputs = script.prepare(args)
        customers = inputs["customers"]
        assert [(f.uri, f.name) for f in customers.files] == [
            (f"s3://{bucket}/{prefix}customers.csv.gz", "customers.csv.gz"),
            (f"s3://{bucket}/{prefix}late/extra.csv", "late/extra.csv"),
        ]
        assert customers.drift == ["loyalty_tier"] and customers.files[1].header[0] == "churned"
        assert [(f.name, f.empty) for f in inputs["events"].files] == [("events.jsonl", True)]
        s3.put_object(Bucket=bucket, Key=prefix + "zz.csv", Body=header_without("plan"))
        with pytest.raises(script.InputRejected) as error:
            script.prepare(args)
        assert str(error.value).startswith(
            f"raw_customers: s3://{bucket}/{prefix}zz.csv: lacks required column"
        )
    finally:
        script.s3_client.cache_clear()


@pytest.mark.parametrize(
    ("contracts", "message"),
    [
        ("{", "--contracts is not valid JSON"),
        ('{"raw_events": {}}', "--contracts has no contract for dataset raw_customers"),
        (
            to_job_argument(
                [dataclasses.replace(CONTRACTS["raw_customers"], format="jsonl"), CONTRACTS["raw_events"]]
            ),
            "--contracts raw_customers: format 'jsonl', but this job reads csv",
        ),
        (
            to_job_argument(
                [
                    dataclasses.replace(
                        CONTRACTS["raw_events"], columns=CONTRACTS["raw_events"].columns[:-1]
                    ),
                    CONTRACTS["raw_customers"],
                ]
            ),
            "--contracts raw_events: lacks column(s) this job uses: duration_s",
        ),
    ],
)
def test_a_bad_contracts_argument_fails_before_reading(script, tmp_path, contracts, message, capsys):
    args = land(
        tmp_path, {"customers": {"customers.csv": CLEAN_CUSTOMERS}, "events": {"e.jsonl": CLEAN_EVENTS}}
    )
    args["contracts"] = contracts
    with pytest.raises(SystemExit) as exit:
        script.main(["churn_features.py", *argv(args)])
    assert exit.value.code == script.REJECTED_EXIT_CODE
    assert capsys.readouterr().err.splitlines()[-1].startswith(message)


@pytest.mark.spark
def test_the_script_exits_non_zero_with_the_message_as_its_last_line(tmp_path):
    args = land(tmp_path, {"customers": {"customers.csv": header_without("age")}, "events": {"e.jsonl": b""}})
    args["contracts"] = contracts_argument()
    proc = subprocess.run(
        [sys.executable, GLUE_SCRIPT, *argv(args)],
        env=spark_env(tmp_path / "spark"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 65  # REJECTED_EXIT_CODE: the runner fails such a run without retrying
    path = tmp_path / "in" / "customers" / f"dt={DT}" / "customers.csv"
    assert proc.stdout.splitlines()[-1] == (
        f"raw_customers: {path}: lacks required column 'age' (header: customer_id, signup_date, plan, "
        "monthly_fee, region, support_tickets, churned)"
    )
    assert not (tmp_path / "out").exists()
