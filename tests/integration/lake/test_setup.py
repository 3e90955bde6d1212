"""Lake set-up as code on the control plane: every setting read back through boto3 equals the desired state,
a second run changes and rewrites nothing, foreign policy statements and lifecycle rules survive, drift is
corrected, and the local launcher and the compose init's command apply the same set-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sagelake.lake.setup import (
    PUBLIC_ACCESS_BLOCK,
    TLS_ONLY_SID,
    DesiredLake,
    LakePolicy,
    apply,
    desired_state,
    workgroup_limits,
)
from tests.support.constants import REGION, ROOT

WRITES = ("put_", "create_", "update_", "delete_")
CUSTOM = LakePolicy(
    raw_storage_class="GLACIER_IR",
    raw_transition_days=14,
    noncurrent_expiry_days=3,
    quarantine_expiry_days=21,
    athena_results_expiry_days=2,
    abort_multipart_days=1,
    kms_key_id="arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    bytes_scanned_cutoff=10 * 1024 * 1024,
)


class Recording:
    """A boto3 client that records the operations called through it."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call

    def writes(self) -> list[str]:
        return [name for name in self.calls if name.startswith(WRITES)]


@pytest.fixture()
def athena(aws_env: str):
    return boto3.client("athena", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture()
def workgroup() -> str:
    return f"wg-{uuid.uuid4().hex[:10]}"


def foreign_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "AnalyticsRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/analytics"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/curated/*",
    }


FOREIGN_RULE = {
    "ID": "team-scratch-expiry",
    "Status": "Enabled",
    "Filter": {"Prefix": "scratch/"},
    "Expiration": {"Days": 3},
}


def read_back(s3: Any, athena: Any, bucket: str, workgroup: str) -> dict[str, Any]:
    """Every managed setting, read straight through boto3 (not through the module under test)."""
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    try:
        statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    except ClientError:
        statements = []
    return {
        "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "rules": {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]},
        "encryption": encryption,
        "public_access_block": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
        "statements": statements,
        "workgroup": {
            key: value  # moto stamps CreationTime anew on every read
            for key, value in athena.get_work_group(WorkGroup=workgroup)["WorkGroup"].items()
            if key != "CreationTime"
        },
    }


def assert_matches(found: dict[str, Any], desired: DesiredLake, other_rules=(), other_statements=()) -> None:
    assert found["versioning"] == "Enabled"
    assert found["rules"] == {r["ID"]: r for r in [*other_rules, *desired.lifecycle_rules]}
    [rule] = found["encryption"]
    [wanted] = desired.encryption["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == wanted["ApplyServerSideEncryptionByDefault"]
    assert rule.get("BucketKeyEnabled", False) == wanted.get("BucketKeyEnabled", False)
    assert found["public_access_block"] == PUBLIC_ACCESS_BLOCK
    assert found["statements"] == [*other_statements, *desired.policy_statements]
    configuration = found["workgroup"]["Configuration"]
    assert {k: configuration[k] for k in desired.workgroup_configuration} == desired.workgroup_configuration


@pytest.mark.parametrize("policy", [LakePolicy(), CUSTOM], ids=["defaults", "custom"])
def test_every_setting_reads_back_as_desired_and_a_second_run_rewrites_nothing(
    s3, athena, bucket: str, workgroup: str, policy: LakePolicy
) -> None:
    desired = desired_state(bucket, workgroup, policy)  # as over TLS: the TLS-only statement included
    first = apply(s3, athena, desired)
    assert [c.setting for c in first] == [
        "versioning",
        "default encryption",
        "public access block",
        "lifecycle rules",
        "bucket policy",
        "athena workgroup",
    ]
    found = read_back(s3, athena, bucket, workgroup)
    assert_matches(found, desired)
    assert [s["Sid"] for s in found["statements"]] == [TLS_ONLY_SID]
    limits = workgroup_limits(athena, workgroup)
    assert limits.bytes_scanned_cutoff == policy.bytes_scanned_cutoff
    assert limits.output_location == f"s3://{bucket}/athena-results/" and limits.enforced

    s3_calls, athena_calls = Recording(s3), Recording(athena)
    assert apply(s3_calls, athena_calls, desired) == []
    assert s3_calls.writes() == athena_calls.writes() == []
    assert "get_bucket_policy" in s3_calls.calls and "get_work_group" in athena_calls.calls  # it did read
    assert read_back(s3, athena, bucket, workgroup) == found


def test_foreign_policy_statements_and_lifecycle_rules_survive(
    s3, athena, bucket: str, workgroup: str
) -> None:
    foreign = foreign_statement(bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [foreign]}))
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [FOREIGN_RULE]})
    desired = desired_state(bucket, workgroup, LakePolicy())
    changes = {c.setting: c.summary for c in apply(s3, athena, desired)}
    assert changes["bucket policy"] == "1 sagelake statement(s) set, 1 other(s) kept"
    assert (
        changes["lifecycle rules"]
        == f"{len(desired.lifecycle_rules)} sagelake rules set, 1 other rule(s) kept"
    )
    found = read_back(s3, athena, bucket, workgroup)
    assert_matches(found, desired, other_rules=[FOREIGN_RULE], other_statements=[foreign])
    s3_calls = Recording(s3)
    assert apply(s3_calls, athena, desired) == [] and s3_calls.writes() == []


def test_drift_is_corrected_and_nothing_else_is_touched(s3, athena, bucket: str, workgroup: str) -> None:
    desired = desired_state(bucket, workgroup, LakePolicy())
    apply(s3, athena, desired)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3_calls = Recording(s3)
    changes = apply(s3_calls, athena, desired)
    assert [c.setting for c in changes] == ["versioning", "default encryption", "public access block"]
    assert s3_calls.writes() == ["put_bucket_versioning", "put_bucket_encryption", "put_public_access_block"]
    assert_matches(read_back(s3, athena, bucket, workgroup), desired)


def test_a_changed_workgroup_limit_is_corrected_in_place(s3, athena, bucket: str, workgroup: str) -> None:
    apply(s3, athena, desired_state(bucket, workgroup, LakePolicy()))
    tighter = desired_state(bucket, workgroup, LakePolicy(bytes_scanned_cutoff=20 * 1024 * 1024))
    athena_calls = Recording(athena)
    assert [c.setting for c in apply(s3, athena_calls, tighter)] == ["athena workgroup"]
    assert athena_calls.writes() == ["update_work_group"]
    assert workgroup_limits(athena, workgroup).bytes_scanned_cutoff == 20 * 1024 * 1024


def test_over_plain_http_the_tls_statement_is_removed_and_foreign_ones_kept(
    s3, athena, aws_env: str, bucket: str, workgroup: str
) -> None:
    """Why the local stack leaves it out: moto ignores the condition and denies every object request."""
    foreign = foreign_statement(bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [foreign]}))
    apply(s3, athena, desired_state(bucket, workgroup, LakePolicy()))
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="raw/x.csv", Body=b"a")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    local = desired_state(bucket, workgroup, LakePolicy(), s3_endpoint_url=aws_env)
    assert local.policy_statements == [] and "plain HTTP" in local.notes[0]
    assert [(c.setting, c.operation) for c in apply(s3, athena, local)] == [
        ("bucket policy", "put_bucket_policy")
    ]
    assert_matches(read_back(s3, athena, bucket, workgroup), local, other_statements=[foreign])
    s3.put_object(Bucket=bucket, Key="raw/x.csv", Body=b"a")
    assert s3.get_object(Bucket=bucket, Key="raw/x.csv")["Body"].read() == b"a"
    assert apply(s3, athena, local) == []


def test_the_local_launcher_applies_the_same_set_up(aws_env: str, s3, athena, workgroup: str) -> None:
    from devstack.stack import bootstrap_control_plane

    bucket = f"boot-{uuid.uuid4().hex[:10]}"
    bootstrap_control_plane(aws_env, bucket, (), queue=f"q-{bucket}", workgroup=workgroup)
    local = desired_state(bucket, workgroup, LakePolicy.from_settings(), s3_endpoint_url=aws_env)
    assert_matches(read_back(s3, athena, bucket, workgroup), local)
    assert apply(s3, athena, local) == []
    s3.put_object(Bucket=bucket, Key="raw/customers/dt=2026-01-01/customers.csv", Body=b"id\n1\n")
    s3.put_object(Bucket=bucket, Key="raw/customers/dt=2026-01-01/customers.csv", Body=b"id\n2\n")
    versions = s3.list_object_versions(Bucket=bucket, Prefix="raw/")["Versions"]
    assert len(versions) == 2  # versioned: the overwritten object is kept as a noncurrent version
    bootstrap_control_plane(aws_env, bucket, (), queue=f"q-{bucket}", workgroup=workgroup)  # re-run: no error


def test_the_module_command_creates_the_bucket_and_is_idempotent(
    aws_env: str, s3, athena, workgroup: str
) -> None:
    """What the compose stack's init runs, through the aws_default connection."""
    from devstack.stack import aws_connection

    bucket = f"cli-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "plugins"),
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(aws_env, "http://127.0.0.1:9"),
    }
    argv = [sys.executable, "-m", "sagelake.lake.setup", "--bucket", bucket, "--workgroup", workgroup]
    first = subprocess.run([*argv, "--create-bucket"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"bucket {bucket} created" in first.stdout and "TLS-only bucket policy not applied" in first.stdout
    assert f"6 change(s) to s3://{bucket}" not in first.stdout  # no policy over plain HTTP: five changes
    assert f"5 change(s) to s3://{bucket} and workgroup {workgroup}" in first.stdout
    local = desired_state(bucket, workgroup, LakePolicy.from_settings(), s3_endpoint_url=aws_env)
    assert_matches(read_back(s3, athena, bucket, workgroup), local)
    again = subprocess.run([*argv, "--create-bucket"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"0 change(s) to s3://{bucket}" in again.stdout and "created" not in again.stdout


def test_the_launcher_stops_on_a_bad_setting_with_one_line(aws_env: str, monkeypatch) -> None:
    from devstack.stack import StackError, bootstrap_control_plane

    monkeypatch.setenv("SAGELAKE_LAKE_RAW_STORAGE_CLASS", "DEEP_ARCHIVE")
    with pytest.raises(StackError, match="SAGELAKE_LAKE_RAW_STORAGE_CLASS='DEEP_ARCHIVE' is not one of"):
        bootstrap_control_plane(aws_env, f"bad-{uuid.uuid4().hex[:10]}", ())
