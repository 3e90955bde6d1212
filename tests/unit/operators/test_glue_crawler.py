"""The crawler operator without Glue: on AWS it creates or updates the crawler and defers like the
provider's; its config is templated. The hook is mocked."""

from __future__ import annotations

from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.glue_crawler import GlueCrawlerHook
from airflow.providers.amazon.aws.triggers.glue_crawler import GlueCrawlerCompleteTrigger
from airflow.sdk.exceptions import TaskDeferred

from sagelake.lake.discovery import crawler_config
from sagelake.operators.glue_crawler import SagelakeGlueCrawlerOperator

TEMPLATED = crawler_config(
    name="{{ params.crawler_name }}",
    role="{{ params.glue_role }}",
    database="{{ params.glue_database }}",
    bucket="{{ params.bucket }}",
)
CONFIG = crawler_config(name="sagelake-raw", role="sagelake-glue", database="sagelake", bucket="lake")


def crawl_op(**kwargs) -> SagelakeGlueCrawlerOperator:
    return SagelakeGlueCrawlerOperator(
        **{"task_id": "crawl_raw", "config": dict(CONFIG), "deferrable": True, "poll_interval": 30, **kwargs}
    )


def test_template_fields_render_the_crawler_definition(render) -> None:
    op = crawl_op(config=TEMPLATED)
    assert "config" in op.template_fields and "aws_conn_id" in op.template_fields
    params = {"crawler_name": "c1", "glue_role": "role1", "glue_database": "db1", "bucket": "b1"}
    render(op, params=params)
    assert (op.config["Name"], op.config["Role"], op.config["DatabaseName"]) == ("c1", "role1", "db1")
    assert op.config["Targets"]["S3Targets"][0]["Path"] == "s3://b1/raw/"


class TestOnAws:
    @mock.patch.object(GlueCrawlerHook, "start_crawler")
    @mock.patch.object(GlueCrawlerHook, "create_crawler")
    @mock.patch.object(GlueCrawlerHook, "has_crawler", return_value=False)
    def test_creates_then_defers(
        self, has_crawler, create_crawler, start_crawler, aws_target, context
    ) -> None:
        with pytest.raises(TaskDeferred) as deferred:
            crawl_op().execute(context)
        create_crawler.assert_called_once_with(**CONFIG)
        start_crawler.assert_called_once_with("sagelake-raw")
        trigger = deferred.value.trigger
        assert isinstance(trigger, GlueCrawlerCompleteTrigger)
        assert trigger.serialize()[1]["crawler_name"] == "sagelake-raw"
        assert deferred.value.method_name == "execute_complete"

    @mock.patch.object(GlueCrawlerHook, "wait_for_crawler_completion", return_value="SUCCEEDED")
    @mock.patch.object(GlueCrawlerHook, "start_crawler")
    @mock.patch.object(GlueCrawlerHook, "update_crawler", return_value=True)
    @mock.patch.object(GlueCrawlerHook, "has_crawler", return_value=True)
    def test_updates_an_existing_crawler_and_waits(
        self, has_crawler, update_crawler, start_crawler, wait, aws_target, context
    ) -> None:
        assert crawl_op(deferrable=False).execute(context) == "sagelake-raw"
        update_crawler.assert_called_once_with(**CONFIG)
        wait.assert_called_once_with(crawler_name="sagelake-raw", poll_interval=30)

    def test_execute_complete_returns_the_crawler_name(self, context) -> None:
        assert crawl_op().execute_complete(context, {"status": "success"}) == "sagelake-raw"
