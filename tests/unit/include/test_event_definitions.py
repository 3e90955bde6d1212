"""EventBridge / SQS definitions for event-driven runs: samples, rule pattern, CloudFormation template."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from tests.support.constants import REGION, ROOT

EVENTS = ROOT / "include" / "events"
TEMPLATE_PATH = EVENTS / "eventbridge.cfn.json"
S3_SAMPLE = EVENTS / "samples" / "s3-object-created.json"
TRAINING_SAMPLE = EVENTS / "samples" / "training-requested.json"
ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
WEBHOOK_PARAMS = {"WebhookBaseUrl": "https://airflow.example.com", "WebhookApiKey": "s3cret"}
_NO_VALUE = object()


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def pattern_file() -> dict[str, Any]:
    return load(EVENTS / "s3-raw-rule-pattern.json")


def template() -> dict[str, Any]:
    return load(TEMPLATE_PATH)


def parameters(tpl: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Parameter values as CloudFormation would see them: defaults, then ``overrides``."""
    values = {name: spec["Default"] for name, spec in tpl["Parameters"].items() if "Default" in spec}
    values.update(overrides)
    return values


def evaluate(condition: Any, params: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """Evaluate a condition/rule expression (Ref, Fn::Equals/Not/Or/And, Condition) to a value."""
    if not isinstance(condition, dict):
        return condition
    ((fn, arg),) = condition.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Condition":
        return evaluate(conditions[arg], params, conditions)
    values = [evaluate(item, params, conditions) for item in arg]
    if fn == "Fn::Equals":
        return str(values[0]) == str(values[1])
    if fn == "Fn::Not":
        return not values[0]
    if fn == "Fn::Or":
        return any(values)
    if fn == "Fn::And":
        return all(values)
    raise AssertionError(f"unsupported condition function {fn}")


def render(node: Any, params: dict[str, Any], active: dict[str, bool]) -> Any:
    """Substitute Ref/Fn::Sub of parameters and resolve Fn::If, dropping AWS::NoValue."""
    if isinstance(node, list):
        items = [render(item, params, active) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Ref" and arg == "AWS::NoValue":
            return _NO_VALUE
        if fn == "Ref" and arg in params:
            return params[arg]
        if fn == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}!.]+)\}", lambda m: str(params[m.group(1)]), arg)
        if fn == "Fn::If":
            name, when_true, when_false = arg
            return render(when_true if active[name] else when_false, params, active)
    rendered = {key: render(value, params, active) for key, value in node.items()}
    return {key: value for key, value in rendered.items() if value is not _NO_VALUE}


def deploy_view(mode: str, **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resources and outputs CloudFormation would create for ``DeliveryMode=mode``."""
    tpl = template()
    params = parameters(tpl, DeliveryMode=mode, **overrides)
    active = {name: evaluate(cond, params, tpl["Conditions"]) for name, cond in tpl["Conditions"].items()}
    resources = {
        name: render(res, params, active)
        for name, res in tpl["Resources"].items()
        if active.get(res.get("Condition"), True)
    }
    outputs = {name: out for name, out in tpl["Outputs"].items() if active.get(out.get("Condition"), True)}
    return resources, outputs


def failed_assertions(**overrides: Any) -> list[str]:
    """AssertDescriptions of the template's Rules that fail for these parameter values."""
    tpl = template()
    params = parameters(tpl, **overrides)
    failed = []
    for rule in tpl["Rules"].values():
        if not evaluate(rule.get("RuleCondition", True), params, tpl["Conditions"]):
            continue
        failed += [
            a["AssertDescription"]
            for a in rule["Assertions"]
            if not evaluate(a["Assert"], params, tpl["Conditions"])
        ]
    return failed


# --- samples -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [S3_SAMPLE, TRAINING_SAMPLE], ids=lambda p: p.name)
def test_samples_are_eventbridge_envelopes(path: Path) -> None:
    event = load(path)
    assert set(event) == ENVELOPE
    assert event["version"] == "0"
    assert str(uuid.UUID(event["id"])) == event["id"]
    assert re.fullmatch(r"\d{12}", event["account"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    datetime.fromisoformat(event["time"])
    assert event["region"] == REGION
    assert isinstance(event["resources"], list)
    assert isinstance(event["detail"], dict) and event["detail"]


def test_s3_sample_has_the_documented_object_created_detail() -> None:
    event = load(S3_SAMPLE)
    detail = event["detail"]
    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Created")
    assert set(detail) == {
        "version",
        "bucket",
        "object",
        "request-id",
        "requester",
        "source-ip-address",
        "reason",
    }
    assert set(detail["object"]) == {"key", "size", "etag", "version-id", "sequencer"}
    assert detail["reason"] == "PutObject"
    assert event["resources"] == [f"arn:aws:s3:::{detail['bucket']['name']}"]
    assert isinstance(detail["object"]["size"], int)
    pattern = pattern_file()
    assert [detail["bucket"]["name"]] == pattern["detail"]["bucket"]["name"]
    assert detail["object"]["key"].startswith(pattern["detail"]["object"]["key"][0]["prefix"])


def test_training_requested_sample_is_a_custom_event_with_a_partition() -> None:
    event = load(TRAINING_SAMPLE)
    assert (event["source"], event["detail-type"]) == ("sagelake", "Training Requested")
    assert event["detail"] == {"dt": "2026-11-26"}


# --- rule pattern and its behaviour on EventBridge -------------------------------------------------------


def test_template_pattern_with_default_parameters_equals_the_pattern_file() -> None:
    resources, _ = deploy_view("sqs")
    assert resources["RawObjectCreatedRule"]["Properties"]["EventPattern"] == pattern_file()


def test_template_pattern_is_built_from_the_parameters() -> None:
    resources, _ = deploy_view("sqs", LakeBucketName="other-lake", RawPrefix="landing/")
    detail = resources["RawObjectCreatedRule"]["Properties"]["EventPattern"]["detail"]
    assert detail == {"bucket": {"name": ["other-lake"]}, "object": {"key": [{"prefix": "landing/"}]}}


# --- CloudFormation template ----------------------------------------------------------------------------


def lint_messages(**kwargs: Any) -> list[str]:
    return [str(match) for match in lint_file(TEMPLATE_PATH, ManualArgs(**kwargs))]


def test_template_passes_cfn_lint_without_parameters() -> None:
    # W1030 only: with no DeliveryMode given, cfn-lint checks the Connection with WebhookApiKey's empty
    # default, which is only used when DeliveryMode=sqs and the Connection is not created; the template's
    # Rules reject an empty key otherwise (test_webhook_modes_need_a_url_and_a_key). The per-mode lint
    # below runs with no rule ignored.
    assert lint_messages(ignore_checks=["W1030"]) == []


@pytest.mark.parametrize(
    "params",
    [
        {"DeliveryMode": "sqs"},
        {"DeliveryMode": "webhook", **WEBHOOK_PARAMS},
        {"DeliveryMode": "both", **WEBHOOK_PARAMS},
    ],
    ids=lambda p: p["DeliveryMode"],
)
def test_template_passes_cfn_lint_in_every_delivery_mode(params: dict[str, str]) -> None:
    assert lint_messages(parameters=[params]) == []


def test_cfn_lint_flags_a_webhook_without_a_key() -> None:
    messages = lint_messages(parameters=[{"DeliveryMode": "webhook", "WebhookBaseUrl": "https://a.example"}])
    assert messages and all("WebhookApiKey" in m for m in messages)


def test_delivery_mode_parameter_and_conditions() -> None:
    tpl = template()
    mode = tpl["Parameters"]["DeliveryMode"]
    assert sorted(mode["AllowedValues"]) == ["both", "sqs", "webhook"] and mode["Default"] == "sqs"
    active = {}
    for value in mode["AllowedValues"]:
        params = parameters(tpl, DeliveryMode=value)
        active[value] = {
            name: evaluate(c, params, tpl["Conditions"]) for name, c in tpl["Conditions"].items()
        }
    assert active == {
        "webhook": {"UseWebhook": True, "UseSqs": False},
        "sqs": {"UseWebhook": False, "UseSqs": True},
        "both": {"UseWebhook": True, "UseSqs": True},
    }


@pytest.mark.parametrize(
    ("mode", "target_arns"),
    [
        ("sqs", [["EventsQueue", "Arn"]]),
        ("webhook", [["WebhookApiDestination", "Arn"]]),
        ("both", [["EventsQueue", "Arn"], ["WebhookApiDestination", "Arn"]]),
    ],
)
def test_rule_targets_follow_the_delivery_mode(mode: str, target_arns: list[list[str]]) -> None:
    resources, outputs = deploy_view(mode, **WEBHOOK_PARAMS)
    rule = resources["RawObjectCreatedRule"]["Properties"]
    assert rule["EventBusName"] == "default"
    assert [t["Arn"]["Fn::GetAtt"] for t in rule["Targets"]] == target_arns
    for target in rule["Targets"]:
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    referenced = {arn[0] for arn in target_arns}
    assert referenced <= set(resources)
    assert ("QueueUrl" in outputs, "ApiDestinationArn" in outputs) == (
        "EventsQueue" in referenced,
        "WebhookApiDestination" in referenced,
    )
    assert {"RuleArn", "DeadLetterQueueUrl"} <= set(outputs)


def test_events_queue_is_encrypted_redriven_and_outlasts_the_trigger() -> None:
    resources, outputs = deploy_view("sqs")
    queue = resources["EventsQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] >= 30
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 1
    assert resources["DeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    assert outputs["QueueUrl"]["Value"] == {"Ref": "EventsQueue"}
    assert outputs["QueueArn"]["Value"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}


@pytest.mark.parametrize(
    ("policy", "queue"), [("EventsQueuePolicy", "EventsQueue"), ("DeadLetterQueuePolicy", "DeadLetterQueue")]
)
def test_queue_policies_admit_only_the_rule_over_tls(policy: str, queue: str) -> None:
    resources, _ = deploy_view("both", **WEBHOOK_PARAMS)
    props = resources[policy]["Properties"]
    assert props["Queues"] == [{"Ref": queue}]
    statements = props["PolicyDocument"]["Statement"]
    rule_arn = {"Fn::GetAtt": ["RawObjectCreatedRule", "Arn"]}
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": allows[0]["Sid"],
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }
    ]
    tls = [s for s in statements if s["Effect"] == "Deny" and "aws:SecureTransport" in str(s["Condition"])]
    assert len(tls) == 1
    assert tls[0]["Principal"] == "*" and tls[0]["Action"] == "sqs:*"
    assert tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_events_queue_denies_senders_other_than_the_rule() -> None:
    resources, _ = deploy_view("sqs")
    statements = resources["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    denies = [s for s in statements if s["Effect"] == "Deny" and s["Action"] == "sqs:SendMessage"]
    assert [d["Condition"] for d in denies] == [
        {"ArnNotEquals": {"aws:SourceArn": {"Fn::GetAtt": ["RawObjectCreatedRule", "Arn"]}}}
    ]


def test_webhook_resources_post_to_the_airflow_webhook_with_an_api_key() -> None:
    tpl = template()
    resources, outputs = deploy_view("webhook", **WEBHOOK_PARAMS)
    destination = resources["WebhookApiDestination"]["Properties"]
    assert destination["InvocationEndpoint"] == "https://airflow.example.com/webhooks/eventbridge"
    assert destination["HttpMethod"] == "POST"
    assert (
        destination["InvocationRateLimitPerSecond"]
        == tpl["Parameters"]["InvocationRateLimitPerSecond"]["Default"]
    )
    assert destination["ConnectionArn"] == {"Fn::GetAtt": ["WebhookConnection", "Arn"]}
    connection = resources["WebhookConnection"]["Properties"]
    assert connection["AuthorizationType"] == "API_KEY"
    assert connection["AuthParameters"]["ApiKeyAuthParameters"] == {
        "ApiKeyName": "x-api-key",
        "ApiKeyValue": "s3cret",
    }
    assert tpl["Parameters"]["ApiKeyHeaderName"]["Default"] == "x-api-key"
    assert tpl["Parameters"]["WebhookApiKey"]["NoEcho"] is True
    assert outputs["ApiDestinationArn"]["Value"] == {"Fn::GetAtt": ["WebhookApiDestination", "Arn"]}
    assert "EventsQueue" not in resources


def test_webhook_role_may_only_invoke_the_destination() -> None:
    resources, _ = deploy_view("webhook", **WEBHOOK_PARAMS)
    role = resources["WebhookInvokeRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": "events:InvokeApiDestination",
            "Resource": {"Fn::GetAtt": ["WebhookApiDestination", "Arn"]},
        }
    ]
    assert "ManagedPolicyArns" not in role
    (target,) = resources["RawObjectCreatedRule"]["Properties"]["Targets"]
    assert target["RoleArn"] == {"Fn::GetAtt": ["WebhookInvokeRole", "Arn"]}


def test_webhook_modes_need_a_url_and_a_key() -> None:
    assert failed_assertions() == []
    assert failed_assertions(DeliveryMode="both", **WEBHOOK_PARAMS) == []
    missing = failed_assertions(DeliveryMode="webhook")
    assert len(missing) == 2
    assert "WebhookBaseUrl" in missing[0] and "WebhookApiKey" in missing[1]
    assert all("\n" not in message for message in missing)
    assert failed_assertions(DeliveryMode="both", WebhookApiKey="k") == [missing[0]]


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("", True),
        ("https://airflow.example.com", True),
        ("https://example.com/airflow", True),
        ("https://airflow.example.com/", False),
        ("http://airflow.example.com", False),
        ("https://airflow.example.com/webhooks/", False),
    ],
)
def test_webhook_base_url_pattern(url: str, accepted: bool) -> None:
    pattern = template()["Parameters"]["WebhookBaseUrl"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, url)) is accepted


def test_description_names_the_bucket_prerequisite() -> None:
    assert "EventBridgeConfiguration" in template()["Description"]
