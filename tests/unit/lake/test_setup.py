"""Lake set-up as code, the pure parts: desired state from settings, diffing, policy and lifecycle merges,
requests valid for the AWS API models (botocore's validation, offline)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys

import boto3
import pytest
import yaml
from botocore.validate import ParamValidator

from sagelake.config.settings import lake_setup_settings
from sagelake.lake.setup import (
    PUBLIC_ACCESS_BLOCK,
    TLS_ONLY_SID,
    CurrentLake,
    DesiredLake,
    LakePolicy,
    desired_state,
    limits_of,
    merge_lifecycle,
    merge_policy,
    plan,
    same_policy,
    top_prefix,
)
from sagelake.ml.spot import checkpoint_uri
from tests.support.constants import REGION, ROOT

BUCKET, WORKGROUP = "lake-bucket", "lake-wg"
FOREIGN_STATEMENT = {
    "Sid": "AnalyticsRead",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:role/analytics"},
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/curated/*",
}
FOREIGN_RULE = {
    "ID": "team-scratch-expiry",
    "Status": "Enabled",
    "Filter": {"Prefix": "scratch/"},
    "Expiration": {"Days": 3},
}


def desired(**policy: object) -> DesiredLake:
    return desired_state(BUCKET, WORKGROUP, LakePolicy(**policy))  # type: ignore[arg-type]


def empty() -> CurrentLake:
    return CurrentLake(None, [], None, None, None, None)


def as_aws_reports(state: DesiredLake) -> CurrentLake:
    """``state`` as S3 and Athena report it back: whole-bucket filter ``{}``, single values for one-element
    lists, ``BucketKeyEnabled`` false for SSE-S3, extra workgroup fields, other orders."""
    rules = [copy.deepcopy(r) for r in reversed(state.lifecycle_rules)]
    for rule in rules:
        if rule["Filter"] == {"Prefix": ""}:
            rule["Filter"] = {}
    encryption = copy.deepcopy(state.encryption)
    encryption["Rules"][0].setdefault("BucketKeyEnabled", False)
    statements = []
    for statement in state.policy_statements:
        reported = dict(statement, Resource=list(reversed(statement["Resource"])), Action=["s3:*"])
        statements.append(reported)
    workgroup = {
        "Name": state.workgroup,
        "State": "ENABLED",
        "Configuration": {
            **copy.deepcopy(state.workgroup_configuration),
            "RequesterPaysEnabled": False,
            "EngineVersion": {"SelectedEngineVersion": "AUTO"},
        },
    }
    return CurrentLake(
        versioning="Enabled",
        lifecycle_rules=[FOREIGN_RULE, *rules],
        encryption=encryption,
        public_access_block=dict(PUBLIC_ACCESS_BLOCK),
        policy={"Version": "2012-10-17", "Statement": [FOREIGN_STATEMENT, *statements]},
        workgroup=workgroup,
    )


def test_lifecycle_prefixes_come_from_the_lake_layout() -> None:
    rules = {rule["ID"]: rule for rule in desired().lifecycle_rules}
    assert rules["sagelake-raw-to-standard-ia"]["Filter"] == {"Prefix": "raw/"}
    assert rules["sagelake-quarantine-expiry"]["Filter"] == {"Prefix": "quarantine/"}
    assert rules["sagelake-athena-results-expiry"]["Filter"] == {"Prefix": "athena-results/"}
    assert rules["sagelake-training-expiry"]["Filter"] == {"Prefix": "training/"}
    assert rules["sagelake-checkpoints-expiry"]["Expiration"] == {"Days": 30}
    assert rules["sagelake-batch-expiry"]["Filter"] == {"Prefix": "batch/"}
    assert checkpoint_uri("lake", "job").startswith(
        "s3://lake/" + rules["sagelake-checkpoints-expiry"]["Filter"]["Prefix"]
    )
    assert top_prefix("s3://b/quarantine/churn/dt=2026-01-01/") == "quarantine/"
    for whole_bucket in (
        "sagelake-noncurrent-versions-expiry",
        "sagelake-abort-incomplete-multipart-uploads",
    ):
        assert rules[whole_bucket]["Filter"] == {"Prefix": ""}


def test_every_number_and_class_comes_from_the_policy() -> None:
    state = desired(
        raw_storage_class="GLACIER_IR",
        raw_transition_days=12,
        noncurrent_expiry_days=3,
        quarantine_expiry_days=40,
        athena_results_expiry_days=5,
        abort_multipart_days=2,
        bytes_scanned_cutoff=123_456_789,
    )
    rules = {rule["ID"]: rule for rule in state.lifecycle_rules}
    assert rules["sagelake-raw-to-glacier-ir"]["Transitions"] == [{"Days": 12, "StorageClass": "GLACIER_IR"}]
    noncurrent = rules["sagelake-noncurrent-versions-expiry"]
    assert noncurrent["NoncurrentVersionExpiration"] == {"NoncurrentDays": 3}
    assert noncurrent["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    assert rules["sagelake-quarantine-expiry"]["Expiration"] == {"Days": 40}
    assert rules["sagelake-athena-results-expiry"]["Expiration"] == {"Days": 5}
    assert rules["sagelake-abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 2
    }
    assert state.workgroup_configuration == {
        "ResultConfiguration": {
            "OutputLocation": f"s3://{BUCKET}/athena-results/",
            "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
        },
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
        "BytesScannedCutoffPerQuery": 123_456_789,
    }
    assert state.versioning == "Enabled" and state.public_access_block == PUBLIC_ACCESS_BLOCK


def test_encryption_is_sse_s3_unless_a_kms_key_is_configured() -> None:
    assert desired().encryption == {
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    key = "arn:aws:kms:eu-west-1:111122223333:key/abc"
    state = desired(kms_key_id=key)
    assert state.encryption["Rules"][0] == {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True,
    }
    results = state.workgroup_configuration["ResultConfiguration"]["EncryptionConfiguration"]
    assert results == {"EncryptionOption": "SSE_KMS", "KmsKey": key}


def test_tls_only_statement_denies_everything_without_tls_on_bucket_and_objects() -> None:
    [statement] = desired_state(BUCKET, WORKGROUP, LakePolicy(), partition="aws-cn").policy_statements
    assert statement["Sid"] == TLS_ONLY_SID and statement["Effect"] == "Deny"
    assert statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Resource"] == [f"arn:aws-cn:s3:::{BUCKET}", f"arn:aws-cn:s3:::{BUCKET}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_tls_only_statement_is_left_out_over_plain_http_and_on_request() -> None:
    over_http = desired_state(BUCKET, WORKGROUP, LakePolicy(), s3_endpoint_url="http://127.0.0.1:4566")
    assert over_http.policy_statements == []
    assert "plain HTTP (http://127.0.0.1:4566)" in over_http.notes[0]
    over_tls = desired_state(
        BUCKET, WORKGROUP, LakePolicy(), s3_endpoint_url="https://s3.eu-west-1.amazonaws.com"
    )
    assert [s["Sid"] for s in over_tls.policy_statements] == [TLS_ONLY_SID] and over_tls.notes == []
    assert desired(require_tls=False).policy_statements == [] and desired(require_tls=False).notes == []


def test_nothing_set_plans_one_request_per_setting() -> None:
    changes = plan(desired(), empty())
    assert [c.operation for c in changes] == [
        "put_bucket_versioning",
        "put_bucket_encryption",
        "put_public_access_block",
        "put_bucket_lifecycle_configuration",
        "put_bucket_policy",
        "create_work_group",
    ]
    requests = {c.operation: c.request for c in changes}
    assert requests["put_bucket_versioning"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert json.loads(requests["put_bucket_policy"]["Policy"])["Statement"] == desired().policy_statements
    assert requests["create_work_group"]["Configuration"] == desired().workgroup_configuration


def test_the_state_as_aws_reports_it_plans_nothing() -> None:
    for state in (desired(), desired(kms_key_id="alias/lake", raw_storage_class="GLACIER_IR")):
        assert plan(state, as_aws_reports(state)) == []


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (lambda c: {"versioning": "Suspended"}, ["put_bucket_versioning"]),
        (
            lambda c: {"public_access_block": {**PUBLIC_ACCESS_BLOCK, "BlockPublicPolicy": False}},
            ["put_public_access_block"],
        ),
        (
            lambda c: {
                "encryption": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}
            },
            ["put_bucket_encryption"],
        ),
        (lambda c: {"lifecycle_rules": c.lifecycle_rules[:-1]}, ["put_bucket_lifecycle_configuration"]),
        (lambda c: {"policy": {"Statement": [FOREIGN_STATEMENT]}}, ["put_bucket_policy"]),
    ],
    ids=["versioning", "public-access-block", "encryption", "lifecycle", "policy"],
)
def test_a_drifted_setting_plans_exactly_its_request(drift, expected) -> None:
    state = desired()
    reported = as_aws_reports(state)
    changed = CurrentLake(**{**reported.__dict__, **drift(reported)})
    assert [c.operation for c in plan(state, changed)] == expected


def test_a_drifted_workgroup_is_updated_with_the_managed_settings_only() -> None:
    state = desired()
    reported = as_aws_reports(state)
    reported.workgroup["Configuration"]["BytesScannedCutoffPerQuery"] = 99 * 1024**2
    [change] = plan(state, reported)
    assert change.operation == "update_work_group"
    updates = change.request["ConfigurationUpdates"]
    assert (
        updates["BytesScannedCutoffPerQuery"] == state.workgroup_configuration["BytesScannedCutoffPerQuery"]
    )
    assert updates["ResultConfigurationUpdates"]["OutputLocation"] == f"s3://{BUCKET}/athena-results/"
    assert "State" not in change.request
    reported.workgroup["State"] = "DISABLED"
    reported.workgroup["Configuration"]["BytesScannedCutoffPerQuery"] = state.workgroup_configuration[
        "BytesScannedCutoffPerQuery"
    ]
    [change] = plan(state, reported)
    assert change.request["State"] == "ENABLED"


def test_policy_merge_keeps_foreign_statements_and_replaces_sagelake_ones() -> None:
    stale = {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "arn:aws:s3:::old",
    }
    current = {"Version": "2012-10-17", "Id": "LakePolicy", "Statement": [FOREIGN_STATEMENT, stale]}
    managed = desired().policy_statements
    merged = merge_policy(current, managed)
    assert merged == {"Version": "2012-10-17", "Id": "LakePolicy", "Statement": [FOREIGN_STATEMENT, *managed]}
    assert merge_policy({"Statement": [stale]}, []) is None  # nothing left: the policy is deleted
    assert merge_policy({"Statement": FOREIGN_STATEMENT}, [])["Statement"] == [
        FOREIGN_STATEMENT
    ]  # a lone dict
    assert [
        c.operation
        for c in plan(
            desired(require_tls=False), CurrentLake("Enabled", [], None, None, {"Statement": [stale]}, None)
        )
    ][-2:] == ["delete_bucket_policy", "create_work_group"]


def test_same_policy_ignores_order_and_one_element_lists_but_not_content() -> None:
    a = {"Statement": [FOREIGN_STATEMENT, *desired().policy_statements]}
    b = {"Statement": [*desired().policy_statements, dict(FOREIGN_STATEMENT, Action=["s3:GetObject"])]}
    assert same_policy(a, b)
    assert not same_policy(a, {"Statement": [dict(FOREIGN_STATEMENT, Action="s3:PutObject")]})
    assert same_policy(None, None) and not same_policy(a, None)


def test_lifecycle_merge_keeps_foreign_rules_and_replaces_sagelake_ones() -> None:
    stale = {"ID": "sagelake-raw-to-glacier-ir", "Status": "Enabled", "Filter": {"Prefix": "raw/"}}
    merged = merge_lifecycle([FOREIGN_RULE, stale], desired().lifecycle_rules)
    assert merged == [FOREIGN_RULE, *desired().lifecycle_rules]


def test_every_planned_request_is_valid_for_the_aws_api() -> None:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    clients = {"s3": session.client("s3"), "athena": session.client("athena")}
    state = desired(kms_key_id="alias/lake")
    drifted = as_aws_reports(state)
    drifted.workgroup["Configuration"]["PublishCloudWatchMetricsEnabled"] = False
    changes = (
        plan(state, empty())
        + plan(state, drifted)
        + plan(
            desired(require_tls=False),
            CurrentLake("Enabled", [], None, None, {"Statement": state.policy_statements}, None),
        )
    )
    assert {c.operation for c in changes} >= {
        "update_work_group",
        "delete_bucket_policy",
        "create_work_group",
    }
    for change in changes:
        client = clients[change.service]
        operation = client.meta.service_model.operation_model(
            client.meta.method_to_api_mapping[change.operation]
        )
        report = ParamValidator().validate(change.request, operation.input_shape)
        assert not report.has_errors(), (change.operation, report.generate_report())


def test_limits_of_a_workgroup() -> None:
    limits = limits_of(as_aws_reports(desired(bytes_scanned_cutoff=50 * 1024**2)).workgroup)
    assert limits.bytes_scanned_cutoff == 50 * 1024**2
    assert limits.output_location == f"s3://{BUCKET}/athena-results/" and limits.enforced
    bare = limits_of({"Name": "primary", "Configuration": {}})
    assert (bare.bytes_scanned_cutoff, bare.output_location, bare.enforced) == (None, None, False)


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(("SAGELAKE_LAKE_", "SAGELAKE_ATHENA_"))]:
        monkeypatch.delenv(name)
    assert LakePolicy.from_settings() == LakePolicy()
    assert LakePolicy() == LakePolicy(
        raw_storage_class="STANDARD_IA",
        raw_transition_days=30,
        noncurrent_expiry_days=7,
        quarantine_expiry_days=90,
        athena_results_expiry_days=30,
        abort_multipart_days=7,
        kms_key_id="",
        require_tls=True,
        bytes_scanned_cutoff=10 * 1024**3,
    )


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SAGELAKE_LAKE_RAW_STORAGE_CLASS": "glacier_ir",
        "SAGELAKE_LAKE_RAW_TRANSITION_DAYS": "10",
        "SAGELAKE_LAKE_NONCURRENT_EXPIRY_DAYS": "2",
        "SAGELAKE_LAKE_QUARANTINE_EXPIRY_DAYS": "14",
        "SAGELAKE_ATHENA_RESULTS_EXPIRY_DAYS": "1",
        "SAGELAKE_LAKE_ABORT_MULTIPART_DAYS": "1",
        "SAGELAKE_LAKE_KMS_KEY_ID": "alias/lake",
        "SAGELAKE_LAKE_REQUIRE_TLS": "false",
        "SAGELAKE_ATHENA_BYTES_SCANNED_CUTOFF": str(10 * 1024 * 1024),
        "SAGELAKE_LAKE_SCRATCH_EXPIRY_DAYS": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert LakePolicy.from_settings() == LakePolicy(
        "GLACIER_IR", 10, 2, 14, 1, 1, "alias/lake", False, 10485760, 3
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SAGELAKE_LAKE_RAW_STORAGE_CLASS", "GLACIER", "is not one of STANDARD_IA, GLACIER_IR"),
        ("SAGELAKE_LAKE_RAW_TRANSITION_DAYS", "29", "below 30, the minimum S3 accepts for STANDARD_IA"),
        ("SAGELAKE_LAKE_NONCURRENT_EXPIRY_DAYS", "0", "not a whole number >= 1"),
        ("SAGELAKE_ATHENA_BYTES_SCANNED_CUTOFF", "10485759", "not a whole number >= 10485760"),
        ("SAGELAKE_LAKE_REQUIRE_TLS", "yes", "is not true or false"),
    ],
)
def test_bad_settings_are_refused_with_their_name(monkeypatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        lake_setup_settings()
    assert name in str(raised.value)


def test_the_compose_init_runs_the_set_up_with_flags_it_accepts() -> None:
    init = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]["airflow-init"]
    script = init["command"][-1]
    # the launcher's bootstrap (devstack.stack bootstrap), which applies sagelake.lake.setup's desired state
    match = re.search(r"python -m (devstack\.stack) bootstrap((?: --[a-z-]+)*)", script)
    assert match, "airflow-init does not run the launcher's bootstrap (python -m devstack.stack bootstrap)"
    help_text = subprocess.run(
        [sys.executable, "-m", match.group(1), "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert set(match.group(2).split()) <= set(re.findall(r"(--[a-z][a-z-]*)", help_text))
    assert "PYTHONPATH=/opt/airflow/plugins:/opt/airflow" in script
