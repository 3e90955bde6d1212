"""Managed Spot training: deployment settings, the request fields, and billable vs training seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sagelake.ml.spot import (
    CHECKPOINT_LOCAL_PATH,
    MAX_TRAINING_SECONDS,
    SpotSettings,
    SpotSettingsError,
    billing_log_line,
    billing_summary,
    check_spot_request,
    checkpoint_uri,
    parse_spot_settings,
    spot_request_fields,
)


def test_spot_is_off_unless_the_deployment_turns_it_on() -> None:
    assert parse_spot_settings({}, bucket="lake") == SpotSettings(False, None, "lake")
    for word in ("true", "TRUE", " yes ", "1", "on"):
        assert parse_spot_settings({"SAGELAKE_SPOT_TRAINING": word}, bucket="lake").enabled
    for word in ("false", "0", "no", "off", ""):
        assert not parse_spot_settings({"SAGELAKE_SPOT_TRAINING": word}, bucket="lake").enabled


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SAGELAKE_SPOT_TRAINING": "maybe"}, "SAGELAKE_SPOT_TRAINING='maybe'"),
        ({"SAGELAKE_SPOT_MAX_WAIT_SECONDS": "1h"}, "SAGELAKE_SPOT_MAX_WAIT_SECONDS='1h'"),
        ({"SAGELAKE_SPOT_MAX_WAIT_SECONDS": "0"}, "SAGELAKE_SPOT_MAX_WAIT_SECONDS='0'"),
        ({"SAGELAKE_SPOT_MAX_WAIT_SECONDS": str(MAX_TRAINING_SECONDS + 1)}, "SAGELAKE_SPOT_MAX_WAIT_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SpotSettingsError, match=named.replace("'", ".")):
        parse_spot_settings(env, bucket="lake")


def test_wait_and_checkpoint_bucket_are_read() -> None:
    env = {
        "SAGELAKE_SPOT_TRAINING": "true",
        "SAGELAKE_SPOT_MAX_WAIT_SECONDS": "7200",
        "SAGELAKE_SPOT_CHECKPOINT_BUCKET": "ckpt",
    }
    assert parse_spot_settings(env, bucket="lake") == SpotSettings(True, 7200, "ckpt")
    with pytest.raises(SpotSettingsError, match="checkpoint bucket"):
        parse_spot_settings({"SAGELAKE_SPOT_TRAINING": "true"}, bucket="")


def test_no_spot_adds_nothing() -> None:
    assert spot_request_fields(None, job_name="j", max_runtime_s=600) == {}
    assert spot_request_fields(SpotSettings(False, 10, "lake"), job_name="j", max_runtime_s=600) == {}


def test_spot_fields_wait_defaults_to_twice_the_runtime_and_checkpoints_per_job() -> None:
    fields = spot_request_fields(SpotSettings(True, None, "lake"), job_name="churn-1", max_runtime_s=900)
    assert fields == {
        "EnableManagedSpotTraining": True,
        "StoppingCondition": {"MaxRuntimeInSeconds": 900, "MaxWaitTimeInSeconds": 1800},
        "CheckpointConfig": {"S3Uri": "s3://lake/checkpoints/churn-1/", "LocalPath": CHECKPOINT_LOCAL_PATH},
    }
    near_limit = spot_request_fields(
        SpotSettings(True, None, "lake"), job_name="j", max_runtime_s=MAX_TRAINING_SECONDS - 10
    )
    assert near_limit["StoppingCondition"]["MaxWaitTimeInSeconds"] == MAX_TRAINING_SECONDS


def test_a_wait_shorter_than_the_runtime_is_refused_with_both_numbers() -> None:
    with pytest.raises(SpotSettingsError, match="MaxWaitTimeInSeconds=599 .*MaxRuntimeInSeconds=600"):
        spot_request_fields(SpotSettings(True, 599, "lake"), job_name="j", max_runtime_s=600)
    equal = spot_request_fields(SpotSettings(True, 600, "lake"), job_name="j", max_runtime_s=600)
    assert equal["StoppingCondition"]["MaxWaitTimeInSeconds"] == 600


def test_checkpoint_prefixes_of_two_jobs_never_nest() -> None:
    first, second = checkpoint_uri("lake", "job"), checkpoint_uri("lake", "job-2")
    assert first == "s3://lake/checkpoints/job/"
    assert not second.startswith(first)
    for bucket, job in (("", "j"), ("a/b", "j"), ("lake", ""), ("lake", "a/b")):
        with pytest.raises(SpotSettingsError):
            checkpoint_uri(bucket, job)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"EnableManagedSpotTraining": True, "StoppingCondition": {"MaxRuntimeInSeconds": 60}}, "needs"),
        ({"StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120}}, "only valid"),
        (
            {
                "EnableManagedSpotTraining": True,
                "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 30},
            },
            "shorter",
        ),
    ],
)
def test_spot_requests_aws_refuses_are_refused(request_: dict, message: str) -> None:
    with pytest.raises(SpotSettingsError, match=message):
        check_spot_request({"TrainingJobName": "j", **request_})


def test_valid_spot_and_on_demand_requests_pass() -> None:
    check_spot_request({"StoppingCondition": {"MaxRuntimeInSeconds": 60}})
    check_spot_request(
        {
            "EnableManagedSpotTraining": True,
            "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 60},
        }
    )


def describe(**fields: object) -> dict:
    created = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    return {
        "TrainingJobName": "churn-1",
        "CreationTime": created,
        "TrainingEndTime": created + timedelta(seconds=1500),
        **fields,
    }


def test_billing_summary_of_a_spot_job() -> None:
    summary = billing_summary(
        describe(EnableManagedSpotTraining=True, TrainingTimeInSeconds=1200, BillableTimeInSeconds=300)
    )
    assert (summary.training_s, summary.billable_s, summary.wall_s) == (1200, 300, 1500.0)
    assert summary.managed_spot
    assert summary.saving == pytest.approx(0.75)
    line = billing_log_line(
        describe(EnableManagedSpotTraining=True, TrainingTimeInSeconds=1200, BillableTimeInSeconds=300)
    )
    assert line == (
        "training job churn-1 (managed spot): billable 300 s, training 1200 s, wall 1500 s, "
        "saving 75.0% (1 - billable/training)"
    )


def test_billing_summary_of_an_on_demand_job_saves_nothing() -> None:
    summary = billing_summary(describe(TrainingTimeInSeconds=42, BillableTimeInSeconds=42))
    assert not summary.managed_spot
    assert summary.saving == 0.0


def test_billing_summary_without_reported_times() -> None:
    summary = billing_summary({"TrainingJobName": "j", "TrainingTimeInSeconds": 0})
    assert (summary.training_s, summary.billable_s, summary.wall_s, summary.saving) == (0, None, None, None)
    line = billing_log_line({"TrainingJobName": "j"})
    assert "billable not reported" in line and "saving" not in line


def test_billing_summary_reads_json_times() -> None:
    answer = {
        "TrainingJobName": "j",
        "CreationTime": "2024-01-01T12:00:00+00:00",
        "TrainingEndTime": "2024-01-01T12:01:30+00:00",
        "TrainingTimeInSeconds": "80",
        "BillableTimeInSeconds": 20,
    }
    summary = billing_summary(answer)
    assert (summary.training_s, summary.billable_s, summary.wall_s) == (80, 20, 90.0)
    assert summary.saving == pytest.approx(0.75)
