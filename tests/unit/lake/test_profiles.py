"""Profiles: the documented shape (validated against the JSON Schema), the conversion of a DataBrew profile
job's output, the S3 layout, and the HTML report's figures."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from sagelake.lake import profiles
from sagelake.lake.links import console_url
from sagelake.lake.profiles import ColumnProfile, Profile, ValueCount

SAMPLE = Path(__file__).with_name("databrew_profile_output.json")
LOCATION = "s3://lake/curated/churn_features/dt=2026-03-01/version=20260301T000000000000Z-abc/"


def databrew_output() -> dict:
    return json.loads(SAMPLE.read_text())


def converted() -> Profile:
    return profiles.from_databrew(
        databrew_output(),
        dataset="churn_features",
        dt="2026-03-01",
        version="20260301T000000000000Z-abc",
        location=LOCATION,
        created_at="2026-03-01T06:00:00+00:00",
    )


def small_profile() -> Profile:
    return Profile(
        dataset="churn_features",
        dt="2026-03-01",
        version="v1",
        location=LOCATION,
        engine="local-duckdb",
        created_at="2026-03-01T06:00:00+00:00",
        row_count=5,
        duplicate_rows=1,
        columns=[
            ColumnProfile(
                name="monthly_fee",
                type="number",
                source_type="DOUBLE",
                count=4,
                missing=1,
                distinct=3,
                min=9.99,
                max=149.5,
                mean=54.8625,
                stddev=21.034567891234,
                quantiles={"p5": 10.5, "p25": 20.25, "p50": 30.0, "p75": 80.125, "p95": 140.0},
            ),
            ColumnProfile(
                name="plan",
                type="string",
                source_type="VARCHAR",
                count=5,
                missing=0,
                distinct=2,
                top_values=[ValueCount("basic", 3), ValueCount("<premium & co>", 2)],
            ),
        ],
    )


class TestShape:
    def test_schema_is_a_valid_json_schema(self) -> None:
        jsonschema.Draft202012Validator.check_schema(profiles.load_schema())

    @pytest.mark.parametrize("make", [small_profile, converted], ids=["local", "databrew"])
    def test_profiles_validate_and_round_trip(self, make) -> None:
        profile = make()
        text = profiles.to_json(profile)
        doc = json.loads(text)
        jsonschema.validate(doc, profiles.load_schema())
        assert doc["schema_version"] == 1 and list(doc)[0] == "schema_version"
        assert doc["definitions"] == {
            "stddev": "sample",
            "quantiles": "linear",
            "missing": "NULL, or NaN in floating-point columns",
            "top_values": 10,
        }
        assert profiles.from_document(doc) == profile

    def test_schema_rejects_what_the_shape_forbids(self) -> None:
        doc = profiles.to_document(small_profile())
        for mutate, path in [
            (lambda d: d.pop("row_count"), "row_count"),
            (lambda d: d["columns"][0].update(type="float"), "type"),
            (lambda d: d["columns"][0]["quantiles"].pop("p95"), "p95"),
            (lambda d: d["columns"][1]["top_values"][0].update(count=0), "count"),
            (lambda d: d.update(dt="2026-3-1"), "dt"),
            (lambda d: d.update(extra=1), "extra"),
        ]:
            broken = copy.deepcopy(doc)
            mutate(broken)
            with pytest.raises(jsonschema.ValidationError) as raised:
                profiles.validate(broken)
            assert path in str(raised.value), path

    def test_nan_never_reaches_the_json(self) -> None:
        column = ColumnProfile(
            name="x", type="number", source_type="DOUBLE", count=1, missing=0, distinct=1, mean=float("nan")
        )
        profile = Profile(**{**profiles.to_document(small_profile()), "columns": [column]})
        with pytest.raises(ValueError):
            profiles.to_json(profile)


class TestLayout:
    def test_keys_by_dataset_dt_and_version(self) -> None:
        keys = profiles.profile_keys("lake", "churn_features", "2026-03-01", "v1")
        assert keys.profile_key == "profiles/churn_features/dt=2026-03-01/version=v1/profile.json"
        assert keys.report_key == "profiles/churn_features/dt=2026-03-01/version=v1/report.html"
        assert keys.databrew_output_key == "profiles/churn_features/dt=2026-03-01/version=v1/databrew/"
        assert keys.uri(keys.profile_key) == f"s3://lake/{keys.profile_key}"

    @pytest.mark.parametrize(
        "args",
        [
            ("lake", "a/b", "2026-03-01", "v"),
            ("lake", "d", "2026-02-30", "v"),
            ("lake", "d", "2026-03-01", ""),
        ],
    )
    def test_bad_parts_are_refused(self, args) -> None:
        with pytest.raises(ValueError):
            profiles.profile_keys(*args)

    def test_version_of_a_location(self) -> None:
        assert profiles.version_of(LOCATION) == "20260301T000000000000Z-abc"
        assert profiles.version_of("s3://lake/curated/churn_features/dt=2026-03-01/") is None

    def test_console_url(self) -> None:
        key = "profiles/d/dt=2026-03-01/version=v/report.html"
        console = console_url("lake", key, "eu-west-1")
        assert console == f"https://s3.console.aws.amazon.com/s3/object/lake?region=eu-west-1&prefix={key}"


class TestDataBrewConversion:
    def test_dataset_level_figures(self) -> None:
        profile = converted()
        assert (profile.engine, profile.row_count, profile.duplicate_rows) == ("databrew", 2000, 3)
        assert [c.name for c in profile.columns] == [c["name"] for c in databrew_output()["columns"]]

    def test_numeric_column(self) -> None:
        fee = converted().column("monthly_fee")
        assert (fee.type, fee.source_type, fee.count, fee.missing, fee.distinct) == (
            "number",
            "double",
            2000,
            0,
            1713,
        )
        assert (fee.min, fee.max, fee.mean, fee.stddev) == (9.99, 149.5, 54.8625, 21.034567891234)
        assert fee.quantiles == {
            "p5": 24.5,
            "p25": 39.9975,
            "p50": 51.5,
            "p75": 67.25,
            "p95": 94.10499999999999,
        }
        assert fee.top_values == []

    def test_integer_column_keeps_integer_bounds(self) -> None:
        tenure = converted().column("tenure_days")
        assert tenure.type == "integer"
        assert (tenure.min, tenure.max) == (1, 1460) and isinstance(tenure.min, int)
        assert tenure.quantiles["p50"] == 729.5

    def test_string_column_keeps_top_values_not_length_statistics(self) -> None:
        region = converted().column("region")
        assert (region.type, region.count, region.missing, region.distinct) == ("string", 1969, 31, 4)
        assert (region.min, region.max, region.mean, region.stddev, region.quantiles) == (None,) * 5
        # ties ordered by value: the report and the local profiler order them the same way
        assert region.top_values == [
            ValueCount("east", 530),
            ValueCount("west", 530),
            ValueCount("north", 468),
            ValueCount("south", 441),
        ]

    def test_top_values_are_capped(self) -> None:
        output = databrew_output()
        output["columns"][0]["mostCommonValues"] = [
            {"value": f"C{i:03d}", "count": 100 - i} for i in range(50)
        ]
        profile = profiles.from_databrew(
            output,
            dataset="d",
            dt="2026-03-01",
            version="v",
            location=LOCATION,
            created_at="2026-03-01T00:00:00+00:00",
        )
        top = profile.column("customer_id").top_values
        assert [v.value for v in top] == [f"C{i:03d}" for i in range(profiles.TOP_VALUES)]

    def test_boolean_nan_decimal_and_unknown_types(self) -> None:
        profile = converted()
        flag = profile.column("known_customer")
        assert (flag.type, flag.count, flag.missing) == ("boolean", 1998, 2)
        assert flag.top_values == [ValueCount(True, 1990), ValueCount(False, 8)]
        age = profile.column("age")  # every value missing: DataBrew writes "NaN"
        assert (age.count, age.min, age.mean, age.stddev) == (0, None, None, None)
        assert (
            profile.column("amount").type == "number" and profile.column("amount").quantiles["p95"] == 2.425
        )
        tags = profile.column("tags")
        assert (tags.type, tags.distinct, tags.missing, tags.count) == ("other", None, 5, 1995)

    def test_not_a_databrew_output(self) -> None:
        with pytest.raises(ValueError, match="not a DataBrew profile output"):
            profiles.from_databrew(
                {"rows": []}, dataset="d", dt="2026-03-01", version="v", location=LOCATION, created_at="x"
            )


class TestDataBrewDefinitions:
    def test_dataset_and_job_requests(self) -> None:
        keys = profiles.profile_keys("lake", "churn_features", "2026-03-01", "v1")
        dataset = profiles.databrew_dataset_request("sagelake-profile-churn_features", LOCATION)
        assert dataset == {
            "Name": "sagelake-profile-churn_features",
            "Format": "PARQUET",
            "Input": {"S3InputDefinition": {"Bucket": "lake", "Key": LOCATION.split("lake/", 1)[1]}},
        }
        job = profiles.databrew_profile_job_request(
            "job", "sagelake-profile-churn_features", "arn:role", keys
        )
        assert job["JobSample"] == {"Mode": "FULL_DATASET"}  # sampleSize is then the row count
        assert job["OutputLocation"] == {"Bucket": "lake", "Key": keys.databrew_output_key}
        assert job["Configuration"]["DatasetStatisticsConfiguration"]["IncludedStatistics"] == [
            "DUPLICATE_ROWS_COUNT"
        ]
        update = profiles.update_profile_job_request(job)
        assert "DatasetName" not in update and update["Name"] == "job"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.add(tag)

    def handle_data(self, data) -> None:
        if data.strip():
            self.cells.append(data.strip())


class TestReport:
    def test_report_contains_every_figure(self) -> None:
        profile = converted()
        page = profiles.render_html(profile)
        parser = _Text()
        parser.feed(page)
        cells = set(parser.cells)
        assert {"2,000", "3", "churn_features", "databrew"} <= cells
        for column in profile.columns:
            assert column.name in cells
            figures = [column.count, column.missing, column.distinct]
            if column.type in profiles.NUMERIC:
                figures += [column.min, column.max, column.mean, column.stddev, *column.quantiles.values()]
            for figure in figures:
                assert profiles.format_value(figure) in cells, (column.name, figure)
            for top in column.top_values:
                assert profiles.format_value(top.value) in cells and profiles.format_value(top.count) in cells

    def test_report_is_self_contained_and_escaped(self) -> None:
        page = profiles.render_html(small_profile())
        parser = _Text()
        parser.feed(page)
        assert "script" not in parser.tags and not re.search(r"(src|href)=", page)
        assert "svg" in parser.tags
        assert "&lt;premium &amp; co&gt;" in page and "<premium" not in page
        assert "1 (20.0%)" in parser.cells  # missing with its share of all rows

    def test_figures_are_formatted_readably(self) -> None:
        assert profiles.format_value(1234567) == "1,234,567"
        assert profiles.format_value(21.034567891234) == "21.0346"
        assert profiles.format_value(None) == "–"
        assert profiles.format_value(True) == "true"


class TestAnnouncements:
    def test_newest_published_partition_of_the_asset_events(self) -> None:
        extras = [
            {"dt": "2026-03-01", "version": "v2", "location": "s3://l/a/"},
            None,
            {"dt": "2026-03-02", "version": "v1", "location": "s3://l/b/"},
            {"dt": "2026-03-02"},  # incomplete: ignored
            {"dt": "2026-03-01", "version": "v3", "location": "s3://l/c/"},
        ]
        assert profiles.newest_announcement(extras) == {
            "dt": "2026-03-02",
            "version": "v1",
            "location": "s3://l/b/",
        }

    def test_no_announcement_says_what_to_do(self) -> None:
        with pytest.raises(LookupError, match='conf {"dt"'):
            profiles.newest_announcement([None, {"dt": "2026-03-01"}])
