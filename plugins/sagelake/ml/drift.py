"""Data drift against a training baseline, in SageMaker Model Monitor's file formats.

Model Monitor is closed to new customers (AWS's note on its documentation pages), so the project computes
drift itself, the same way on both targets, and keeps Model Monitor's files so existing tools read them:

- :func:`baseline` → ``statistics.json`` (``version``, ``dataset.item_count``, per feature ``name``,
  ``inferred_type`` and ``numerical_statistics`` or ``string_statistics``) and ``constraints.json``
  (``completeness``, ``num_constraints``, ``string_constraints.domains``, ``monitoring_config`` with the
  ``distribution_constraints`` thresholds). Numeric ``distribution.kll.buckets`` are the baseline's
  **decile bins** (``lower_bound``/``upper_bound``/``count``; PSI's bins); ``distribution.kll.sketch.data``
  holds one level of ``k`` evenly spaced quantiles (every value, sorted, when there are at most ``k``):
  KS's baseline CDF. Categorical ``distribution.categorical.buckets`` are every value with its count.
- :func:`drift` → per feature: numeric **PSI** (baseline decile bins, proportions floored at
  :data:`PSI_EPSILON`) and the two-sample **Kolmogorov–Smirnov** distance and asymptotic p-value (scipy's
  ``kstwo`` with n·m/(n+m), as ``ks_2samp(method="asymp")``); categorical **L∞** (largest change of one
  category's share) and **chi-squared** (current counts against the baseline shares, scipy).
- :func:`violations` → ``constraint_violations.json`` (``baseline_drift_check``, ``missing_column_check``).

A numeric feature drifted when PSI exceeds ``psi_threshold``, or when KS is significant (p below
``ks_pvalue``) *and* its distance exceeds ``linf_threshold`` (Model Monitor's ``comparison_threshold``: a
significant but tiny shift in a large sample is no reason to retrain). A categorical one when L∞ exceeds
``linf_threshold`` (``LInfinity``, the default), or its chi-squared p-value is below ``ks_pvalue``
(``ChiSquared``). Pure functions: no AWS calls here (``sagelake.ml.drift_store`` reads and writes S3).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

SCHEMA_VERSION = 0  # Model Monitor's files say "version": 0
SKETCH_POINTS = 1001  # quantiles kept as the baseline CDF (KS)
PSI_BINS = 10  # decile bins
PSI_EPSILON = 1e-4  # floor of a bin's (or category's) share: an empty bin must not make PSI infinite
DOMAIN_LIMIT = 100  # string_constraints.domains lists a feature's values only below this many
EXCLUDED: tuple[str, ...] = ("customer_id", "churned")  # the key and the label are not model inputs

InferredType = Literal["Integral", "Fractional", "String", "Unknown"]
CategoricalMethod = Literal["LInfinity", "ChiSquared"]
Source = Literal["partition", "traffic"]


@dataclass(frozen=True)
class Thresholds:
    """When a feature drifted (``sagelake.config.settings.drift_settings`` gives the deployment's)."""

    psi: float = 0.2
    ks_pvalue: float = 0.01
    linf: float = 0.1
    categorical_method: CategoricalMethod = "LInfinity"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Thresholds:
        return cls(
            psi=float(settings["psi_threshold"]),
            ks_pvalue=float(settings["ks_pvalue"]),
            linf=float(settings["linf_threshold"]),
            categorical_method=settings.get("categorical_method", "LInfinity"),
        )


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: its measures, whether it drifted and why (one sentence per reason)."""

    name: str
    kind: Literal["numerical", "categorical"]
    metrics: dict[str, float | None]
    drifted: bool
    reasons: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ statistics


def inferred_type(series: pd.Series) -> InferredType:
    """Model Monitor's ``inferred_type`` of a column."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_string_dtype(series):
        return "String"
    if pd.api.types.is_object_dtype(series):
        return "String"
    if pd.api.types.is_integer_dtype(series):
        return "Integral"
    if pd.api.types.is_float_dtype(series):
        present = series.dropna()
        return "Integral" if len(present) and bool(np.all(np.mod(present, 1) == 0)) else "Fractional"
    return "Unknown"


def model_features(frame: pd.DataFrame) -> list[str]:
    """The columns a drift check compares: every column but the key and the label."""
    return [c for c in frame.columns if c not in EXCLUDED]


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def psi_edges(values: np.ndarray, bins: int = PSI_BINS) -> list[float]:
    """Interior edges of the baseline's quantile bins: distinct deciles (observed values, numpy's
    ``higher`` method) above the minimum; ties merge bins, so a feature with few values gets fewer bins
    and none is empty in the baseline."""
    if not len(values):
        return []
    deciles = np.quantile(values, np.arange(1, bins) / bins, method="higher")  # observed values
    low = float(np.min(values))
    return [float(e) for e in np.unique(deciles) if e > low]


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """How many ``values`` fall in each bin: bin i holds ``edges[i-1] <= x < edges[i]`` (the first from
    −∞, the last to +∞)."""
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="right")
    return np.bincount(index, minlength=len(edges) + 1)


def sketch_points(values: np.ndarray, k: int = SKETCH_POINTS) -> list[float]:
    """The baseline CDF kept for KS: every value sorted (at most ``k``), else ``k`` even quantiles."""
    ordered = np.sort(values)
    if len(ordered) <= k:
        return [float(v) for v in ordered]
    return [float(v) for v in np.quantile(ordered, np.linspace(0.0, 1.0, k))]


def _numerical(series: pd.Series, kind: InferredType) -> dict[str, Any]:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    present = values[~np.isnan(values)]
    common = {"num_present": int(len(present)), "num_missing": int(len(values) - len(present))}
    if not len(present):
        return {"common": common, "mean": None, "sum": 0.0, "std_dev": None, "min": None, "max": None}
    edges = psi_edges(present)
    counts = bin_counts(present, edges)
    bounds = [float(present.min()), *edges, float(present.max())]
    buckets = [
        {"lower_bound": bounds[i], "upper_bound": bounds[i + 1], "count": int(counts[i])}
        for i in range(len(counts))
    ]
    return {
        "common": common,
        "mean": _number(present.mean()),
        "sum": _number(present.sum()),
        "std_dev": _number(present.std(ddof=0)),  # Model Monitor's (Deequ's) population deviation
        "min": _number(present.min()),
        "max": _number(present.max()),
        "distribution": {
            "kll": {
                "buckets": buckets,
                "sketch": {
                    "parameters": {"c": 0.64, "k": SKETCH_POINTS},
                    "data": [sketch_points(present)],
                },
            }
        },
    }


def _categorical(series: pd.Series) -> dict[str, Any]:
    present = series.dropna().astype(str)
    counts = present.value_counts()
    buckets = [{"value": str(v), "count": int(c)} for v, c in sorted(counts.items(), key=lambda p: p[0])]
    return {
        "common": {"num_present": int(len(present)), "num_missing": int(len(series) - len(present))},
        "distinct_count": int(len(counts)),
        "distribution": {"categorical": {"buckets": buckets}},
    }


def statistics(frame: pd.DataFrame, features: Sequence[str] | None = None) -> dict[str, Any]:
    """``statistics.json`` of ``frame`` (the baseline's, or a monitored dataset's)."""
    names = list(features) if features is not None else model_features(frame)
    documented = []
    for name in names:
        kind = inferred_type(frame[name])
        entry: dict[str, Any] = {"name": name, "inferred_type": kind}
        if kind in ("Integral", "Fractional"):
            entry["numerical_statistics"] = _numerical(frame[name], kind)
        else:
            entry["string_statistics"] = _categorical(frame[name])
        documented.append(entry)
    return {"version": SCHEMA_VERSION, "dataset": {"item_count": int(len(frame))}, "features": documented}


def constraints(stats: Mapping[str, Any], thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """``constraints.json`` suggested from a baseline's ``statistics.json``, with the drift thresholds."""
    items = max(int(stats["dataset"]["item_count"]), 1)
    features = []
    for feature in stats["features"]:
        block = feature.get("numerical_statistics") or feature.get("string_statistics")
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": feature["inferred_type"],
            "completeness": block["common"]["num_present"] / items,
        }
        if "numerical_statistics" in feature:
            low = feature["numerical_statistics"]["min"]
            entry["num_constraints"] = {"is_non_negative": low is not None and low >= 0}
        else:
            values = [b["value"] for b in block["distribution"]["categorical"]["buckets"]]
            if len(values) < DOMAIN_LIMIT:
                entry["string_constraints"] = {"domains": values}
        entry["monitoringConfigOverrides"] = {}
        features.append(entry)
    return {
        "version": SCHEMA_VERSION,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": thresholds.linf,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": thresholds.linf,
                "categorical_drift_method": thresholds.categorical_method,
            },
        },
        # the project's own additions (Model Monitor's readers ignore them)
        "sagelake": {"psi_threshold": thresholds.psi, "ks_pvalue": thresholds.ks_pvalue},
    }


def baseline(
    frame: pd.DataFrame, features: Sequence[str] | None = None, thresholds: Thresholds = Thresholds()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(statistics.json, constraints.json)`` of a training window's rows."""
    stats = statistics(frame, features)
    return stats, constraints(stats, thresholds)


# -------------------------------------------------------------------------------------------- measures


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index Σ (a − e)·ln(a / e) of two distributions over the same bins (counts or
    shares; each is normalised, and shares are floored at ``epsilon``)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or not e.sum() or not a.sum():
        raise ValueError("psi needs two non-empty distributions over the same bins")
    e = np.maximum(e / e.sum(), epsilon)
    a = np.maximum(a / a.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def ks(
    baseline_points: Sequence[float], baseline_count: int, current: Sequence[float]
) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov ``(distance, p-value)``: the largest gap between the baseline's CDF
    (its sketch points) and the current values' empirical CDF; asymptotic p-value for the baseline's real
    size ``baseline_count`` (exactly scipy's ``ks_2samp(method="asymp")`` when every value is kept)."""
    from scipy.stats import kstwo

    base = np.sort(np.asarray(baseline_points, dtype=float))
    cur = np.sort(np.asarray(current, dtype=float))
    if not len(base) or not len(cur):
        raise ValueError("ks needs values on both sides")
    grid = np.concatenate([base, cur])
    gap = np.abs(
        np.searchsorted(base, grid, side="right") / len(base)
        - np.searchsorted(cur, grid, side="right") / len(cur)
    )
    distance = float(gap.max())
    n, m = max(int(baseline_count), 1), len(cur)
    pvalue = float(np.clip(kstwo.sf(distance, round(n * m / (n + m))), 0.0, 1.0))
    return distance, pvalue


def shares(counts: Mapping[str, float]) -> dict[str, float]:
    total = float(sum(counts.values()))
    return {k: (v / total if total else 0.0) for k, v in counts.items()}


def l_infinity(baseline_counts: Mapping[str, float], current_counts: Mapping[str, float]) -> float:
    """The largest absolute change of one category's share (a new category counts from 0)."""
    base, cur = shares(baseline_counts), shares(current_counts)
    return max((abs(cur.get(k, 0.0) - base.get(k, 0.0)) for k in set(base) | set(cur)), default=0.0)


def chi_squared(
    baseline_counts: Mapping[str, float], current_counts: Mapping[str, float], epsilon: float = PSI_EPSILON
) -> tuple[float, float]:
    """Chi-squared goodness of fit ``(statistic, p-value)`` of the current counts against the baseline's
    shares (shares floored at ``epsilon`` so that a new category is possible, then renormalised)."""
    from scipy.stats import chisquare

    categories = sorted(set(baseline_counts) | set(current_counts))
    observed = np.array([float(current_counts.get(k, 0)) for k in categories])
    if len(categories) < 2 or not observed.sum():
        return 0.0, 1.0
    base = shares(baseline_counts)
    expected = np.maximum(np.array([base.get(k, 0.0) for k in categories]), epsilon)
    expected = expected / expected.sum() * observed.sum()
    statistic, pvalue = chisquare(observed, expected)
    return float(statistic), float(pvalue)


# ---------------------------------------------------------------------------------------------- drift


def _numeric_drift(name: str, base: Mapping[str, Any], series: pd.Series, t: Thresholds) -> FeatureDrift:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    values = values[~np.isnan(values)]
    kll = (base.get("distribution") or {}).get("kll") or {}
    buckets = kll.get("buckets") or []
    if not len(values) or not buckets:
        return FeatureDrift(name, "numerical", {"psi": None, "ks_statistic": None, "ks_pvalue": None}, False)
    edges = [float(b["lower_bound"]) for b in buckets[1:]]
    score = psi([b["count"] for b in buckets], bin_counts(values, edges))
    points = [p for level in kll["sketch"]["data"] for p in level]
    distance, pvalue = ks(points, base["common"]["num_present"], values)
    reasons = []
    if score > t.psi:
        reasons.append(f"PSI {score:.4f} exceeds threshold {t.psi}")
    if pvalue < t.ks_pvalue and distance > t.linf:
        reasons.append(
            f"KS distance {distance:.4f} exceeds threshold {t.linf} (p-value {pvalue:.3g} < {t.ks_pvalue})"
        )
    metrics = {"psi": score, "ks_statistic": distance, "ks_pvalue": pvalue}
    return FeatureDrift(name, "numerical", metrics, bool(reasons), reasons)


def _categorical_drift(name: str, base: Mapping[str, Any], series: pd.Series, t: Thresholds) -> FeatureDrift:
    expected = {b["value"]: b["count"] for b in base["distribution"]["categorical"]["buckets"]}
    observed = {str(k): int(v) for k, v in series.dropna().astype(str).value_counts().items()}
    if not observed or not expected:
        metrics: dict[str, float | None] = {
            "l_infinity": None,
            "chi_squared": None,
            "chi_squared_pvalue": None,
        }
        return FeatureDrift(name, "categorical", metrics, False)
    distance = l_infinity(expected, observed)
    statistic, pvalue = chi_squared(expected, observed)
    reasons = []
    if t.categorical_method == "LInfinity" and distance > t.linf:
        reasons.append(f"L-infinity distance {distance:.4f} exceeds threshold {t.linf}")
    if t.categorical_method == "ChiSquared" and pvalue < t.ks_pvalue:
        reasons.append(f"chi-squared {statistic:.4g} (p-value {pvalue:.3g} < {t.ks_pvalue})")
    new = sorted(set(observed) - set(expected))
    if new and reasons:
        reasons.append(f"values not in the baseline: {', '.join(new[:10])}")
    metrics = {"l_infinity": distance, "chi_squared": statistic, "chi_squared_pvalue": pvalue}
    return FeatureDrift(name, "categorical", metrics, bool(reasons), reasons)


def drift(
    baseline_stats: Mapping[str, Any], frame: pd.DataFrame, thresholds: Thresholds = Thresholds()
) -> dict[str, FeatureDrift]:
    """Per baseline feature present in ``frame``: its drift from the baseline (feature name → result)."""
    found: dict[str, FeatureDrift] = {}
    for feature in baseline_stats["features"]:
        name = feature["name"]
        if name not in frame.columns:
            continue
        if "numerical_statistics" in feature:
            found[name] = _numeric_drift(name, feature["numerical_statistics"], frame[name], thresholds)
        else:
            found[name] = _categorical_drift(name, feature["string_statistics"], frame[name], thresholds)
    return found


def drifted(scores: Mapping[str, FeatureDrift]) -> list[str]:
    return [name for name, score in scores.items() if score.drifted]


def violations(
    scores: Mapping[str, FeatureDrift], baseline_stats: Mapping[str, Any], columns: Iterable[str]
) -> dict[str, Any]:
    """``constraint_violations.json``: a ``baseline_drift_check`` per drifted feature and a
    ``missing_column_check`` per baseline feature the monitored data lacks."""
    present = set(columns)
    found = [
        {
            "feature_name": f["name"],
            "constraint_check_type": "missing_column_check",
            "description": f"Baseline feature {f['name']} is missing from the monitored data",
        }
        for f in baseline_stats["features"]
        if f["name"] not in present
    ]
    found += [
        {
            "feature_name": name,
            "constraint_check_type": "baseline_drift_check",
            "description": "; ".join(score.reasons),
        }
        for name, score in scores.items()
        if score.drifted
    ]
    return {"violations": found}


def scores_document(
    scores: Mapping[str, FeatureDrift], *, thresholds: Thresholds, **context: Any
) -> dict[str, Any]:
    """``drift_scores.json``: the run's context (dt, version, baseline, source…), thresholds, per-feature
    measures and the drifted features."""
    return {
        **context,
        "thresholds": asdict(thresholds),
        "features": {name: asdict(score) for name, score in scores.items()},
        "drifted": drifted(scores),
    }


def metric_data(
    scores: Mapping[str, FeatureDrift], *, source: Source, timestamp: Any
) -> list[dict[str, Any]]:
    """CloudWatch ``PutMetricData`` items: one per feature and measure (dimensions ``Feature``, ``Source``)
    and ``drifted_features``, the count of drifted features."""
    items = [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": "Feature", "Value": name}, {"Name": "Source", "Value": source}],
            "Timestamp": timestamp,
            "Value": float(value),
            "Unit": "None",
        }
        for name, score in scores.items()
        for metric, value in score.metrics.items()
        if value is not None and math.isfinite(value)
    ]
    items.append(
        {
            "MetricName": "drifted_features",
            "Dimensions": [{"Name": "Source", "Value": source}],
            "Timestamp": timestamp,
            "Value": float(len(drifted(scores))),
            "Unit": "Count",
        }
    )
    return items


# ---------------------------------------------------------------------------------------------- plots


def plot(feature: Mapping[str, Any], series: pd.Series, *, title: str) -> bytes:
    """A PNG of the baseline's and the current shares side by side: per baseline bin (numeric) or per
    category (categorical)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if "numerical_statistics" in feature:
        buckets = feature["numerical_statistics"]["distribution"]["kll"]["buckets"]
        values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=float)
        labels = [f"{b['lower_bound']:.4g}–{b['upper_bound']:.4g}" for b in buckets]
        base = np.array([b["count"] for b in buckets], dtype=float)
        cur = bin_counts(values, [float(b["lower_bound"]) for b in buckets[1:]]).astype(float)
    else:
        expected = {
            b["value"]: b["count"]
            for b in feature["string_statistics"]["distribution"]["categorical"]["buckets"]
        }
        observed = series.dropna().astype(str).value_counts().to_dict()
        labels = sorted(set(expected) | set(observed))
        base = np.array([expected.get(k, 0) for k in labels], dtype=float)
        cur = np.array([observed.get(k, 0) for k in labels], dtype=float)
    base = base / base.sum() if base.sum() else base
    cur = cur / cur.sum() if cur.sum() else cur
    figure = Figure(figsize=(7, 3.6), dpi=100)
    axes = figure.subplots()
    x = np.arange(len(labels))
    axes.bar(x - 0.2, base, width=0.4, label="baseline", color="#4c78a8")
    axes.bar(x + 0.2, cur, width=0.4, label="current", color="#f58518")
    axes.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    axes.set_ylabel("share of rows")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
