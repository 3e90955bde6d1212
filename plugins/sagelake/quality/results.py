"""The ``quality_results`` table: one JSON row per check per run, partitioned by ``dt``.

Each check task writes its row to ``<quality_results(dt)>/<run key>/<check>.json``: a retry or a cleared
re-run of the same check in the same run overwrites its row instead of adding one; another run (a
reprocessing, a backfill) adds its own. The ``dt`` partition is registered in the Glue catalog, so Athena
(and the local engine) query the history like any lake table.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from sagelake.aws_errors import has_code
from sagelake.lake import catalog
from sagelake.lake.layout import Lake, split_s3_uri
from sagelake.quality.checks import CheckResult, CheckSpec

TABLE = "quality_results"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def result_row(
    spec: CheckSpec,
    result: CheckResult,
    *,
    dag_id: str,
    run_id: str,
    version: str | None,
    bytes_scanned: int | None,
    checked_at: datetime,
) -> dict[str, Any]:
    """The row of one check's verdict (the columns of ``catalog.QUALITY_RESULTS_COLUMNS``)."""
    return {
        "check_name": spec.name,
        "description": spec.description,
        "value": result.value,
        "threshold": result.expectation,
        "severity": result.severity,
        "verdict": "pass" if result.passed else "fail",
        "dag_id": dag_id,
        "run_id": run_id,
        "version": version,
        "bytes_scanned": bytes_scanned,
        "checked_at": checked_at.isoformat(),
    }


def result_uri(lake: Lake, dt: str, row: dict[str, Any]) -> str:
    """Where ``row`` lives: one object per (DAG, run, check) in partition ``dt``."""
    run_key = _UNSAFE.sub("_", f"{row['dag_id']}__{row['run_id']}")
    return f"{lake.quality_results(dt)}{run_key}/{_UNSAFE.sub('_', row['check_name'])}.json"


def record(s3: Any, glue: Any, database: str, lake: Lake, dt: str, row: dict[str, Any]) -> str:
    """Write ``row`` (overwriting the same run's row of the same check) and register partition ``dt``
    (creating the table first if this database has none yet); returns the object's URI."""
    uri = result_uri(lake, dt, row)
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=(json.dumps(row, sort_keys=True) + "\n").encode("utf-8"))
    try:
        glue.get_table(DatabaseName=database, Name=TABLE)
    except ClientError as error:
        if not has_code(error, "EntityNotFoundException"):
            raise
        try:
            glue.create_table(DatabaseName=database, TableInput=catalog.table_inputs(lake)[TABLE])
        except ClientError as race:
            if not has_code(race, "AlreadyExistsException"):
                raise
    catalog.register_partition(glue, database, TABLE, dt)
    return uri
