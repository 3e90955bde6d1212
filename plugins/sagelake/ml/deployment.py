"""How an approved model version reaches production safely, as plain functions of boto3 clients.

- :func:`deployment_config`: SageMaker's blue/green ``DeploymentConfig`` for the endpoint update (canary or
  linear traffic shifting, a baking period, automatic rollback on CloudWatch alarms);
- :func:`check_live`: after the update, which endpoint config is live; SageMaker's own rollback (an alarm
  fired while traffic shifted) fails the deployment;
- :func:`roll_back`: the endpoint back to the config it served before (a failed smoke test);
- :func:`scalable_target` / :func:`scaling_policy` / :func:`apply_autoscaling`: the serving variant's
  Application Auto Scaling target tracking on invocations per instance;
- :func:`variants_to_deregister`: which scaled variants an update would break (SageMaker refuses to update a
  variant registered for autoscaling to another instance type, or to remove it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRAFFIC_TYPES = ("CANARY", "LINEAR", "ALL_AT_ONCE")
# the tag on each new endpoint config naming the config it replaced: what a rollback returns to, on any retry
PREVIOUS_CONFIG_TAG = "sagelake:previous-endpoint-config"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


class RolledBackError(RuntimeError):
    """The endpoint does not serve the config the deployment asked for."""


@dataclass(frozen=True)
class RolloutSettings:
    """How an endpoint update shifts traffic and when it rolls back (``SAGELAKE_DEPLOY_*``)."""

    traffic: str = "CANARY"  # CANARY | LINEAR | ALL_AT_ONCE
    step_percent: int = 10  # canary size, or linear step, in % of the new fleet's capacity
    wait_seconds: int = 300  # between traffic steps (WaitIntervalInSeconds)
    bake_seconds: int = 600  # the old fleet is kept, and alarms watched, after the last step
    alarms: tuple[str, ...] = ()  # CloudWatch alarms whose firing rolls the update back
    instance_count: int = 1  # instances of the serving variant
    min_instances: int = 1  # autoscaling bounds and target
    max_instances: int = 2
    target_invocations: float = 100.0  # per instance per minute (SageMakerVariantInvocationsPerInstance)


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = (env.get(name) or "").strip() or str(default)
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name}={raw!r} is not a whole number in [{low}, {high}]")
    return int(raw)


def parse_rollout_settings(
    env: Mapping[str, str], endpoint_name: str, rollback_alarms: str | None = None
) -> RolloutSettings:
    """Read :class:`RolloutSettings` from ``env``; a bad value is a one-line ``ValueError``.

    ``rollback_alarms`` (``SAGELAKE_DEPLOY_ROLLBACK_ALARMS``, comma-separated) defaults to the two endpoint
    alarms ``include/infra/ml.cfn.json`` creates (``<endpoint>-5xx``, ``<endpoint>-latency``); ``none``: no
    alarms.
    """
    traffic = (env.get("SAGELAKE_DEPLOY_TRAFFIC") or "CANARY").strip().upper()
    if traffic not in TRAFFIC_TYPES:
        raise ValueError(f"SAGELAKE_DEPLOY_TRAFFIC={traffic!r} is not one of {', '.join(TRAFFIC_TYPES)}")
    alarms_raw = (rollback_alarms or "").strip()
    if not alarms_raw:
        alarms: tuple[str, ...] = (f"{endpoint_name}-5xx", f"{endpoint_name}-latency")
    elif alarms_raw.lower() == "none":
        alarms = ()
    else:
        alarms = tuple(a.strip() for a in alarms_raw.split(",") if a.strip())
    min_instances = _whole(env, "SAGELAKE_ENDPOINT_MIN_INSTANCES", 1, 1, 100)
    max_instances = _whole(env, "SAGELAKE_ENDPOINT_MAX_INSTANCES", 2, 1, 100)
    if max_instances < min_instances:
        raise ValueError(
            f"SAGELAKE_ENDPOINT_MAX_INSTANCES={max_instances} is below "
            f"SAGELAKE_ENDPOINT_MIN_INSTANCES={min_instances}"
        )
    instance_count = _whole(env, "SAGELAKE_ENDPOINT_INSTANCES", min_instances, 1, 100)
    if not min_instances <= instance_count <= max_instances:
        raise ValueError(
            f"SAGELAKE_ENDPOINT_INSTANCES={instance_count} is outside the autoscaling bounds "
            f"[{min_instances}, {max_instances}]"
        )
    target_raw = (env.get("SAGELAKE_ENDPOINT_TARGET_INVOCATIONS") or "100").strip()
    try:
        target = float(target_raw)
    except ValueError:
        target = -1.0
    if not target > 0:
        raise ValueError(f"SAGELAKE_ENDPOINT_TARGET_INVOCATIONS={target_raw!r} is not a positive number")
    return RolloutSettings(
        traffic=traffic,
        step_percent=_whole(env, "SAGELAKE_DEPLOY_STEP_PERCENT", 10, 1, 50),
        wait_seconds=_whole(env, "SAGELAKE_DEPLOY_WAIT_SECONDS", 300, 0, 3600),
        bake_seconds=_whole(env, "SAGELAKE_DEPLOY_BAKE_SECONDS", 600, 0, 3600),
        alarms=alarms,
        instance_count=instance_count,
        min_instances=min_instances,
        max_instances=max_instances,
        target_invocations=target,
    )


def effective_traffic(settings: RolloutSettings) -> str:
    """The traffic shifting SageMaker accepts for the variant's size: a canary or a linear step may be at
    most half the fleet, so a one-instance variant shifts all at once (still blue/green: the old fleet
    stays for the baking period, and the alarms still roll back)."""
    if settings.traffic != "ALL_AT_ONCE" and settings.instance_count < 2:
        return "ALL_AT_ONCE"
    return settings.traffic


def deployment_config(settings: RolloutSettings) -> dict[str, Any]:
    """``DeploymentConfig`` for ``CreateEndpoint`` / ``UpdateEndpoint``: blue/green with the settings'
    traffic shifting, baking period and rollback alarms."""
    traffic = effective_traffic(settings)
    routing: dict[str, Any] = {"Type": traffic, "WaitIntervalInSeconds": settings.wait_seconds}
    steps = 1
    if traffic == "CANARY":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": settings.step_percent}
        steps = 2
    elif traffic == "LINEAR":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": settings.step_percent}
        steps = -(-100 // settings.step_percent)
    shifting = settings.wait_seconds * steps + settings.bake_seconds
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": settings.bake_seconds,
            # SageMaker's bounds: 600 s to 8 h; it must cover every traffic step and the baking period
            "MaximumExecutionTimeoutInSeconds": min(max(600, 2 * shifting), 28800),
        }
    }
    if settings.alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in settings.alarms]}
    return config


def check_live(endpoint: Mapping[str, Any], expected_config: str) -> None:
    """Raise :class:`RolledBackError` unless ``endpoint`` (a ``DescribeEndpoint`` answer) is in service
    on ``expected_config``: SageMaker rolled the update back, or it failed."""
    status, live = endpoint.get("EndpointStatus"), endpoint.get("EndpointConfigName")
    if status == "InService" and live == expected_config:
        return
    reason = endpoint.get("FailureReason") or "an alarm fired or the new fleet failed"
    raise RolledBackError(
        f"endpoint {endpoint.get('EndpointName')} serves {live} ({status}), not {expected_config}: "
        f"the update was rolled back ({reason})"
    )


def live_config(sagemaker: Any, endpoint_name: str) -> str | None:
    """The endpoint config ``endpoint_name`` serves now; None when there is no such endpoint."""
    from botocore.exceptions import ClientError

    from sagelake.aws_errors import has_code

    try:
        return sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
    except ClientError as error:
        if has_code(error, "ValidationException") and "Could not find" in str(error):
            return None
        raise


def previous_config(sagemaker: Any, config_name: str) -> str | None:
    """The endpoint config ``config_name`` replaced (its :data:`PREVIOUS_CONFIG_TAG`); None: a first one."""
    arn = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["EndpointConfigArn"]
    tags = sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    return next((t["Value"] for t in tags if t["Key"] == PREVIOUS_CONFIG_TAG), None)


def tag_previous(endpoint_config: dict[str, Any], previous: str | None) -> None:
    """Name in a new ``CreateEndpointConfig`` request the config the endpoint serves now."""
    if previous and previous != endpoint_config["EndpointConfigName"]:
        tags = [t for t in endpoint_config.get("Tags", []) if t["Key"] != PREVIOUS_CONFIG_TAG]
        endpoint_config["Tags"] = [*tags, {"Key": PREVIOUS_CONFIG_TAG, "Value": previous}]


def roll_back(sagemaker: Any, endpoint_name: str, previous_config: str | None) -> str:
    """Put ``endpoint_name`` back on ``previous_config`` and wait until it serves it; with no previous
    config (a first deployment) delete the endpoint: nothing served before, nothing broken serves now.
    Returns what was done, for the log."""
    if previous_config is None:
        sagemaker.delete_endpoint(EndpointName=endpoint_name)
        return f"deleted {endpoint_name}: it had no previous config to return to"
    sagemaker.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=previous_config)
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=endpoint_name, WaiterConfig={"Delay": 15, "MaxAttempts": 240}
    )
    check_live(sagemaker.describe_endpoint(EndpointName=endpoint_name), previous_config)
    return f"{endpoint_name} rolled back to {previous_config}"


def resource_id(endpoint_name: str, variant_name: str) -> str:
    """Application Auto Scaling's name of an endpoint variant."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def scalable_target(endpoint_name: str, variant_name: str, settings: RolloutSettings) -> dict[str, Any]:
    """``RegisterScalableTarget`` arguments for the variant's instance count."""
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id(endpoint_name, variant_name),
        "ScalableDimension": SCALABLE_DIMENSION,
        "MinCapacity": settings.min_instances,
        "MaxCapacity": settings.max_instances,
    }


def scaling_policy(endpoint_name: str, variant_name: str, settings: RolloutSettings) -> dict[str, Any]:
    """``PutScalingPolicy`` arguments: target tracking on invocations per instance."""
    return {
        "PolicyName": f"{endpoint_name}-{variant_name}-invocations",
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id(endpoint_name, variant_name),
        "ScalableDimension": SCALABLE_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": settings.target_invocations,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
        },
    }


def apply_autoscaling(
    autoscaling: Any, endpoint_name: str, variant_name: str, settings: RolloutSettings
) -> dict[str, Any]:
    """Register the variant and put its policy (both upserts: a retry changes nothing); returns what
    Application Auto Scaling holds afterwards."""
    target = scalable_target(endpoint_name, variant_name, settings)
    policy = scaling_policy(endpoint_name, variant_name, settings)
    autoscaling.register_scalable_target(**target)
    autoscaling.put_scaling_policy(**policy)
    keys = {k: target[k] for k in ("ServiceNamespace", "ScalableDimension")}
    registered = autoscaling.describe_scalable_targets(ResourceIds=[target["ResourceId"]], **keys)
    policies = autoscaling.describe_scaling_policies(
        PolicyNames=[policy["PolicyName"]], ResourceId=target["ResourceId"], **keys
    )
    found = registered["ScalableTargets"][0]
    live_policy = policies["ScalingPolicies"][0]
    return {
        "resource_id": found["ResourceId"],
        "min": found["MinCapacity"],
        "max": found["MaxCapacity"],
        "policy": live_policy["PolicyName"],
        "target": live_policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
    }


def variants_to_deregister(live: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Variants of the ``live`` endpoint config that the ``new`` one removes or moves to another instance
    type: SageMaker refuses such an update while they are registered for autoscaling."""
    if not live:
        return []
    new_types = {v["VariantName"]: v.get("InstanceType") for v in new.get("ProductionVariants", [])}
    return [
        v["VariantName"]
        for v in live.get("ProductionVariants", [])
        if v["VariantName"] not in new_types or new_types[v["VariantName"]] != v.get("InstanceType")
    ]


def deregister_autoscaling(autoscaling: Any, endpoint_name: str, variant_name: str) -> bool:
    """Remove the variant's scaling policies and registration; False when it had none."""
    keys = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id(endpoint_name, variant_name),
        "ScalableDimension": SCALABLE_DIMENSION,
    }
    registered = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[keys["ResourceId"]], ScalableDimension=SCALABLE_DIMENSION
    )["ScalableTargets"]
    if not registered:
        return False
    for policy in autoscaling.describe_scaling_policies(**keys)["ScalingPolicies"]:
        autoscaling.delete_scaling_policy(PolicyName=policy["PolicyName"], **keys)
    autoscaling.deregister_scalable_target(**keys)
    return True


def smoke_test_or_roll_back(
    sagemaker: Any, runtime: Any, s3: Any, endpoint_name: str, deployed_config: str, rows_uri: str
) -> dict[str, Any]:
    """Invoke ``endpoint_name`` with held-out rows (:func:`sagelake.ml.lifecycle.invoke_with_rows`); if the
    answer is missing or malformed, put the endpoint back on the config ``deployed_config`` replaced and
    raise :class:`RolledBackError`. An endpoint no longer on ``deployed_config`` is left alone: something
    else changed production since, and the smoke test fails without touching it."""
    from sagelake.ml.lifecycle import invoke_with_rows

    check_live(sagemaker.describe_endpoint(EndpointName=endpoint_name), deployed_config)
    try:
        return invoke_with_rows(sagemaker, runtime, s3, endpoint_name, rows_uri)
    except Exception as error:  # any failed answer: production must not keep serving it
        done = roll_back(sagemaker, endpoint_name, previous_config(sagemaker, deployed_config))
        raise RolledBackError(f"smoke test of {deployed_config} failed ({error}); {done}") from error
