"""The local crawler's inference without a control plane: value types, type merging, CSV and JSON lines."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sagelake.local.crawler import (
    arrow_type,
    classify,
    infer_csv,
    infer_json_lines,
    merge_types,
    render_type,
    table_name,
    text_type,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("42", "bigint"),
        ("-7", "bigint"),
        ("99999999999999999999", "double"),  # beyond bigint
        ("3.14", "double"),
        ("1e3", "double"),
        ("TRUE", "boolean"),
        ("2026-11-26", "date"),
        ("2026-02-30", "string"),  # not a day
        ("2026-11-26T10:00:00Z", "timestamp"),
        ("2026-11-26 10:00:00.123", "timestamp"),
        ("C000001", "string"),
    ],
)
def test_text_type(value: str, expected: str | None) -> None:
    assert text_type(value) == expected


@pytest.mark.parametrize(
    ("a", "b", "merged"),
    [
        ("bigint", "double", "double"),
        ("int", "bigint", "bigint"),
        (None, "date", "date"),
        ("date", "timestamp", "string"),
        ("boolean", "bigint", "string"),
        (("array", "bigint"), ("array", "double"), ("array", "double")),
        (
            ("struct", (("a", "bigint"),)),
            ("struct", (("b", "string"),)),
            ("struct", (("a", "bigint"), ("b", "string"))),
        ),
    ],
)
def test_merge_types(a, b, merged) -> None:
    assert merge_types(a, b) == merged
    if not isinstance(merged, tuple):  # struct fields keep first-seen order; the rest is symmetric
        assert merge_types(b, a) == merged


def test_infer_csv_types_columns_from_the_sampled_values() -> None:
    schema = infer_csv("ID,Amount,Day,Flag,Note\n1,2.5,2026-11-26,true,\n2,3,2026-11-27,false,x\n")
    assert schema.classification == "csv"
    assert schema.columns == [
        ("id", "bigint"),
        ("amount", "double"),
        ("day", "date"),
        ("flag", "boolean"),
        ("note", "string"),
    ]
    assert not schema.quoted
    assert infer_csv('a,b\n"x, y",1\n').quoted


def test_infer_csv_drops_a_line_cut_by_the_sample() -> None:
    schema = infer_csv("a,b\n1,2\n3,x", truncated=True)  # "3,x" may be the start of "3,xyz…"
    assert schema.columns == [("a", "bigint"), ("b", "bigint")]


def test_infer_json_lines_unions_keys_and_skips_malformed_lines() -> None:
    text = '{"a": 1, "b": "x"}\n{"a": 2.5, "c": {"d": true}}\n{"a": \nnot json\n[1]\n{"e": null}\n'
    schema = infer_json_lines(text)
    assert [(name, render_type(t)) for name, t in schema.columns] == [
        ("a", "double"),
        ("b", "string"),
        ("c", "struct<d:boolean>"),
        ("e", "string"),  # only nulls seen
    ]
    assert schema.malformed_lines == 3
    with pytest.raises(ValueError, match="no JSON object"):
        infer_json_lines("not json\n")


def test_arrow_types_map_to_glue_types() -> None:
    assert render_type(arrow_type(pa.int32())) == "int"
    assert render_type(arrow_type(pa.float32())) == "float"
    assert render_type(arrow_type(pa.decimal128(10, 2))) == "decimal(10,2)"
    assert render_type(arrow_type(pa.timestamp("us"))) == "timestamp"
    assert render_type(arrow_type(pa.struct([("x", pa.string())]))) == "struct<x:string>"
    assert render_type(arrow_type(pa.map_(pa.string(), pa.int64()))) == "map<string,bigint>"
    assert render_type(arrow_type(pa.dictionary(pa.int8(), pa.string()))) == "string"


def test_classify_and_table_names() -> None:
    assert classify("raw/x/dt=1/a.csv.gz", b"a,b\n") == "csv"
    assert classify("raw/x/dt=1/a.jsonl", b"{") == "json"
    assert classify("raw/x/dt=1/part-0", b"PAR1....") == "parquet"
    assert classify("raw/x/dt=1/data", b' {"a": 1}') == "json"
    assert classify("raw/x/dt=1/blob", b"\x00\x01") is None
    assert table_name("crawled_", "My-Data.set") == "crawled_my_data_set"
