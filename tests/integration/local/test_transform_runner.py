"""The local batch transform engine on the control plane: real models (script mode trained by the training
runner in the container's environment, built-in XGBoost), the DAG's own input and requests, outputs where
SageMaker writes them — and batch scores equal to the endpoint server's answers for the same rows."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import xgboost as xgb
from botocore.config import Config
from botocore.exceptions import ClientError

from sagelake.lake.layout import split_s3_uri
from sagelake.local.endpoint_server import serve
from sagelake.local.framework_env import interpreter_for
from sagelake.local.transform_runner import (
    TransformJobFailedError,
    TransformRequestError,
    record_transform_job,
    run_transform_job,
)
from sagelake.ml.artifacts import package_source_dir
from sagelake.ml.batch import (
    CSV,
    JSON,
    batch_prefix,
    prepare_transform_input,
    read_scores,
    transform_request,
)
from sagelake.ml.images import xgboost_image_uri
from sagelake.ml.serving import serving_model
from sagelake.ml.training_data import encode_features, serving_csv
from tests.support.constants import REGION, SKLEARN_IMAGE_URI
from tests.support.serving import BROKEN_INFERENCE, deploy, put, train_script_model
from tests.support.training_data import synthetic_features

DT = "2026-11-26"


@pytest.fixture(scope="module")
def models(control_plane_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A bucket with two deployed models: script mode (``train.py`` run by the training runner on the
    scikit-learn container's environment) and built-in XGBoost (the xgboost library's booster)."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    sagemaker = session.client("sagemaker", endpoint_url=control_plane_url)
    bucket = f"transform-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    tag = uuid.uuid4().hex[:6]

    script_url = train_script_model(s3, bucket, tmp_path_factory.mktemp("train"), f"churn-{tag}")

    frame = synthetic_features(400, 2)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3},
        xgb.DMatrix(encode_features(frame).to_numpy(), label=frame["churned"].to_numpy()),
        num_boost_round=20,
    )
    model_dir = tmp_path_factory.mktemp("xgb-model")
    (model_dir / "xgboost-model").write_bytes(bytes(booster.save_raw("ubj")))
    xgb_url = put(s3, bucket, f"models/churn/xgb-{tag}/output/model.tar.gz", package_source_dir(model_dir))

    broken = tmp_path_factory.mktemp("broken")
    (broken / "code").mkdir()
    (broken / "code" / "inference.py").write_text(BROKEN_INFERENCE)
    broken_url = put(s3, bucket, f"models/churn/broken-{tag}/output/model.tar.gz", package_source_dir(broken))
    return {
        "bucket": bucket,
        "booster": booster,
        "script": deploy(sagemaker, f"script-{tag}", SKLEARN_IMAGE_URI, script_url),
        "xgboost": deploy(sagemaker, f"xgb-{tag}", xgboost_image_uri(REGION), xgb_url),
        "broken": deploy(sagemaker, f"broken-{tag}", SKLEARN_IMAGE_URI, broken_url),
    }


@pytest.fixture()
def sagemaker(aws_env: str) -> Any:
    return boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def runtime(aws_env: str, tmp_path: Path) -> Iterator[Any]:
    """A sagemaker-runtime client on a fresh endpoint server (models on their framework environments)."""
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION)
    host, port = server.server_address[:2]
    yield boto3.client(
        "sagemaker-runtime",
        endpoint_url=f"http://{host}:{port}",
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
    )
    server.shutdown()


def transform(
    s3: Any, sagemaker: Any, bucket: str, endpoint: str, frame: Any, work: Path, run: str
) -> tuple[dict, dict, Any]:
    """What the DAG does: the endpoint's model, the prepared input, the request, run and recorded."""
    model = serving_model(sagemaker, endpoint)
    prepared = prepare_transform_input(
        s3, frame, batch_prefix(bucket, DT, run), builtin_xgboost=model.builtin_xgboost
    )
    request = transform_request(
        job_name=f"score-{run}",
        model_name=model.model_name,
        input_uri=prepared["input_uri"],
        output_uri=prepared["output_uri"],
        content_type=prepared["content_type"],
        instance_type="ml.m5.large",
    )
    result = run_transform_job(request, sagemaker, s3, work)
    return prepared, record_transform_job(sagemaker, request), result


def keys_under(s3: Any, uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(uri)
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_script_mode_batch_scores_equal_the_endpoints_answers(
    s3, sagemaker, runtime, models, tmp_path: Path
) -> None:
    frame = synthetic_features(1100, 11)  # three JSON lines of up to 500 customers
    frame.loc[5, "avg_session_s"] = float("nan")
    prepared, described, result = transform(
        s3, sagemaker, models["bucket"], models["script"], frame, tmp_path, "script"
    )

    assert prepared["content_type"] == JSON
    assert keys_under(s3, prepared["output_uri"]) == [
        split_s3_uri(prepared["output_uri"])[1] + "part-0.jsonl.out"
    ]
    assert (result.records, result.requests) == (3, 3)
    assert result.served_on == str(interpreter_for(SKLEARN_IMAGE_URI) or sys.executable)  # its versions
    assert described["TransformJobStatus"] == "Completed"
    assert described["ModelName"] == models["script"]
    ids, scores = read_scores(s3, prepared, described)
    assert ids == frame["customer_id"].tolist()

    instances = frame.drop(columns=["customer_id", "churned"]).to_dict(orient="records")
    answers = []
    for start in range(0, len(instances), 300):  # other request sizes than the batch's
        chunk = [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in instances[start : start + 300]
        ]
        response = runtime.invoke_endpoint(
            EndpointName=models["script"],
            ContentType=JSON,
            Accept=JSON,
            Body=json.dumps({"instances": chunk}),
        )
        answers += [p["churn_probability"] for p in json.loads(response["Body"].read())["predictions"]]
    assert scores == answers
    assert len(set(scores)) > 10  # a model that answers, not a constant


def test_builtin_xgboost_batch_scores_equal_the_endpoints_answers(
    s3, sagemaker, runtime, models, tmp_path: Path
) -> None:
    frame = synthetic_features(700, 12)
    prepared, described, result = transform(
        s3, sagemaker, models["bucket"], models["xgboost"], frame, tmp_path, "xgboost"
    )

    assert prepared["content_type"] == CSV
    assert result.records == 700 and result.served_on.startswith("xgboost")
    ids, scores = read_scores(s3, prepared, described)
    assert ids == frame["customer_id"].tolist()
    response = runtime.invoke_endpoint(
        EndpointName=models["xgboost"], ContentType=CSV, Accept=CSV, Body=serving_csv(frame)
    )
    answers = [float(v) for v in response["Body"].read().decode().split(",")]
    assert scores == answers
    direct = models["booster"].predict(xgb.DMatrix(encode_features(frame).to_numpy()))
    assert scores == pytest.approx(direct.tolist(), abs=1e-6)


def test_a_failing_model_uploads_and_records_nothing(s3, sagemaker, models, tmp_path: Path) -> None:
    frame = synthetic_features(5, 13)
    model = serving_model(sagemaker, models["broken"])
    prepared = prepare_transform_input(
        s3, frame, batch_prefix(models["bucket"], DT, "broken"), builtin_xgboost=False
    )
    request = transform_request(
        job_name="score-broken",
        model_name=model.model_name,
        input_uri=prepared["input_uri"],
        output_uri=prepared["output_uri"],
        content_type=JSON,
        instance_type="ml.m5.large",
    )
    with pytest.raises(TransformJobFailedError, match="predictor exploded"):
        run_transform_job(request, sagemaker, s3, tmp_path)
    assert keys_under(s3, prepared["output_uri"]) == []
    with pytest.raises(ClientError, match="Could not find"):
        sagemaker.describe_transform_job(TransformJobName="score-broken")


def test_an_empty_input_prefix_fails_as_on_aws(s3, sagemaker, models, tmp_path: Path) -> None:
    prefix = batch_prefix(models["bucket"], DT, "empty")
    request = transform_request(
        job_name="score-empty",
        model_name=serving_model(sagemaker, models["script"]).model_name,
        input_uri=prefix + "input/",
        output_uri=prefix + "output/",
        content_type=JSON,
        instance_type="ml.m5.large",
    )
    with pytest.raises(TransformRequestError, match="no S3 objects found"):
        run_transform_job(request, sagemaker, s3, tmp_path)
