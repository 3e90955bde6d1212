"""Glue crawler runs in the local control plane, recorded as AWS records them.

moto keeps a crawler's runs but never crawls: its ``StartCrawler`` completes the run at once, its
``GetCrawler`` reports ``LastCrawl.Status`` ``COMPLETED`` where AWS says ``SUCCEEDED`` (the provider's
waiter and sensor only accept ``SUCCEEDED``), and it lacks ``UpdateCrawler`` and ``GetCrawlerMetrics``.
:func:`install` patches moto (idempotent) so that:

* a run started by ``StartCrawler`` stays ``RUNNING`` (``State`` ``RUNNING``) until the local crawler
  (:mod:`sagelake.local.crawler`) records its outcome with the control-plane-only call
  ``AWSGlue.SagelakeRecordCrawl`` (:data:`RECORD_CRAWL_ACTION`; body ``{"CrawlerName", "Status":
  "SUCCEEDED"|"FAILED", "ErrorMessage"?, "TablesCreated", "TablesUpdated", "TablesDeleted"}``);
* ``GetCrawler`` reports ``LastCrawl`` as AWS does: the last *finished* run, ``Status`` ``SUCCEEDED`` |
  ``FAILED`` | ``CANCELLED`` (with ``ErrorMessage``), and ``State`` ``READY`` once it finished;
* ``GetCrawlerMetrics`` answers from the recorded runs (last and median runtime, tables created, updated
  and deleted by the last run); ``UpdateCrawler`` updates the crawler (refused while it runs).
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.glue.exceptions import CrawlerNotRunningException, CrawlerRunningException
from moto.glue.models import FakeCrawl, FakeCrawler
from moto.glue.responses import GlueResponse

RECORD_CRAWL_ACTION = "SagelakeRecordCrawl"
OUTCOMES = ("SUCCEEDED", "FAILED")
# A crawl's own state (ListCrawls) → the crawler's LastCrawl.Status (GetCrawler), as AWS names them.
_LAST_CRAWL_STATUS = {"COMPLETED": "SUCCEEDED", "FAILED": "FAILED", "STOPPED": "CANCELLED"}
_METRICS = ("TablesCreated", "TablesUpdated", "TablesDeleted")
_UPDATABLE = {
    "Role": "role",
    "DatabaseName": "database_name",
    "Description": "description",
    "Targets": "targets",
    "Schedule": "schedule",
    "Classifiers": "classifiers",
    "TablePrefix": "table_prefix",
    "SchemaChangePolicy": "schema_change_policy",
    "RecrawlPolicy": "recrawl_policy",
    "LineageConfiguration": "lineage_configuration",
    "Configuration": "configuration",
    "CrawlerSecurityConfiguration": "crawler_security_configuration",
}
_INSTALLED = "_sagelake_crawls"


def _finished(crawler: FakeCrawler) -> list[FakeCrawl]:
    return [crawl for crawl in crawler.crawls if crawl.status in _LAST_CRAWL_STATUS]


def _runtime_s(crawl: FakeCrawl) -> float:
    return (crawl.end_time - crawl.start_time).total_seconds() if crawl.end_time else 0.0


def _start_crawler(self: FakeCrawler) -> None:
    _original_start(self)
    # the run stays RUNNING until the local crawler records it (immediate progression finds no next state)
    self.crawls[-1]._transitions = [("RUNNING", "RUNNING"), ("STOPPING", "STOPPED")]


def _state(self: FakeCrawler) -> str:
    if not self.crawls:
        return "READY"
    return {"RUNNING": "RUNNING", "STOPPING": "STOPPING"}.get(self.crawls[-1].status or "", "READY")


def _crawler_as_dict(self: FakeCrawler) -> dict[str, Any]:
    data = _original_crawler_as_dict(self)
    data.pop("LastCrawl", None)
    finished = _finished(self)
    if finished:
        last = finished[-1]
        data["LastCrawl"] = {
            "Status": _LAST_CRAWL_STATUS[last.status],
            "LogGroup": last.log_group,
            "LogStream": last.log_stream,
            "MessagePrefix": last.message_prefix,
            "StartTime": last.start_time,
        }
        if getattr(last, "error_message", None):
            data["LastCrawl"]["ErrorMessage"] = last.error_message
    running = self.crawls[-1] if self.crawls and self.crawls[-1].status == "RUNNING" else None
    data["CrawlElapsedTime"] = int((utcnow() - running.start_time).total_seconds() * 1000) if running else 0
    return data


def _crawl_as_dict(self: FakeCrawl) -> dict[str, Any]:
    data = _original_crawl_as_dict(self)
    if getattr(self, "error_message", None):
        data["ErrorMessage"] = self.error_message
    return data


def _record_crawl(self: GlueResponse) -> str:
    params = self.parameters
    crawler = self.glue_backend.get_crawler(params.get("CrawlerName"))
    status = params.get("Status")
    if status not in OUTCOMES:
        raise CrawlerNotRunningException(f"Status must be one of {', '.join(OUTCOMES)}, got {status!r}")
    if not crawler.crawls or crawler.crawls[-1].status != "RUNNING":
        raise CrawlerNotRunningException(f"Crawler with name {crawler.name} isn't running")
    crawl = crawler.crawls[-1]
    crawl.status = "COMPLETED" if status == "SUCCEEDED" else "FAILED"
    crawl.end_time = utcnow()
    crawl.error_message = params.get("ErrorMessage") or None
    crawl.sagelake_metrics = {name: int(params.get(name, 0)) for name in _METRICS}
    return json.dumps({"CrawlId": crawl.crawl_id, "Status": status})


def _get_crawler_metrics(self: GlueResponse) -> ActionResult:
    names = self.parameters.get("CrawlerNameList") or [c.name for c in self.glue_backend.get_crawlers()]
    metrics = []
    for name in names:
        crawler = self.glue_backend.get_crawler(name)
        finished = _finished(crawler)
        runtimes = [_runtime_s(crawl) for crawl in finished]
        last = getattr(finished[-1], "sagelake_metrics", {}) if finished else {}
        metrics.append(
            {
                "CrawlerName": name,
                "TimeLeftSeconds": 0.0,
                "StillEstimating": False,
                "LastRuntimeSeconds": runtimes[-1] if runtimes else 0.0,
                "MedianRuntimeSeconds": statistics.median(runtimes) if runtimes else 0.0,
                **{metric: last.get(metric, 0) for metric in _METRICS},
            }
        )
    return ActionResult({"CrawlerMetricsList": metrics})


def _update_crawler(self: GlueResponse) -> ActionResult:
    params = self.parameters
    crawler = self.glue_backend.get_crawler(params.get("Name"))
    if crawler.status != "READY":
        raise CrawlerRunningException(f"Crawler with name {crawler.name} has already started")
    for key, attribute in _UPDATABLE.items():
        if key in params:
            setattr(crawler, attribute, params[key])
    crawler.version += 1
    crawler.last_updated = utcnow()
    return ActionResult({})


_original_start = FakeCrawler.start_crawler
_original_crawler_as_dict = FakeCrawler.as_dict
_original_crawl_as_dict = FakeCrawl.as_dict


def install() -> None:
    """Patch moto's Glue crawler model and responses (see the module doc); safe to call twice."""
    if getattr(FakeCrawler, _INSTALLED, False):
        return
    FakeCrawler.start_crawler = _start_crawler  # type: ignore[method-assign]
    FakeCrawler.status = property(_state)  # type: ignore[assignment,method-assign]
    FakeCrawler.as_dict = _crawler_as_dict  # type: ignore[method-assign]
    FakeCrawl.as_dict = _crawl_as_dict  # type: ignore[method-assign]
    GlueResponse.sagelake_record_crawl = _record_crawl  # type: ignore[attr-defined]
    GlueResponse.get_crawler_metrics = _get_crawler_metrics  # type: ignore[attr-defined]
    GlueResponse.update_crawler = _update_crawler  # type: ignore[attr-defined]
    setattr(FakeCrawler, _INSTALLED, True)
