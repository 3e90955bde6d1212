"""Framework environments' cost (figures, not a test): ``python benchmarks/framework_env.py``.

Reports, on this machine:
- the build of the scikit-learn 1.4-2 environment: cold (empty uv cache, from PyPI), again from uv's
  cache (the venv deleted), and warm (built: the check alone), in a throw-away directory;
- ``include/training/train.py`` wall time on the environment and on the Airflow venv (same data and
  hyperparameters; median and best of ``--repeats``, interleaved), each a fresh interpreter as a local
  training job is; ``--threads 1`` sets ``OMP_NUM_THREADS`` (on a busy machine scikit-learn 1.4.2's
  OpenMP threads slow its fits far more than 1.9's: compare single-threaded for the versions alone);
- one ``/invocations`` of a served model (8 JSON rows): in the server's process vs through a worker on
  the environment (median of 50).
Writes benchmarks/results/framework_env.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from sagelake.local import framework_env, model_worker  # noqa: E402
from sagelake.local.endpoint_server import ModelWorker  # noqa: E402

TRAIN = ROOT / "include" / "training" / "train.py"
ROW = {
    "plan": "basic",
    "region": "north",
    "monthly_fee": 9.99,
    "age": 40.0,
    "support_tickets": 2,
    "tenure_days": 300,
    "n_events": 20,
    "n_logins": 8,
    "n_purchases": 2,
    "total_amount": 9.98,
    "avg_session_s": 500.0,
}


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def build_times(work: Path) -> dict[str, float]:
    os.environ["SAGELAKE_FRAMEWORK_ENVS_DIR"] = str(work / "envs")
    os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
    env = framework_env.SKLEARN_1_4_2
    cold = timed(lambda: framework_env.ensure_env(env))
    warm = timed(lambda: framework_env.ensure_env(env))
    (framework_env.env_dir(env) / framework_env.STAMP).unlink()
    from_cache = timed(lambda: framework_env.ensure_env(env))
    del os.environ["UV_CACHE_DIR"]
    return {"cold_s": round(cold, 2), "from_uv_cache_s": round(from_cache, 2), "warm_s": round(warm, 4)}


def write_data(channel: Path, rows: int) -> None:
    """The tests' synthetic curated features (``tests`` as this checkout's folder, not a site package)."""
    tests = types.ModuleType("tests")
    tests.__path__ = [str(ROOT / "tests")]
    sys.modules["tests"] = tests
    from tests.support.training_data import synthetic_features, write_channel

    write_channel(channel, {"2026-11-24": synthetic_features(rows, 1)})


def train_times(
    pythons: dict[str, str], channel: Path, work: Path, repeats: int, max_iter: int, threads: int
) -> dict[str, list[float]]:
    """``{name: [seconds]}``: runs interleaved (env, venv, env, venv...) so load spikes hit both."""
    times: dict[str, list[float]] = {name: [] for name in pythons}
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    for i in range(repeats):
        for name, python in pythons.items():
            out = work / name
            cmd = [python, str(TRAIN), "--train", str(channel), "--model-dir", str(out / f"model-{i}")]
            cmd += ["--output-data-dir", str(out / f"out-{i}"), "--max_iter", str(max_iter)]
            started = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - started)
    return times


def invocation_times(env_model: Path, venv_model: Path, body: bytes, n: int = 50) -> dict[str, float]:
    worker = ModelWorker(framework_env.env_python(framework_env.SKLEARN_1_4_2), env_model, "bench")
    try:
        call = (body, "application/json", "application/json")
        on_worker = [timed(lambda: worker.invoke(*call)) for _ in range(n)]
    finally:
        worker.close()
    module, model = model_worker.load(venv_model)
    args = (module, model, body, "application/json", "application/json")
    in_process = [timed(lambda: model_worker.predict(*args)) for _ in range(n)]
    return {
        "in_process_ms": round(statistics.median(in_process) * 1000, 2),
        "worker_ms": round(statistics.median(on_worker) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for training (0: unset)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="framework-env-bench-") as tmp:
        work = Path(tmp)
        build = build_times(work)
        env_python = str(framework_env.env_python(framework_env.SKLEARN_1_4_2))
        write_data(work / "train", args.rows)
        pythons = {"env": env_python, "venv": sys.executable}
        runs = train_times(pythons, work / "train", work, args.repeats, args.max_iter, args.threads)
        on_env, on_venv = runs["env"], runs["venv"]
        body = json.dumps({"instances": [ROW] * 8}).encode()
        built_on = framework_env.built_python(framework_env.SKLEARN_1_4_2)
        serving = invocation_times(work / "env" / "model-0", work / "venv" / "model-0", body)
    figures = {
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "env_python": built_on,
        "venv_python": sys.version.split()[0],
        "env_build": build,
        "train": {
            "rows": args.rows,
            "max_iter": args.max_iter,
            "omp_num_threads": args.threads or "unset",
            "framework_env_median_s": round(statistics.median(on_env), 2),
            "airflow_venv_median_s": round(statistics.median(on_venv), 2),
            "framework_env_min_s": round(min(on_env), 2),
            "airflow_venv_min_s": round(min(on_venv), 2),
            "framework_env_runs_s": [round(t, 2) for t in on_env],
            "airflow_venv_runs_s": [round(t, 2) for t in on_venv],
        },
        "invocation": serving,
    }
    out = ROOT / "benchmarks" / "results" / "framework_env.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
