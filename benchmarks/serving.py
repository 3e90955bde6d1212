"""Local endpoint serving speed (figures, not a test).

Run: ``PYTHONPATH=plugins:. .venv/bin/python benchmarks/serving.py`` (``--help`` for the knobs).

Starts, as the tests do, a control plane (moto + extensions) and an endpoint server (``serve``, models on
their framework environment) in this process on free ports; trains two small real churn models with
``include/training/train.py`` (scikit-learn, script mode, served by a worker process) and deploys one.
Then measures, on kept-alive HTTP/1.1 connections (``http.client``, in a separate client process so the
clients do not share the server's GIL):
- single-row and 100-row JSON requests, sequential (one connection): latency p50/p99 and req/s;
- the same with ``--clients`` concurrent clients (one connection each) for ``--seconds``: req/s, p50/p99;
- the in-process limit: ``EndpointServer.invoke`` called directly (no HTTP), sequential and concurrent;
- a model switch under load: ``UpdateEndpoint`` to the second model's config while the clients invoke;
  failed requests, and the delays from the update to the new model's first answer and the old one's last.
Prints the figures and writes them to benchmarks/results/serving.json (``--output``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import types
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
REGION = "us-east-1"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
FEATURES = ("customer_id", "churned")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies_s: list[float], wall_s: float, errors: int = 0) -> dict:
    ms = [v * 1000 for v in latencies_s]
    return {
        "requests": len(ms),
        "errors": errors,
        "req_per_s": round(len(ms) / wall_s, 1),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


def _tests_package() -> None:
    """``tests`` as this checkout's folder (not a site package), for its synthetic data."""
    tests = types.ModuleType("tests")
    tests.__path__ = [str(ROOT / "tests")]
    sys.modules.setdefault("tests", tests)


def train_models(work: Path) -> dict[str, Path]:
    _tests_package()
    from tests.support.training_data import load_script, synthetic_features, write_channel

    train, dirs = load_script("train"), {}
    for name, seed, depth in (("v1", 1, "2"), ("v2", 2, "4")):
        channel = write_channel(work / f"data-{name}", {"2024-01-01": synthetic_features(400, seed)})
        args = [
            "--train",
            str(channel),
            "--model-dir",
            str(work / name),
            "--output-data-dir",
            str(work / "out"),
        ]
        assert train.main([*args, "--max_iter", "40", "--max_depth", depth, "--seed", str(seed)]) == 0
        dirs[name] = work / name
    return dirs


def bodies() -> dict[str, bytes]:
    _tests_package()
    from tests.support.training_data import synthetic_features

    def body(n: int) -> bytes:
        frame = synthetic_features(n, 42).drop(columns=list(FEATURES))
        return json.dumps({"instances": frame.to_dict(orient="records")}).encode()

    return {"1": body(1), "100": body(100)}


def register(sagemaker, s3, bucket: str, model_dir: Path) -> str:
    from sagelake.ml.artifacts import package_source_dir

    tag = uuid.uuid4().hex[:8]
    key = f"models/churn/job-{tag}/output/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=package_source_dir(model_dir))
    container = {"Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/{key}"}
    sagemaker.create_model_package_group(ModelPackageGroupName=f"bench-{tag}")  # only approved are served
    sagemaker.create_model_package(
        ModelPackageGroupName=f"bench-{tag}",
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="Approved",
    )
    sagemaker.create_model(
        ModelName=f"model-{tag}",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/{key}"},
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": f"model-{tag}",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
        "InitialVariantWeight": 1.0,
    }
    sagemaker.create_endpoint_config(EndpointConfigName=f"config-{tag}", ProductionVariants=[variant])
    return f"config-{tag}"


# --- the clients (run in a child process) ---------------------------------------------------------------


def _client(host: str, port: int, path: str, body: bytes, stop_at: float, out: list, start: threading.Event):
    connection = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    start.wait()
    while time.monotonic() < stop_at:
        began = time.perf_counter()
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            answer = response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            connection.close()
            answer, ok = b"", False
        out.append((time.monotonic(), time.perf_counter() - began, ok, answer))
    connection.close()


def load(host: str, port: int, path: str, body: bytes, clients: int, seconds: float, queue) -> None:
    """``clients`` threads with one kept-alive connection each for ``seconds``; results to ``queue``."""
    start, results = threading.Event(), [[] for _ in range(clients)]
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_client, args=(host, port, path, body, stop_at, results[i], start))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    start.set()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    queue.put({"wall_s": wall, "results": results})


def run_clients(host: str, port: int, path: str, body: bytes, clients: int, seconds: float) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=load, args=(host, port, path, body, clients, seconds, queue))
    process.start()
    out = queue.get()
    process.join()
    return out


def measure(host: str, port: int, path: str, body: bytes, clients: int, seconds: float) -> dict:
    out = run_clients(host, port, path, body, clients, seconds)
    flat = [r for per_client in out["results"] for r in per_client]
    return summary([r[1] for r in flat], out["wall_s"], sum(1 for r in flat if not r[2]))


def in_process(server, endpoint: str, body: bytes, threads: int, seconds: float) -> dict:
    latencies, errors, lock = [], [0], threading.Lock()
    stop_at = time.monotonic() + seconds

    def work() -> None:
        mine = []
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            try:
                server.invoke(endpoint, body, "application/json", "application/json", None)
            except Exception:
                errors[0] += 1
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    began = time.monotonic()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return summary(latencies, time.monotonic() - began, errors[0])


def switch_under_load(host, port, path, body, clients, sagemaker, endpoint, new_config) -> dict:
    """Clients invoke for 6 s; UpdateEndpoint at 2 s; failures and when each client last saw v1."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=load, args=(host, port, path, body, clients, 6.0, queue))
    process.start()
    time.sleep(2.0)
    updated_at = time.monotonic()  # CLOCK_MONOTONIC is system-wide on Linux: comparable across processes
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)
    out = queue.get()
    process.join()
    flat = [r for per_client in out["results"] for r in per_client]
    before = {r[3] for r in flat if r[0] < updated_at and r[2]}
    last_old = max((r[0] for r in flat if r[3] in before and r[0] >= updated_at), default=updated_at)
    first_new = min((r[0] for r in flat if r[2] and r[3] not in before), default=None)
    return {
        "requests": len(flat),
        "errors": sum(1 for r in flat if not r[2]),
        "first_new_answer_after_s": None if first_new is None else round(first_new - updated_at, 3),
        "last_old_answer_after_s": round(last_old - updated_at, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sequential-seconds", type=float, default=3.0)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "serving.json"))
    args = parser.parse_args()
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)

    import boto3

    from devstack.stack import free_port
    from sagelake.local import control_plane
    from sagelake.local.endpoint_server import serve

    work = Path(tempfile.mkdtemp(prefix="sagelake-serving-bench-"))
    model_dirs = train_models(work)
    cp_port = free_port()
    plane = control_plane.start("127.0.0.1", cp_port)
    url = f"http://127.0.0.1:{cp_port}"
    sagemaker = boto3.client("sagemaker", endpoint_url=url, region_name=REGION)
    s3 = boto3.client("s3", endpoint_url=url, region_name=REGION)
    s3.create_bucket(Bucket="bench")
    first, second = (register(sagemaker, s3, "bench", model_dirs[v]) for v in ("v1", "v2"))
    endpoint = "churn-bench"
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=first)
    server = serve("127.0.0.1", 0, url, work / "cache", REGION)
    host, port = server.server_address[:2]
    path = f"/endpoints/{endpoint}/invocations"
    payloads = bodies()
    figures: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],  # other work on the machine skews the figures: reported
        "clients": args.clients,
        "model": "include/training/train.py (scikit-learn, script mode, framework-env worker)",
    }
    try:
        measure(host, port, path, payloads["1"], 1, 2.0)  # loads the model, warms up
        for rows, body in payloads.items():
            sequential = measure(host, port, path, body, 1, args.sequential_seconds)
            figures[f"sequential_{rows}_row"] = sequential
            figures[f"concurrent_{rows}_row"] = measure(host, port, path, body, args.clients, args.seconds)
            figures[f"in_process_{rows}_row"] = in_process(server, endpoint, body, 1, 2.0)
            figures[f"in_process_concurrent_{rows}_row"] = in_process(
                server, endpoint, body, args.clients, 2.0
            )
        figures["switch"] = switch_under_load(
            host, port, path, payloads["1"], args.clients, sagemaker, endpoint, second
        )
    finally:
        server.shutdown()
        plane.stop()
        shutil.rmtree(work, ignore_errors=True)
    figures["load_average_1m"] = [round(figures.pop("load_before"), 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(figures, indent=2))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
