"""Explore the lake with SQL at a known cost: the queries of ``include/sql/explore/`` for a date range.

``python -m devstack.explore NAME --start 2026-01-01 --end 2026-01-07 [--target local|aws]`` prints the
result as a table and the bytes the query scanned; ``--list`` names the queries. The same layer serves the
notebook (``notebooks/explore_lake.ipynb``) and any ad-hoc SQL (``LakeQuery.sql``).

* ``local`` (default, ``SAGELAKE_TARGET``): the local Athena engine over the local stack's control plane
  (``SAGELAKE_CONTROL_PLANE_PORT``, 4566); bytes scanned are the sizes of the files the engine read, after
  partition pruning.
* ``aws``: Athena in the configured workgroup, credentials and region from the default chain; bytes scanned
  are Athena's own ``DataScannedInBytes`` (what Athena bills, per query, minimum 10 MB).

Each file is an Athena query rendered with Jinja: ``{{ database }}``, ``{{ start }}``, ``{{ end }}``
(``YYYY-MM-DD``); its first line ``-- description: …`` says what it answers. Filter on ``dt`` so Athena
reads only the partitions of the range.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

import jinja2

from sagelake.config.settings import SQL_DIR, default_params
from sagelake.config.target import is_local
from sagelake.lake.layout import check_dt

EXPLORE_DIR = SQL_DIR / "explore"
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


class ExploreError(RuntimeError):
    """A query that cannot run as asked: unknown name, bad range, a failed Athena query."""


@dataclass
class Result:
    """What a query returned and what it cost."""

    columns: list[str]
    rows: list[tuple]
    bytes_scanned: int
    engine: str

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def table(self) -> str:
        """The rows as a fixed-width text table."""
        cells = [self.columns] + [["" if v is None else str(v) for v in row] for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def queries() -> dict[str, str]:
    """Every exploration query: name → its description line."""
    found = {}
    for path in sorted(EXPLORE_DIR.glob("*.sql")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        found[path.stem] = first.removeprefix("-- description:").strip()
    return found


def render(name: str, start: str, end: str, database: str) -> str:
    """The Athena SQL of exploration query ``name`` for the inclusive range ``start``..``end``."""
    path = EXPLORE_DIR / f"{name}.sql"
    if not path.is_file():
        raise ExploreError(f"no exploration query {name!r}: choose one of {sorted(queries())}")
    check_dt(start), check_dt(end)
    if start > end:
        raise ExploreError(f"start {start} is after end {end}")
    template = jinja2.Template(path.read_text(encoding="utf-8"), undefined=jinja2.StrictUndefined)
    return template.render(database=database, start=start, end=end)


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit} ({count} B)"
        size /= 1024
    raise AssertionError("unreachable")


class LakeQuery:
    """SQL over the lake's catalogued tables, on the local engines or on Athena."""

    def __init__(
        self, target: str | None = None, database: str | None = None, bucket: str | None = None
    ) -> None:
        params = default_params()
        self.target = target or ("local" if is_local() else "aws")
        if self.target not in ("local", "aws"):
            raise ExploreError(f"target {self.target!r} is neither 'local' nor 'aws'")
        self.database = database or str(params["glue_database"])
        self.bucket = bucket or str(params["bucket"])
        self.workgroup = str(params["athena_workgroup"])
        self._engine: Any = None

    def sql(self, text: str) -> Result:
        """Run one Athena statement with the lake's database as default schema."""
        return self._local(text) if self.target == "local" else self._athena(text)

    def explore(self, name: str, start: str, end: str) -> Result:
        """Run exploration query ``name`` over ``start``..``end``."""
        return self.sql(render(name, start, end, self.database))

    def profile(self, dataset: str, dt: str) -> Any:
        """The data profile of the published version of ``dataset`` partition ``dt``
        (:class:`sagelake.lake.profiles.Profile`); LookupError if there is none yet."""
        import json

        from sagelake.lake.profiles import from_document, profile_keys
        from sagelake.lake.publish import published

        s3, glue = self._clients()
        current = published(glue, self.database, dataset, check_dt(dt))
        if current is None or not current.version:
            raise LookupError(f"{self.database}.{dataset} has no published version of dt={dt}")
        keys = profile_keys(self.bucket, dataset, dt, current.version)
        try:
            body = s3.get_object(Bucket=keys.bucket, Key=keys.profile_key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise LookupError(f"no profile at {keys.uri(keys.profile_key)} yet (DAG lake_profile)") from None
        return from_document(json.loads(body))

    def _clients(self) -> tuple[Any, Any]:
        """S3 and Glue clients of the target."""
        if self.target == "local":
            from devstack.stack import Stack, boto3_session

            session, url = boto3_session(), Stack().control_plane_url
            return session.client("s3", endpoint_url=url), session.client("glue", endpoint_url=url)
        import boto3

        return boto3.client("s3"), boto3.client("glue")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def _local(self, text: str) -> Result:
        if self._engine is None:
            from devstack.stack import LOCAL_KEY_ID, LOCAL_SECRET, REGION, Stack, boto3_session
            from sagelake.local.athena.engine import LocalAthenaEngine

            url = Stack().control_plane_url
            self._engine = LocalAthenaEngine(
                boto3_session().client("glue", endpoint_url=url),
                s3_endpoint_url=url,
                region=REGION,
                access_key_id=LOCAL_KEY_ID,
                secret_access_key=LOCAL_SECRET,
            )
        result = self._engine.execute(text, self.database)
        return Result(result.columns, result.rows, result.bytes_scanned, "local DuckDB")

    def _athena(self, text: str) -> Result:
        import boto3

        athena = boto3.client("athena")
        started = athena.start_query_execution(
            QueryString=text, QueryExecutionContext={"Database": self.database}, WorkGroup=self.workgroup
        )
        query_id = started["QueryExecutionId"]
        while True:
            execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            state = execution["Status"]["State"]
            if state in _TERMINAL:
                break
            time.sleep(1)
        if state != "SUCCEEDED":
            reason = execution["Status"].get("StateChangeReason", "no reason given")
            raise ExploreError(f"Athena query {query_id} {state}: {reason}")
        pages = athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id)
        columns: list[str] = []
        rows: list[tuple] = []
        for page in pages:
            info = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
            columns = [c["Name"] for c in info]
            for row in page["ResultSet"]["Rows"]:
                values = [cell.get("VarCharValue") for cell in row["Data"]]
                if values == columns and not rows:
                    continue  # the header row of the first page
                rows.append(tuple(_typed(v, c["Type"]) for v, c in zip(values, info, strict=True)))
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0))
        return Result(columns, rows, scanned, f"Athena ({self.workgroup})")


def _typed(value: str | None, athena_type: str) -> Any:
    """An Athena result cell (always text) as the Python value of its column type."""
    if value is None:
        return None
    if athena_type in ("tinyint", "smallint", "integer", "bigint"):
        return int(value)
    if athena_type in ("double", "float", "real", "decimal"):
        return float(value)
    if athena_type == "boolean":
        return value == "true"
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.explore", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="a query of include/sql/explore/ (see --list)")
    parser.add_argument("--start", help="first dt of the range, YYYY-MM-DD")
    parser.add_argument("--end", help="last dt of the range (default: --start)")
    parser.add_argument("--target", choices=["local", "aws"], help="default: SAGELAKE_TARGET")
    parser.add_argument("--database", help="Glue database (default: SAGELAKE_GLUE_DATABASE)")
    parser.add_argument("--list", action="store_true", help="name and describe every query")
    parser.add_argument("--sql", action="store_true", help="print the rendered SQL too")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        for name, description in queries().items():
            print(f"{name:24} {description}")
        return 0
    if not args.start:
        parser.error("--start is required")
    lake = LakeQuery(args.target, args.database)
    try:
        text = render(args.name, args.start, args.end or args.start, lake.database)
        if args.sql:
            print(text, end="\n\n")
        result = lake.sql(text)
    except (ExploreError, ValueError, RuntimeError) as exc:  # the local engine raises RuntimeErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        lake.close()
    print(result.table())
    print(f"\n{len(result.rows)} rows · {human_bytes(result.bytes_scanned)} scanned · {result.engine}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
