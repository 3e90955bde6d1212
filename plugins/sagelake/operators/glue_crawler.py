"""Glue crawler: create or update a crawler from its definition and run it; locally a real crawl."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerRunOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.config.target import is_local

if TYPE_CHECKING:
    from airflow.sdk import Context


class SagelakeGlueCrawlerOperator(GlueCrawlerRunOperator):
    """Create or update an AWS Glue crawler from ``config``, then run it; locally the crawl really happens.

    What the provider's deprecated ``GlueCrawlerOperator`` does (its create-or-update, then
    :class:`airflow.providers.amazon.aws.operators.glue_crawler.GlueCrawlerRunOperator`), built on the
    operators that replace it. On the ``aws`` target it is the provider's code path unchanged:
    ``StartCrawler`` and waiting for the crawl (deferrable when ``deferrable``).

    On the ``local`` target the crawler is created or updated in the control plane the same way, then
    :func:`sagelake.local.crawler.run_crawler` starts it, infers the schema of every dataset under its S3
    targets, creates or updates the tables and partitions in the catalog, and records the run as AWS would
    (``SUCCEEDED`` with metrics, or ``FAILED``), synchronously; the provider's
    ``GlueCrawlerHook.wait_for_crawler_completion`` then confirms the recorded outcome. ``deferrable`` has
    no effect there.

    :param config: the crawler's definition, a Glue ``CreateCrawler`` request (``Name``, ``Role``,
        ``DatabaseName``, ``Targets``, ...), e.g. :func:`sagelake.lake.discovery.crawler_config`. (templated)
    :param poll_interval: seconds between two checks of the crawler's state.
    :param wait_for_completion: whether to wait for the crawl to finish. (default: True)
    :param deferrable: wait for the crawl in the triggerer (``aws`` target). (default: False)
    :param fail_on_already_running: raise if the crawler is already running (else wait for that run).
    """

    template_fields: Sequence[str] = aws_template_fields("config")

    def __init__(self, *, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(crawler_name=config["Name"], **kwargs)
        self.config = config

    def execute(self, context: Context) -> str:
        self.crawler_name = self.config["Name"]
        self._create_or_update()
        if not is_local():
            return super().execute(context)
        return self._crawl_locally()

    def _create_or_update(self) -> None:
        """The provider's ``GlueCrawlerOperator`` create-or-update, through the same hook calls."""
        config = copy.deepcopy(self.config)
        if not self.hook.has_crawler(self.crawler_name):
            self.hook.create_crawler(**config)
            return
        try:
            self.hook.update_crawler(**config)
        except ClientError as error:
            if self.fail_on_already_running or not has_code(error, "CrawlerRunningException"):
                raise
            self.log.warning("Crawler %s is running: not updated, waiting for that run", self.crawler_name)

    def _crawl_locally(self) -> str:
        from sagelake.local.crawler import run_crawler

        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        result = run_crawler(s3, self.hook.glue_client, self.hook.get_credentials(), self.crawler_name)
        for name, table in sorted(result.tables.items()):
            self.log.info(
                "%s: %s, %d column(s), %d partition(s) at %s",
                name,
                table.classification,
                len(table.columns),
                len(table.partitions),
                table.location,
            )
        self.log.info(
            "Local crawl of %s: created %s, updated %s, %d partition(s) created, %d updated",
            self.crawler_name,
            result.tables_created or "none",
            result.tables_updated or "none",
            result.partitions_created,
            result.partitions_updated,
        )
        for message in result.skipped:
            self.log.warning("Skipped %s", message)
        if self.wait_for_completion or self.deferrable:
            self.hook.wait_for_crawler_completion(
                crawler_name=self.crawler_name, poll_interval=self.poll_interval
            )
        return self.crawler_name
