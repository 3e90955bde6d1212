"""Safe endpoint updates: the DeploymentConfig SageMaker receives, the live-config check, the rollback
decision and the autoscaling requests, validated against botocore's own request models."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator

from sagelake.ml.deployment import (
    PREVIOUS_CONFIG_TAG,
    RolledBackError,
    RolloutSettings,
    check_live,
    deployment_config,
    effective_traffic,
    parse_rollout_settings,
    scalable_target,
    scaling_policy,
    tag_previous,
    variants_to_deregister,
)
from tests.support.constants import REGION

ENDPOINT = "sagelake-churn"


def valid_for(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise unless ``params`` is a valid request of ``operation`` (botocore's client-side validation)."""
    model = boto3.client(service, region_name=REGION).meta.service_model.operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_defaults_shift_all_at_once_on_one_instance_and_roll_back_on_the_endpoint_alarms() -> None:
    settings = parse_rollout_settings({}, ENDPOINT)
    assert settings.alarms == (f"{ENDPOINT}-5xx", f"{ENDPOINT}-latency")
    config = deployment_config(settings)
    policy = config["BlueGreenUpdatePolicy"]
    # a canary may be at most half the fleet: one instance cannot have one
    assert settings.traffic == "CANARY" and policy["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert policy["TerminationWaitInSeconds"] == 600  # the old fleet stays while the alarms bake
    assert config["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": f"{ENDPOINT}-5xx"}, {"AlarmName": f"{ENDPOINT}-latency"}]
    }
    valid_for(
        "sagemaker",
        "UpdateEndpoint",
        {"EndpointName": ENDPOINT, "EndpointConfigName": "c", "DeploymentConfig": config},
    )


@pytest.mark.parametrize(
    ("traffic", "size_key", "steps"), [("CANARY", "CanarySize", 2), ("LINEAR", "LinearStepSize", 4)]
)
def test_two_instances_shift_by_canary_or_linear_steps(traffic: str, size_key: str, steps: int) -> None:
    env = {
        "SAGELAKE_DEPLOY_TRAFFIC": traffic.lower(),
        "SAGELAKE_DEPLOY_STEP_PERCENT": "25",
        "SAGELAKE_DEPLOY_WAIT_SECONDS": "120",
        "SAGELAKE_DEPLOY_BAKE_SECONDS": "300",
        "SAGELAKE_ENDPOINT_INSTANCES": "2",
        "SAGELAKE_ENDPOINT_MAX_INSTANCES": "4",
    }
    settings = parse_rollout_settings(env, ENDPOINT)
    config = deployment_config(settings)
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == traffic and routing[size_key] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert routing["WaitIntervalInSeconds"] == 120
    # the timeout covers every step and the baking period, twice over
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == 2 * (120 * steps + 300)
    valid_for(
        "sagemaker",
        "CreateEndpoint",
        {"EndpointName": ENDPOINT, "EndpointConfigName": "c", "DeploymentConfig": config},
    )


def test_no_alarms_when_told_so_and_the_timeout_stays_in_sagemakers_bounds() -> None:
    quick = RolloutSettings(traffic="ALL_AT_ONCE", wait_seconds=0, bake_seconds=0, alarms=())
    config = deployment_config(quick)
    assert "AutoRollbackConfiguration" not in config
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == 600
    slow = RolloutSettings(traffic="LINEAR", step_percent=1, wait_seconds=3600, instance_count=2)
    assert deployment_config(slow)["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == 28800
    assert parse_rollout_settings({}, ENDPOINT, rollback_alarms="none").alarms == ()
    named = parse_rollout_settings({}, ENDPOINT, rollback_alarms="a, b,")
    assert named.alarms == ("a", "b")
    assert effective_traffic(RolloutSettings(traffic="LINEAR", instance_count=3)) == "LINEAR"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAGELAKE_DEPLOY_TRAFFIC": "sideways"}, "SAGELAKE_DEPLOY_TRAFFIC='SIDEWAYS' is not one of"),
        (
            {"SAGELAKE_DEPLOY_STEP_PERCENT": "60"},
            r"SAGELAKE_DEPLOY_STEP_PERCENT='60' is not a whole number in \[1, 50\]",
        ),
        ({"SAGELAKE_DEPLOY_BAKE_SECONDS": "-1"}, "SAGELAKE_DEPLOY_BAKE_SECONDS='-1'"),
        ({"SAGELAKE_ENDPOINT_MIN_INSTANCES": "3"}, "SAGELAKE_ENDPOINT_MAX_INSTANCES=2 is below"),
        ({"SAGELAKE_ENDPOINT_INSTANCES": "5"}, r"outside the autoscaling bounds \[1, 2\]"),
        ({"SAGELAKE_ENDPOINT_TARGET_INVOCATIONS": "lots"}, "'lots' is not a positive number"),
        ({"SAGELAKE_ENDPOINT_TARGET_INVOCATIONS": "0"}, "'0' is not a positive number"),
    ],
)
def test_bad_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rollout_settings(env, ENDPOINT)


def endpoint(config: str, status: str = "InService", **extra: Any) -> dict[str, Any]:
    return {"EndpointName": ENDPOINT, "EndpointConfigName": config, "EndpointStatus": status, **extra}


def test_check_live_accepts_only_the_new_config_in_service() -> None:
    check_live(endpoint("new"), "new")
    with pytest.raises(
        RolledBackError, match=r"serves old \(InService\), not new: the update was rolled back"
    ):
        check_live(endpoint("old"), "new")
    with pytest.raises(RolledBackError, match=r"\(Failed\).*capacity error"):
        check_live(endpoint("new", "Failed", FailureReason="capacity error"), "new")


def test_a_new_config_names_the_one_it_replaces_once() -> None:
    config = {"EndpointConfigName": "new", "Tags": [{"Key": "team", "Value": "ml"}]}
    tag_previous(config, "old")
    tag_previous(config, "old")  # a retry builds the request again
    assert config["Tags"] == [{"Key": "team", "Value": "ml"}, {"Key": PREVIOUS_CONFIG_TAG, "Value": "old"}]
    first = {"EndpointConfigName": "new"}
    tag_previous(first, None)  # a first deployment replaces nothing
    tag_previous(first, "new")  # nor does a retry after the update went through
    assert "Tags" not in first


def variants(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"ProductionVariants": [{"VariantName": n, "InstanceType": t} for n, t in pairs]}


def test_only_variants_removed_or_moved_to_another_instance_type_are_deregistered() -> None:
    live = variants(("primary", "ml.m5.large"), ("challenger", "ml.m5.large"))
    assert variants_to_deregister(None, variants(("primary", "ml.m5.large"))) == []
    assert variants_to_deregister(live, live) == []
    assert variants_to_deregister(live, variants(("primary", "ml.c5.xlarge"))) == ["primary", "challenger"]
    assert variants_to_deregister(live, variants(("primary", "ml.m5.large"))) == ["challenger"]


def test_autoscaling_requests_track_invocations_per_instance() -> None:
    settings = RolloutSettings(min_instances=1, max_instances=4, target_invocations=250.0)
    target = scalable_target(ENDPOINT, "primary", settings)
    policy = scaling_policy(ENDPOINT, "primary", settings)
    assert target["ResourceId"] == policy["ResourceId"] == f"endpoint/{ENDPOINT}/variant/primary"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 250.0
    assert (
        tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    valid_for("application-autoscaling", "RegisterScalableTarget", target)
    valid_for("application-autoscaling", "PutScalingPolicy", policy)
