"""The lake's bucket and Athena workgroup as code: desired settings as plain data, applied idempotently.

:func:`desired_state` builds what the lake should look like from the deployment settings
(``sagelake.config.settings.lake_setup_settings``); :func:`read_current` reads the same settings back
from S3 and Athena; :func:`plan` compares the two and returns only the requests that close the gap;
:func:`apply` does all three and returns the changes it made — ``[]`` when nothing differs.

Rules and policy statements sagelake manages are recognised by name (lifecycle rule IDs starting
``sagelake-``, policy statement ``Sid`` starting ``Sagelake``); anything else found on the bucket is kept.

Run as ``python -m sagelake.lake.setup [--bucket B] [--workgroup W] [--create-bucket]`` (the compose
stack's init), through the ``aws_default`` connection; the ``lake_setup`` DAG and the local launcher call
:func:`apply` directly.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake.layout import Lake, split_s3_uri

MANAGED_RULE_PREFIX = "sagelake-"
MANAGED_SID_PREFIX = "Sagelake"
# where spot training jobs checkpoint (sagelake.ml.spot.checkpoint_uri): left behind by finished jobs;
# batch scoring's per-run input and outputs (sagelake.ml.batch.batch_prefix), left behind by failed runs
CHECKPOINTS_PREFIX = "checkpoints/"
BATCH_PREFIX = "batch/"
TLS_ONLY_SID = "SagelakeDenyInsecureTransport"
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


@dataclass(frozen=True)
class LakePolicy:
    """The deployment policy of a lake (numbers, classes, key), as ``lake_setup_settings()`` gives it."""

    raw_storage_class: str = "STANDARD_IA"
    raw_transition_days: int = 30
    noncurrent_expiry_days: int = 7
    quarantine_expiry_days: int = 90
    athena_results_expiry_days: int = 30
    abort_multipart_days: int = 7
    kms_key_id: str = ""
    require_tls: bool = True
    bytes_scanned_cutoff: int = 10 * 1024**3
    scratch_expiry_days: int = 30

    @classmethod
    def from_settings(cls) -> LakePolicy:
        """The policy of the environment's settings (``SAGELAKE_LAKE_*``, ``SAGELAKE_ATHENA_*``)."""
        from sagelake.config.settings import lake_setup_settings

        return cls(**lake_setup_settings())  # type: ignore[arg-type]


@dataclass(frozen=True)
class DesiredLake:
    """Everything the set-up manages, in the shape of the S3 and Athena requests that set it."""

    bucket: str
    workgroup: str
    versioning: str
    lifecycle_rules: list[dict[str, Any]]
    encryption: dict[str, Any]
    public_access_block: dict[str, bool]
    policy_statements: list[dict[str, Any]]
    workgroup_configuration: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CurrentLake:
    """The same settings as read back from S3 and Athena; ``None`` where nothing is set."""

    versioning: str | None
    lifecycle_rules: list[dict[str, Any]]
    encryption: dict[str, Any] | None
    public_access_block: dict[str, bool] | None
    policy: dict[str, Any] | None
    workgroup: dict[str, Any] | None  # GetWorkGroup's ``WorkGroup``, None if it does not exist


@dataclass(frozen=True)
class Change:
    """One request that brings a setting to its desired value."""

    setting: str
    service: Literal["s3", "athena"]
    operation: str
    request: dict[str, Any]
    summary: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.summary}"


@dataclass(frozen=True)
class WorkgroupLimits:
    """What a workgroup imposes on each query: bytes-scanned cutoff and result location (if enforced)."""

    bytes_scanned_cutoff: int | None
    output_location: str | None
    enforced: bool


# --- desired state (pure) -------------------------------------------------------------------------


def top_prefix(uri: str) -> str:
    """The first folder of an ``s3://bucket/folder/...`` URI, as a key prefix (``folder/``)."""
    _, key = split_s3_uri(uri)
    return key.split("/", 1)[0] + "/"


def lifecycle_rules(lake: Lake, policy: LakePolicy) -> list[dict[str, Any]]:
    """The lifecycle rules sagelake manages, prefixes taken from the lake's layout.

    Deleted and overwritten objects become noncurrent versions (the bucket is versioned) and expire
    after ``noncurrent_expiry_days``: that is how the staged, rejected and superseded ``version=``
    folders that ``churn_prepare`` deletes actually leave the bucket. Their delete markers go too.
    """
    any_dt = "2000-01-01"
    raw, quarantine = top_prefix(lake.raw_customers(any_dt)), top_prefix(lake.quarantine(any_dt))
    results = top_prefix(lake.athena_results())
    return [
        {
            "ID": f"{MANAGED_RULE_PREFIX}raw-to-{policy.raw_storage_class.lower().replace('_', '-')}",
            "Status": "Enabled",
            "Filter": {"Prefix": raw},
            "Transitions": [{"Days": policy.raw_transition_days, "StorageClass": policy.raw_storage_class}],
        },
        {
            "ID": f"{MANAGED_RULE_PREFIX}noncurrent-versions-expiry",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": policy.noncurrent_expiry_days},
            "Expiration": {"ExpiredObjectDeleteMarker": True},
        },
        {
            "ID": f"{MANAGED_RULE_PREFIX}quarantine-expiry",
            "Status": "Enabled",
            "Filter": {"Prefix": quarantine},
            "Expiration": {"Days": policy.quarantine_expiry_days},
        },
        {
            "ID": f"{MANAGED_RULE_PREFIX}athena-results-expiry",
            "Status": "Enabled",
            "Filter": {"Prefix": results},
            "Expiration": {"Days": policy.athena_results_expiry_days},
        },
        *(
            {
                "ID": f"{MANAGED_RULE_PREFIX}{prefix.rstrip('/')}-expiry",
                "Status": "Enabled",
                "Filter": {"Prefix": prefix},
                "Expiration": {"Days": policy.scratch_expiry_days},
            }
            for prefix in (top_prefix(lake.training_data(any_dt, "r")), CHECKPOINTS_PREFIX, BATCH_PREFIX)
        ),
        {
            "ID": f"{MANAGED_RULE_PREFIX}abort-incomplete-multipart-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": policy.abort_multipart_days},
        },
    ]


def encryption_configuration(kms_key_id: str) -> dict[str, Any]:
    """Default encryption: SSE-KMS with ``kms_key_id`` (and an S3 bucket key), else SSE-S3."""
    if kms_key_id:
        default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id}
        return {"Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]}
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def tls_only_statement(bucket: str, partition: str = "aws") -> dict[str, Any]:
    """Deny every S3 action on the bucket and its objects to requests not made over TLS."""
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def workgroup_configuration(lake: Lake, policy: LakePolicy) -> dict[str, Any]:
    """The Athena workgroup: results under the lake (enforced, encrypted like the lake), a per-query
    bytes-scanned limit, CloudWatch metrics."""
    if policy.kms_key_id:
        encryption = {"EncryptionOption": "SSE_KMS", "KmsKey": policy.kms_key_id}
    else:
        encryption = {"EncryptionOption": "SSE_S3"}
    return {
        "ResultConfiguration": {
            "OutputLocation": lake.athena_results(),
            "EncryptionConfiguration": encryption,
        },
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
        "BytesScannedCutoffPerQuery": policy.bytes_scanned_cutoff,
    }


def desired_state(
    bucket: str,
    workgroup: str,
    policy: LakePolicy,
    *,
    s3_endpoint_url: str | None = None,
    partition: str = "aws",
) -> DesiredLake:
    """What the set-up applies to ``bucket`` and ``workgroup``.

    The TLS-only statement is left out when S3 is reached over plain ``http://`` (the local control
    plane): it would deny every request made through that endpoint — moto ignores the condition and
    denies every object request outright. The reason is kept in ``notes``.
    """
    lake = Lake(bucket)
    statements, notes = [], []
    if policy.require_tls and str(s3_endpoint_url or "").startswith("http://"):
        notes.append(
            f"TLS-only bucket policy not applied: S3 is reached over plain HTTP ({s3_endpoint_url}), "
            "where it would deny every request"
        )
    elif policy.require_tls:
        statements.append(tls_only_statement(bucket, partition))
    return DesiredLake(
        bucket=bucket,
        workgroup=workgroup,
        versioning="Enabled",
        lifecycle_rules=lifecycle_rules(lake, policy),
        encryption=encryption_configuration(policy.kms_key_id),
        public_access_block=dict(PUBLIC_ACCESS_BLOCK),
        policy_statements=statements,
        workgroup_configuration=workgroup_configuration(lake, policy),
        notes=notes,
    )


# --- comparison and merging (pure) ----------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return sorted(value) if isinstance(value, list) else [value]


def canonical_statement(statement: Mapping[str, Any]) -> str:
    """A statement as a comparable string: a single value and a one-element list are the same."""
    norm = dict(statement)
    for key in ("Action", "NotAction", "Resource", "NotResource"):
        if key in norm:
            norm[key] = _as_list(norm[key])
    if "Condition" in norm:
        norm["Condition"] = {
            op: {k: _as_list(v) for k, v in values.items()} for op, values in norm["Condition"].items()
        }
    return json.dumps(norm, sort_keys=True)


def is_managed_statement(statement: Mapping[str, Any]) -> bool:
    return str(statement.get("Sid", "")).startswith(MANAGED_SID_PREFIX)


def merge_policy(
    current: Mapping[str, Any] | None, managed: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The bucket policy with sagelake's statements replaced by ``managed`` and every other statement kept
    as it was; ``None`` if no statement remains."""
    existing = current.get("Statement", []) if current else []
    if isinstance(existing, dict):
        existing = [existing]
    foreign = [dict(s) for s in existing if not is_managed_statement(s)]
    statements = foreign + [dict(s) for s in managed]
    if not statements:
        return None
    merged = {"Version": (current or {}).get("Version", "2012-10-17"), "Statement": statements}
    if current and "Id" in current:
        merged["Id"] = current["Id"]
    return merged


def same_policy(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two policies hold the same statements (in any order)."""
    if a is None or b is None:
        return a is None and b is None

    def statements(policy: Mapping[str, Any]) -> list[str]:
        found = policy.get("Statement", [])
        return sorted(canonical_statement(s) for s in ([found] if isinstance(found, dict) else found))

    return statements(a) == statements(b)


def canonical_rule(rule: Mapping[str, Any]) -> str:
    """A lifecycle rule as a comparable string (an empty filter is the whole-bucket prefix ``""``)."""
    norm = {k: v for k, v in rule.items() if v is not None}
    if norm.get("Filter") == {}:
        norm["Filter"] = {"Prefix": ""}
    if "Prefix" in norm and "Filter" not in norm:  # the legacy top-level prefix
        norm["Filter"] = {"Prefix": norm.pop("Prefix")}
    return json.dumps(norm, sort_keys=True, default=str)


def merge_lifecycle(current: Sequence[Mapping[str, Any]], managed: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The bucket's lifecycle rules with sagelake's replaced by ``managed``, every other rule kept."""
    foreign = [dict(r) for r in current if not str(r.get("ID", "")).startswith(MANAGED_RULE_PREFIX)]
    return foreign + [dict(r) for r in managed]


def same_rules(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    return sorted(map(canonical_rule, a)) == sorted(map(canonical_rule, b))


def _encryption_rule(configuration: Mapping[str, Any] | None) -> dict[str, Any] | None:
    rules = (configuration or {}).get("Rules") or []
    if not rules:
        return None
    rule = rules[0]
    default = {k: v for k, v in rule.get("ApplyServerSideEncryptionByDefault", {}).items() if v}
    return {"default": default, "bucket_key": bool(rule.get("BucketKeyEnabled", False))}


def managed_workgroup_settings(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a workgroup configuration the set-up manages."""
    results = configuration.get("ResultConfiguration") or {}
    return {
        "OutputLocation": results.get("OutputLocation"),
        "EncryptionConfiguration": results.get("EncryptionConfiguration"),
        "EnforceWorkGroupConfiguration": bool(configuration.get("EnforceWorkGroupConfiguration", False)),
        "PublishCloudWatchMetricsEnabled": bool(configuration.get("PublishCloudWatchMetricsEnabled", False)),
        "BytesScannedCutoffPerQuery": configuration.get("BytesScannedCutoffPerQuery"),
    }


def plan(desired: DesiredLake, current: CurrentLake) -> list[Change]:
    """The requests that turn ``current`` into ``desired``, one per setting that differs."""
    bucket, changes = desired.bucket, []
    if current.versioning != desired.versioning:
        changes.append(
            Change(
                "versioning",
                "s3",
                "put_bucket_versioning",
                {"Bucket": bucket, "VersioningConfiguration": {"Status": desired.versioning}},
                f"{current.versioning or 'never enabled'} -> {desired.versioning}",
            )
        )
    if _encryption_rule(current.encryption) != _encryption_rule(desired.encryption):
        algorithm = desired.encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        changes.append(
            Change(
                "default encryption",
                "s3",
                "put_bucket_encryption",
                {"Bucket": bucket, "ServerSideEncryptionConfiguration": desired.encryption},
                f"set to {algorithm}",
            )
        )
    if current.public_access_block != desired.public_access_block:
        changes.append(
            Change(
                "public access block",
                "s3",
                "put_public_access_block",
                {"Bucket": bucket, "PublicAccessBlockConfiguration": desired.public_access_block},
                "all four blocks on",
            )
        )
    rules = merge_lifecycle(current.lifecycle_rules, desired.lifecycle_rules)
    if not same_rules(rules, current.lifecycle_rules):
        kept = len(rules) - len(desired.lifecycle_rules)
        changes.append(
            Change(
                "lifecycle rules",
                "s3",
                "put_bucket_lifecycle_configuration",
                {"Bucket": bucket, "LifecycleConfiguration": {"Rules": rules}},
                f"{len(desired.lifecycle_rules)} sagelake rules set, {kept} other rule(s) kept",
            )
        )
    policy = merge_policy(current.policy, desired.policy_statements)
    if not same_policy(policy, current.policy):
        if policy is None:
            changes.append(
                Change(
                    "bucket policy", "s3", "delete_bucket_policy", {"Bucket": bucket}, "sagelake's removed"
                )
            )
        else:
            kept = len(policy["Statement"]) - len(desired.policy_statements)
            changes.append(
                Change(
                    "bucket policy",
                    "s3",
                    "put_bucket_policy",
                    {"Bucket": bucket, "Policy": json.dumps(policy)},
                    f"{len(desired.policy_statements)} sagelake statement(s) set, {kept} other(s) kept",
                )
            )
    changes.extend(_plan_workgroup(desired, current.workgroup))
    return changes


def _plan_workgroup(desired: DesiredLake, current: Mapping[str, Any] | None) -> list[Change]:
    wanted = desired.workgroup_configuration
    if current is None:
        request = {
            "Name": desired.workgroup,
            "Configuration": wanted,
            "Description": f"sagelake: queries over s3://{desired.bucket}",
        }
        return [
            Change("athena workgroup", "athena", "create_work_group", request, f"{desired.workgroup} created")
        ]
    differs = managed_workgroup_settings(current.get("Configuration") or {}) != managed_workgroup_settings(
        wanted
    )
    disabled = current.get("State", "ENABLED") != "ENABLED"
    if not differs and not disabled:
        return []
    updates = {
        "ResultConfigurationUpdates": dict(wanted["ResultConfiguration"]),
        "EnforceWorkGroupConfiguration": wanted["EnforceWorkGroupConfiguration"],
        "PublishCloudWatchMetricsEnabled": wanted["PublishCloudWatchMetricsEnabled"],
        "BytesScannedCutoffPerQuery": wanted["BytesScannedCutoffPerQuery"],
    }
    request: dict[str, Any] = {"WorkGroup": desired.workgroup, "ConfigurationUpdates": updates}
    if disabled:
        request["State"] = "ENABLED"
    return [
        Change("athena workgroup", "athena", "update_work_group", request, f"{desired.workgroup} updated")
    ]


def limits_of(workgroup: Mapping[str, Any]) -> WorkgroupLimits:
    """The per-query limit and result location of a ``GetWorkGroup`` ``WorkGroup``."""
    configuration = workgroup.get("Configuration") or {}
    return WorkgroupLimits(
        bytes_scanned_cutoff=configuration.get("BytesScannedCutoffPerQuery"),
        output_location=(configuration.get("ResultConfiguration") or {}).get("OutputLocation"),
        enforced=bool(configuration.get("EnforceWorkGroupConfiguration", False)),
    )


# --- reading and applying (S3 and Athena clients) -------------------------------------------------


def _or_none(call: Any, *missing: str) -> Any:
    try:
        return call()
    except ClientError as error:
        if has_code(error, *missing):
            return None
        raise


def get_workgroup(athena: Any, name: str) -> dict[str, Any] | None:
    """``GetWorkGroup``'s ``WorkGroup``, or ``None`` if there is no such workgroup."""
    found = _or_none(lambda: athena.get_work_group(WorkGroup=name), "InvalidRequestException")
    return (found or {}).get("WorkGroup") or None


def read_current(s3: Any, athena: Any, bucket: str, workgroup: str) -> CurrentLake:
    """Every managed setting as S3 and Athena report it now (raises if the bucket does not exist)."""
    s3.head_bucket(Bucket=bucket)
    lifecycle = _or_none(
        lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "NoSuchLifecycleConfiguration"
    )
    encryption = _or_none(
        lambda: s3.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfigurationNotFoundError"
    )
    block = _or_none(
        lambda: s3.get_public_access_block(Bucket=bucket), "NoSuchPublicAccessBlockConfiguration"
    )
    policy = _or_none(lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")
    return CurrentLake(
        versioning=s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        lifecycle_rules=(lifecycle or {}).get("Rules", []),
        encryption=(encryption or {}).get("ServerSideEncryptionConfiguration"),
        public_access_block=(block or {}).get("PublicAccessBlockConfiguration"),
        policy=json.loads(policy["Policy"]) if policy else None,
        workgroup=get_workgroup(athena, workgroup),
    )


def apply(s3: Any, athena: Any, desired: DesiredLake) -> list[Change]:
    """Bring the bucket and workgroup to ``desired``; return the changes made (``[]``: nothing differed)."""
    changes = plan(desired, read_current(s3, athena, desired.bucket, desired.workgroup))
    clients = {"s3": s3, "athena": athena}
    for change in changes:
        getattr(clients[change.service], change.operation)(**change.request)
    return changes


def workgroup_limits(athena: Any, workgroup: str) -> WorkgroupLimits:
    """The workgroup's bytes-scanned limit and result location (what a local engine should enforce)."""
    found = get_workgroup(athena, workgroup)
    if found is None:
        return WorkgroupLimits(bytes_scanned_cutoff=None, output_location=None, enforced=False)
    return limits_of(found)


def ensure_bucket(s3: Any, bucket: str) -> bool:
    """Create ``bucket`` in the client's region unless it exists; return whether it was created."""
    if _or_none(lambda: s3.head_bucket(Bucket=bucket), "404", "NoSuchBucket", "NotFound") is not None:
        return False
    region = s3.meta.region_name
    location = (
        {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3.create_bucket(Bucket=bucket, **location)
    return True


def main(argv: list[str] | None = None) -> int:
    """Apply the set-up through the ``aws_default`` connection and print each change."""
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from sagelake.config.settings import AWS_CONN_ID, default_params

    params = default_params()
    parser = argparse.ArgumentParser(description="Apply the lake set-up (bucket settings, Athena workgroup).")
    parser.add_argument("--bucket", default=str(params["bucket"]))
    parser.add_argument("--workgroup", default=str(params["athena_workgroup"]))
    parser.add_argument("--create-bucket", action="store_true", help="create the bucket if it does not exist")
    args = parser.parse_args(argv)
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
    athena = AthenaHook(aws_conn_id=AWS_CONN_ID).get_conn()
    if args.create_bucket and ensure_bucket(s3, args.bucket):
        print(f"bucket {args.bucket} created")
    desired = desired_state(
        args.bucket,
        args.workgroup,
        LakePolicy.from_settings(),
        s3_endpoint_url=s3.meta.endpoint_url,
        partition=s3.meta.partition,
    )
    for note in desired.notes:
        print(note)
    changes = apply(s3, athena, desired)
    for change in changes:
        print(change)
    print(f"{len(changes)} change(s) to s3://{args.bucket} and workgroup {args.workgroup}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
