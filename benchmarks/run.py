"""Benchmarks of the local target (figures, not tests): ``make benchmark`` or ``python benchmarks/run.py``.

Reports, on this machine:
- DAG parse time per file, as Airflow's DAG processor parses it and in a fresh interpreter
  (``benchmarks/dag_parse.py``);
- warm demo wall time: stack start → first prediction (``make down`` first, venv present);
- peak memory (RSS summed over the demo and every process of the local stack) during that demo;
- with ``--cold``: cold ``make demo`` wall time in a fresh clone (new venv, new .local/).
Writes the figures as JSON to ``benchmarks/results/latest.json`` and prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dag_parse  # benchmarks/, beside this file
import psutil

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


class PeakRss:
    """Samples the summed RSS of a process tree plus the stack's recorded process groups."""

    def __init__(self, root_pid: int, pid_dir: Path) -> None:
        self.root_pid, self.pid_dir, self.peak = root_pid, pid_dir, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> set[int]:
        pids = set()
        roots = [self.root_pid] + [int(p.read_text()) for p in self.pid_dir.glob("*.pid") if p.exists()]
        for pid in roots:
            try:
                proc = psutil.Process(pid)
                pids |= {proc.pid, *(c.pid for c in proc.children(recursive=True))}
            except psutil.Error:
                pass
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self._pids():
                with contextlib.suppress(psutil.Error):
                    total += psutil.Process(pid).memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.5)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_demo(cwd: Path, command: list[str]) -> dict[str, float]:
    subprocess.run(["make", "down"], cwd=cwd, check=False, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_prediction = None
    with PeakRss(proc.pid, cwd / ".local" / "pids") as rss:
        for line in proc.stdout:  # type: ignore[union-attr]
            sys.stdout.write("    " + line)
            if first_prediction is None and "prediction" in line and "churn_probability" in line:
                first_prediction = time.perf_counter() - start
        code = proc.wait()
    subprocess.run(["make", "down"], cwd=cwd, check=False, capture_output=True)  # free the ports
    if code != 0:
        raise SystemExit(f"demo failed with exit code {code}")
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "to_first_prediction_s": round(first_prediction or float("nan"), 1),
        "peak_rss_mib": round(rss.peak / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also time make demo in a fresh clone")
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "mem_gib": round(psutil.virtual_memory().total / 2**30),
        }
    }
    print("DAG parse time per file (s), in the DAG processor and cold:", flush=True)
    results["dag_parse_s"] = {"in_processor": dag_parse.in_processor_times(), "cold": dag_parse.cold_times()}
    print(json.dumps(results["dag_parse_s"], indent=2), flush=True)
    print("warm demo (stack start → first prediction):", flush=True)
    results["warm_demo"] = timed_demo(ROOT, ["make", "demo"])
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="sagelake-cold-") as tmp:
            clone = Path(tmp) / "sagelake"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            print("cold make demo in a fresh clone:", flush=True)
            results["cold_demo"] = timed_demo(clone, ["make", "demo"])
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
