"""Local batch transform speed (figures, not a test).

Run: ``PYTHONPATH=plugins:. .venv/bin/python benchmarks/batch_transform.py --rows 10000 50000``.

Starts a control plane (moto + extensions) in this process on a free port, trains a script-mode model with
the training runner (``train.py`` on the scikit-learn container's environment) and a built-in XGBoost
booster, deploys both with the DAG's requests, then for each ``--rows`` count prepares the DAG's transform
input (``sagelake.ml.batch.prepare_transform_input``) and runs ``run_transform_job`` on it: wall seconds
(prepare, transform incl. model load, read + join), rows/s and requests. Writes
``benchmarks/results/batch_transform.json`` (``--output``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
REGION = "us-east-1"


def _tests_package() -> None:
    """``tests`` as this checkout's folder (not a site package), for its synthetic data and models."""
    tests = types.ModuleType("tests")
    tests.__path__ = [str(ROOT / "tests")]
    sys.modules.setdefault("tests", tests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "batch_transform.json"
    )
    args = parser.parse_args(argv)
    _tests_package()
    import boto3
    import xgboost as xgb

    from sagelake.local import control_plane
    from sagelake.local.transform_runner import run_transform_job
    from sagelake.ml.artifacts import package_source_dir
    from sagelake.ml.batch import batch_prefix, prepare_transform_input, read_scores, transform_request
    from sagelake.ml.images import xgboost_image_uri
    from sagelake.ml.training_data import encode_features
    from tests.support.constants import SKLEARN_IMAGE_URI
    from tests.support.network import free_port
    from tests.support.serving import deploy, put, train_script_model
    from tests.support.training_data import synthetic_features

    port = free_port()
    server = control_plane.start("127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    s3, sagemaker = session.client("s3", endpoint_url=url), session.client("sagemaker", endpoint_url=url)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    figures: dict = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "runs": []}
    try:
        with tempfile.TemporaryDirectory() as work:
            script_url = train_script_model(s3, bucket, Path(work) / "train", "bench-script")
            frame = synthetic_features(400, 2)
            booster = xgb.train(
                {"objective": "binary:logistic", "max_depth": 3},
                xgb.DMatrix(encode_features(frame).to_numpy(), label=frame["churned"].to_numpy()),
                num_boost_round=20,
            )
            model_dir = Path(work) / "xgb"
            model_dir.mkdir()
            (model_dir / "xgboost-model").write_bytes(bytes(booster.save_raw("ubj")))
            xgb_url = put(s3, bucket, "models/xgb/model.tar.gz", package_source_dir(model_dir))
            models = {
                "script": (deploy(sagemaker, "bench-script", SKLEARN_IMAGE_URI, script_url), False),
                "xgboost": (deploy(sagemaker, "bench-xgb", xgboost_image_uri(REGION), xgb_url), True),
            }
            for rows in args.rows:
                features = synthetic_features(rows, 7)
                for kind, (model, builtin) in models.items():
                    run = f"{kind}-{rows}"
                    started = time.perf_counter()
                    prepared = prepare_transform_input(
                        s3, features, batch_prefix(bucket, "2026-11-26", run), builtin_xgboost=builtin
                    )
                    prepared_s = time.perf_counter() - started
                    request = transform_request(
                        job_name=run,
                        model_name=model,
                        input_uri=prepared["input_uri"],
                        output_uri=prepared["output_uri"],
                        content_type=prepared["content_type"],
                        instance_type="ml.m5.large",
                    )
                    result = run_transform_job(request, sagemaker, s3, Path(work) / run)
                    transform_s = time.perf_counter() - started - prepared_s
                    ids, scores = read_scores(s3, prepared, request)
                    assert len(ids) == len(scores) == rows
                    total_s = time.perf_counter() - started
                    entry = {
                        "model": kind,
                        "rows": rows,
                        "requests": result.requests,
                        "prepare_s": round(prepared_s, 2),
                        "transform_s": round(transform_s, 2),
                        "total_s": round(total_s, 2),
                        "rows_per_s": round(rows / transform_s),
                    }
                    figures["runs"].append(entry)
                    print(json.dumps(entry), flush=True)
    finally:
        server.stop()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
