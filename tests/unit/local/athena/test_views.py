"""Glue tables and partitions → DuckDB view SQL, run on local files (views read any path DuckDB globs)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sagelake.lake import catalog
from sagelake.lake.layout import Lake
from sagelake.local.athena.errors import UnsupportedAthenaFeatureError
from sagelake.local.athena.sql import KeyCondition
from sagelake.local.athena.views import (
    PartitionMetadataError,
    Read,
    data_glob,
    reads,
    select_partitions,
    table_format,
    view_sql,
)

DAY = "2026-11-26"
TABLES = catalog.table_inputs(Lake("unit-bucket"))


def table_at(name: str, location: Path) -> dict[str, Any]:
    """The lake's Glue table ``name``, its Location moved to a local folder."""
    table = copy.deepcopy(TABLES[name])
    table["StorageDescriptor"]["Location"] = str(location) + "/"
    return table


def partition(location: Path, *values: str) -> dict[str, Any]:
    """A Glue partition (as get_partitions returns it) of ``values`` at a local folder."""
    return {"Values": list(values), "StorageDescriptor": {"Location": str(location) + "/"}}


def rows(
    table: dict[str, Any],
    partitions: list[dict[str, Any]],
    file_columns: dict[str, set[str] | None],
) -> tuple[list[tuple[str, str]], list[tuple]]:
    """The view's (column, DuckDB type) pairs and its rows."""
    con = duckdb.connect()
    body = view_sql(table, partitions, file_columns)
    described = [(row[0], row[1]) for row in con.execute(f"DESCRIBE {body}").fetchall()]
    return described, con.execute(body).fetchall()


def test_table_format_follows_the_serde() -> None:
    assert {name: table_format(table) for name, table in TABLES.items()} == {
        "raw_customers": "csv",
        "raw_events": "json",
        "churn_features": "parquet",
        "churn_quarantine": "parquet",
        "etl_metrics": "json",
        "quality_results": "json",
        "churn_features_staged": "parquet",
        "churn_quarantine_staged": "parquet",
        "etl_metrics_staged": "json",
    }
    opencsv = {"StorageDescriptor": {"SerdeInfo": {"SerializationLibrary": "x.OpenCSVSerde"}}}
    assert table_format(opencsv) == "csv"
    orc = {
        "DatabaseName": "db",
        "Name": "t",
        "StorageDescriptor": {
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.orc.OrcSerde"}
        },
    }
    with pytest.raises(UnsupportedAthenaFeatureError, match=r"table db\.t: .*orcserde"):
        table_format(orc)


def test_data_glob_matches_the_format_below_the_location() -> None:
    globs = {name: data_glob(table) for name, table in TABLES.items()}
    assert globs["churn_features"].endswith("/churn_features/**/*.parquet")
    assert globs["raw_customers"].endswith("/**/*.csv")
    assert globs["raw_events"].endswith("/**/*.json*")
    assert all(glob.startswith("s3://unit-bucket/") and "//**" not in glob for glob in globs.values())


def test_no_files_give_a_typed_empty_view(tmp_path: Path) -> None:
    table = table_at("churn_quarantine", tmp_path)
    empty = partition(tmp_path / f"dt={DAY}", DAY)
    expected = [("source", "VARCHAR"), ("reason", "VARCHAR"), ("record", "VARCHAR"), ("dt", "VARCHAR")]
    # no partitions registered, or a registered partition whose location has no data files
    assert rows(table, [], {}) == (expected, [])
    assert rows(table, [empty], {str(tmp_path / f"dt={DAY}") + "/": None}) == (expected, [])


def test_parquet_view_casts_glue_columns_and_reads_missing_ones_as_null(tmp_path: Path) -> None:
    folder = tmp_path / f"dt={DAY}"
    folder.mkdir()
    frame = pa.table({"source": ["events"], "reason": ["bad ts"], "extra": [1]})
    pq.write_table(frame, folder / "part-0.parquet")
    (folder / "_SUCCESS").write_bytes(b"")
    described, found = rows(
        table_at("churn_quarantine", tmp_path),
        [partition(folder, DAY)],
        {str(folder) + "/": {"source", "reason", "extra"}},
    )
    assert [name for name, _ in described] == ["source", "reason", "record", "dt"]
    assert found == [("events", "bad ts", None, DAY)]


def test_csv_view_skips_the_header_and_reads_bad_values_as_null(tmp_path: Path) -> None:
    folder = tmp_path / f"dt={DAY}"
    folder.mkdir()
    (folder / "customers.csv").write_text(
        "customer_id,signup_date,plan,monthly_fee,age,region,support_tickets,churned\n"
        "a1,2025-01-31,basic,9.99,31,north,0,0\n"
        "a2,not a date,premium,\\N,45,east,many,1\n"
    )
    described, found = rows(
        table_at("raw_customers", tmp_path), [partition(folder, DAY)], {str(folder) + "/": {"customer_id"}}
    )
    assert dict(described)["signup_date"] == "DATE" and dict(described)["support_tickets"] == "INTEGER"
    assert found == [
        ("a1", dt.date(2025, 1, 31), "basic", 9.99, 31.0, "north", 0, 0, DAY),
        ("a2", None, "premium", None, 45.0, "east", None, 1, DAY),
    ]


def test_json_view_reads_json_lines_with_glue_types(tmp_path: Path) -> None:
    folder = tmp_path / f"dt={DAY}"
    folder.mkdir()
    (folder / "events.jsonl").write_text(
        '{"event_id": "e1", "customer_id": "a1", "ts": "2026-11-26T10:00:00Z", "event_type": "purchase",'
        ' "amount": 12.5, "duration_s": 5}\n'
    )
    described, found = rows(
        table_at("raw_events", tmp_path), [partition(folder, DAY)], {str(folder) + "/": {"event_id"}}
    )
    assert dict(described)["amount"] == "DOUBLE"
    assert found == [("e1", "a1", "2026-11-26T10:00:00Z", "purchase", 12.5, 5.0, DAY)]


def put(folder: Path, name: str, frame: dict[str, list]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(frame), folder / name)


def file_columns(table: dict[str, Any], partitions: list[dict[str, Any]]) -> dict[str, set[str] | None]:
    """What the engine finds per location: the union of the Parquet files' columns (None: no files)."""
    con = duckdb.connect()
    found: dict[str, set[str] | None] = {}
    for read in reads(table, partitions):
        pattern = data_glob(table, read.location)
        if not con.execute(f"SELECT count(*) FROM glob('{pattern}')").fetchone()[0]:
            found[read.location] = None
            continue
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{pattern}', union_by_name = true, "
            "hive_partitioning = false)"
        ).fetchall()
        found[read.location] = {row[0] for row in described}
    return found


def test_reads_are_the_partitions_locations_or_the_table_location(tmp_path: Path) -> None:
    table = table_at("churn_features", tmp_path)
    here = partition(tmp_path / "anywhere" / "v2", DAY)
    assert reads(table, [here]) == [Read(str(tmp_path / "anywhere" / "v2") + "/", (DAY,))]
    assert reads(table, []) == []
    unpartitioned = {**table, "PartitionKeys": []}
    assert reads(unpartitioned, [here]) == [Read(str(tmp_path) + "/")]
    with pytest.raises(PartitionMetadataError, match=r"HIVE_METASTORE_ERROR: .*1 partition keys .* 2 values"):
        reads(table, [partition(tmp_path, DAY, "x")])
    with pytest.raises(PartitionMetadataError, match=r"partition dt=2026-11-26 of table .* has no Location"):
        reads(table, [{"Values": [DAY], "StorageDescriptor": {}}])


def test_view_reads_only_registered_partitions_at_their_locations(tmp_path: Path) -> None:
    table = table_at("churn_quarantine", tmp_path)
    day = tmp_path / f"dt={DAY}"
    put(day / "version=v1", "part-0.parquet", {"source": ["v1"], "reason": ["old"], "record": ["r"]})
    put(day / "version=v2", "part-0.parquet", {"source": ["v2"], "reason": ["new"], "record": ["r"]})
    put(day / "version=v2" / "sub", "part-1.parquet", {"source": ["v2 nested"], "reason": ["new"]})
    put(tmp_path / "dt=2026-11-27", "part-0.parquet", {"source": ["unregistered"]})
    put(tmp_path, "part-root.parquet", {"source": ["table root"]})
    published = [partition(day / "version=v2", DAY)]
    described, found = rows(table, published, file_columns(table, published))
    assert [name for name, _ in described] == ["source", "reason", "record", "dt"]
    # only v2, in and below its location; no other version, unregistered folder or table-root file
    assert sorted(found) == [("v2", "new", "r", DAY), ("v2 nested", "new", None, DAY)]


def test_partition_keys_come_from_values_not_from_the_path(tmp_path: Path) -> None:
    table = table_at("churn_quarantine", tmp_path)
    table["PartitionKeys"] = [{"Name": "dt", "Type": "string"}, {"Name": "hour", "Type": "int"}]
    put(tmp_path / "dt=1999-01-01" / "hour=99", "part-0.parquet", {"source": ["a"], "dt": ["in the file"]})
    put(tmp_path / "elsewhere", "part-0.parquet", {"source": ["b"]})
    registered = [
        partition(tmp_path / "dt=1999-01-01" / "hour=99", DAY, "7"),
        partition(tmp_path / "elsewhere", "2026-11-27", "__HIVE_DEFAULT_PARTITION__"),
    ]
    described, found = rows(table, registered, file_columns(table, registered))
    assert described[-2:] == [("dt", "VARCHAR"), ("hour", "INTEGER")]
    assert sorted(found) == [("a", None, None, DAY, 7), ("b", None, None, "2026-11-27", None)]


def test_parquet_columns_are_the_catalogs_matched_per_partition(tmp_path: Path) -> None:
    table = table_at("churn_quarantine", tmp_path)
    old, new = tmp_path / "dt=2026-11-25", tmp_path / f"dt={DAY}"
    put(old, "part-0.parquet", {"SOURCE": ["old"], "reason": ["r0"], "not_in_catalog": [1]})
    put(new, "part-0.parquet", {"source": ["new-a"], "reason": ["r1"]})
    put(new, "part-1.parquet", {"source": ["new-b"], "record": [42]})  # a column added later, as int
    registered = [partition(new, DAY), partition(old, "2026-11-25")]
    columns = file_columns(table, registered)
    assert columns[str(new) + "/"] == {"source", "reason", "record"}
    described, found = rows(table, registered, columns)
    assert described == [
        ("source", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("record", "VARCHAR"),
        ("dt", "VARCHAR"),
    ]
    assert sorted(found) == [
        ("new-a", "r1", None, DAY),
        ("new-b", None, "42", DAY),
        ("old", "r0", None, "2026-11-25"),
    ]


def test_unpartitioned_table_reads_its_location(tmp_path: Path) -> None:
    table = {**table_at("churn_quarantine", tmp_path), "PartitionKeys": []}
    put(tmp_path / "any" / "depth", "part-0.parquet", {"source": ["s"], "reason": ["r"]})
    described, found = rows(table, [], file_columns(table, []))
    assert [name for name, _ in described] == ["source", "reason", "record"]
    assert found == [("s", "r", None)]
    assert rows(table, [], {str(tmp_path) + "/": None}) == (described, [])


def test_csv_and_json_partitions_are_unioned(tmp_path: Path) -> None:
    customers = table_at("raw_customers", tmp_path)
    header = "customer_id,signup_date,plan,monthly_fee,age,region,support_tickets,churned\n"
    for day, line in [(DAY, "a1,2025-01-31,basic,9.99,31,north,0,0\n"), ("2026-11-27", "a2,x,y,z,1,s,2,1\n")]:
        (tmp_path / f"dt={day}").mkdir()
        (tmp_path / f"dt={day}" / "customers.csv").write_text(header + line)
    (tmp_path / "dt=2026-11-28").mkdir()
    (tmp_path / "dt=2026-11-28" / "customers.csv").write_text(header + "unregistered,,,,,,,\n")
    registered = [partition(tmp_path / f"dt={day}", day) for day in (DAY, "2026-11-27")]
    _, found = rows(
        customers, registered, {str(tmp_path / f"dt={d}") + "/": set() for d in (DAY, "2026-11-27")}
    )
    assert [(r[0], r[1], r[-1]) for r in sorted(found)] == [
        ("a1", dt.date(2025, 1, 31), DAY),
        ("a2", None, "2026-11-27"),
    ]
    events = table_at("raw_events", tmp_path)
    (tmp_path / f"dt={DAY}" / "events.jsonl").write_text('{"event_id": "e1", "amount": 1.5}\n')
    (tmp_path / "dt=2026-11-27" / "events.json").write_text('{"event_id": "e2"}\n')
    _, found = rows(events, registered, {str(tmp_path / f"dt={d}") + "/": set() for d in (DAY, "2026-11-27")})
    assert sorted(found) == [
        ("e1", None, None, None, 1.5, None, DAY),
        ("e2", None, None, None, None, None, "2026-11-27"),
    ]


def test_select_partitions_keeps_what_some_reference_may_read(tmp_path: Path) -> None:
    table = table_at("churn_features", tmp_path)
    days = ["2026-11-24", "2026-11-25", DAY, "2026-11-27"]
    registered = [partition(tmp_path / f"dt={day}", day) for day in reversed(days)]

    def kept(*references: list[KeyCondition]) -> list[str]:
        return [p["Values"][0] for p in select_partitions(table, registered, list(references))]

    eq = KeyCondition("dt", "=", (DAY,))
    assert kept([eq]) == [DAY]
    assert kept([KeyCondition("dt", "in", ("2026-11-24", DAY, "2027-01-01"))]) == ["2026-11-24", DAY]
    assert kept([KeyCondition("dt", ">=", ("2026-11-25",)), KeyCondition("dt", "<", (DAY,))]) == [
        "2026-11-25"
    ]
    assert kept([eq], [KeyCondition("dt", "=", ("2026-11-24",))]) == ["2026-11-24", DAY]  # a self-join
    assert kept([eq], []) == days  # one reference reads every partition
    assert kept([KeyCondition("plan", "=", ("basic",))]) == days  # not a partition key
    assert kept() == days and select_partitions(table, registered, None) == sorted(
        registered, key=lambda p: p["Values"]
    )
    assert kept([eq, KeyCondition("dt", "=", ("2026-11-27",))]) == []  # contradictory: nothing to read
    # only string keys prune: '7' = 7 is not a string comparison
    table["PartitionKeys"] = [{"Name": "dt", "Type": "int"}]
    assert kept([eq]) == days
