"""Data profiles of published partitions: one JSON shape on both targets, where they live, the DataBrew
conversion and the HTML report.

A profile describes one published version of one dataset's partition (``dataset``, ``dt``, ``version``):
per column the count of present values, missing values, distinct values, min/max/mean/stddev and the
5/25/50/75/95 % quantiles (numeric columns), and the most frequent values (string and boolean columns).
The shape is ``include/profiles/profile.schema.json``; :class:`Profile` is its Python form. On the ``aws``
target a Glue DataBrew profile job computes it (:func:`from_databrew` converts its output); on the
``local`` target ``sagelake.local.profiler`` computes the same statistics with DuckDB. Definitions shared
by both: standard deviation is the *sample* one (n − 1); quantiles interpolate linearly between the two
closest ranks (Hyndman–Fan type 7, numpy's and pandas' default); missing means NULL (or NaN).

Pure functions only: no AWS calls here.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sagelake.config.settings import INCLUDE_DIR
from sagelake.lake.layout import check_dt, split_s3_uri

SCHEMA_PATH = INCLUDE_DIR / "profiles" / "profile.schema.json"
SCHEMA_VERSION = 1
QUANTILES: dict[str, float] = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
TOP_VALUES = 10
DEFINITIONS: dict[str, Any] = {
    "stddev": "sample",
    "quantiles": "linear",
    "missing": "NULL, or NaN in floating-point columns",
    "top_values": TOP_VALUES,
}
PROFILE_FILE = "profile.json"
REPORT_FILE = "report.html"

Engine = Literal["local-duckdb", "databrew"]
ColumnType = Literal["integer", "number", "string", "boolean", "date", "timestamp", "other"]
NUMERIC: tuple[str, ...] = ("integer", "number")
CATEGORICAL: tuple[str, ...] = ("string", "boolean")


@dataclass(frozen=True)
class ValueCount:
    """One of a column's most frequent values and how many rows hold it."""

    value: str | bool | int | float
    count: int


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column. Numeric statistics are None for non-numeric columns (dates and
    timestamps keep min/max, as ISO text); ``top_values`` is empty for numeric and temporal columns."""

    name: str
    type: ColumnType
    source_type: str
    count: int
    missing: int
    distinct: int | None
    min: float | int | str | None = None
    max: float | int | str | None = None
    mean: float | None = None
    stddev: float | None = None
    quantiles: dict[str, float | None] | None = None
    top_values: list[ValueCount] = field(default_factory=list)


@dataclass(frozen=True)
class Profile:
    """The profile of one published partition version (the document ``profile.json`` holds)."""

    dataset: str
    dt: str
    version: str
    location: str
    engine: Engine
    created_at: str
    row_count: int
    duplicate_rows: int | None
    columns: list[ColumnProfile]
    definitions: dict[str, Any] = field(default_factory=lambda: dict(DEFINITIONS))
    schema_version: int = SCHEMA_VERSION

    def column(self, name: str) -> ColumnProfile:
        """The column called ``name``; KeyError naming the known columns otherwise."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r} in profile of {self.dataset}: {[c.name for c in self.columns]}")


# --------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class ProfileKeys:
    """Where a profile lives: ``s3://<bucket>/profiles/<dataset>/dt=<dt>/version=<version>/``."""

    bucket: str
    prefix: str

    @property
    def profile_key(self) -> str:
        return self.prefix + PROFILE_FILE

    @property
    def report_key(self) -> str:
        return self.prefix + REPORT_FILE

    @property
    def databrew_output_key(self) -> str:
        """The folder a DataBrew profile job writes its own output to (converted into ``profile.json``)."""
        return self.prefix + "databrew/"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def profile_keys(bucket: str, dataset: str, dt: str, version: str) -> ProfileKeys:
    """The S3 location of the profile of ``dataset`` partition ``dt`` at ``version``."""
    for name, value in (("dataset", dataset), ("version", version), ("bucket", bucket)):
        if not value or "/" in value:
            raise ValueError(f"{name} {value!r} must be a non-empty name without '/'")
    return ProfileKeys(bucket, f"profiles/{dataset}/dt={check_dt(dt)}/version={version}/")


def version_of(location: str) -> str | None:
    """The ``version=`` folder name of a versioned partition location, or None."""
    for part in location.rstrip("/").split("/"):
        if part.startswith("version=") and len(part) > len("version="):
            return part[len("version=") :]
    return None


def newest_announcement(extras: Iterable[Mapping[str, Any] | None]) -> dict[str, str]:
    """The newest partition among asset events' ``extra`` (``{dt, version, location}``, as
    ``churn_prepare`` announces a publication): highest ``dt``, then version. LookupError if none."""
    found = [e for e in extras if e and {"dt", "version", "location"} <= set(e)]
    if not found:
        raise LookupError(
            'no published partition to profile: trigger with conf {"dt": "YYYY-MM-DD"} or let '
            "churn_prepare's churn_features asset event start the run"
        )
    best = max(found, key=lambda e: (str(e["dt"]), str(e["version"])))
    return {
        "dt": check_dt(str(best["dt"])),
        "version": str(best["version"]),
        "location": str(best["location"]),
    }


# ----------------------------------------------------------------------------------------------- JSON


def to_document(profile: Profile) -> dict[str, Any]:
    """The JSON document of ``profile`` (key order: the schema's)."""
    doc = asdict(profile)
    ordered = {"schema_version": doc.pop("schema_version")}
    ordered.update(doc)
    return ordered


def to_json(profile: Profile) -> str:
    """``profile.json``'s text: validated, NaN-free, stable key order."""
    doc = to_document(profile)
    validate(doc)
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def from_document(doc: Mapping[str, Any]) -> Profile:
    """A :class:`Profile` from a document of the schema (validated first)."""
    validate(doc)
    columns = [
        ColumnProfile(**{**c, "top_values": [ValueCount(**v) for v in c["top_values"]]})
        for c in doc["columns"]
    ]
    fields = {k: v for k, v in doc.items() if k != "columns"}
    return Profile(**fields, columns=columns)


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate(doc: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` (with the failing path) unless ``doc`` matches the schema."""
    import jsonschema

    jsonschema.validate(instance=doc, schema=load_schema(), cls=jsonschema.Draft202012Validator)


# ------------------------------------------------------------------------------------------- DataBrew

_DATABREW_TYPES: dict[str, ColumnType] = {
    **dict.fromkeys(("byte", "tinyint", "short", "smallint", "int", "integer", "long", "bigint"), "integer"),
    **dict.fromkeys(("float", "double", "real"), "number"),
    "string": "string",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def databrew_type(source_type: str) -> ColumnType:
    """The profile's column type for a DataBrew (Spark) type name such as ``bigint`` or ``decimal(10,2)``."""
    base = source_type.strip().lower()
    if base.startswith("decimal"):
        return "number"
    return _DATABREW_TYPES.get(base, "other")


def _finite(value: Any) -> float | None:
    """A finite float, or None (DataBrew writes ``"NaN"``/``"inf"`` as text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _bound(value: Any, kind: ColumnType) -> float | int | None:
    number = _finite(value)
    if number is None:
        return None
    return int(number) if kind == "integer" and number.is_integer() else number


def top_values(pairs: Sequence[tuple[Any, int]], limit: int = TOP_VALUES) -> list[ValueCount]:
    """The ``limit`` most frequent values: by count descending, then by value (as text) ascending."""
    ordered = sorted(pairs, key=lambda pair: (-int(pair[1]), str(pair[0])))
    return [ValueCount(value, int(count)) for value, count in ordered[:limit]]


def _databrew_column(raw: Mapping[str, Any], row_count: int) -> ColumnProfile:
    kind = databrew_type(str(raw.get("type", "")))
    missing = int(raw.get("missingValuesCount", 0))
    distinct = raw.get("distinctValuesCount")
    column: dict[str, Any] = {
        "name": raw["name"],
        "type": kind,
        "source_type": str(raw.get("type", "")),
        "count": row_count - missing,
        "missing": missing,
        "distinct": None if distinct is None else int(distinct),
    }
    if kind in NUMERIC:  # for strings DataBrew's min/max/mean/stddev describe value lengths: not kept
        column.update(
            min=_bound(raw.get("min"), kind),
            max=_bound(raw.get("max"), kind),
            mean=_finite(raw.get("mean")),
            stddev=_finite(raw.get("standardDeviation")),
            quantiles={
                "p5": _finite(raw.get("percentile5")),
                "p25": _finite(raw.get("percentile25")),
                "p50": _finite(raw.get("median")),
                "p75": _finite(raw.get("percentile75")),
                "p95": _finite(raw.get("percentile95")),
            },
        )
    elif kind in CATEGORICAL:
        pairs = [
            (v["value"], v["count"]) for v in raw.get("mostCommonValues", []) if v.get("value") is not None
        ]
        if kind == "boolean":
            pairs = [(_boolean(value), count) for value, count in pairs]
        column["top_values"] = top_values(pairs)
    return ColumnProfile(**column)


def _boolean(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "false": False}.get(text, str(value))


def from_databrew(
    output: Mapping[str, Any], *, dataset: str, dt: str, version: str, location: str, created_at: str
) -> Profile:
    """Convert a DataBrew profile job's output document (``<dataset>_<run id>.json`` in the job's output
    location: ``sampleSize``, ``duplicateRowsCount`` and one entry per column under ``columns``) into the
    project's shape. The job must profile the full dataset (``JobSample`` ``FULL_DATASET``): ``sampleSize``
    is then the partition's row count."""
    if "columns" not in output or "sampleSize" not in output:
        raise ValueError("not a DataBrew profile output: it has no 'columns' and 'sampleSize'")
    row_count = int(output["sampleSize"])
    duplicates = output.get("duplicateRowsCount")
    return Profile(
        dataset=dataset,
        dt=check_dt(dt),
        version=version,
        location=location,
        engine="databrew",
        created_at=created_at,
        row_count=row_count,
        duplicate_rows=None if duplicates is None else int(duplicates),
        columns=[_databrew_column(raw, row_count) for raw in output["columns"]],
    )


def databrew_dataset_request(name: str, location: str) -> dict[str, Any]:
    """CreateDataset/UpdateDataset arguments: the Parquet files of one S3 partition location."""
    bucket, key = split_s3_uri(location.rstrip("/") + "/")
    return {"Name": name, "Format": "PARQUET", "Input": {"S3InputDefinition": {"Bucket": bucket, "Key": key}}}


def databrew_profile_job_request(
    name: str, dataset_name: str, role_arn: str, output: ProfileKeys, *, timeout_minutes: int = 60
) -> dict[str, Any]:
    """CreateProfileJob arguments: the whole dataset (no sampling), duplicate rows counted, default column
    statistics (they include everything :func:`from_databrew` reads), output under the profile's folder."""
    return {
        "Name": name,
        "DatasetName": dataset_name,
        "RoleArn": role_arn,
        "OutputLocation": {"Bucket": output.bucket, "Key": output.databrew_output_key},
        "JobSample": {"Mode": "FULL_DATASET"},
        "Configuration": {"DatasetStatisticsConfiguration": {"IncludedStatistics": ["DUPLICATE_ROWS_COUNT"]}},
        "MaxCapacity": 2,
        "MaxRetries": 0,
        "Timeout": timeout_minutes,
    }


def update_profile_job_request(create: Mapping[str, Any]) -> dict[str, Any]:
    """UpdateProfileJob arguments from CreateProfileJob ones (the dataset cannot change, only be updated)."""
    return {k: v for k, v in create.items() if k != "DatasetName"}


# --------------------------------------------------------------------------------------------- report


def format_value(value: Any) -> str:
    """How the report prints a figure: integers with thousands separators, floats to 6 significant
    digits, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:.6g}"
    return str(value)


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "–"


def _bars_svg(values: Sequence[ValueCount], width: int = 240, bar: int = 14) -> str:
    """Horizontal bars, one per top value, proportional to its count (inline SVG, no script)."""
    if not values:
        return ""
    peak = max(v.count for v in values)
    height = bar * len(values) + 2
    rects = "".join(
        f'<rect x="0" y="{i * bar + 1}" width="{max(1, round(width * v.count / peak))}" height="{bar - 3}"'
        f' fill="#4c78a8"><title>{html.escape(format_value(v.value))}: {v.count}</title></rect>'
        for i, v in enumerate(values)
    )
    return f'<svg width="{width}" height="{height}" role="img" aria-label="top values">{rects}</svg>'


def _box_svg(column: ColumnProfile, width: int = 240, height: int = 28) -> str:
    """A box plot: min–max whisker, p25–p75 box, median tick; p5 and p95 as short ticks."""
    q = column.quantiles or {}
    low, high = _finite(column.min), _finite(column.max)
    points = [q.get(k) for k in ("p5", "p25", "p50", "p75", "p95")]
    if low is None or high is None or any(p is None for p in points):
        return ""
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return round(4 + (width - 8) * (value - low) / span, 1)

    p5, p25, p50, p75, p95 = points
    mid = height / 2
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="distribution">'
        f'<line x1="{x(low)}" y1="{mid}" x2="{x(high)}" y2="{mid}" stroke="#888"/>'
        f'<rect x="{x(p25)}" y="6" width="{max(1.0, x(p75) - x(p25))}" height="{height - 12}" '
        f'fill="#c6dbef" stroke="#4c78a8"/>'
        f'<line x1="{x(p50)}" y1="4" x2="{x(p50)}" y2="{height - 4}" stroke="#08306b" stroke-width="2"/>'
        f'<line x1="{x(p5)}" y1="9" x2="{x(p5)}" y2="{height - 9}" stroke="#888"/>'
        f'<line x1="{x(p95)}" y1="9" x2="{x(p95)}" y2="{height - 9}" stroke="#888"/>'
        f"<title>min {format_value(column.min)} · p25 {format_value(p25)} · median {format_value(p50)} · "
        f"p75 {format_value(p75)} · max {format_value(column.max)}</title></svg>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.meta td{text-align:left}.warn{color:#b30000}
.col{display:flex;gap:2em;align-items:flex-start}
"""


def _row(cells: Sequence[str], header: bool = False, left: int = 1) -> str:
    tag = "th" if header else "td"
    return (
        "<tr>"
        + "".join(f"<{tag}{' class=l' if i < left else ''}>{cell}</{tag}>" for i, cell in enumerate(cells))
        + "</tr>"
    )


def render_html(profile: Profile) -> str:
    """A self-contained HTML report (no script, no external resource): the partition's metadata, a summary
    table of every column, then one section per column with its statistics and a small inline chart."""
    e = html.escape
    rows = profile.row_count
    meta = [
        ("dataset", e(profile.dataset)),
        ("partition", f"dt={e(profile.dt)}"),
        ("version", e(profile.version)),
        ("data", e(profile.location)),
        ("engine", e(profile.engine)),
        ("profiled at", e(profile.created_at)),
        ("rows", format_value(rows)),
        ("duplicate rows", format_value(profile.duplicate_rows)),
        ("columns", format_value(len(profile.columns))),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Profile {e(profile.dataset)} dt={e(profile.dt)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Data profile: {e(profile.dataset)} dt={e(profile.dt)}</h1>",
        '<table class="meta">' + "".join(_row([k, v]) for k, v in meta) + "</table>",
        "<p>Standard deviation: sample (n − 1). Quantiles: linear interpolation between closest ranks. "
        "Missing: NULL (or NaN). Percentages are of all rows.</p>",
        "<h2>Columns</h2><table>",
        _row(
            ["column", "type", "count", "missing", "missing %", "distinct", "min", "max", "mean", "stddev"],
            header=True,
            left=2,
        ),
    ]
    for c in profile.columns:
        missing = f'<span class="warn">{format_value(c.missing)}</span>' if c.missing else "0"
        parts.append(
            _row(
                [
                    e(c.name),
                    e(c.type),
                    format_value(c.count),
                    missing,
                    _percent(c.missing, rows),
                    format_value(c.distinct),
                    e(format_value(c.min)),
                    e(format_value(c.max)),
                    format_value(c.mean),
                    format_value(c.stddev),
                ],
                left=2,
            )
        )
    parts.append("</table>")
    for c in profile.columns:
        parts.append(
            f'<h2 id="col-{e(c.name)}">{e(c.name)} <small>({e(c.type)}, {e(c.source_type)})</small></h2>'
        )
        stats = [
            ("count", format_value(c.count)),
            ("missing", f"{format_value(c.missing)} ({_percent(c.missing, rows)})"),
            ("distinct", format_value(c.distinct)),
        ]
        if c.type in NUMERIC or c.type in ("date", "timestamp"):
            stats += [("min", e(format_value(c.min))), ("max", e(format_value(c.max)))]
        if c.type in NUMERIC:
            stats += [("mean", format_value(c.mean)), ("stddev", format_value(c.stddev))]
            stats += [(k, format_value(v)) for k, v in (c.quantiles or {}).items()]
        table = "<table>" + "".join(_row([k, v]) for k, v in stats) + "</table>"
        chart = ""
        if c.type in NUMERIC:
            chart = _box_svg(c)
        elif c.top_values:
            top_rows = "".join(
                _row([e(format_value(v.value)), format_value(v.count), _percent(v.count, rows)])
                for v in c.top_values
            )
            chart = (
                "<div><table>"
                + _row(["top value", "rows", "%"], header=True)
                + top_rows
                + "</table></div>"
                + _bars_svg(c.top_values)
            )
        parts.append(f'<div class="col">{table}{chart}</div>')
    parts.append("</body></html>\n")
    return "\n".join(parts)
