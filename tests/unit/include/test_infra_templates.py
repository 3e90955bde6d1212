"""CloudFormation templates of the pipeline's AWS resources (include/infra/): lint, least privilege, no drift
from the code that configures the same resources (lake set-up, Glue job and crawler, settings)."""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from sagelake.config import settings
from sagelake.lake.discovery import crawler_config
from sagelake.lake.layout import Lake
from sagelake.lake.setup import (
    CurrentLake,
    LakePolicy,
    desired_state,
    lifecycle_rules,
    plan,
    same_rules,
    top_prefix,
)
from sagelake.ml.aws_requests import endpoint_request, glue_job_kwargs
from sagelake.ml.batch import batch_prefix
from sagelake.ml.drift_store import baseline_uri
from sagelake.ml.evaluation import report_prefix
from sagelake.ml.spot import checkpoint_uri
from sagelake.monitoring.metrics import NAMESPACE
from tests.support.constants import ACCOUNT_ID, GLUE_SCRIPT, REGION, ROOT

INFRA = ROOT / "include" / "infra"
TEMPLATES = sorted(INFRA.glob("*.cfn.json"))
EVENTS_TEMPLATE = ROOT / "include" / "events" / "eventbridge.cfn.json"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID}
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sagelake-%s"
DT = "2026-11-26"
_NO_VALUE = object()

# Actions IAM grants only on "Resource": "*" (no resource-level permissions), and why each role needs them.
WILDCARD_ACTIONS = {
    "ecr:GetAuthorizationToken": "the registry login before pulling the SageMaker framework images",
    "cloudwatch:PutMetricData": "training and endpoint metrics; limited by a cloudwatch:namespace condition",
}
# Parameter sets each template is linted with (besides its defaults); every mode of every Condition.
LINT_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "cicd.cfn.json": [
        {"GitHubRepository": "o/r", "MwaaBucketName": "mwaa-src", "MwaaEnvironmentName": "e"},
        {
            "GitHubRepository": "o/r",
            "MwaaBucketName": "m-src",
            "MwaaEnvironmentName": "e",
            "CreateOidcProvider": "false",
        },
    ],
    "lake.cfn.json": [
        {"Encryption": "SSE-KMS"},
        {"Encryption": "SSE-KMS", "KmsKeyArn": KEY_ARN},
        {"RawStorageClass": "GLACIER_IR", "RawTransitionDays": 1, "RequireTls": "false"},
    ],
    "roles.cfn.json": [{"LakeKmsKeyArn": KEY_ARN, "Warehouse": "disabled"}],
    "glue.cfn.json": [{"GlueRoleArn": ROLE_ARN % "glue"}],
    "ml.cfn.json": [{"NotificationEmail": "ops@example.com"}],
    "warehouse.cfn.json": [
        {"SpectrumRoleArn": ROLE_ARN % "spectrum"},
        {
            "SpectrumRoleArn": ROLE_ARN % "spectrum",
            "KmsKeyArn": KEY_ARN,
            "SubnetIds": ["subnet-0a", "subnet-0b"],
            "SecurityGroupIds": ["sg-0a"],
        },
    ],
}
# Settings that name an AWS resource but no stack output feeds, and why.
NOT_FROM_OUTPUTS = {
    "SAGELAKE_REDSHIFT_SECRET_ARN": "left empty: the Data API then uses temporary IAM credentials",
    "SAGELAKE_SPECTRUM_SCHEMA": "a schema warehouse_load creates in Redshift, not a stack resource",
    "SAGELAKE_WAREHOUSE_TABLE": "a table warehouse_load creates in Redshift, not a stack resource",
}
# Settings an output of the existing events stack feeds (include/events/eventbridge.cfn.json).
FROM_EVENTS_STACK = {"SAGELAKE_EVENTS_QUEUE_URL": "QueueUrl"}
# settings.py functions that name the deployment's AWS resources.
RESOURCE_SETTINGS = (
    "default_params",
    "deployment_settings",
    "rollout_settings",
    "warehouse_settings",
    "crawler_name",
    "databrew_role",
    "events_queue_url",
    "alerts_topic_arn",
)


# --- rendering: what CloudFormation would create for given parameters --------------------------------


def load(name: str) -> dict[str, Any]:
    return json.loads((INFRA / name).read_text())


def parameters(tpl: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    values = {name: spec["Default"] for name, spec in tpl["Parameters"].items() if "Default" in spec}
    values.update(overrides)
    return values


def evaluate(node: Any, params: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """Evaluate a condition or rule expression to a value."""
    if not isinstance(node, dict):
        return node
    ((fn, arg),) = node.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Condition":
        return evaluate(conditions[arg], params, conditions)
    if fn == "Fn::Join":
        return arg[0].join(str(v) for v in evaluate(arg[1], params, conditions))
    values = [evaluate(item, params, conditions) for item in arg]
    if fn == "Fn::Equals":
        return str(values[0]) == str(values[1])
    if fn == "Fn::Contains":
        return str(values[1]) in [str(v) for v in values[0]]
    if fn == "Fn::Not":
        return not values[0]
    if fn == "Fn::Or":
        return any(values)
    if fn == "Fn::And":
        return all(values)
    raise AssertionError(f"unsupported condition function {fn}")


class Stack:
    """A template rendered for parameter values: resources and outputs as CloudFormation would create them.

    ``symbols`` holds what a deployed stack would know: parameters, pseudo parameters and ``Ref``/``GetAtt``
    values of its own resources (``"Bucket"``, ``"Key.Arn"``); unknown ones stay as written.
    """

    def __init__(self, name: str, symbols: dict[str, Any] | None = None, **overrides: Any) -> None:
        self.template = load(name)
        self.params = parameters(self.template, **overrides)
        conditions = self.template.get("Conditions", {})
        self.active = {c: evaluate(e, self.params, conditions) for c, e in conditions.items()}
        self.symbols = {**PSEUDO, **self.params, **(symbols or {})}
        self.resources = {
            name: self.render(resource)
            for name, resource in self.template["Resources"].items()
            if self.active.get(resource.get("Condition"), True)
        }
        self.outputs = {
            name: self.render(output)
            for name, output in self.template.get("Outputs", {}).items()
            if self.active.get(output.get("Condition"), True)
        }

    def props(self, resource: str) -> dict[str, Any]:
        return self.resources[resource]["Properties"]

    def _sub(self, text: str) -> str:
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self.symbols.get(m.group(1), m.group(0))), text)

    def render(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.render(i) for i in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.symbols.get(arg, node)
            if fn == "Fn::GetAtt":
                return self.symbols.get(".".join(arg), node)
            if fn == "Fn::Sub":
                return self._sub(arg)
            if fn == "Fn::If":
                name, when_true, when_false = arg
                return self.render(when_true if self.active[name] else when_false)
            if fn == "Fn::Split":
                return self.render(arg[1]).split(arg[0])
            if fn == "Fn::Select":
                return self.render(arg[1])[arg[0]]
        rendered = {key: self.render(value) for key, value in node.items()}
        return {key: value for key, value in rendered.items() if value is not _NO_VALUE}


def failed_assertions(name: str, **overrides: Any) -> list[str]:
    tpl = load(name)
    params = parameters(tpl, **overrides)
    conditions = tpl.get("Conditions", {})
    return [
        assertion["AssertDescription"]
        for rule in tpl.get("Rules", {}).values()
        if evaluate(rule.get("RuleCondition", True), params, conditions)
        for assertion in rule["Assertions"]
        if not evaluate(assertion["Assert"], params, conditions)
    ]


def statements(stack: Stack, role: str) -> list[dict[str, Any]]:
    props = stack.props(role)
    return [s for policy in props["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- lint --------------------------------------------------------------------------------------------


def test_the_infra_folder_holds_the_expected_templates() -> None:
    assert [p.name for p in TEMPLATES] == sorted(LINT_PARAMETERS)


@pytest.mark.parametrize(
    ("name", "params"),
    [(name, None) for name in sorted(LINT_PARAMETERS)]
    + [(name, p) for name, sets in sorted(LINT_PARAMETERS.items()) for p in sets],
    ids=lambda v: v if isinstance(v, str) else ("defaults" if v is None else ",".join(v)),
)
def test_templates_pass_cfn_lint(name: str, params: dict[str, Any] | None) -> None:
    args = ManualArgs(parameters=[params]) if params else ManualArgs()
    assert [str(m) for m in lint_file(INFRA / name, args)] == []


def checkov_skips(tpl: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(resource, check id, comment) of every checkov suppression in the template."""
    return [
        (name, skip["id"], skip["comment"])
        for name, resource in tpl["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_every_checkov_suppression_states_its_reason() -> None:
    skips = [skip for path in TEMPLATES for skip in checkov_skips(json.loads(path.read_text()))]
    assert skips
    for resource, check_id, comment in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", check_id), resource
        assert len(comment.split()) >= 10, f"{resource} {check_id}: the reason is too short to justify"


# --- lake: the same state sagelake.lake.setup applies ----------------------------------------------


def lake_stack(**overrides: Any) -> Stack:
    bucket = overrides.get("LakeBucketName", "sagelake-lake")
    symbols = {"LakeBucket": bucket, "LakeKey.Arn": KEY_ARN.replace("1234abcd", "0000aaaa")}
    return Stack("lake.cfn.json", symbols, **overrides)


def api_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of S3's API (``GetBucketLifecycleConfiguration``)."""
    api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"]}
    api["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "Transitions" in rule:
        api["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
            for t in rule["Transitions"]
        ]
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if rule.get("ExpiredObjectDeleteMarker"):
        api["Expiration"] = {"ExpiredObjectDeleteMarker": True}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    assert set(rule) <= {
        "Id", "Status", "Prefix", "Transitions", "NoncurrentVersionExpiration", "ExpirationInDays",
        "ExpiredObjectDeleteMarker", "AbortIncompleteMultipartUpload",
    }, f"api_rule does not translate {sorted(rule)}"  # fmt: skip
    return api


def deployed_lake(stack: Stack) -> CurrentLake:
    """What S3 and Athena would report after the stack is deployed."""
    bucket = stack.props("LakeBucket")
    (sse,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    encryption_rule = {"ApplyServerSideEncryptionByDefault": sse["ServerSideEncryptionByDefault"]}
    if "BucketKeyEnabled" in sse:
        encryption_rule["BucketKeyEnabled"] = sse["BucketKeyEnabled"]
    policy = stack.resources.get("LakeBucketPolicy")
    workgroup = stack.props("AthenaWorkgroup")
    return CurrentLake(
        versioning=bucket["VersioningConfiguration"]["Status"],
        lifecycle_rules=[api_rule(r) for r in bucket["LifecycleConfiguration"]["Rules"]],
        encryption={"Rules": [encryption_rule]},
        public_access_block=bucket["PublicAccessBlockConfiguration"],
        policy=policy["Properties"]["PolicyDocument"] if policy else None,
        workgroup={"Configuration": workgroup["WorkGroupConfiguration"], "State": workgroup["State"]},
    )


@pytest.mark.parametrize(
    ("overrides", "policy"),
    [
        ({}, LakePolicy()),
        ({"Encryption": "SSE-KMS", "KmsKeyArn": KEY_ARN}, LakePolicy(kms_key_id=KEY_ARN)),
        (
            {
                "LakeBucketName": "other-lake",
                "AthenaWorkgroupName": "other",
                "RawStorageClass": "GLACIER_IR",
                "RawTransitionDays": 3,
                "NoncurrentExpiryDays": 2,
                "QuarantineExpiryDays": 4,
                "AthenaResultsExpiryDays": 5,
                "ScratchExpiryDays": 6,
                "AbortMultipartDays": 1,
                "RequireTls": "false",
                "BytesScannedCutoffPerQuery": 10485760,
            },
            LakePolicy(
                raw_storage_class="GLACIER_IR",
                raw_transition_days=3,
                noncurrent_expiry_days=2,
                quarantine_expiry_days=4,
                athena_results_expiry_days=5,
                scratch_expiry_days=6,
                abort_multipart_days=1,
                require_tls=False,
                bytes_scanned_cutoff=10485760,
            ),
        ),
    ],
    ids=["defaults", "sse-kms", "every-parameter"],
)
def test_lake_setup_has_nothing_to_change_on_a_deployed_lake(
    overrides: dict[str, Any], policy: LakePolicy
) -> None:
    stack = lake_stack(**overrides)
    desired = desired_state(stack.params["LakeBucketName"], stack.params["AthenaWorkgroupName"], policy)
    assert plan(desired, deployed_lake(stack)) == []


def test_lake_setup_would_correct_a_lake_deployed_with_other_values() -> None:
    stack = lake_stack(RawTransitionDays=60, RequireTls="false")
    desired = desired_state("sagelake-lake", "sagelake", LakePolicy())
    changes = plan(desired, deployed_lake(stack))
    assert sorted(c.setting for c in changes) == ["bucket policy", "lifecycle rules"]


def test_lifecycle_rules_equal_the_lake_setup_rules_for_the_default_policy() -> None:
    stack = lake_stack()
    rules = [api_rule(r) for r in stack.props("LakeBucket")["LifecycleConfiguration"]["Rules"]]
    expected = lifecycle_rules(Lake("sagelake-lake"), LakePolicy())
    assert same_rules(rules, expected)
    assert [r["ID"] for r in rules] == [r["ID"] for r in expected]


def test_lake_defaults_are_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("SAGELAKE_")]:
        monkeypatch.delenv(name)
    stack, params = lake_stack(), settings.default_params()
    assert (stack.params["LakeBucketName"], stack.params["GlueDatabaseName"]) == (
        params["bucket"],
        params["glue_database"],
    )
    assert stack.params["AthenaWorkgroupName"] == params["athena_workgroup"]
    policy = LakePolicy.from_settings()
    desired = desired_state(str(params["bucket"]), str(params["athena_workgroup"]), policy)
    assert plan(desired, deployed_lake(stack)) == []  # a default deploy is what default settings apply


@pytest.mark.parametrize(
    ("storage_class", "days", "refused"),
    [("STANDARD_IA", 29, True), ("STANDARD_IA", 30, False), ("GLACIER_IR", 1, False)],
)
def test_raw_transition_days_are_refused_where_the_settings_refuse_them(
    monkeypatch: pytest.MonkeyPatch, storage_class: str, days: int, refused: bool
) -> None:
    failed = failed_assertions("lake.cfn.json", RawStorageClass=storage_class, RawTransitionDays=days)
    assert bool(failed) is refused
    monkeypatch.setenv("SAGELAKE_LAKE_RAW_STORAGE_CLASS", storage_class)
    monkeypatch.setenv("SAGELAKE_LAKE_RAW_TRANSITION_DAYS", str(days))
    if refused:
        with pytest.raises(ValueError, match="below 30"):
            settings.lake_setup_settings()
    else:
        settings.lake_setup_settings()


@pytest.mark.parametrize(
    ("overrides", "creates_key", "key"),
    [
        ({}, False, None),
        ({"Encryption": "SSE-KMS"}, True, "generated"),
        ({"Encryption": "SSE-KMS", "KmsKeyArn": KEY_ARN}, False, KEY_ARN),
        ({"KmsKeyArn": KEY_ARN}, False, None),  # SSE-S3 ignores the key
    ],
)
def test_kms_key_is_created_only_for_sse_kms_without_a_given_key(
    overrides: dict[str, Any], creates_key: bool, key: str | None
) -> None:
    stack = lake_stack(**overrides)
    assert ("LakeKey" in stack.resources, "LakeKeyAlias" in stack.resources) == (creates_key, creates_key)
    expected = stack.symbols["LakeKey.Arn"] if key == "generated" else key
    assert stack.outputs.get("SagelakeLakeKmsKeyId", {}).get("Value") == expected
    if creates_key:
        assert stack.props("LakeKey")["EnableKeyRotation"] is True
        assert stack.resources["LakeKey"]["DeletionPolicy"] == "Retain"


def test_lake_bucket_is_retained_owner_enforced_and_feeds_the_events_stack() -> None:
    stack = lake_stack()
    bucket = stack.resources["LakeBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = bucket["Properties"]
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    events = json.loads(EVENTS_TEMPLATE.read_text())
    assert events["Parameters"]["LakeBucketName"]["Default"] == stack.params["LakeBucketName"]
    assert stack.props("GlueDatabase")["DatabaseInput"]["Name"] == stack.params["GlueDatabaseName"]


# --- roles: least privilege ----------------------------------------------------------------------------

LAKE = Lake("b")
EXPECTED_PREFIXES = {  # role -> (read, read-write), derived from where the code puts things
    "GlueRole": (
        {top_prefix(LAKE.raw_customers(DT)), top_prefix(LAKE.raw_events(DT)), "artifacts/"},
        {
            top_prefix(LAKE.processed_events(DT)),
            top_prefix(LAKE.curated_features(DT)),
            top_prefix(LAKE.quarantine(DT)),
            top_prefix(LAKE.etl_metrics(DT)),
        },
    ),
    "SageMakerRole": (
        {
            top_prefix(LAKE.training_data(DT, "r")),
            top_prefix(LAKE.curated_features(DT)),
            top_prefix(LAKE.code("x")),
        },
        {
            top_prefix(LAKE.model_output()),
            top_prefix(checkpoint_uri("b", "job")),
            top_prefix(report_prefix("b", DT, "job")),
            top_prefix(baseline_uri("b", "base")),
            top_prefix(settings.drift_settings()["capture_uri"] or "s3://b/monitoring/capture/"),
            top_prefix(batch_prefix("b", DT, "r")),
        },
    ),
    "DataBrewRole": ({"curated/", "processed/"}, {"profiles/"}),
    "SpectrumRole": ({top_prefix(LAKE.curated_features(DT)), top_prefix(LAKE.etl_metrics(DT))}, set()),
}
SERVICES = {
    "GlueRole": ["glue.amazonaws.com"],
    "SageMakerRole": ["sagemaker.amazonaws.com"],
    "DataBrewRole": ["databrew.amazonaws.com"],
    "SpectrumRole": ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"],
}


def roles_stack(**overrides: Any) -> Stack:
    return Stack("roles.cfn.json", **overrides)


def s3_prefixes(role_statements: list[dict[str, Any]], action: str, bucket: str) -> set[str]:
    """The key prefixes (``raw/``) ``action`` is allowed on."""
    found = set()
    for statement in role_statements:
        if action in as_list(statement["Action"]):
            for arn in as_list(statement["Resource"]):
                assert arn.startswith(f"arn:aws:s3:::{bucket}/") and arn.endswith("*"), arn
                found.add(arn.removeprefix(f"arn:aws:s3:::{bucket}/").split("/")[0] + "/")
    return found


@pytest.mark.parametrize("role", sorted(EXPECTED_PREFIXES))
def test_each_role_reads_and_writes_only_its_prefixes_of_the_lake(role: str) -> None:
    stack = roles_stack(LakeBucketName="the-lake")
    found = statements(stack, role)
    read, write = EXPECTED_PREFIXES[role]
    assert s3_prefixes(found, "s3:GetObject", "the-lake") == read | write
    assert s3_prefixes(found, "s3:PutObject", "the-lake") == write
    assert s3_prefixes(found, "s3:DeleteObject", "the-lake") == write
    (listing,) = [s for s in found if "s3:ListBucket" in as_list(s["Action"])]
    assert listing["Resource"] == "arn:aws:s3:::the-lake" and listing["Action"] == "s3:ListBucket"
    (locate,) = [s for s in found if "s3:GetBucketLocation" in as_list(s["Action"])]
    assert (locate["Action"], locate["Resource"]) == ("s3:GetBucketLocation", "arn:aws:s3:::the-lake")
    assert "Condition" not in locate  # its requests carry no s3:prefix: a prefix condition would deny it
    patterns = listing["Condition"]["StringLike"]["s3:prefix"]
    assert "" not in patterns and all(p.endswith("/*") for p in patterns)
    assert {p.split("/")[0] + "/" for p in patterns} == read | write


@pytest.mark.parametrize("role", sorted(EXPECTED_PREFIXES))
def test_roles_name_no_resource_outside_the_lake_the_database_and_their_own_services(role: str) -> None:
    stack = roles_stack(LakeKmsKeyArn=KEY_ARN, LakeBucketName="the-lake", GlueDatabaseName="the_db")
    allowed = (
        "arn:aws:s3:::the-lake",
        f"arn:aws:glue:{REGION}:{ACCOUNT_ID}:catalog",
        f"arn:aws:glue:{REGION}:{ACCOUNT_ID}:database/the_db",
        f"arn:aws:glue:{REGION}:{ACCOUNT_ID}:table/the_db/",
        f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model-package-group/sagelake-churn",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model-package/sagelake-churn/",
        f"arn:aws:ecr:{REGION}:*:repository/sagemaker-",
        KEY_ARN,
    )
    for statement in statements(stack, role):
        assert statement["Effect"] == "Allow"
        assert all(not a.endswith(":*") and a != "*" for a in as_list(statement["Action"])), statement["Sid"]
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(as_list(statement["Action"])) <= set(WILDCARD_ACTIONS), statement["Sid"]
            else:
                assert resource.startswith(allowed), resource
    assert f"table/{stack.params['GlueDatabaseName']}/" in json.dumps(statements(stack, "GlueRole"))


def test_wildcard_resources_are_the_allowed_actions_and_justified_in_the_template() -> None:
    stack = roles_stack()
    for name, resource in stack.resources.items():
        wild = {
            action
            for statement in statements(stack, name)
            if "*" in as_list(statement["Resource"])
            for action in as_list(statement["Action"])
        }
        assert wild <= set(WILDCARD_ACTIONS)
        assert set(resource.get("Metadata", {}).get("WildcardResources", {})) == wild, name
    (metrics,) = [s for s in statements(stack, "SageMakerRole") if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}


@pytest.mark.parametrize(("key", "granted"), [("", False), (KEY_ARN, True)])
def test_roles_use_the_lake_key_only_through_s3(key: str, granted: bool) -> None:
    stack = roles_stack(LakeKmsKeyArn=key)
    for role in stack.resources:
        kms = [s for s in statements(stack, role) if any(a.startswith("kms:") for a in as_list(s["Action"]))]
        assert len(kms) == int(granted)
        for statement in kms:
            assert statement["Resource"] == KEY_ARN
            via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
            assert statement["Condition"] == via_s3


def test_each_role_is_assumable_only_by_its_service_in_this_account() -> None:
    stack = roles_stack()
    assert set(stack.resources) == set(SERVICES)
    for role, services in SERVICES.items():
        (trust,) = stack.props(role)["AssumeRolePolicyDocument"]["Statement"]
        assert as_list(trust["Principal"]["Service"]) == services
        assert trust["Action"] == "sts:AssumeRole"
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
        assert "ManagedPolicyArns" not in stack.props(role)


def test_the_spectrum_role_follows_the_warehouse_parameter() -> None:
    assert "SpectrumRole" in roles_stack().resources
    disabled = roles_stack(Warehouse="disabled")
    assert "SpectrumRole" not in disabled.resources and "SagelakeSpectrumRole" not in disabled.outputs


def test_role_names_default_to_the_names_the_settings_default_to(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("SAGELAKE_")]:
        monkeypatch.delenv(name)
    params = roles_stack().params
    assert (params["GlueRoleName"], params["SageMakerRoleName"]) == (
        settings.deployment_settings()["glue_role"],
        settings.deployment_settings()["sagemaker_role"],
    )
    assert params["DataBrewRoleName"] == settings.databrew_role()
    assert params["SpectrumRoleName"] == settings.warehouse_settings()["spectrum_role"]
    assert params["ModelPackageGroupName"] == settings.deployment_settings()["model_package_group"]


# --- glue: the job and crawler the DAGs define ------------------------------------------------------------


def glue_stack(**overrides: Any) -> Stack:
    params = parameters(load("glue.cfn.json"), **overrides)
    symbols = {"ChurnFeaturesJob": params["GlueJobName"], "RawCrawler": params["CrawlerName"]}
    return Stack("glue.cfn.json", symbols, GlueRoleArn=ROLE_ARN % "glue", **overrides)


def test_glue_job_is_what_churn_prepares_operator_sends_so_it_never_updates_it() -> None:
    from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
    from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

    stack = glue_stack(LakeBucketName="the-lake", GlueJobName="the-job")
    common = {"task_id": "probe", "job_name": "the-job", "s3_bucket": "the-lake", "update_config": True}
    uploads_to = GlueJobOperator(script_location=str(GLUE_SCRIPT), **common).s3_artifacts_prefix
    operator = GlueJobOperator(  # as churn_prepare's, after it uploaded the script and resolved the role
        script_location=f"s3://the-lake/{uploads_to}{GLUE_SCRIPT.name}",
        iam_role_arn=ROLE_ARN % "glue",
        create_job_kwargs=glue_job_kwargs(),
        **common,
    )
    sent = GlueJobHook(**operator._hook_parameters).create_glue_job_config()
    assert stack.props("ChurnFeaturesJob") == sent


def test_crawler_is_the_discovery_crawler_config() -> None:
    stack = glue_stack(LakeBucketName="the-lake", GlueDatabaseName="the_db", CrawlerName="the-crawler")
    role = ROLE_ARN % "glue"
    expected = crawler_config(name="the-crawler", role=role, database="the_db", bucket="the-lake")
    assert stack.props("RawCrawler") == expected


# --- ml: registry, alarms, dashboard ----------------------------------------------------------------------


def ml_stack(**overrides: Any) -> Stack:
    group = parameters(load("ml.cfn.json"), **overrides)["ModelPackageGroupName"]
    symbols = {
        "AlarmTopic": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:alarms",
        "ModelPackageGroup.ModelPackageGroupArn": (
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model-package-group/{group}"
        ),
    }
    return Stack("ml.cfn.json", symbols, **overrides)


def test_alarms_watch_the_production_endpoint_and_variant_and_notify_the_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SAGELAKE_ENDPOINT", raising=False)
    stack = ml_stack()
    variant = inspect.signature(endpoint_request).parameters["variant_name"].default
    expected_dims = [
        {"Name": "EndpointName", "Value": settings.deployment_settings()["endpoint_name"]},
        {"Name": "VariantName", "Value": variant},
    ]
    alarms = {n: r["Properties"] for n, r in stack.resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms.values()}
    assert {("AWS/SageMaker", "Invocation5XXErrors"), ("AWS/SageMaker", "ModelLatency")} <= metrics
    assert (NAMESPACE, stack.params["FreshnessMetricName"]) == (
        stack.params["FreshnessNamespace"],
        "HoursSinceLastPublish",
    )
    assert {
        (NAMESPACE, "HoursSinceLastPublish"),
        (NAMESPACE, "drifted_features"),
        (NAMESPACE, "FailedChecks"),
    } <= metrics
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [stack.symbols["AlarmTopic"]], name
        if alarm["Namespace"] == "AWS/SageMaker":
            assert alarm["Dimensions"] == expected_dims, name
    assert alarms["FreshnessAlarm"]["TreatMissingData"] == "breaching"  # no data is stale data


def test_dashboard_is_valid_json_and_shows_every_alarmed_metric() -> None:
    stack = ml_stack(EndpointName="the-endpoint")
    body = json.loads(stack.props("Dashboard")["DashboardBody"])
    shown = json.dumps(body)
    assert "${" not in shown and REGION in shown and "the-endpoint" in shown
    for resource in stack.resources.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert resource["Properties"]["MetricName"] in shown


def test_alarm_topic_accepts_only_this_accounts_alarms_over_tls() -> None:
    stack = ml_stack()
    allow, deny = stack.props("AlarmTopicPolicy")["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and allow["Action"] == "sns:Publish"
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert "EmailSubscription" not in stack.resources
    subscribed = ml_stack(NotificationEmail="ops@example.com")
    assert subscribed.props("EmailSubscription")["Endpoint"] == "ops@example.com"


def test_model_package_group_output_is_the_groups_name() -> None:
    stack = ml_stack(ModelPackageGroupName="the-group")
    assert stack.outputs["SagelakeModelPackageGroup"]["Value"] == "the-group"
    assert stack.resources["ModelPackageGroup"]["DeletionPolicy"] == "Retain"


# --- warehouse ----------------------------------------------------------------------------------------------


def test_warehouse_is_private_and_spectrum_is_its_default_role(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAGELAKE_REDSHIFT_WORKGROUP", "SAGELAKE_REDSHIFT_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    stack = Stack("warehouse.cfn.json", SpectrumRoleArn=ROLE_ARN % "spectrum")
    namespace, workgroup = stack.props("Namespace"), stack.props("Workgroup")
    assert namespace["IamRoles"] == [ROLE_ARN % "spectrum"] == [namespace["DefaultIamRoleArn"]]
    assert namespace["ManageAdminPassword"] is True and "AdminUserPassword" not in namespace
    assert workgroup["PubliclyAccessible"] is False and "SubnetIds" not in workgroup
    wanted = settings.warehouse_settings()
    assert (stack.params["WorkgroupName"], stack.params["DatabaseName"]) == (
        wanted["redshift_workgroup"],
        wanted["redshift_database"],
    )
    placed = Stack("warehouse.cfn.json", SpectrumRoleArn=ROLE_ARN % "spectrum", SubnetIds=["subnet-0a"])
    assert placed.props("Workgroup")["SubnetIds"] == ["subnet-0a"]


# --- outputs: every deployment setting naming an AWS resource is fed by a stack output ---------------


def resource_env_vars() -> set[str]:
    """The ``SAGELAKE_*`` variables read by the settings functions that name AWS resources."""
    tree = ast.parse(Path(settings.__file__).read_text())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in RESOURCE_SETTINGS]
    assert sorted(f.name for f in functions) == sorted(RESOURCE_SETTINGS)
    return {
        node.value
        for function in functions
        for node in ast.walk(function)
        if isinstance(node, ast.Constant) and str(node.value).startswith("SAGELAKE_")
    } - {"SAGELAKE_TRAINING_INSTANCE", "SAGELAKE_ENDPOINT_INSTANCE"}  # instance types, not resources


def output_name(env_var: str) -> str:
    """``SAGELAKE_GLUE_ROLE`` -> ``SagelakeGlueRole`` (output IDs must be alphanumeric)."""
    return "".join(part.capitalize() for part in env_var.split("_"))


def test_outputs_feed_every_deployment_setting_that_names_an_aws_resource() -> None:
    outputs = {n: out for path in TEMPLATES for n, out in json.loads(path.read_text())["Outputs"].items()}
    env_vars = resource_env_vars() | {"SAGELAKE_LAKE_KMS_KEY_ID"}
    assert {"SAGELAKE_BUCKET", "SAGELAKE_GLUE_ROLE", "SAGELAKE_SAGEMAKER_ROLE"} <= env_vars
    for env_var in sorted(env_vars - set(NOT_FROM_OUTPUTS) - set(FROM_EVENTS_STACK)):
        output = outputs.get(output_name(env_var))
        assert output, f"no output {output_name(env_var)} for {env_var}"
        assert output["Description"].startswith(f"{env_var}:")
    events = json.loads(EVENTS_TEMPLATE.read_text())["Outputs"]
    assert set(FROM_EVENTS_STACK.values()) <= set(events)
    described = [o["Description"] for o in outputs.values()]
    named = {d.split(":")[0] for d in described if d.startswith("SAGELAKE_")}
    assert named <= env_vars, "an output names a setting settings.py does not read"


def test_docs_page_names_every_template_and_output() -> None:
    doc = (ROOT / "docs" / "aws.md").read_text()
    for path in TEMPLATES:
        assert f"include/infra/{path.name}" in doc
        for name, output in json.loads(path.read_text())["Outputs"].items():
            assert name in doc, f"docs/aws.md does not say what {name} feeds"
            env_var = output["Description"].split(":")[0]
            if env_var.startswith("SAGELAKE_"):
                assert env_var in doc


def test_templates_are_stable_json() -> None:
    for path in TEMPLATES:
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n", path.name
        assert json.loads(text)["AWSTemplateFormatVersion"] == "2010-09-09"
