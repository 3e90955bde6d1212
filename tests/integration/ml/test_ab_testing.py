"""An A/B test against the control plane and a real local endpoint server: the two-variant config deployed
by the project's operator routes ~90/10, honours TargetVariant, follows UpdateEndpointWeightsAndCapacities,
publishes each variant's metrics under SageMaker's names and dimensions, and captures what the outcome
test joins with the labels."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.stack import aws_connection
from sagelake.local.endpoint_server import serve
from sagelake.ml.ab_testing import (
    CHALLENGER,
    CHAMPION,
    NOT_ENOUGH_DATA,
    ABSettings,
    ModelRef,
    ab_endpoint_request,
    compare_outcomes,
    labels_from_rows,
    outcome_counts,
    shift_weights,
    variant_metrics,
    variant_predictions,
)
from sagelake.ml.aws_requests import endpoint_request
from sagelake.ml.serving import serving_model
from sagelake.operators.sagemaker import DeployEndpointOperator
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.serving import local_clients, register_version, train_script_model
from tests.support.training_data import synthetic_features

N = 400


@pytest.fixture(scope="module")
def models(control_plane_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two trained script-mode models, both Approved package versions, in a new bucket."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    sagemaker = session.client("sagemaker", endpoint_url=control_plane_url)
    bucket = f"ab-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    urls = {
        role: train_script_model(s3, bucket, tmp_path_factory.mktemp(role), f"{role}-{bucket}", rows=300)
        for role in (CHAMPION, CHALLENGER)
    }
    arns = {role: register_version(sagemaker, SKLEARN_IMAGE_URI, url) for role, url in urls.items()}
    return {"bucket": bucket, **urls, "challenger_arn": arns[CHALLENGER]}


@pytest.fixture()
def clients(aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    server = serve(
        "127.0.0.1", 0, aws_env, tmp_path / "cache", REGION, resolve_ttl=0.2, metrics_flush_seconds=0.5
    )
    clients = local_clients(aws_env, server)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, clients["runtime_url"]))
    yield clients
    server.shutdown()


def deploy(config: dict[str, Any]) -> dict[str, Any]:
    return DeployEndpointOperator(
        task_id="deploy", config=config, operation="create", check_interval=1
    ).execute({})


def invoke(runtime: Any, endpoint: str, rows: list[dict[str, Any]], target: str | None = None) -> str:
    extra = {"TargetVariant": target} if target else {}
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"instances": rows}),
        **extra,
    )
    assert len(json.loads(answer["Body"].read())["predictions"]) == len(rows)
    return answer["InvokedProductionVariant"]


def test_an_ab_test_routes_by_weight_follows_weight_shifts_and_reports_per_variant(models, clients) -> None:
    endpoint, tag = f"ab-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    capture = f"s3://{models['bucket']}/capture/"
    sagemaker, runtime = clients["sagemaker"], clients["runtime"]
    started = datetime.now(UTC) - timedelta(minutes=1)
    deploy(
        endpoint_request(
            model_name=f"champ-{tag}",
            endpoint_config_name=f"champ-{tag}",
            endpoint_name=endpoint,
            role=SAGEMAKER_ROLE_ARN,
            image_uri=SKLEARN_IMAGE_URI,
            model_data_url=models[CHAMPION],
            instance_type="ml.m5.large",
        )
    )
    serving = serving_model(sagemaker, endpoint)
    champion = ModelRef(serving.model_name, serving.image, serving.model_url)
    deploy(
        ab_endpoint_request(
            champion=champion,
            challenger_model_name=f"chall-{tag}",
            challenger_image=SKLEARN_IMAGE_URI,
            challenger_model_url=models[CHALLENGER],
            endpoint_config_name=f"ab-{tag}",
            endpoint_name=endpoint,
            role=SAGEMAKER_ROLE_ARN,
            instance_type="ml.m5.large",
            weights=ABSettings(challenger_weight=0.1).weights(),
            data_capture_uri=capture,
        )
    )

    # 90/10 by weight: 400 draws of Binomial(400, 0.1) lie within 4.5 standard deviations of 40
    features = synthetic_features(N, 11)
    rows = features.drop(columns=["churned", "dt"], errors="ignore").to_dict(orient="records")
    answers = [invoke(runtime, endpoint, [row]) for row in rows]
    routed = Counter(answers)
    sd = math.sqrt(N * 0.1 * 0.9)
    assert set(routed) == {CHAMPION, CHALLENGER}
    assert abs(routed[CHALLENGER] - 0.1 * N) <= 4.5 * sd, routed

    # TargetVariant wins over the weights
    targeted = Counter(invoke(runtime, endpoint, [rows[0]], target=CHALLENGER) for _ in range(20))
    assert targeted == {CHALLENGER: 20}
    # a request the model refuses: a ModelError, counted as the challenger's 5XX error
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Body=b"{}", TargetVariant=CHALLENGER
        )

    # UpdateEndpointWeightsAndCapacities to 0/1: all traffic moves, without a new config
    assert shift_weights(sagemaker, endpoint, {CHAMPION: 0.0, CHALLENGER: 1.0}) == {
        CHAMPION: 0.0,
        CHALLENGER: 1.0,
    }
    deadline = time.monotonic() + 10  # the server re-reads the endpoint every resolve_ttl (0.2 s)
    while [v.weight for v in clients["server"].resolver.get(endpoint).variants] != [0.0, 1.0]:
        assert time.monotonic() < deadline, "the endpoint server never saw the new weights"
        time.sleep(0.1)
    shifted = Counter(invoke(runtime, endpoint, [row]) for row in rows[:100])
    assert shifted == {CHALLENGER: 100}
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == f"ab-{tag}"

    clients["server"].shutdown()  # flushes the metrics and the capture
    clients["server"].shutdown = lambda: None  # the fixture's second shutdown
    ended = datetime.now(UTC) + timedelta(minutes=1)
    metrics = variant_metrics(clients["cloudwatch"], endpoint, (CHAMPION, CHALLENGER), started, ended)
    assert metrics[CHAMPION]["Invocations"] == routed[CHAMPION]
    # every challenger invocation: by weight, targeted, the refused one, after the shift
    assert metrics[CHALLENGER]["Invocations"] == routed[CHALLENGER] + 20 + 1 + 100
    assert metrics[CHALLENGER]["Invocation5XXErrors"] == 1
    assert metrics[CHAMPION]["Invocation5XXErrors"] == metrics[CHAMPION]["Invocation4XXErrors"] == 0
    assert metrics[CHAMPION]["ModelLatencyMeanMs"] > 0 and metrics[CHALLENGER]["ModelLatencyMeanMs"] > 0

    # the outcome test joins each variant's captured predictions with the customers' labels
    labels = labels_from_rows(features.to_dict(orient="records"))
    counts = {}
    for variant in (CHAMPION, CHALLENGER):
        predictions, _ = variant_predictions(clients["s3"], capture, endpoint, variant, started, ended)
        counts[variant] = outcome_counts(predictions, labels)
    answered = {
        variant: {row["customer_id"] for row, by in zip(rows, answers, strict=True) if by == variant}
        for variant in (CHAMPION, CHALLENGER)
    }
    answered[CHALLENGER] |= {row["customer_id"] for row in rows[:100]}
    # one labelled prediction per customer each variant answered
    assert counts[CHAMPION][0] == len(answered[CHAMPION]) == routed[CHAMPION]
    assert counts[CHALLENGER][0] == len(answered[CHALLENGER])
    test = compare_outcomes(counts[CHAMPION], counts[CHALLENGER], alpha=0.05, min_samples=N)
    assert test.verdict == NOT_ENOUGH_DATA  # neither variant answered all 400 customers alone
