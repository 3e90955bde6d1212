"""The profile operator without AWS: templates render, on AWS it defines the DataBrew dataset and job,
defers on the provider's trigger and converts the job's output into profile.json + report.html; the
report link reads its XCom. DataBrew and S3 are fakes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.glue_databrew import GlueDataBrewHook
from airflow.providers.amazon.aws.triggers.glue_databrew import GlueDataBrewJobCompleteTrigger
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from botocore.exceptions import ClientError

from sagelake.lake import profiles
from sagelake.lake.links import console_url
from sagelake.operators import databrew as module
from sagelake.operators.databrew import (
    REPORT_URL_KEY,
    DataBrewProfileOperator,
    ProfileReportLink,
    databrew_output_key,
    ensure_profile_job,
)
from tests.support.constants import REGION

SAMPLE = json.loads((Path(__file__).parents[1] / "lake" / "databrew_profile_output.json").read_text())
DT = "2026-03-01"
VERSION = "20260301T060000000000Z-abc123"
LOCATION = f"s3://lake/curated/churn_features/dt={DT}/version={VERSION}/"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagelake-databrew"


class FakeS3:
    """Objects in a dict; enough of the S3 client for the operator."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str = "", **_: Any) -> None:
        stamp = datetime(2026, 3, 1, tzinfo=UTC).replace(second=len(self.objects))
        self.objects[(Bucket, Key)] = {"Body": Body, "ContentType": ContentType, "LastModified": stamp}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)]["Body"])}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        paginator = mock.Mock()
        paginator.paginate = lambda Bucket, Prefix: [
            {
                "Contents": [
                    {"Key": key, "LastModified": obj["LastModified"]}
                    for (bucket, key), obj in sorted(self.objects.items())
                    if bucket == Bucket and key.startswith(Prefix)
                ]
            }
        ]
        return paginator


def not_found(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, operation)


def operator(**kwargs: Any) -> DataBrewProfileOperator:
    return DataBrewProfileOperator(
        **{
            "task_id": "profile_churn_features",
            "dataset": "churn_features",
            "dt": DT,
            "location": LOCATION,
            "bucket": "lake",
            "role": "sagelake-databrew",
            "deferrable": True,
            "waiter_delay": 20,
            **kwargs,
        }
    )


@pytest.fixture()
def fakes(aws_target) -> Any:
    """A DataBrew client (dataset and job missing at first) and S3, patched into the operator's hooks."""
    databrew = mock.Mock()
    databrew.describe_dataset.side_effect = not_found("DescribeDataset")
    databrew.describe_job.side_effect = not_found("DescribeJob")
    databrew.start_job_run.return_value = {"RunId": "db_run_1"}
    databrew.meta.client.meta.region_name = REGION
    s3 = FakeS3()
    with (
        mock.patch.object(GlueDataBrewHook, "conn", new_callable=mock.PropertyMock, return_value=databrew),
        mock.patch.object(GlueDataBrewHook, "expand_role", return_value=ROLE_ARN) as expand_role,
        mock.patch.object(DataBrewProfileOperator, "s3", new_callable=mock.PropertyMock, return_value=s3),
    ):
        yield mock.Mock(databrew=databrew, s3=s3, expand_role=expand_role)


def test_template_fields_render(render) -> None:
    op = operator(
        dataset="{{ params.dataset }}",
        dt="{{ params.dt }}",
        location="{{ params.location }}",
        bucket="{{ params.bucket }}",
        role="{{ params.role }}",
        version="{{ params.version }}",
        job_name="job-{{ params.dataset }}",
    )
    params = {
        "dataset": "churn_features",
        "dt": DT,
        "location": LOCATION,
        "bucket": "lake",
        "role": "r",
        "version": "v9",
    }
    render(op, params=params)
    rendered = (op.dataset, op.dt, op.location, op.bucket, op.role, op.version, op.job_name)
    assert rendered == ("churn_features", DT, LOCATION, "lake", "r", "v9", "job-churn_features")
    assert operator().job_name == "sagelake-profile-churn_features"
    assert ProfileReportLink().name in {link.name for link in operator().operator_extra_links}


def test_aws_defines_the_job_then_defers(fakes, context) -> None:
    op = operator()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)

    trigger = deferred.value.trigger
    assert isinstance(trigger, GlueDataBrewJobCompleteTrigger)
    assert trigger.waiter_args == {"Name": "sagelake-profile-churn_features", "RunId": "db_run_1"}
    assert trigger.waiter_delay == 20
    assert deferred.value.method_name == "execute_complete"
    fakes.expand_role.assert_called_once_with("sagelake-databrew")
    keys = profiles.profile_keys("lake", "churn_features", DT, VERSION)
    fakes.databrew.create_dataset.assert_called_once_with(
        **profiles.databrew_dataset_request("sagelake-profile-churn_features", LOCATION)
    )
    job = fakes.databrew.create_profile_job.call_args.kwargs
    assert job == profiles.databrew_profile_job_request(
        "sagelake-profile-churn_features", "sagelake-profile-churn_features", ROLE_ARN, keys
    )
    fakes.databrew.start_job_run.assert_called_once_with(Name="sagelake-profile-churn_features")


def test_aws_completion_converts_the_output_and_writes_the_profile(fakes, context) -> None:
    keys = profiles.profile_keys("lake", "churn_features", DT, VERSION)
    output_key = keys.databrew_output_key + "sagelake-profile-churn_features_db_run_1.json"
    fakes.s3.put_object(Bucket="lake", Key=output_key, Body=json.dumps(SAMPLE).encode())

    result = operator().execute_complete(context, {"status": "success", "run_id": "db_run_1"})

    assert result["engine"] == "databrew" and result["profile"] == keys.uri(keys.profile_key)
    assert result["report_url"] == console_url("lake", keys.report_key, REGION)
    stored = fakes.s3.objects[("lake", keys.profile_key)]
    assert stored["ContentType"] == "application/json"
    profile = profiles.from_document(json.loads(stored["Body"]))
    expected = profiles.from_databrew(
        SAMPLE,
        dataset="churn_features",
        dt=DT,
        version=VERSION,
        location=LOCATION,
        created_at=profile.created_at,
    )
    assert profile == expected
    report = fakes.s3.objects[("lake", keys.report_key)]
    assert report["ContentType"].startswith("text/html") and report["Body"].decode() == profiles.render_html(
        profile
    )
    context["ti"].xcom_push.assert_any_call(key=REPORT_URL_KEY, value=result["report_url"])


def test_aws_failed_job_writes_nothing(fakes, context) -> None:
    with pytest.raises(AirflowException):
        operator().execute_complete(context, {"status": "failed", "run_id": "db_run_1"})
    assert fakes.s3.objects == {}


def test_aws_waits_without_deferring(fakes, context) -> None:
    keys = profiles.profile_keys("lake", "churn_features", DT, VERSION)
    fakes.s3.put_object(
        Bucket="lake", Key=keys.databrew_output_key + "x.json", Body=json.dumps(SAMPLE).encode()
    )
    with mock.patch.object(GlueDataBrewHook, "job_completion", return_value="SUCCEEDED") as waited:
        result = operator(deferrable=False).execute(context)
    waited.assert_called_once()
    assert ("lake", keys.profile_key) in fakes.s3.objects and result["version"] == VERSION


def test_existing_definitions_are_updated() -> None:
    databrew = mock.Mock()
    dataset = profiles.databrew_dataset_request("n", LOCATION)
    job = profiles.databrew_profile_job_request(
        "n", "n", ROLE_ARN, profiles.profile_keys("lake", "d", DT, "v")
    )
    ensure_profile_job(databrew, dataset, job)
    databrew.update_dataset.assert_called_once_with(**dataset)
    databrew.update_profile_job.assert_called_once_with(**profiles.update_profile_job_request(job))
    databrew.create_dataset.assert_not_called()
    databrew.create_profile_job.assert_not_called()


def test_other_errors_are_not_swallowed() -> None:
    databrew = mock.Mock()
    databrew.describe_dataset.side_effect = ClientError(
        {"Error": {"Code": "AccessDeniedException"}}, "Describe"
    )
    with pytest.raises(ClientError):
        ensure_profile_job(databrew, {"Name": "n"}, {"Name": "n"})
    databrew.create_dataset.assert_not_called()


def test_output_key_prefers_the_run_then_the_newest() -> None:
    s3 = FakeS3()
    for key in ("p/a_run2.json", "p/b_run1.json", "p/c.json", "p/manifest.txt"):
        s3.put_object(Bucket="lake", Key=key, Body=b"{}")
    assert databrew_output_key(s3, "lake", "p/", "run1") == "p/b_run1.json"
    assert databrew_output_key(s3, "lake", "p/", "run9") == "p/c.json"  # newest .json
    with pytest.raises(FileNotFoundError, match="s3://lake/q/"):
        databrew_output_key(s3, "lake", "q/", "run1")


def test_version_is_required_somewhere(aws_target, context) -> None:
    op = operator(location="s3://lake/curated/churn_features/dt=2026-03-01/")
    with pytest.raises(ValueError, match="no version"):
        op.execute(context)


def test_report_link_reads_the_xcom() -> None:
    with mock.patch.object(module.XCom, "get_value", return_value="https://report") as get_value:
        assert ProfileReportLink().get_link(operator(), ti_key="key") == "https://report"
    get_value.assert_called_once_with(key=REPORT_URL_KEY, ti_key="key")
