"""The endpoint server's per-variant CloudWatch metrics: one-minute aggregates with SageMaker's names,
units and dimensions, put by the flusher (never by a request), errors classed as SageMaker does."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.validate import ParamValidator

from sagelake.local.endpoint_metrics import MetricsPublisher
from tests.support.constants import REGION


def test_one_minute_of_invocations_becomes_sagemakers_metric_data() -> None:
    puts: list[tuple[str, list[dict[str, Any]]]] = []
    publisher = MetricsPublisher(lambda ns, data: puts.append((ns, data)), flush_seconds=3600)
    for status, latency in ((200, 0.002), (200, 0.004), (424, 0.001), (400, 0.0005)):
        publisher.record("ep", "challenger", status, latency)
    publisher.record("ep", "champion", 200, 0.003)
    assert puts == []  # nothing on the request path
    assert publisher.flush() == 4 + 4
    [(namespace, data)] = puts
    assert namespace == "AWS/SageMaker"
    model = boto3.client("cloudwatch", region_name=REGION).meta.service_model.operation_model("PutMetricData")
    report = ParamValidator().validate({"Namespace": namespace, "MetricData": data}, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    by = {(d["MetricName"], {x["Name"]: x["Value"] for x in d["Dimensions"]}["VariantName"]): d for d in data}
    assert {x["Name"] for x in by[("Invocations", "champion")]["Dimensions"]} == {
        "EndpointName",
        "VariantName",
    }
    assert by[("Invocations", "challenger")]["Value"] == 4
    assert by[("Invocation5XXErrors", "challenger")]["Value"] == 1  # ModelError: the container's 500
    assert by[("Invocation4XXErrors", "challenger")]["Value"] == 1
    assert by[("Invocation5XXErrors", "champion")]["Value"] == 0  # published, as SageMaker does
    latency = by[("ModelLatency", "challenger")]
    assert latency["Unit"] == "Microseconds"
    assert latency["StatisticValues"] == {
        "SampleCount": 4.0,
        "Sum": 7500.0,
        "Minimum": 500.0,
        "Maximum": 4000.0,
    }
    assert by[("Invocations", "challenger")]["Timestamp"].second == 0  # the minute's aggregate
    assert publisher.flush() == 0  # put once
    publisher.close()


def test_a_failing_put_never_reaches_the_caller() -> None:
    def refuse(namespace: str, data: list[dict[str, Any]]) -> None:
        raise ConnectionError("control plane down")

    publisher = MetricsPublisher(refuse, flush_seconds=3600)
    publisher.record("ep", "primary", 200, 0.001)
    assert publisher.flush() == 4
    publisher.close()
