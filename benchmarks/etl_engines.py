"""ETL benchmark (figures, not a test): the Glue job on local Spark vs the same transformation in DuckDB.

``.venv/bin/python benchmarks/etl_engines.py [--sizes 1e5,1e6,1e7] [--engines spark,spark-warm,duckdb]``

* Generates one day per size (``devstack.datagen.generate_day``, ≈15.5 events per customer) once into the
  work dir (``raw/customers/dt=…/customers.csv``, ``raw/events/dt=…/events.jsonl``; cached by size + seed).
* Times ``include/glue/churn_features.py`` run by ``sagelake.local.glue_runner.run_glue_script`` on those
  local files (the runner's own ``spark_env``, arguments and work dir; wall time of the whole subprocess,
  JVM start included) and ``benchmarks/churn_features_duckdb.py`` (the same transformation in DuckDB SQL,
  as a subprocess too). Peak memory is the summed RSS of the job's whole process tree (the JVM and the
  Python workers included), sampled every 0.2 s; CPU seconds are the tree's user + system time (steadier
  than wall time on a shared machine).
* ``spark-warm`` times the same script as the local stack runs it after its first Glue run: leased on a
  shared warm JVM (:mod:`sagelake.local.spark_gateway`, started by this benchmark and warmed up by one
  untimed run on the 1e5 day). Memory and CPU then count the gateway's JVM too (its CPU from the run's
  start). ``spark`` is a cold start: a JVM of the run's own, as a run without a free gateway gets.
* Verifies that DuckDB computes what the Glue job computes, on the 1e5 day: features (by customer_id,
  floats within 1e-9), processed events, quarantine counts by reason and every metric. Prints PASS/FAIL and
  exits 1 on FAIL.
* ``--check-outputs``: runs the Glue script and runner of ``--reference-rev`` (git) on the 1e5 and 1e6 days
  and checks the current script writes the same features, processed events, quarantine and metrics, row
  for row (file order and sorted-content hashes). Exits 1 on a difference.
* The JVMs start with ``SAGELAKE_SPARK_JAVA_OPTIONS`` (default C1 only, for the local stack's small days); the
  1e7 figures in docs/local-stack.md were made with C2 on: ``SAGELAKE_SPARK_JAVA_OPTIONS=-XX:+UseParallelGC``.
* ``--spark-rev REV`` times the Glue script and runner of a git revision instead of the working tree (how the
  "before" figures are made; a symbolic REV such as ``HEAD`` is resolved to its commit, by which runs of it
  are cached); ``--label`` names the figures in ``benchmarks/results/etl_engines.json``
  (other labels already there are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pyspark  # noqa: E402

from devstack import warm_spark  # noqa: E402
from devstack.datagen import generate_day  # noqa: E402
from sagelake.lake.contracts import load_contracts, to_job_argument  # noqa: E402
from sagelake.local import glue_runner  # noqa: E402
from sagelake.local.java import find_java_home  # noqa: E402

GLUE_SCRIPT = ROOT / "include" / "glue" / "churn_features.py"
RUNNER = ROOT / "plugins" / "sagelake" / "local" / "glue_runner.py"
DUCKDB_SCRIPT = ROOT / "benchmarks" / "churn_features_duckdb.py"
RESULTS = ROOT / "benchmarks" / "results" / "etl_engines.json"
DEFAULT_WORK = ROOT / ".local" / "benchmarks" / "etl_engines"
REFERENCE_REV = "ad7b6260b5bcd87d3cb0491445b52f91532e1710"  # the Glue script before the tuning
DT = "2024-05-17"
SEED = 7
CUSTOMERS_PER_1E5_EVENTS = 6450  # generate_day makes ≈15.5 events per customer
OUTPUTS = ("output_features", "output_processed_events", "output_quarantine", "output_metrics")
TABLES = ("output_features", "output_processed_events", "output_quarantine")
SORT_KEYS = {
    "output_features": ["customer_id"],
    "output_processed_events": ["customer_id", "ts", "event_id"],
    "output_quarantine": ["source", "reason", "record"],
}
FLOAT_TOLERANCE = 1e-9
SAMPLE_S = 0.2
TIMEOUT_S = 3600
ENGINES = ("spark", "spark-warm", "duckdb")
WARM_UP_EVENTS = 100_000


def parse_size(text: str) -> int:
    return int(float(text))


def size_label(events: int) -> str:
    exponent = math.log10(events)
    return f"1e{int(exponent)}" if exponent.is_integer() else str(events)


# --- Data ---------------------------------------------------------------------------------------------------


def day_dir(work: Path, events: int, seed: int) -> Path:
    """The raw day of ``events`` events (generated once, reused by later runs)."""
    root = work / "data" / f"{size_label(events)}-seed{seed}"
    ready = root / "ready.json"
    if ready.exists():
        return root
    n_customers = round(events * CUSTOMERS_PER_1E5_EVENTS / 100_000)
    print(f"generating {size_label(events)}: {n_customers} customers ...", flush=True)
    started = time.perf_counter()
    files = generate_day(DT, n_customers=n_customers, seed=seed)
    shutil.rmtree(root, ignore_errors=True)
    for source, name, body in (
        ("customers", "customers.csv", files.customers_csv),
        ("events", "events.jsonl", files.events_jsonl),
    ):
        target = root / "raw" / source / f"dt={DT}" / name
        target.parent.mkdir(parents=True)
        target.write_bytes(body)
    facts = {
        "customers": n_customers,
        "customer_rows": files.customers_csv.count(b"\n") - 1,
        "events": files.events_jsonl.count(b"\n"),
        "events_mib": round(len(files.events_jsonl) / 2**20, 1),
        "injected": files.injected,
        "seconds": round(time.perf_counter() - started, 1),
    }
    del files
    ready.write_text(json.dumps(facts, indent=2) + "\n")
    return root


def day_facts(day: Path) -> dict:
    return json.loads((day / "ready.json").read_text())


def job_arguments(day: Path, out: Path) -> dict[str, str]:
    """The Glue job arguments as the DAG passes them (``script_args``), with local directories."""
    return {
        "--dt": DT,
        "--contracts": to_job_argument(load_contracts()),
        "--input_customers": str(day / "raw" / "customers" / f"dt={DT}"),
        "--input_events": str(day / "raw" / "events" / f"dt={DT}"),
        **{f"--{name}": str(out / name) for name in OUTPUTS},
    }


# --- Measuring ----------------------------------------------------------------------------------------------


class PeakTreeRss:
    """Peak of the summed RSS of every descendant of this process (the job, its JVM, its workers), and
    their CPU time (user + system, as last sampled per process, less what a process had used at the start:
    a warm gateway's earlier runs do not count). The process tree of ``gateway`` (a warm JVM's holder) is
    counted only when ``count_gateway``: a run that does not use it is measured without it."""

    def __init__(self, gateway: int | None = None, count_gateway: bool = False) -> None:
        self.gateway, self.count_gateway = gateway, count_gateway
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._cpu_before: dict[int, float] = {}
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_s(self) -> float:
        return sum(cpu - self._cpu_before.get(pid, 0.0) for pid, cpu in self._cpu.items())

    def _skipped(self) -> set[int]:
        if self.gateway is None or self.count_gateway:
            return set()
        with contextlib.suppress(psutil.Error):
            holder = psutil.Process(self.gateway)
            return {holder.pid, *(p.pid for p in holder.children(recursive=True))}
        return set()

    def _sample(self) -> int:
        total, skipped = 0, self._skipped()
        for proc in self._me.children(recursive=True):
            if proc.pid in skipped:
                continue
            with contextlib.suppress(psutil.Error), proc.oneshot():
                total += proc.memory_info().rss
                times = proc.cpu_times()
                self._cpu[proc.pid] = times.user + times.system
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> PeakTreeRss:
        self._sample()
        self._cpu_before = dict(self._cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def load_runner(rev: str | None, work: Path):
    """``sagelake.local.glue_runner`` of the working tree, or of git revision ``rev``."""
    if rev is None:
        return glue_runner
    path = work / "revs" / rev / "glue_runner.py"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(git_show(rev, RUNNER))
    spec = importlib.util.spec_from_file_location(f"glue_runner_{rev[:12]}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def resolve_rev(rev: str | None) -> str | None:
    """``rev`` as a full commit hash: runs of a revision are cached by it, and ``HEAD`` moves."""
    if rev is None:
        return None
    return subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def git_show(rev: str, path: Path) -> str:
    relative = path.relative_to(ROOT).as_posix()
    return subprocess.run(
        ["git", "show", f"{rev}:{relative}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def glue_script(rev: str | None, work: Path) -> Path:
    if rev is None:
        return GLUE_SCRIPT
    path = work / "revs" / rev / "churn_features.py"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(git_show(rev, GLUE_SCRIPT))
    return path


def run_spark(
    day: Path,
    run_dir: Path,
    rev: str | None,
    work: Path,
    gateway: WarmGateway | None = None,
    lease: bool = False,
) -> dict:
    """The Glue script on local Spark exactly as the local runner runs it; wall seconds and peak tree RSS.

    ``lease``: run on ``gateway``'s warm JVM (the working tree's runner only) and measure it with the
    gateway's processes; otherwise a running gateway's processes are left out of the figures.
    """
    holder = gateway.pid if gateway is not None else None
    directory = gateway.directory if gateway is not None and lease else None
    runner = load_runner(rev, work)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    handler = logging.FileHandler(run_dir / "job.log")
    logger = logging.getLogger(runner.__name__)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        with PeakTreeRss(holder, count_gateway=directory is not None) as rss:
            started = time.perf_counter()
            runner.run_glue_script(
                glue_script(rev, work),
                job_arguments(day, run_dir / "out"),
                None,  # local paths only: nothing to stage or publish
                run_dir,
                timeout_s=TIMEOUT_S,
                **({"spark_gateway_dir": directory} if directory is not None else {}),
            )
            seconds = time.perf_counter() - started
    finally:
        logger.removeHandler(handler)
        handler.close()
    if directory is not None and "On the warm Spark JVM" not in (run_dir / "job.log").read_text():
        raise SystemExit(f"the run in {run_dir} did not lease the warm JVM of {directory}: see its job.log")
    return {"seconds": round(seconds, 2), "peak_mib": round(rss.peak / 2**20), "cpu_s": round(rss.cpu_s, 1)}


class WarmGateway:
    """A shared warm Spark JVM for ``spark-warm`` runs, started on first use and warmed up by one untimed run
    of the script on the 1e5 day (as a stack's JVM is by its earlier runs); stopped on :meth:`close`."""

    def __init__(self, work: Path, seed: int) -> None:
        self.work, self.seed = work, seed
        self.directory = work / "gateway"
        self.pid: int | None = None

    def start(self) -> None:
        """Start and warm up the gateway unless it runs already."""
        if self.pid is None:
            log = self.work / "gateway.log"
            shutil.rmtree(self.directory, ignore_errors=True)
            self.pid = warm_spark.start(self.directory, log)
            if self.pid is None:
                raise SystemExit(f"a gateway is already running in {self.directory}")
            warm_spark.wait_until_recorded(self.directory, self.pid, log)
            print("warming the shared JVM up (one untimed run on the 1e5 day) ...", flush=True)
            day = day_dir(self.work, WARM_UP_EVENTS, self.seed)
            run_spark(day, self.work / "runs" / "warm-up", None, self.work, self, lease=True)

    def close(self) -> None:
        if self.pid is not None:
            warm_spark.stop(self.pid)
            self.pid = None


def run_duckdb(day: Path, run_dir: Path, gateway: WarmGateway | None = None) -> dict:
    """The DuckDB twin as a subprocess (interpreter start included); wall seconds and peak tree RSS."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    cmd = [sys.executable, str(DUCKDB_SCRIPT)]
    for name, value in job_arguments(day, run_dir / "out").items():
        cmd += [name, value]
    with open(run_dir / "job.log", "w") as log_file, PeakTreeRss(gateway.pid if gateway else None) as rss:
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=run_dir, stdout=log_file, stderr=subprocess.STDOUT, timeout=TIMEOUT_S)
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = (run_dir / "job.log").read_text()[-3000:]
        raise SystemExit(f"DuckDB job failed ({proc.returncode}):\n{tail}")
    return {"seconds": round(seconds, 2), "peak_mib": round(rss.peak / 2**20), "cpu_s": round(rss.cpu_s, 1)}


# --- Outputs ------------------------------------------------------------------------------------------------


def data_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_")))


def read_table(path: Path) -> pa.Table:
    """An output's Parquet files in file order (Spark numbers its part files)."""
    return pa.concat_tables([pq.read_table(p) for p in data_files(path)])


def read_metrics(path: Path) -> dict:
    (part,) = [p for p in data_files(path) if p.suffix == ".json"]
    return json.loads(part.read_text())


def sorted_hash(table: pa.Table, keys: list[str]) -> str:
    """SHA-256 of the rows sorted by ``keys`` then every other column (independent of file layout)."""
    import pandas as pd

    order = [*keys, *(c for c in table.column_names if c not in keys)]
    frame = table.sort_by([(c, "ascending") for c in order]).to_pandas()
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(json.dumps([str(f.type) for f in table.schema]).encode())
    return digest.hexdigest()


def compare_runs(reference: Path, candidate: Path) -> dict:
    """Whether ``candidate`` wrote exactly ``reference``'s outputs (row for row, in file order)."""
    result: dict[str, Any] = {}
    for name in TABLES:
        ref, got = read_table(reference / name), read_table(candidate / name)
        result[name] = {
            "rows": ref.num_rows,
            "files": [len(data_files(reference / name)), len(data_files(candidate / name))],
            "same_in_file_order": ref.equals(got),
            "sorted_sha256": [sorted_hash(ref, SORT_KEYS[name]), sorted_hash(got, SORT_KEYS[name])],
        }
        result[name]["identical"] = (
            result[name]["same_in_file_order"] and len(set(result[name]["sorted_sha256"])) == 1
        )
    ref_metrics, got_metrics = (
        read_metrics(reference / "output_metrics"),
        read_metrics(candidate / "output_metrics"),
    )
    result["output_metrics"] = {"identical": ref_metrics == got_metrics, "metrics": ref_metrics}
    result["identical"] = all(result[name]["identical"] for name in OUTPUTS)
    return result


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=1e-9)
    return a == b


def compare_tables(spark: pa.Table, duck: pa.Table, keys: list[str]) -> list[str]:
    """Differences of two tables sorted by ``keys`` (types, row count, values; floats within tolerance)."""
    problems = []
    if [(f.name, str(f.type)) for f in spark.schema] != [(f.name, str(f.type)) for f in duck.schema]:
        problems.append(f"schema differs: spark {spark.schema} vs duckdb {duck.schema}")
    if spark.num_rows != duck.num_rows:
        return [*problems, f"{spark.num_rows} rows vs {duck.num_rows}"]
    order = [(k, "ascending") for k in keys]
    spark, duck = spark.sort_by(order), duck.sort_by(order)
    for name in spark.column_names:
        left = spark.column(name).to_pylist()
        right = duck.column(name).to_pylist() if name in duck.column_names else [None] * len(left)
        bad = [i for i, (a, b) in enumerate(zip(left, right, strict=True)) if not close(a, b)]
        if bad:
            i = bad[0]
            problems.append(f"{name}: {len(bad)} value(s) differ, e.g. row {i}: {left[i]!r} vs {right[i]!r}")
    return problems


def quarantine_counts(table: pa.Table) -> dict[str, int]:
    counts = table.group_by(["source", "reason"]).aggregate([([], "count_all")]).to_pylist()
    return {f"{r['source']}/{r['reason']}": r["count_all"] for r in sorted(counts, key=str)}


def verify_duckdb(spark_out: Path, duck_out: Path) -> dict:
    """Does the DuckDB twin compute what the Glue job computes? (features, events, quarantine, metrics)"""
    problems = []
    for name in ("output_features", "output_processed_events"):
        spark_table, duck_table = read_table(spark_out / name), read_table(duck_out / name)
        if name == "output_processed_events":  # both UTC instants; Spark has no zone name in Parquet
            duck_table = duck_table.set_column(
                2, "ts", duck_table.column("ts").cast(spark_table.schema.field("ts").type)
            )
        problems += [f"{name}: {p}" for p in compare_tables(spark_table, duck_table, SORT_KEYS[name])]
    spark_quarantine = read_table(spark_out / "output_quarantine")
    duck_quarantine = read_table(duck_out / "output_quarantine")
    spark_q, duck_q = quarantine_counts(spark_quarantine), quarantine_counts(duck_quarantine)
    # Informational: the records' text too (float formatting may differ between the engines in edge cases).
    records_identical = sorted_hash(spark_quarantine, SORT_KEYS["output_quarantine"]) == sorted_hash(
        duck_quarantine, SORT_KEYS["output_quarantine"]
    )
    if spark_q != duck_q:
        problems.append(f"quarantine counts by reason differ: spark {spark_q} vs duckdb {duck_q}")
    spark_m, duck_m = read_metrics(spark_out / "output_metrics"), read_metrics(duck_out / "output_metrics")
    for key in spark_m:
        if key != "job_name" and spark_m[key] != duck_m.get(key):
            problems.append(f"metrics {key}: spark {spark_m[key]!r} vs duckdb {duck_m.get(key)!r}")
    return {
        "passed": not problems,
        "problems": problems,
        "quarantine_by_reason": spark_q,
        "quarantine_records_identical": records_identical,
    }


# --- Report -------------------------------------------------------------------------------------------------


def java_version() -> str:
    proc = subprocess.run(
        [str(find_java_home() / "bin" / "java"), "-version"], capture_output=True, text=True, check=False
    )
    return (proc.stderr or proc.stdout).splitlines()[0].strip()


def machine() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": java_version(),
        "spark": pyspark.__version__,
        "duckdb": duckdb.__version__,
    }


def table_rows(runs: list[dict]) -> list[dict]:
    """One row per size: each engine's figures (``spark_warm_s`` for ``spark-warm``…) and each Spark
    engine's wall and CPU ratio to DuckDB."""
    rows = []
    for size in dict.fromkeys(r["size"] for r in runs):
        by_engine = {r["engine"]: r for r in runs if r["size"] == size}
        row = {"size": size, "events": next(iter(by_engine.values()))["events"]}
        for engine, run in by_engine.items():
            key = engine.replace("-", "_")
            row[f"{key}_s"] = run["seconds"]
            row[f"{key}_cpu_s"] = run["cpu_s"]
            row[f"{key}_peak_mib"] = run["peak_mib"]
            row[f"{key}_s_per_1e6_events"] = round(run["seconds"] / (run["events"] / 1e6), 2)
        duck = by_engine.get("duckdb")
        for engine in ("spark", "spark-warm"):
            spark, key = by_engine.get(engine), engine.replace("-", "_")
            if spark and duck:
                row[f"ratio_{key}_duckdb"] = round(spark["seconds"] / duck["seconds"], 2)
                row[f"cpu_ratio_{key}_duckdb"] = round(spark["cpu_s"] / max(duck["cpu_s"], 0.1), 2)
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    columns = [
        ("size", "size"),
        ("events", "events"),
        ("spark_s", "Spark s"),
        ("spark_warm_s", "warm s"),
        ("duckdb_s", "DuckDB s"),
        ("ratio_spark_duckdb", "ratio"),
        ("ratio_spark_warm_duckdb", "warm ratio"),
        ("spark_cpu_s", "Spark CPU s"),
        ("spark_warm_cpu_s", "warm CPU s"),
        ("duckdb_cpu_s", "DuckDB CPU s"),
        ("cpu_ratio_spark_duckdb", "CPU ratio"),
        ("spark_peak_mib", "Spark MiB"),
        ("spark_warm_peak_mib", "warm MiB"),
        ("duckdb_peak_mib", "DuckDB MiB"),
        ("spark_s_per_1e6_events", "Spark s/1e6"),
        ("duckdb_s_per_1e6_events", "DuckDB s/1e6"),
    ]
    columns = [(k, h) for k, h in columns if any(k in row for row in rows)]
    cells = [[h for _, h in columns]] + [[str(row.get(k, "-")) for k, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def save(label: str, payload: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault("results", {})[label] = payload
    data["machine"] = payload["machine"]
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


# --- Main ---------------------------------------------------------------------------------------------------


def check_outputs(
    work: Path, sizes: list[int], seed: int, reference_rev: str, fresh: dict[str, Path]
) -> dict:
    """The current Glue script and runner vs those of ``reference_rev``: identical outputs per size.

    ``fresh``: this invocation's runs of the current script by size (reused; other sizes are run here).
    """
    checks = {}
    for events in sizes:
        label = size_label(events)
        day = day_dir(work, events, seed)
        reference = work / "reference" / f"{reference_rev[:12]}-{label}-seed{seed}"
        if not (reference / "out" / "output_metrics").exists():
            print(f"reference run ({reference_rev[:12]}) at {label} ...", flush=True)
            run_spark(day, reference, reference_rev, work)
        candidate = fresh.get(label)
        if candidate is None:
            print(f"current run at {label} ...", flush=True)
            candidate = work / "check" / label
            run_spark(day, candidate, None, work)
        checks[label] = compare_runs(reference / "out", candidate / "out")
        verdict = "IDENTICAL" if checks[label]["identical"] else "DIFFERENT"
        print(f"outputs at {label} vs {reference_rev[:12]}: {verdict}", flush=True)
        for name in TABLES:
            c = checks[label][name]
            print(
                f"  {name}: {c['rows']} rows, files {c['files']}, "
                f"same in file order {c['same_in_file_order']}, "
                f"sorted sha256 {c['sorted_sha256'][1][:16]}",
                flush=True,
            )
    return checks


def measure(
    args: argparse.Namespace,
    sizes: list[int],
    engines: list[str],
    work: Path,
    runs_root: Path,
    gateway: WarmGateway,
    fresh: dict[str, Path],
) -> list[dict]:
    """Every engine on every size, ``args.repeat`` times each: one summary per size and engine."""
    runs = []
    for events in sizes:
        label = size_label(events)
        day = day_dir(work, events, args.seed)
        facts = day_facts(day)
        for engine in engines:
            measured = []
            for i in range(args.repeat):
                run_dir = (
                    runs_root / f"{engine}-{label}"
                    if i == args.repeat - 1
                    else runs_root / f"{engine}-{label}-{i}"
                )
                if engine == "spark":
                    measured.append(run_spark(day, run_dir, args.spark_rev, work, gateway))
                    if args.spark_rev is None:
                        fresh[label] = run_dir
                elif engine == "spark-warm":
                    gateway.start()
                    measured.append(run_spark(day, run_dir, None, work, gateway, lease=True))
                else:
                    measured.append(run_duckdb(day, run_dir, gateway))
                print(
                    f"{label} {engine}: {measured[-1]['seconds']} s, peak {measured[-1]['peak_mib']} MiB, "
                    f"CPU {measured[-1]['cpu_s']} s",
                    flush=True,
                )
            runs.append(
                {
                    "size": label,
                    "events": facts["events"],
                    "customers": facts["customers"],
                    "engine": engine,
                    "seconds": round(statistics.median(m["seconds"] for m in measured), 2),
                    "peak_mib": max(m["peak_mib"] for m in measured),
                    "all_seconds": [m["seconds"] for m in measured],
                    "cpu_s": round(statistics.median(m["cpu_s"] for m in measured), 1),
                    "all_cpu_s": [m["cpu_s"] for m in measured],
                }
            )
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="events per day, comma-separated")
    parser.add_argument(
        "--engines", help=f"of {', '.join(ENGINES)} (default: all; with --spark-rev: spark,duckdb)"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=1, help="runs per size and engine (median time)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--label", default="current", help="name of these figures in the results file")
    parser.add_argument("--spark-rev", help="time the Glue script and runner of this git revision")
    parser.add_argument("--check-outputs", action="store_true", help="current vs --reference-rev outputs")
    parser.add_argument("--check-sizes", default="1e5,1e6")
    parser.add_argument("--reference-rev", default=REFERENCE_REV)
    parser.add_argument("--no-save", action="store_true", help="print, do not write the results file")
    args = parser.parse_args()
    args.spark_rev, args.reference_rev = resolve_rev(args.spark_rev), resolve_rev(args.reference_rev)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    default_engines = "spark,duckdb" if args.spark_rev else ",".join(ENGINES)
    engines = [e for e in (args.engines or default_engines).split(",") if e]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}: choose from {', '.join(ENGINES)}")
    if args.spark_rev and "spark-warm" in engines:
        parser.error("--spark-rev times cold runs only: drop spark-warm from --engines")
    work = args.work_dir.resolve()
    runs_root = work / "runs" / args.label
    spark_submit = load_runner(args.spark_rev, work).spark_submit_args(Path("<work>/spark-local"))
    print(f"Spark: {spark_submit}", flush=True)

    fresh: dict[str, Path] = {}  # this invocation's Spark runs of the working tree's script, by size
    gateway = WarmGateway(work, args.seed)
    try:
        runs = measure(args, sizes, engines, work, runs_root, gateway, fresh)
    finally:
        gateway.close()
    payload: dict[str, Any] = {
        "machine": machine(),
        "spark_rev": args.spark_rev or "working tree",
        "spark_submit_args": spark_submit,
        "dt": DT,
        "seed": args.seed,
        "runs": runs,
        "table": table_rows(runs),
    }
    failed = False
    spark_engine = next((e for e in engines if e.startswith("spark")), None)
    if spark_engine and "duckdb" in engines:
        small = min(sizes)
        if small != 100_000:
            print(f"note: verifying DuckDB on the {size_label(small)} day (1e5 not in --sizes)")
        verification = verify_duckdb(
            runs_root / f"{spark_engine}-{size_label(small)}" / "out",
            runs_root / f"duckdb-{size_label(small)}" / "out",
        )
        payload["duckdb_verification"] = {"size": size_label(small), **verification}
        print(
            f"DuckDB vs Spark on the {size_label(small)} day: {'PASS' if verification['passed'] else 'FAIL'}"
        )
        print(f"  quarantine records identical too: {verification['quarantine_records_identical']}")
        for problem in verification["problems"]:
            print(f"  {problem}")
        failed |= not verification["passed"]
    if args.check_outputs:
        checks = check_outputs(
            work, [parse_size(s) for s in args.check_sizes.split(",")], args.seed, args.reference_rev, fresh
        )
        payload["output_identity"] = {"reference_rev": args.reference_rev, "sizes": checks}
        identical = all(c["identical"] for c in checks.values())
        print(f"outputs identical to {args.reference_rev[:12]}: {'PASS' if identical else 'FAIL'}")
        failed |= not identical

    print()
    print_table(payload["table"])
    if not args.no_save:
        save(args.label, payload)
        print(f"\nwritten to {RESULTS.relative_to(ROOT)} (label {args.label!r})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
