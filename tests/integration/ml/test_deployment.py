"""Safe updates against the control plane and a real local endpoint server: the deploy operator records
what each new config replaces, a failed smoke test puts production back on it (or removes a first,
broken endpoint), and the serving variant's autoscaling survives a model change and is released before an
instance-type change."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.stack import aws_connection
from sagelake.local.endpoint_server import serve
from sagelake.ml.artifacts import package_source_dir
from sagelake.ml.aws_requests import endpoint_request
from sagelake.ml.deployment import (
    RolledBackError,
    RolloutSettings,
    apply_autoscaling,
    deployment_config,
    previous_config,
    smoke_test_or_roll_back,
)
from sagelake.operators.sagemaker import DeployEndpointOperator
from tests.support.constants import REGION, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.serving import BROKEN_INFERENCE, local_clients, put, register_version, train_script_model
from tests.support.training_data import synthetic_features

ROLLOUT = RolloutSettings(traffic="CANARY", instance_count=1, min_instances=1, max_instances=3)


@pytest.fixture(scope="module")
def models(control_plane_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A bucket with a trained script-mode model, a broken one (approved both) and held-out rows."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    s3 = session.client("s3", endpoint_url=control_plane_url)
    sagemaker = session.client("sagemaker", endpoint_url=control_plane_url)
    bucket = f"deploy-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    good = train_script_model(s3, bucket, tmp_path_factory.mktemp("train"), f"good-{bucket}")
    broken_dir = tmp_path_factory.mktemp("broken")
    (broken_dir / "code").mkdir()
    (broken_dir / "code" / "inference.py").write_text(BROKEN_INFERENCE)
    broken = put(s3, bucket, "models/broken/model.tar.gz", package_source_dir(broken_dir))
    for url in (good, broken):  # approval is not what these tests decide
        register_version(sagemaker, SKLEARN_IMAGE_URI, url)
    rows = io.BytesIO()
    synthetic_features(20, 7).to_parquet(rows, index=False)
    put(s3, bucket, "holdout/part-0.parquet", rows.getvalue())
    return {"bucket": bucket, "good": good, "broken": broken, "rows": f"s3://{bucket}/holdout/"}


@pytest.fixture()
def clients(aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION)
    clients = local_clients(aws_env, server)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(aws_env, clients["runtime_url"]))
    yield clients
    server.shutdown()


def deploy(endpoint: str, name: str, model_url: str, instance_type: str = "ml.m5.large") -> dict[str, Any]:
    """The DAG's request and operator (waiting synchronously on the control plane)."""
    config = endpoint_request(
        model_name=name,
        endpoint_config_name=name,
        endpoint_name=endpoint,
        role=SAGEMAKER_ROLE_ARN,
        image_uri=SKLEARN_IMAGE_URI,
        model_data_url=model_url,
        instance_type=instance_type,
        deployment_config=deployment_config(ROLLOUT),
    )
    return DeployEndpointOperator(
        task_id="deploy", config=config, operation="create", check_interval=1
    ).execute({})


def smoke(clients: dict[str, Any], endpoint: str, config: str, rows: str) -> dict[str, Any]:
    return smoke_test_or_roll_back(
        clients["sagemaker"], clients["runtime"], clients["s3"], endpoint, config, rows
    )


def test_a_failed_smoke_test_puts_production_back_on_the_previous_model(models, clients) -> None:
    endpoint, tag = f"ep-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    deploy(endpoint, f"v1-{tag}", models["good"])
    before = smoke(clients, endpoint, f"v1-{tag}", models["rows"])
    assert before["model"] == models["good"]

    deploy(endpoint, f"v2-{tag}", models["broken"])
    assert previous_config(clients["sagemaker"], f"v2-{tag}") == f"v1-{tag}"
    with pytest.raises(RolledBackError, match=f"smoke test of v2-{tag} failed .* rolled back to v1-{tag}"):
        smoke(clients, endpoint, f"v2-{tag}", models["rows"])

    described = clients["sagemaker"].describe_endpoint(EndpointName=endpoint)
    assert described["EndpointConfigName"] == f"v1-{tag}"
    after = smoke(clients, endpoint, f"v1-{tag}", models["rows"])  # the previous model answers again
    assert after["model"] == models["good"] and after["prediction"] == before["prediction"]
    # a retry of the failed smoke test does not pass on the model it rolled back to
    with pytest.raises(RolledBackError, match=f"serves v1-{tag} .*, not v2-{tag}"):
        smoke(clients, endpoint, f"v2-{tag}", models["rows"])


def test_a_broken_first_deployment_is_removed(models, clients) -> None:
    endpoint = f"ep-{uuid.uuid4().hex[:8]}"
    deploy(endpoint, f"first-{endpoint}", models["broken"])
    with pytest.raises(RolledBackError, match="deleted .* no previous config"):
        smoke(clients, endpoint, f"first-{endpoint}", models["rows"])
    with pytest.raises(clients["sagemaker"].exceptions.ClientError, match="Could not find endpoint"):
        clients["sagemaker"].describe_endpoint(EndpointName=endpoint)


def test_autoscaling_is_kept_across_a_model_change_and_released_before_an_instance_change(
    models, clients
) -> None:
    endpoint, tag = f"ep-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    autoscaling = clients["autoscaling"]
    deploy(endpoint, f"v1-{tag}", models["good"])
    live = apply_autoscaling(autoscaling, endpoint, "primary", ROLLOUT)
    assert (live["min"], live["max"], live["target"]) == (1, 3, ROLLOUT.target_invocations)
    assert apply_autoscaling(autoscaling, endpoint, "primary", ROLLOUT) == live  # a retry changes nothing

    def registered() -> list[dict]:
        return autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]

    deploy(endpoint, f"v2-{tag}", models["good"])  # another model on the same instance type: allowed
    assert [t["ResourceId"] for t in registered()].count(live["resource_id"]) == 1
    deploy(endpoint, f"v3-{tag}", models["good"], instance_type="ml.c5.xlarge")  # SageMaker would refuse
    assert live["resource_id"] not in [t["ResourceId"] for t in registered()]
    policies = autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=live["resource_id"]
    )
    assert policies["ScalingPolicies"] == []
