"""A/B testing: the two-variant and single-variant endpoint requests, weight shifting and metric queries
validated against botocore's request models; the outcome join and the significance verdicts on
constructed data."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator

from sagelake.ml.ab_testing import (
    CHALLENGER,
    CHALLENGER_WINS,
    CHAMPION,
    CHAMPION_WINS,
    NO_DIFFERENCE,
    NOT_ENOUGH_DATA,
    PRIMARY,
    ABSettings,
    ModelRef,
    ab_endpoint_request,
    capture_hours,
    captured_predictions,
    compare_outcomes,
    comparison_markdown,
    current_weights,
    labels_from_rows,
    metric_period,
    metric_statistics_request,
    outcome_counts,
    single_variant_request,
    summarise_metrics,
    weights_request,
)
from tests.support.constants import REGION

ENDPOINT = "sagelake-churn"
ROLE = "arn:aws:iam::123456789012:role/sagelake-sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
CHAMPION_MODEL = ModelRef("churn-20261101-abc-v1", IMAGE, "s3://lake/models/v1/model.tar.gz")


def valid_for(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise unless ``params`` is a valid request of ``operation`` (botocore's client-side validation)."""
    model = boto3.client(service, region_name=REGION).meta.service_model.operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()


def ab_request(weights: dict[str, float] | None = None) -> dict[str, Any]:
    return ab_endpoint_request(
        champion=CHAMPION_MODEL,
        challenger_model_name="churn-ab-20261127-def-v2",
        challenger_image=IMAGE,
        challenger_model_url="s3://lake/models/v2/model.tar.gz",
        endpoint_config_name="churn-ab-20261127-def-v2",
        endpoint_name=ENDPOINT,
        role=ROLE,
        instance_type="ml.m5.large",
        weights=weights or ABSettings(challenger_weight=0.1).weights(),
        data_capture_uri="s3://lake/monitoring/capture/",
    )


def test_the_ab_config_serves_the_existing_champion_and_the_new_challenger_by_weight() -> None:
    request = ab_request()
    valid_for("sagemaker", "CreateModel", request["Model"])
    valid_for("sagemaker", "CreateEndpointConfig", request["EndpointConfig"])
    valid_for("sagemaker", "UpdateEndpoint", request["Endpoint"])
    variants = {v["VariantName"]: v for v in request["EndpointConfig"]["ProductionVariants"]}
    assert set(variants) == {CHAMPION, CHALLENGER}
    assert variants[CHAMPION]["ModelName"] == CHAMPION_MODEL.model_name  # reused, not created again
    assert request["Model"]["ModelName"] == variants[CHALLENGER]["ModelName"] == "churn-ab-20261127-def-v2"
    assert request["Model"]["PrimaryContainer"]["ModelDataUrl"] == "s3://lake/models/v2/model.tar.gz"
    assert (variants[CHAMPION]["InitialVariantWeight"], variants[CHALLENGER]["InitialVariantWeight"]) == (
        0.9,
        0.1,
    )
    assert (
        request["EndpointConfig"]["DataCaptureConfig"]["DestinationS3Uri"] == "s3://lake/monitoring/capture/"
    )
    # the variant names change: SageMaker's traffic-shifting guardrails do not apply
    assert "DeploymentConfig" not in request["Endpoint"]


def test_the_test_ends_on_one_model_as_the_primary_variant() -> None:
    request = single_variant_request(
        model=CHAMPION_MODEL,
        endpoint_config_name="churn-ab-20261127-def-champion",
        endpoint_name=ENDPOINT,
        role=ROLE,
        instance_type="ml.m5.large",
        data_capture_uri="s3://lake/monitoring/capture/",
    )
    valid_for("sagemaker", "CreateEndpointConfig", request["EndpointConfig"])
    [variant] = request["EndpointConfig"]["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"]) == (PRIMARY, CHAMPION_MODEL.model_name)
    assert variant["InitialVariantWeight"] == 1.0


def test_weight_shifts_are_valid_requests_and_refuse_impossible_weights() -> None:
    request = weights_request(ENDPOINT, {CHAMPION: 0.0, CHALLENGER: 1.0})
    valid_for("sagemaker", "UpdateEndpointWeightsAndCapacities", request)
    assert request["DesiredWeightsAndCapacities"] == [
        {"VariantName": CHAMPION, "DesiredWeight": 0.0},
        {"VariantName": CHALLENGER, "DesiredWeight": 1.0},
    ]
    for bad in ({CHAMPION: 0.0, CHALLENGER: 0.0}, {CHAMPION: -0.1, CHALLENGER: 1.1}, {}):
        with pytest.raises(ValueError, match="non-negative with a positive sum"):
            weights_request(ENDPOINT, bad)
    described = {"ProductionVariants": [{"VariantName": CHAMPION, "CurrentWeight": 0.9}]}
    assert current_weights(described) == {CHAMPION: 0.9}


def test_metric_queries_use_sagemakers_names_and_dimensions() -> None:
    start = datetime(2026, 11, 27, 10, tzinfo=UTC)
    request = metric_statistics_request(
        ENDPOINT, CHALLENGER, "ModelLatency", start, start + timedelta(hours=1)
    )
    valid_for("cloudwatch", "GetMetricStatistics", request)
    assert request["Namespace"] == "AWS/SageMaker"
    assert request["Dimensions"] == [
        {"Name": "EndpointName", "Value": ENDPOINT},
        {"Name": "VariantName", "Value": CHALLENGER},
    ]
    assert metric_period(start, start + timedelta(hours=1)) == 60
    assert metric_period(start, start + timedelta(days=3)) == 180  # at most 1,440 datapoints
    with pytest.raises(ValueError, match="not one of"):
        metric_statistics_request(ENDPOINT, CHALLENGER, "Latency", start, start + timedelta(hours=1))


def test_metric_summary_totals_counts_and_averages_latency_over_samples() -> None:
    summary = summarise_metrics(
        {
            "Invocations": [{"Sum": 60.0}, {"Sum": 40.0}],
            "Invocation4XXErrors": [{"Sum": 1.0}],
            "Invocation5XXErrors": [{"Sum": 3.0}],
            "ModelLatency": [
                {"Sum": 3000.0, "SampleCount": 2.0, "Maximum": 2000.0},
                {"Sum": 9000.0, "SampleCount": 2.0, "Maximum": 8000.0},
            ],
        }
    )
    assert summary["Invocations"] == 100 and summary["ErrorRate"] == pytest.approx(0.04)
    assert summary["ModelLatencyMeanMs"] == pytest.approx(3.0)  # 12,000 µs over 4 samples
    assert summary["ModelLatencyMaxMs"] == pytest.approx(8.0)
    empty = summarise_metrics({})
    assert empty["Invocations"] == 0 and empty["ErrorRate"] is None and empty["ModelLatencyMeanMs"] is None


def record(instances: list[dict[str, Any]], probabilities: list[float], *, base64_input: bool = False) -> str:
    request = json.dumps({"instances": instances})
    answer = json.dumps({"predictions": [{"churn_probability": p} for p in probabilities]})
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "application/json",
                    "mode": "INPUT",
                    "data": base64.b64encode(request.encode()).decode() if base64_input else request,
                    "encoding": "BASE64" if base64_input else "JSON",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": answer,
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": "e", "inferenceTime": "2026-11-27T10:00:00Z"},
            "eventVersion": "0",
        }
    )


def test_captured_predictions_are_keyed_by_customer_and_skip_what_cannot_be_joined() -> None:
    lines = [
        record([{"customer_id": "c1", "tenure": 3}, {"customer_id": "c2"}], [0.8, 0.2]),
        record([{"customer_id": "c3"}], [0.6], base64_input=True),
        record([{"tenure": 3}], [0.4]),  # no customer_id
        record([{"customer_id": "c1"}], [0.1]),  # predicted again: the later answer counts
        "",
    ]
    predictions, skipped = captured_predictions(lines)
    assert predictions == {"c1": 0.1, "c2": 0.2, "c3": 0.6}
    assert skipped == 1


def test_labels_join_the_predictions_and_accuracy_is_at_one_half() -> None:
    labels = labels_from_rows(
        [
            {"customer_id": "c1", "churned": 1},
            {"customer_id": "c2", "churned": 0},
            {"customer_id": "c3", "churned": float("nan")},  # unlabelled
            {"customer_id": "c4", "churned": True},
        ]
    )
    assert labels == {"c1": 1, "c2": 0, "c4": 1}
    # c1 wrong (0.1 < 0.5 but churned), c2 right, c4 right at exactly 0.5, c9 has no label
    assert outcome_counts({"c1": 0.1, "c2": 0.2, "c4": 0.5, "c9": 0.9}, labels) == (3, 2)


def test_capture_hours_cover_the_observation_window() -> None:
    start = datetime(2026, 11, 27, 22, 40, tzinfo=UTC)
    assert capture_hours(start, start + timedelta(hours=2)) == [
        "2026/11/27/22",
        "2026/11/27/23",
        "2026/11/28/00",
    ]


@pytest.mark.parametrize(
    ("champion", "challenger", "verdict"),
    [
        ((1000, 800), (1000, 860), CHALLENGER_WINS),  # 80% vs 86%: z ≈ 3.5
        ((1000, 860), (1000, 800), CHAMPION_WINS),
        ((1000, 800), (1000, 810), NO_DIFFERENCE),  # 80% vs 81%: p ≈ 0.57
        ((1000, 800), (99, 99), NOT_ENOUGH_DATA),  # a perfect challenger, but below min_samples
        ((200, 200), (200, 200), NO_DIFFERENCE),  # both always right: no evidence either way
    ],
)
def test_the_verdict_of_the_two_proportion_z_test(
    champion: tuple[int, int], challenger: tuple[int, int], verdict: str
) -> None:
    test = compare_outcomes(champion, challenger, alpha=0.05, min_samples=100)
    assert test.verdict == verdict, test.reason
    if verdict in (CHALLENGER_WINS, CHAMPION_WINS):
        assert test.p_value < 0.05
    if verdict == NOT_ENOUGH_DATA:
        assert test.p_value is None and "needs 100" in test.reason


def test_the_z_test_matches_the_textbook_value() -> None:
    # pooled p = 0.83, se = sqrt(0.83 * 0.17 * 2 / 1000) = 0.016799; z = 0.06 / se = 3.5717
    test = compare_outcomes((1000, 800), (1000, 860), alpha=0.05, min_samples=100)
    assert test.z == pytest.approx(3.5717, abs=1e-3)
    assert test.p_value == pytest.approx(3.55e-4, rel=0.02)
    assert test.to_dict()["challenger_accuracy"] == pytest.approx(0.86)


def test_the_markdown_for_the_person_shows_both_variants_and_the_verdict() -> None:
    test = compare_outcomes((1000, 800), (1000, 860), alpha=0.05, min_samples=100).to_dict()
    metrics = {
        CHAMPION: summarise_metrics({"Invocations": [{"Sum": 900.0}]}),
        CHALLENGER: summarise_metrics({"Invocations": [{"Sum": 100.0}]}),
    }
    text = comparison_markdown(ENDPOINT, metrics, test, "arn:aws:sagemaker:us-east-1:1:model-package/g/2")
    assert "| champion | 900 |" in text and "| challenger | 100 |" in text
    assert "Verdict: challenger_wins" in text and "model-package/g/2" in text


def test_settings_weights_sum_to_one() -> None:
    assert ABSettings(challenger_weight=0.25).weights() == {CHAMPION: 0.75, CHALLENGER: 0.25}


def test_ab_settings_come_from_the_environment_and_refuse_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelake.config.settings import ab_test_settings

    for name in ("WEIGHT", "OBSERVATION_MINUTES", "MIN_SAMPLES", "ALPHA"):
        monkeypatch.delenv(f"SAGELAKE_AB_{'CHALLENGER_' if name == 'WEIGHT' else ''}{name}", raising=False)
    assert ab_test_settings() == ABSettings(0.1, 60, 100, 0.05)
    monkeypatch.setenv("SAGELAKE_AB_CHALLENGER_WEIGHT", "0.5")
    monkeypatch.setenv("SAGELAKE_AB_OBSERVATION_MINUTES", "5")
    assert ab_test_settings().weights() == {CHAMPION: 0.5, CHALLENGER: 0.5}
    assert ab_test_settings().observation_minutes == 5
    for bad in ("0", "1", "1.5", "ten"):
        monkeypatch.setenv("SAGELAKE_AB_CHALLENGER_WEIGHT", bad)
        with pytest.raises(ValueError, match="SAGELAKE_AB_CHALLENGER_WEIGHT"):
            ab_test_settings()
