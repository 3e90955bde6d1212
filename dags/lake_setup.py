"""Lake set-up as code: the lake bucket's safety and cost settings and the Athena workgroup, applied
idempotently (run it after creating the bucket, and whenever the policy in the settings changes).

On both targets, through the `aws_default` connection (`sagelake.lake.setup`):
1. **apply_lake_setup** — reads the bucket's and the workgroup's configuration back and applies only what
   differs from the desired state, printing each change (nothing, on a second run):
   - versioning **Enabled**;
   - lifecycle rules: `raw/` to a cheaper storage class after N days; noncurrent versions expire after N
     days — this is how the staged and superseded `version=` folders that `churn_prepare` deletes, and
     overwritten objects, leave the bucket; `quarantine/` and the Athena results expire after N days;
     incomplete multipart uploads are aborted after N days;
   - default encryption (SSE-S3, or SSE-KMS with `SAGELAKE_LAKE_KMS_KEY_ID`);
   - the public-access block (all four settings on);
   - a TLS-only bucket policy statement (deny `s3:*` without TLS), merged with the policy's other
     statements, which are kept; left out when S3 is reached over plain HTTP (the local control plane);
   - the Athena workgroup `athena_workgroup`: results under `s3://<bucket>/athena-results/` (enforced), a
     per-query bytes-scanned limit, CloudWatch metrics.
   Param `dry_run` only prints what would change.
2. **verify_lake_setup** — reads everything back again: nothing may be left to change; prints the
   workgroup's limit and result location.

Numbers, storage class and key are deployment policy: `SAGELAKE_LAKE_*` and `SAGELAKE_ATHENA_*` settings
(`sagelake.config.settings.lake_setup_settings`), not params. See docs/lake.md, "Set-up as code".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import dag, task

from sagelake.config.params import param, task_defaults
from sagelake.config.settings import AWS_CONN_ID, default_params

DEFAULTS = default_params()


def desired(params: dict[str, Any]) -> tuple[Any, Any, Any]:
    """S3 and Athena clients of ``aws_default``, and the desired state of the params' lake."""
    from sagelake.lake.setup import LakePolicy, desired_state

    s3 = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
    athena = AthenaHook(aws_conn_id=AWS_CONN_ID).get_conn()
    state = desired_state(
        params["bucket"],
        params["athena_workgroup"],
        LakePolicy.from_settings(),
        s3_endpoint_url=s3.meta.endpoint_url,
        partition=s3.meta.partition,
    )
    for note in state.notes:
        print(note)
    return s3, athena, state


@task
def apply_lake_setup(params: dict[str, Any]) -> list[str]:
    """Apply what differs from the desired state (only print it with ``dry_run``); return the changes."""
    from sagelake.lake.setup import apply, plan, read_current

    s3, athena, state = desired(params)
    if params["dry_run"]:
        changes = plan(state, read_current(s3, athena, state.bucket, state.workgroup))
    else:
        changes = apply(s3, athena, state)
    for change in changes:
        print(f"{'would change' if params['dry_run'] else 'changed'} {change}")
    print(f"{len(changes)} change(s) to s3://{state.bucket} and workgroup {state.workgroup}")
    return [str(change) for change in changes]


@task
def verify_lake_setup(params: dict[str, Any]) -> dict[str, Any]:
    """Read every setting back: fail if anything still differs; return the workgroup's limits."""
    from sagelake.lake.setup import plan, read_current, workgroup_limits

    s3, athena, state = desired(params)
    left = plan(state, read_current(s3, athena, state.bucket, state.workgroup))
    if left and not params["dry_run"]:
        raise RuntimeError("settings still differ after apply: " + "; ".join(map(str, left)))
    limits = workgroup_limits(athena, state.workgroup)
    print(f"workgroup {state.workgroup}: {limits}")
    return {
        "bytes_scanned_cutoff": limits.bytes_scanned_cutoff,
        "output_location": limits.output_location,
        "enforced": limits.enforced,
    }


@dag(
    dag_id="lake_setup",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "bucket": param(DEFAULTS["bucket"], type="string", description="The lake bucket (it must exist)."),
        "athena_workgroup": param(
            DEFAULTS["athena_workgroup"], type="string", description="Athena workgroup to create or update."
        ),
        "dry_run": param(False, type="boolean", description="Only print what would change."),
    },
    default_args=task_defaults("data-engineering"),
    tags=["sagelake", "lake", "setup", "s3", "athena"],
    doc_md=__doc__,
)
def lake_setup() -> None:
    apply_lake_setup() >> verify_lake_setup()


lake_setup()
