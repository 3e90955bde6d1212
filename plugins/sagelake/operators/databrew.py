"""Data profiles of published partitions: a Glue DataBrew profile job on AWS, the local profiler locally."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.glue_databrew import GlueDataBrewStartJobOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom
from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.config.target import is_local
from sagelake.lake import profiles
from sagelake.lake.links import report_link

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey
    from airflow.sdk import BaseOperator, Context

REPORT_URL_KEY = "profile_report_url"


class ProfileReportLink(BaseOperatorLink):
    """The task's "Profile report" button: the report the task wrote (local control plane URL, or the
    object's page in the S3 console)."""

    name = "Profile report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(key=REPORT_URL_KEY, ti_key=ti_key) or ""


def ensure_profile_job(databrew: Any, dataset: Mapping[str, Any], job: Mapping[str, Any]) -> None:
    """Create the DataBrew dataset and profile job, or update them to these definitions (idempotent)."""
    try:
        databrew.describe_dataset(Name=dataset["Name"])
    except ClientError as error:
        if not has_code(error, "ResourceNotFoundException"):
            raise
        databrew.create_dataset(**dataset)
    else:
        databrew.update_dataset(**dataset)
    try:
        databrew.describe_job(Name=job["Name"])
    except ClientError as error:
        if not has_code(error, "ResourceNotFoundException"):
            raise
        databrew.create_profile_job(**job)
    else:
        databrew.update_profile_job(**profiles.update_profile_job_request(job))


def databrew_output_key(s3: Any, bucket: str, prefix: str, run_id: str) -> str:
    """The key of the profile job's output JSON under ``prefix``: the one naming ``run_id`` if any, else the
    newest (the prefix belongs to one partition version, so only re-runs of that version write there)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    found = [o for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".json")]
    if not found:
        raise FileNotFoundError(f"no DataBrew profile output (.json) under s3://{bucket}/{prefix}")
    named = [o for o in found if run_id and run_id in o["Key"]]
    return max(named or found, key=lambda o: (o["LastModified"], o["Key"]))["Key"]


class DataBrewProfileOperator(GlueDataBrewStartJobOperator):
    """Profile one published partition version and store ``profile.json`` and ``report.html`` in the lake.

    Extends :class:`airflow.providers.amazon.aws.operators.glue_databrew.GlueDataBrewStartJobOperator`.
    On the ``aws`` target it first creates or updates (idempotently, through the provider's
    ``GlueDataBrewHook``) a DataBrew dataset over the Parquet files at ``location`` and a profile job of the
    full dataset writing under the profile's folder, then the provider starts the job (deferrable as
    usual); when it has succeeded its output is converted (:func:`sagelake.lake.profiles.from_databrew`)
    and written beside it. On the ``local`` target (moto cannot run DataBrew jobs) the same statistics are
    computed by :mod:`sagelake.local.profiler` on DuckDB from the same files, synchronously: ``deferrable``,
    ``wait_for_completion``, the waiter settings and ``role`` have no effect there.

    The profile goes to ``s3://<bucket>/profiles/<dataset>/dt=<dt>/version=<version>/`` (see
    :func:`sagelake.lake.profiles.profile_keys`). Returns ``{dataset, dt, version, engine, profile, report,
    report_url}``; the report's URL is also the task's "Profile report" link. Runs of the same ``dataset``
    share one DataBrew dataset and job: run one at a time (the DAG's ``max_active_runs=1``).

    :param dataset: the lake dataset profiled, e.g. ``churn_features``; names the profile folder. (templated)
    :param dt: its partition, ``YYYY-MM-DD``. (templated)
    :param location: the published version's S3 location (the catalog partition's location). (templated)
    :param bucket: the lake bucket the profile is written to. (templated)
    :param role: IAM role name or ARN the DataBrew job runs as (``aws`` target only). (templated)
    :param version: the published version; default: the ``version=`` folder of ``location``. (templated)
    :param job_name: DataBrew dataset and job name; default ``sagelake-profile-<dataset>``. (templated)
    """

    template_fields: Sequence[str] = aws_template_fields(
        "job_name",
        "wait_for_completion",
        "waiter_delay",
        "waiter_max_attempts",
        "deferrable",
        "dataset",
        "dt",
        "location",
        "bucket",
        "role",
        "version",
    )
    operator_extra_links = (ProfileReportLink(),)

    def __init__(
        self,
        *,
        dataset: str,
        dt: str,
        location: str,
        bucket: str,
        role: str = "",
        version: str | None = None,
        job_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(job_name=job_name or f"sagelake-profile-{dataset}", **kwargs)
        self.dataset = dataset
        self.dt = dt
        self.location = location
        self.bucket = bucket
        self.role = role
        self.version = version

    def _version(self) -> str:
        version = self.version or profiles.version_of(self.location)
        if not version:
            raise ValueError(f"no version given and {self.location} has no version= folder: pass version")
        return version

    def _keys(self) -> profiles.ProfileKeys:
        return profiles.profile_keys(self.bucket, self.dataset, self.dt, self._version())

    @property
    def s3(self) -> Any:
        return S3Hook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify
        ).get_conn()

    def execute(self, context: Context) -> dict[str, Any]:
        keys = self._keys()
        if is_local():
            return self._store(context, keys, self._profile_locally())
        role_arn = self.hook.expand_role(self.role) if self.role else ""
        if not role_arn:
            raise ValueError("role is required on the aws target: the IAM role the DataBrew job runs as")
        ensure_profile_job(
            self.hook.conn,
            profiles.databrew_dataset_request(self.job_name, self.location),
            profiles.databrew_profile_job_request(self.job_name, self.job_name, role_arn, keys),
        )
        started = super().execute(context)  # defers when deferrable
        if not self.wait_for_completion:
            self.log.info("DataBrew run %s started; not waiting, so no profile is written", started["run_id"])
            return started
        return self._store(context, keys, self._convert(keys, started["run_id"]))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        finished = super().execute_complete(context, event)
        keys = self._keys()
        return self._store(context, keys, self._convert(keys, finished["run_id"]))

    def _profile_locally(self) -> profiles.Profile:
        from sagelake.local.aws_session import access_from_hook
        from sagelake.local.profiler import profile_location

        self.log.info("Profiling %s locally (DuckDB)", self.location)
        return profile_location(
            access_from_hook(self.hook),
            self.location,
            dataset=self.dataset,
            dt=self.dt,
            version=self._version(),
            created_at=_now(),
        )

    def _convert(self, keys: profiles.ProfileKeys, run_id: str) -> profiles.Profile:
        s3 = self.s3
        key = databrew_output_key(s3, keys.bucket, keys.databrew_output_key, run_id)
        self.log.info("Converting DataBrew output %s", keys.uri(key))
        output = json.loads(s3.get_object(Bucket=keys.bucket, Key=key)["Body"].read())
        return profiles.from_databrew(
            output,
            dataset=self.dataset,
            dt=self.dt,
            version=self._version(),
            location=self.location,
            created_at=_now(),
        )

    def _report_url(self, s3: Any, keys: profiles.ProfileKeys) -> str:
        """On AWS the report's S3 console page; locally a presigned URL the control plane serves (its
        objects are private, as on AWS), valid for a week."""
        uri = f"s3://{keys.bucket}/{keys.report_key}"
        return report_link(s3, uri, self.hook.conn_region_name, local=is_local())

    def _store(
        self, context: Context, keys: profiles.ProfileKeys, profile: profiles.Profile
    ) -> dict[str, Any]:
        s3 = self.s3
        s3.put_object(
            Bucket=keys.bucket,
            Key=keys.profile_key,
            Body=profiles.to_json(profile).encode(),
            ContentType="application/json",
        )
        s3.put_object(
            Bucket=keys.bucket,
            Key=keys.report_key,
            Body=profiles.render_html(profile).encode(),
            ContentType="text/html; charset=utf-8",
        )
        url = self._report_url(s3, keys)
        context["ti"].xcom_push(key=REPORT_URL_KEY, value=url)
        self.log.info(
            "Profile of %s dt=%s (%d rows, %d columns): %s; report: %s",
            profile.dataset,
            profile.dt,
            profile.row_count,
            len(profile.columns),
            keys.uri(keys.profile_key),
            url,
        )
        return {
            "dataset": profile.dataset,
            "dt": profile.dt,
            "version": profile.version,
            "engine": profile.engine,
            "profile": keys.uri(keys.profile_key),
            "report": keys.uri(keys.report_key),
            "report_url": url,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
