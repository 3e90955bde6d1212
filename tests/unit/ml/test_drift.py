"""Drift measures on constructed data with known answers (PSI, KS, L∞, chi-squared), Model Monitor's file
formats (statistics.json, constraints.json, constraint_violations.json), the decision against thresholds,
CloudWatch metric items and plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from sagelake.ml import drift
from sagelake.ml.drift import Thresholds
from tests.support.lake_days import features
from tests.support.pipeline import validate

# ------------------------------------------------------------------------------------------- measures


def test_psi_of_a_distribution_with_itself_is_zero_and_of_a_known_shift_matches_the_formula() -> None:
    assert drift.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)  # counts are normalised
    # baseline: ten equal bins; current: everything in the first five
    expected, actual = [0.1] * 10, [0.2] * 5 + [0.0] * 5
    eps = drift.PSI_EPSILON
    by_hand = 5 * (0.2 - 0.1) * math.log(2) + 5 * (eps - 0.1) * math.log(eps / 0.1)
    assert drift.psi(expected, actual) == pytest.approx(by_hand)


def test_psi_refuses_distributions_over_different_bins() -> None:
    with pytest.raises(ValueError, match="same bins"):
        drift.psi([1, 2], [1, 2, 3])


def test_psi_over_the_baselines_decile_bins() -> None:
    base = np.arange(1000, dtype=float)
    edges = drift.psi_edges(base)
    assert len(edges) == 9
    assert list(drift.bin_counts(base, edges)) == [100] * 10
    half = np.concatenate([np.arange(500), np.arange(500)]).astype(float)  # all in the lower half
    eps = drift.PSI_EPSILON
    by_hand = 5 * 0.1 * math.log(2) + 5 * (eps - 0.1) * math.log(eps / 0.1)
    assert drift.psi(drift.bin_counts(base, edges), drift.bin_counts(half, edges)) == pytest.approx(by_hand)


def test_ties_merge_decile_bins_and_no_baseline_bin_is_empty() -> None:
    values = np.array([0] * 40 + [1] * 30 + [2] * 20 + [5] * 10, dtype=float)
    edges = drift.psi_edges(values)
    assert edges == [1.0, 2.0, 5.0]
    assert list(drift.bin_counts(values, edges)) == [40, 30, 20, 10]


def test_ks_equals_scipys_two_sample_test_when_every_value_is_kept() -> None:
    rng = np.random.default_rng(7)
    base, cur = rng.normal(0, 1, 400), rng.normal(0.3, 1, 300)
    distance, pvalue = drift.ks(drift.sketch_points(base), len(base), cur)
    expected = scipy_stats.ks_2samp(base, cur, method="asymp")
    assert distance == pytest.approx(expected.statistic)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-6)


def test_ks_of_a_known_shift_and_of_the_same_values() -> None:
    base = np.arange(1000, dtype=float)
    assert drift.ks(base, 1000, base + 500)[0] == pytest.approx(0.5)
    distance, pvalue = drift.ks(base, 1000, base)
    assert distance == 0.0 and pvalue == pytest.approx(1.0)


def test_ks_against_a_quantile_sketch_is_close_to_the_exact_test() -> None:
    rng = np.random.default_rng(3)
    base, cur = rng.exponential(2.0, 50_000), rng.exponential(2.4, 2_000)
    points = drift.sketch_points(base)
    assert len(points) == drift.SKETCH_POINTS
    distance, _ = drift.ks(points, len(base), cur)
    assert distance == pytest.approx(scipy_stats.ks_2samp(base, cur).statistic, abs=2e-3)


def test_l_infinity_is_the_largest_change_of_one_share_and_counts_new_categories() -> None:
    assert drift.l_infinity({"a": 50, "b": 50}, {"a": 70, "b": 30}) == pytest.approx(0.2)
    assert drift.l_infinity({"a": 50, "b": 50}, {"a": 40, "b": 40, "c": 20}) == pytest.approx(0.2)
    assert drift.l_infinity({"a": 5, "b": 5}, {"a": 1, "b": 1}) == pytest.approx(0.0)


def test_chi_squared_matches_the_textbook_value() -> None:
    statistic, pvalue = drift.chi_squared({"a": 500, "b": 500}, {"a": 70, "b": 30})
    assert statistic == pytest.approx(16.0)  # (20²/50)·2
    assert pvalue == pytest.approx(scipy_stats.chi2.sf(16.0, 1))


# -------------------------------------------------------------------------------------------- formats


def frame_with_gaps() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5"],
            "plan": ["basic", "premium", None, "basic", "basic"],
            "monthly_fee": [9.99, 19.99, 14.99, None, 9.99],
            "support_tickets": pd.Series([0, 1, 2, 0, 3], dtype="int32"),
            "churned": [0, 1, 0, 0, 1],
        }
    )


def test_statistics_json_has_model_monitors_fields() -> None:
    stats, _ = drift.baseline(frame_with_gaps())
    json.dumps(stats, allow_nan=False)
    assert stats["version"] == 0 and stats["dataset"] == {"item_count": 5}
    by_name = {f["name"]: f for f in stats["features"]}
    assert set(by_name) == {"plan", "monthly_fee", "support_tickets"}  # key and label excluded
    fee = by_name["monthly_fee"]
    assert fee["inferred_type"] == "Fractional"
    numeric = fee["numerical_statistics"]
    assert numeric["common"] == {"num_present": 4, "num_missing": 1}
    assert {"mean", "sum", "std_dev", "min", "max", "distribution"} <= set(numeric)
    assert numeric["sum"] == pytest.approx(9.99 + 19.99 + 14.99 + 9.99)
    assert (numeric["min"], numeric["max"]) == (9.99, 19.99)
    kll = numeric["distribution"]["kll"]
    assert sum(b["count"] for b in kll["buckets"]) == 4
    assert all({"lower_bound", "upper_bound", "count"} == set(b) for b in kll["buckets"])
    assert kll["sketch"]["data"] == [[9.99, 9.99, 14.99, 19.99]] and set(kll["sketch"]["parameters"]) == {
        "c",
        "k",
    }
    assert by_name["support_tickets"]["inferred_type"] == "Integral"
    plan = by_name["plan"]
    assert plan["inferred_type"] == "String"
    strings = plan["string_statistics"]
    assert strings["common"] == {"num_present": 4, "num_missing": 1} and strings["distinct_count"] == 2
    assert strings["distribution"]["categorical"]["buckets"] == [
        {"value": "basic", "count": 3},
        {"value": "premium", "count": 1},
    ]


def test_constraints_json_has_model_monitors_fields_and_the_thresholds() -> None:
    thresholds = Thresholds(psi=0.3, ks_pvalue=0.05, linf=0.15, categorical_method="ChiSquared")
    _, constraints = drift.baseline(frame_with_gaps(), thresholds=thresholds)
    json.dumps(constraints, allow_nan=False)
    assert constraints["version"] == 0
    by_name = {f["name"]: f for f in constraints["features"]}
    assert by_name["plan"]["completeness"] == pytest.approx(0.8)
    assert by_name["plan"]["string_constraints"] == {"domains": ["basic", "premium"]}
    assert by_name["monthly_fee"]["num_constraints"] == {"is_non_negative": True}
    assert all("monitoringConfigOverrides" in f for f in constraints["features"])
    config = constraints["monitoring_config"]
    assert {
        "evaluate_constraints",
        "emit_metrics",
        "datatype_check_threshold",
        "domain_content_threshold",
    } <= set(config)
    assert config["distribution_constraints"] == {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.15,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.15,
        "categorical_drift_method": "ChiSquared",
    }
    assert constraints["sagelake"] == {"psi_threshold": 0.3, "ks_pvalue": 0.05}


# ---------------------------------------------------------------------------------- drift and violations


def drifted_frame(seed: int) -> pd.DataFrame:
    """A partition drifted on purpose: monthly fees up by 5 and the premium plan's share up to ~60 %."""
    frame = features(600, seed)
    frame["monthly_fee"] = frame["monthly_fee"] + 5.0
    frame.loc[frame.index < 300, "plan"] = "premium"
    return frame


@pytest.fixture(scope="module")
def baseline_stats() -> dict:
    return drift.baseline(features(3000, 11))[0]


def test_a_partition_like_the_baseline_does_not_drift(baseline_stats: dict) -> None:
    scores = drift.drift(baseline_stats, features(600, 12))
    assert set(scores) == {f["name"] for f in baseline_stats["features"]}
    assert drift.drifted(scores) == []
    assert drift.violations(scores, baseline_stats, features(1, 1).columns) == {"violations": []}


def test_a_shifted_feature_and_a_new_category_share_drift(baseline_stats: dict) -> None:
    scores = drift.drift(baseline_stats, drifted_frame(13))
    assert sorted(drift.drifted(scores)) == ["monthly_fee", "plan"]
    fee, plan = scores["monthly_fee"], scores["plan"]
    assert fee.metrics["psi"] > 0.2 and fee.metrics["ks_pvalue"] < 0.01 and fee.metrics["ks_statistic"] > 0.1
    assert len(fee.reasons) == 2  # PSI and KS both
    assert plan.metrics["l_infinity"] > 0.2 and plan.metrics["chi_squared_pvalue"] < 0.01


def test_violations_are_model_monitors_baseline_drift_and_missing_column_checks(baseline_stats: dict) -> None:
    frame = drifted_frame(14).drop(columns=["age"])
    scores = drift.drift(baseline_stats, frame)
    report = drift.violations(scores, baseline_stats, frame.columns)
    json.dumps(report, allow_nan=False)
    assert all(
        set(v) == {"feature_name", "constraint_check_type", "description"} for v in report["violations"]
    )
    checks = {(v["feature_name"], v["constraint_check_type"]) for v in report["violations"]}
    assert checks == {
        ("age", "missing_column_check"),
        ("monthly_fee", "baseline_drift_check"),
        ("plan", "baseline_drift_check"),
    }
    described = {v["feature_name"]: v["description"] for v in report["violations"]}
    assert "PSI" in described["monthly_fee"] and "L-infinity" in described["plan"]


def test_thresholds_decide(baseline_stats: dict) -> None:
    frame = drifted_frame(15)
    observed = drift.drift(baseline_stats, frame)["monthly_fee"].metrics
    lenient = Thresholds(psi=observed["psi"] + 1, ks_pvalue=0.01, linf=observed["ks_statistic"] + 0.01)
    assert drift.drift(baseline_stats, frame, lenient)["monthly_fee"].drifted is False
    only_psi = Thresholds(psi=observed["psi"] - 0.01, ks_pvalue=0.01, linf=0.99)
    fee = drift.drift(baseline_stats, frame, only_psi)["monthly_fee"]
    assert fee.drifted and [r.split()[0] for r in fee.reasons] == ["PSI"]


def test_the_chi_squared_method_decides_categorical_drift_by_p_value(baseline_stats: dict) -> None:
    frame = features(600, 16)
    frame.loc[frame.index < 60, "region"] = "north"  # a ~7 % share change: below L∞'s 0.1, yet significant
    linf = drift.drift(baseline_stats, frame)["region"]
    chi = drift.drift(baseline_stats, frame, Thresholds(categorical_method="ChiSquared"))["region"]
    assert linf.metrics["l_infinity"] < 0.1 and not linf.drifted
    assert chi.metrics["chi_squared_pvalue"] < 0.01 and chi.drifted


def test_a_value_missing_everywhere_is_reported_and_not_drifted(baseline_stats: dict) -> None:
    frame = features(50, 17)
    frame["tenure_days"] = np.nan
    score = drift.drift(baseline_stats, frame)["tenure_days"]
    assert score.metrics == {"psi": None, "ks_statistic": None, "ks_pvalue": None} and not score.drifted


def test_scores_document_and_cloudwatch_metric_items(baseline_stats: dict) -> None:
    scores = drift.drift(baseline_stats, drifted_frame(18))
    document = drift.scores_document(scores, thresholds=Thresholds(), dt="2026-11-01", source="partition")
    json.dumps(document, allow_nan=False)
    assert document["dt"] == "2026-11-01" and sorted(document["drifted"]) == ["monthly_fee", "plan"]
    assert document["features"]["plan"]["metrics"]["l_infinity"] == scores["plan"].metrics["l_infinity"]
    items = drift.metric_data(scores, source="partition", timestamp=pd.Timestamp("2026-11-01", tz="UTC"))
    validate("cloudwatch", "PutMetricData", {"Namespace": "sagelake/Drift", "MetricData": items})
    count = [i for i in items if i["MetricName"] == "drifted_features"]
    assert count and count[0]["Value"] == 2.0
    assert len(items) == 1 + 3 * len(scores)


def test_plots_are_pngs_for_both_kinds(baseline_stats: dict) -> None:
    by_name = {f["name"]: f for f in baseline_stats["features"]}
    frame = drifted_frame(19)
    for name in ("monthly_fee", "plan"):
        png = drift.plot(by_name[name], frame[name], title=name)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


# ------------------------------------------------------------------------------------------ settings


def test_drift_settings_defaults_overrides_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelake.config.settings import drift_settings

    for name in ("PSI_THRESHOLD", "KS_PVALUE", "LINF_THRESHOLD", "CATEGORICAL_METHOD"):
        monkeypatch.delenv(f"SAGELAKE_DRIFT_{name}", raising=False)
    assert Thresholds.from_settings(drift_settings()) == Thresholds(0.2, 0.01, 0.1, "LInfinity")
    monkeypatch.setenv("SAGELAKE_DRIFT_PSI_THRESHOLD", "0.35")
    monkeypatch.setenv("SAGELAKE_DRIFT_KS_PVALUE", "0.001")
    monkeypatch.setenv("SAGELAKE_DRIFT_LINF_THRESHOLD", "0.2")
    monkeypatch.setenv("SAGELAKE_DRIFT_CATEGORICAL_METHOD", "ChiSquared")
    assert Thresholds.from_settings(drift_settings()) == Thresholds(0.35, 0.001, 0.2, "ChiSquared")
    monkeypatch.setenv("SAGELAKE_DRIFT_KS_PVALUE", "1.5")
    with pytest.raises(ValueError, match="SAGELAKE_DRIFT_KS_PVALUE"):
        drift_settings()
    monkeypatch.setenv("SAGELAKE_DRIFT_KS_PVALUE", "0.01")
    monkeypatch.setenv("SAGELAKE_DRIFT_CATEGORICAL_METHOD", "Wasserstein")
    with pytest.raises(ValueError, match="SAGELAKE_DRIFT_CATEGORICAL_METHOD"):
        drift_settings()
