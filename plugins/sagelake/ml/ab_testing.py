"""A/B testing on the production endpoint: the champion and a challenger as two production variants.

Plain functions of boto3 clients and data:

- :func:`ab_endpoint_request`: Model + EndpointConfig + Endpoint requests serving the champion (the model
  production serves now, reused as it is) and the challenger (an Approved package version) as the variants
  ``champion`` / ``challenger`` with the settings' weights (e.g. 90/10);
- :func:`single_variant_request`: the endpoint back on one model alone (the variant ``primary``, as
  ``churn_train_deploy`` deploys it), after the test;
- :func:`weights_request` / :func:`shift_weights`: ``UpdateEndpointWeightsAndCapacities`` (traffic moves
  between the variants without a new endpoint config);
- :func:`variant_metrics`: each variant's ``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors``
  and ``ModelLatency`` (microseconds) from CloudWatch (namespace ``AWS/SageMaker``, dimensions
  ``EndpointName`` and ``VariantName``), as SageMaker publishes them (and the local endpoint server too);
- :func:`variant_predictions` / :func:`outcome_counts` / :func:`compare_outcomes`: the outcome test. Each
  variant's captured predictions (data capture) are joined on ``customer_id`` with the labels of the same
  customers, and the two accuracies at 0.5 are compared with a two-proportion z-test.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sagelake.lake.layout import split_s3_uri
from sagelake.ml.aws_requests import endpoint_request

CHAMPION, CHALLENGER = "champion", "challenger"
PRIMARY = "primary"  # the single variant churn_train_deploy serves
NAMESPACE = "AWS/SageMaker"
COUNT_METRICS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")
LATENCY_METRIC = "ModelLatency"  # microseconds
METRIC_NAMES = (*COUNT_METRICS, LATENCY_METRIC)
THRESHOLD = 0.5  # a prediction says "churns" at or above it (the inference script's `churned`)

CHALLENGER_WINS, CHAMPION_WINS = "challenger_wins", "champion_wins"
NO_DIFFERENCE, NOT_ENOUGH_DATA = "no_difference", "not_enough_data"
VERDICTS = (CHALLENGER_WINS, CHAMPION_WINS, NO_DIFFERENCE, NOT_ENOUGH_DATA)


@dataclass(frozen=True)
class ABSettings:
    """How an A/B test splits traffic and judges it (``SAGELAKE_AB_*``:
    :func:`sagelake.config.settings.ab_test_settings`)."""

    challenger_weight: float = 0.1
    observation_minutes: int = 60
    min_samples: int = 100  # labelled predictions per variant before any verdict
    alpha: float = 0.05

    def weights(self) -> dict[str, float]:
        """The variants' weights: ``{"champion": 1 - w, "challenger": w}``."""
        return {CHAMPION: round(1.0 - self.challenger_weight, 6), CHALLENGER: self.challenger_weight}


@dataclass(frozen=True)
class ModelRef:
    """An existing SageMaker Model: its name and container (what a new endpoint config may reuse)."""

    model_name: str
    image: str
    model_url: str


def ab_endpoint_request(
    *,
    champion: ModelRef,
    challenger_model_name: str,
    challenger_image: str,
    challenger_model_url: str,
    endpoint_config_name: str,
    endpoint_name: str,
    role: str,
    instance_type: str,
    weights: Mapping[str, float],
    instance_count: int = 1,
    data_capture_uri: str | None = None,
) -> dict[str, Any]:
    """The requests of an A/B test: the challenger's Model, and an EndpointConfig whose variants
    ``champion`` (the existing model, not created again) and ``challenger`` carry ``weights``.

    No ``DeploymentConfig``: SageMaker's traffic-shifting guardrails need the new config to keep the old
    one's variant names, and this config renames them; the update is SageMaker's default blue/green."""
    request = endpoint_request(
        model_name=challenger_model_name,
        endpoint_config_name=endpoint_config_name,
        endpoint_name=endpoint_name,
        role=role,
        image_uri=challenger_image,
        model_data_url=challenger_model_url,
        instance_type=instance_type,
        variant_name=CHALLENGER,
        data_capture_uri=data_capture_uri,
        instance_count=instance_count,
    )
    challenger = request["EndpointConfig"]["ProductionVariants"][0]
    champion_variant = {**challenger, "VariantName": CHAMPION, "ModelName": champion.model_name}
    champion_variant["InitialVariantWeight"] = float(weights[CHAMPION])
    challenger["InitialVariantWeight"] = float(weights[CHALLENGER])
    request["EndpointConfig"]["ProductionVariants"] = [champion_variant, challenger]
    return request


def single_variant_request(
    *,
    model: ModelRef,
    endpoint_config_name: str,
    endpoint_name: str,
    role: str,
    instance_type: str,
    instance_count: int = 1,
    data_capture_uri: str | None = None,
) -> dict[str, Any]:
    """The endpoint on ``model`` alone (variant ``primary``, as ``churn_train_deploy`` deploys): what an
    A/B test ends with. The model exists already (the deploy operator reuses it); no ``DeploymentConfig``,
    as the variant names change again."""
    return endpoint_request(
        model_name=model.model_name,
        endpoint_config_name=endpoint_config_name,
        endpoint_name=endpoint_name,
        role=role,
        image_uri=model.image,
        model_data_url=model.model_url,
        instance_type=instance_type,
        variant_name=PRIMARY,
        data_capture_uri=data_capture_uri,
        instance_count=instance_count,
    )


def weights_request(endpoint_name: str, weights: Mapping[str, float]) -> dict[str, Any]:
    """``UpdateEndpointWeightsAndCapacities`` arguments setting each variant's weight."""
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights {dict(weights)} must be non-negative with a positive sum")
    return {
        "EndpointName": endpoint_name,
        "DesiredWeightsAndCapacities": [
            {"VariantName": name, "DesiredWeight": float(weight)} for name, weight in weights.items()
        ],
    }


def current_weights(endpoint: Mapping[str, Any]) -> dict[str, float]:
    """Variant → ``CurrentWeight`` of a ``DescribeEndpoint`` answer."""
    return {
        v["VariantName"]: float(v.get("CurrentWeight", v.get("DesiredWeight", 0.0)))
        for v in endpoint.get("ProductionVariants", [])
    }


def shift_weights(sagemaker: Any, endpoint_name: str, weights: Mapping[str, float]) -> dict[str, float]:
    """Send :func:`weights_request`, wait until the endpoint is in service again, return the weights it
    reports (``CurrentWeight``); ValueError when they are not the ones asked for."""
    sagemaker.update_endpoint_weights_and_capacities(**weights_request(endpoint_name, weights))
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=endpoint_name, WaiterConfig={"Delay": 15, "MaxAttempts": 120}
    )
    live = current_weights(sagemaker.describe_endpoint(EndpointName=endpoint_name))
    if any(abs(live.get(name, -1.0) - float(w)) > 1e-9 for name, w in weights.items()):
        raise ValueError(f"endpoint {endpoint_name} reports weights {live}, not {dict(weights)}")
    return live


# --- per-variant CloudWatch metrics --------------------------------------------------------------------
def metric_period(start: datetime, end: datetime) -> int:
    """A ``Period`` (a multiple of 60 s) giving at most 1,440 datapoints over ``[start, end)``."""
    seconds = max(60.0, (end - start).total_seconds())
    return max(60, math.ceil(seconds / 1440 / 60) * 60)


def metric_statistics_request(
    endpoint_name: str, variant: str, metric: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """``GetMetricStatistics`` arguments for one SageMaker variant metric."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"{metric!r} is not one of {METRIC_NAMES}")
    statistics = ["Sum", "SampleCount", "Maximum"] if metric == LATENCY_METRIC else ["Sum"]
    return {
        "Namespace": NAMESPACE,
        "MetricName": metric,
        "Dimensions": [
            {"Name": "EndpointName", "Value": endpoint_name},
            {"Name": "VariantName", "Value": variant},
        ],
        "StartTime": start,
        "EndTime": end,
        "Period": metric_period(start, end),
        "Statistics": statistics,
    }


def summarise_metrics(datapoints: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, float | None]:
    """One variant's totals from each metric's ``Datapoints``: the counts, the error rate (4XX + 5XX over
    invocations) and the mean and maximum model latency in milliseconds (None without datapoints)."""
    summary: dict[str, float | None] = {
        name: float(sum(p.get("Sum", 0.0) for p in datapoints.get(name, []))) for name in COUNT_METRICS
    }
    invocations = summary["Invocations"] or 0.0
    errors = (summary["Invocation4XXErrors"] or 0.0) + (summary["Invocation5XXErrors"] or 0.0)
    summary["ErrorRate"] = errors / invocations if invocations else None
    latency = datapoints.get(LATENCY_METRIC, [])
    samples = sum(p.get("SampleCount", 0.0) for p in latency)
    total = sum(p.get("Sum", 0.0) for p in latency)
    summary["ModelLatencyMeanMs"] = total / samples / 1000.0 if samples else None
    summary["ModelLatencyMaxMs"] = max((p.get("Maximum", 0.0) for p in latency), default=0.0) / 1000.0 or None
    return summary


def variant_metrics(
    cloudwatch: Any, endpoint_name: str, variants: Iterable[str], start: datetime, end: datetime
) -> dict[str, dict[str, float | None]]:
    """Variant → :func:`summarise_metrics` of its CloudWatch metrics over ``[start, end)``."""
    result = {}
    for variant in variants:
        datapoints = {
            metric: cloudwatch.get_metric_statistics(
                **metric_statistics_request(endpoint_name, variant, metric, start, end)
            ).get("Datapoints", [])
            for metric in METRIC_NAMES
        }
        result[variant] = summarise_metrics(datapoints)
    return result


# --- the outcome test ---------------------------------------------------------------------------------
def _captured_json(part: Mapping[str, Any]) -> Any:
    data = str(part.get("data", ""))
    if str(part.get("encoding", "")).upper() == "BASE64":
        data = base64.b64decode(data).decode()
    if "json" not in str(part.get("observedContentType", "")).lower():
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return None


def captured_predictions(lines: Iterable[str]) -> tuple[dict[str, float], int]:
    """``customer_id`` → churn probability from data capture records (JSON lines) of JSON requests
    (``{"instances": [{"customer_id": …, features…}]}``) and answers (``{"predictions":
    [{"churn_probability": …}]}``); a customer predicted twice keeps the later prediction. Returns
    ``(predictions, instances skipped)``: without a ``customer_id``, or not JSON, or not matched."""
    predictions: dict[str, float] = {}
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        data = json.loads(line).get("captureData", {})
        request = _captured_json(data.get("endpointInput", {}))
        answer = _captured_json(data.get("endpointOutput", {}))
        instances = request.get("instances") if isinstance(request, dict) else request
        scores = answer.get("predictions") if isinstance(answer, dict) else None
        if not isinstance(instances, list) or not isinstance(scores, list) or len(scores) != len(instances):
            skipped += len(instances) if isinstance(instances, list) else 1
            continue
        for instance, score in zip(instances, scores, strict=True):
            customer = instance.get("customer_id") if isinstance(instance, dict) else None
            probability = score.get("churn_probability") if isinstance(score, dict) else None
            if customer is None or not isinstance(probability, int | float):
                skipped += 1
                continue
            predictions[str(customer)] = float(probability)
    return predictions, skipped


def capture_hours(start: datetime, end: datetime) -> list[str]:
    """The ``yyyy/mm/dd/hh`` capture folders covering ``[start, end]`` (UTC)."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour <= end.astimezone(UTC):
        hours.append(hour.strftime("%Y/%m/%d/%H"))
        hour += timedelta(hours=1)
    return hours


def variant_predictions(
    s3: Any, capture_uri: str, endpoint_name: str, variant: str, start: datetime, end: datetime
) -> tuple[dict[str, float], int]:
    """:func:`captured_predictions` of ``variant``'s capture files written in the hours of
    ``[start, end]`` (``<capture_uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``)."""
    bucket, root = split_s3_uri(capture_uri.rstrip("/") + f"/{endpoint_name}/{variant}/")
    lines: list[str] = []
    for hour in capture_hours(start, end):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{root}{hour}/")
        for key in sorted(o["Key"] for page in pages for o in page.get("Contents", [])):
            if key.endswith(".jsonl"):
                lines += s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    return captured_predictions(lines)


def labels_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``customer_id`` → ``churned`` (0/1) of labelled rows (e.g. a curated ``churn_features`` partition);
    rows without a label are left out."""
    labels = {}
    for row in rows:
        label = row.get("churned")
        if row.get("customer_id") is None or label is None or label != label:  # None or NaN
            continue
        labels[str(row["customer_id"])] = int(bool(label))
    return labels


def outcome_counts(
    predictions: Mapping[str, float], labels: Mapping[str, int], threshold: float = THRESHOLD
) -> tuple[int, int]:
    """``(labelled predictions, correct ones)``: the customers of ``predictions`` that have a label, and
    how many of them the prediction at ``threshold`` got right."""
    joined = [(p, labels[c]) for c, p in predictions.items() if c in labels]
    return len(joined), sum(int(p >= threshold) == y for p, y in joined)


@dataclass(frozen=True)
class OutcomeTest:
    """The verdict of the outcome test and what it rests on."""

    verdict: str
    reason: str
    champion_n: int
    champion_correct: int
    challenger_n: int
    challenger_correct: int
    z: float | None = None
    p_value: float | None = None
    alpha: float = 0.05
    min_samples: int = 100

    @property
    def champion_accuracy(self) -> float | None:
        return self.champion_correct / self.champion_n if self.champion_n else None

    @property
    def challenger_accuracy(self) -> float | None:
        return self.challenger_correct / self.challenger_n if self.challenger_n else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "champion_accuracy": self.champion_accuracy,
            "challenger_accuracy": self.challenger_accuracy,
        }


def compare_outcomes(
    champion: tuple[int, int], challenger: tuple[int, int], *, alpha: float = 0.05, min_samples: int = 100
) -> OutcomeTest:
    """Two-sided two-proportion z-test (pooled) on the accuracies ``(n, correct)`` of the two variants.

    ``not_enough_data`` when either variant has fewer than ``min_samples`` labelled predictions;
    ``challenger_wins`` / ``champion_wins`` when the p-value is below ``alpha`` (the better accuracy
    wins); else ``no_difference``."""
    from scipy.stats import norm

    (n1, x1), (n2, x2) = champion, challenger
    base = {"champion_n": n1, "champion_correct": x1, "challenger_n": n2, "challenger_correct": x2}
    limits = {"alpha": alpha, "min_samples": min_samples}
    if min(n1, n2) < min_samples:
        reason = f"labelled predictions: champion {n1}, challenger {n2}; each variant needs {min_samples}"
        return OutcomeTest(NOT_ENOUGH_DATA, reason, **base, **limits)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p1, p2 = x1 / n1, x2 / n2
    if se == 0:  # both all right or all wrong: no evidence of a difference
        return OutcomeTest(NO_DIFFERENCE, "identical accuracies", **base, z=0.0, p_value=1.0, **limits)
    z = (p2 - p1) / se
    p_value = float(2 * norm.sf(abs(z)))
    accuracies = f"accuracy champion {p1:.4f} (n={n1}), challenger {p2:.4f} (n={n2})"
    if p_value < alpha:
        verdict = CHALLENGER_WINS if p2 > p1 else CHAMPION_WINS
        reason = f"{accuracies}: p={p_value:.4g} < alpha={alpha}"
    else:
        verdict = NO_DIFFERENCE
        reason = f"{accuracies}: p={p_value:.4g} >= alpha={alpha}"
    return OutcomeTest(verdict, reason, **base, z=float(z), p_value=p_value, **limits)


def comparison_markdown(
    endpoint_name: str, metrics: Mapping[str, Mapping[str, Any]], test: Mapping[str, Any], challenger_arn: str
) -> str:
    """What the person deciding on a promotion reads: the per-variant metrics and the test's verdict."""

    def cell(value: Any) -> str:
        return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    columns = [*COUNT_METRICS, "ErrorRate", "ModelLatencyMeanMs", "ModelLatencyMaxMs"]
    lines = [
        f"## A/B test on `{endpoint_name}`",
        f"Challenger: `{challenger_arn}`",
        "",
        "| variant | " + " | ".join(columns) + " | labelled | accuracy |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for variant in (CHAMPION, CHALLENGER):
        row = metrics.get(variant, {})
        labelled, accuracy = test.get(f"{variant}_n"), test.get(f"{variant}_accuracy")
        values = [cell(row.get(c)) for c in columns] + [cell(labelled), cell(accuracy)]
        lines.append(f"| {variant} | " + " | ".join(values) + " |")
    lines += ["", f"**Verdict: {test['verdict']}** — {test['reason']}"]
    p_value = test.get("p_value")
    if p_value is not None:
        lines.append(
            f"(two-proportion z-test on accuracy at {THRESHOLD}: z={test['z']:.3f}, p={p_value:.4g})"
        )
    lines.append("Approve: the endpoint serves the challenger alone. Reject: the champion alone.")
    return "\n".join(lines)


def no_labels_test(settings: ABSettings) -> OutcomeTest:
    """The verdict when no labels are given: ``not_enough_data`` (no outcome, no promotion)."""
    reason = "no labels: give labels_dt, a published churn_features day with the customers' churned"
    return OutcomeTest(
        NOT_ENOUGH_DATA, reason, 0, 0, 0, 0, alpha=settings.alpha, min_samples=settings.min_samples
    )


def outcome_test(
    s3: Any,
    capture_uri: str,
    endpoint_name: str,
    start: datetime,
    end: datetime,
    labels: Mapping[str, int],
    settings: ABSettings,
) -> tuple[OutcomeTest, dict[str, int]]:
    """Each variant's captured predictions over ``[start, end]`` joined with ``labels``, and
    :func:`compare_outcomes` on them; also the instances each variant's capture could not join."""
    counts, skipped = {}, {}
    for variant in (CHAMPION, CHALLENGER):
        predictions, skipped[variant] = variant_predictions(
            s3, capture_uri, endpoint_name, variant, start, end
        )
        counts[variant] = outcome_counts(predictions, labels)
    test = compare_outcomes(
        counts[CHAMPION], counts[CHALLENGER], alpha=settings.alpha, min_samples=settings.min_samples
    )
    return test, skipped
