"""DAG parse time per file, two ways (figures, not tests): ``python benchmarks/dag_parse.py``.

- ``in_processor``: as Airflow's DAG processor parses a file, again and again while it runs. Its manager
  freezes the garbage collector's heap, imports the ``airflow.*`` modules the file imports
  (``[dag_processor] parsing_pre_import_modules``) and forks; the child runs Airflow's own ``_parse_file``
  (fill a DagBag from the file, serialize its DAGs). Timed here in the child, from the fork to the result,
  median of ``repeats`` after one round that warms the parent (the manager's first loop).
- ``cold``: a fresh interpreter filling a DagBag from the one file: the first parse, which also pays for
  importing boto3 and the Amazon provider's hooks (what the DAG processor does once, in its manager).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

COLD = (
    "import sys, time; from airflow.dag_processing.dagbag import DagBag; t=time.perf_counter(); "
    "b=DagBag(dag_folder=sys.argv[1]); assert not b.import_errors, b.import_errors; "
    "print(time.perf_counter()-t)"
)

IN_PROCESSOR = r"""
import gc, json, os, statistics, sys, time
from pathlib import Path

import structlog
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file, _pre_import_airflow_modules

log = structlog.get_logger()
paths, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
gc.freeze()  # as DagFileProcessorManager.before_run


def parse_in_child(path: str) -> float:
    read, write = os.pipe()
    _pre_import_airflow_modules(path, log)  # in the manager, before each fork
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        request = DagFileParseRequest(
            file=path, bundle_path=Path(path).parent, bundle_name="dags-folder", callback_requests=[]
        )
        result = _parse_file(request, log)
        ok = result is not None and not result.import_errors and result.serialized_dags
        os.write(write, f"{time.perf_counter() - started if ok else -1.0}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        elapsed = float(pipe.read())
    os.waitpid(pid, 0)
    if elapsed < 0:
        raise SystemExit(f"{path} did not parse")
    return elapsed


for path in paths:  # the manager's first loop
    parse_in_child(path)
times = {path: [] for path in paths}
for _ in range(repeats):
    for path in paths:
        times[path].append(parse_in_child(path))
print(json.dumps({Path(p).name: round(statistics.median(t), 3) for p, t in times.items()}))
"""


def _env() -> dict[str, str]:
    # Python may cache the DAG files' and plugins' bytecode, as it does by default (a machine that sets
    # PYTHONDONTWRITEBYTECODE would otherwise compile them from source at every parse)
    return {
        **{name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"},
        "PYTHONPATH": f"{ROOT / 'plugins'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="bench-airflow-"),
    }


def dag_files() -> list[Path]:
    return sorted((ROOT / "dags").glob("*.py"))


def in_processor_times(repeats: int = 5) -> dict[str, float]:
    """Median seconds per file, parsed as the DAG processor's forked children parse it."""
    paths = json.dumps([str(p) for p in dag_files()])
    out = subprocess.run(
        [PY, "-c", IN_PROCESSOR, paths, str(repeats)], env=_env(), capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_times(repeats: int = 5) -> dict[str, float]:
    """Median seconds per file, each parse in a fresh interpreter."""
    env, times = _env(), {}
    for path in dag_files():
        runs = [
            float(
                subprocess.run(
                    [PY, "-c", COLD, str(path)], env=env, capture_output=True, text=True, check=True
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            for _ in range(repeats)
        ]
        times[path.name] = round(statistics.median(runs), 3)
    return times


def main() -> None:
    figures = {"in_processor_s": in_processor_times(), "cold_s": cold_times()}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
