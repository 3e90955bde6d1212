"""SageMaker data capture: config parsing, the record format, the S3 layout, sampling and the writer.

The format is the one the SageMaker docs show for captured data ("Capture data from real-time
endpoint", https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html, and
the DataCaptureConfig API reference): ``captureData.endpointInput/endpointOutput`` with
``observedContentType``, ``mode`` (INPUT/OUTPUT), ``data``, ``encoding`` (CSV/JSON/BASE64);
``eventMetadata.eventId`` and ``inferenceTime``; ``eventVersion`` "0"; files under
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl``.
"""

from __future__ import annotations

import base64
import json
import random
import re
from datetime import UTC, datetime, timedelta, timezone

from sagelake.local.data_capture import (
    CaptureConfig,
    CaptureWriter,
    capture_prefix,
    capture_record,
    capture_uri,
    parse_config,
    sampled,
    split_uri,
)
from sagelake.ml.aws_requests import endpoint_request
from tests.support.constants import SKLEARN_IMAGE_URI
from tests.support.pipeline import validate

WHEN = datetime(2026, 11, 27, 21, 5, 9, 123456, tzinfo=UTC)
API_CONFIG = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": "s3://lake/capture/",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
}


def test_parse_config_reads_the_api_shape() -> None:
    config = parse_config(API_CONFIG)
    assert config == CaptureConfig(
        destination="s3://lake/capture",
        sampling_percentage=100.0,
        capture_input=True,
        capture_output=True,
        csv_types=("text/csv",),
        json_types=("application/json",),
    )
    only_input = parse_config({**API_CONFIG, "CaptureOptions": [{"CaptureMode": "Input"}]})
    assert (only_input.capture_input, only_input.capture_output) == (True, False)
    both = parse_config({**API_CONFIG, "CaptureOptions": [{"CaptureMode": "InputAndOutput"}]})
    assert (both.capture_input, both.capture_output) == (True, True)
    # EnableCapture defaults to enabled; false or no config: no capture
    assert parse_config({k: v for k, v in API_CONFIG.items() if k != "EnableCapture"}) is not None
    assert parse_config({**API_CONFIG, "EnableCapture": False}) is None
    assert parse_config(None) is None


def test_record_has_sagemakers_fields_and_encodings() -> None:
    config = parse_config(API_CONFIG)
    record = capture_record(
        config,
        request=b'{"instances": [{"plan": "basic"}]}',
        request_type="application/json",
        response=b"0.25,0.75",
        response_type="text/csv; charset=utf-8",
        when=WHEN,
        event_id="e-1",
    )
    assert record == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": '{"instances": [{"plan": "basic"}]}',
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": "0.25,0.75",
                "encoding": "CSV",
            },
        },
        "eventMetadata": {"eventId": "e-1", "inferenceTime": "2026-11-27T21:05:09Z"},
        "eventVersion": "0",
    }


def test_unlisted_content_types_and_no_header_are_base64() -> None:
    payload = b"\x93NUMPY\x01\x00"
    config = parse_config(API_CONFIG)
    record = capture_record(
        config,
        request=payload,
        request_type="application/x-npy",
        response=b"1",
        response_type="text/csv",
        when=WHEN,
    )
    captured = record["captureData"]["endpointInput"]
    assert captured["encoding"] == "BASE64"
    assert base64.b64decode(captured["data"]) == payload
    # without CaptureContentTypeHeader SageMaker base64-encodes everything (API reference)
    bare = parse_config({k: v for k, v in API_CONFIG.items() if k != "CaptureContentTypeHeader"})
    record = capture_record(
        bare, request=b"1,2", request_type="text/csv", response=b"0.5", response_type="text/csv", when=WHEN
    )
    assert {d["encoding"] for d in record["captureData"].values()} == {"BASE64"}
    assert base64.b64decode(record["captureData"]["endpointOutput"]["data"]) == b"0.5"


def test_capture_mode_selects_the_sides_and_event_ids_are_unique() -> None:
    config = parse_config({**API_CONFIG, "CaptureOptions": [{"CaptureMode": "Output"}]})
    records = [
        capture_record(
            config, request=b"1", request_type="text/csv", response=b"2", response_type="text/csv", when=WHEN
        )
        for _ in range(3)
    ]
    assert all(list(r["captureData"]) == ["endpointOutput"] for r in records)
    assert len({r["eventMetadata"]["eventId"] for r in records}) == 3


def test_layout_is_endpoint_variant_and_utc_hour() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=-5)))  # same instant, another zone
    assert capture_prefix("s3://lake/capture/", "churn", "AllTraffic", local) == (
        "s3://lake/capture/churn/AllTraffic/2026/11/27/21/"
    )
    uri = capture_uri("s3://lake/capture", "churn", "AllTraffic", WHEN, "abc123")
    assert uri == "s3://lake/capture/churn/AllTraffic/2026/11/27/21/05-09-123-abc123.jsonl"
    assert split_uri(uri) == ("lake", "capture/churn/AllTraffic/2026/11/27/21/05-09-123-abc123.jsonl")


def test_sampling_honours_the_percentage() -> None:
    rng = random.Random(3)
    config = parse_config({**API_CONFIG, "InitialSamplingPercentage": 30})
    share = sum(sampled(config, rng) for _ in range(4000)) / 4000
    assert abs(share - 0.30) < 0.03
    assert not any(
        sampled(parse_config({**API_CONFIG, "InitialSamplingPercentage": 0}), rng) for _ in range(200)
    )
    assert all(sampled(parse_config(API_CONFIG), rng) for _ in range(200))


def test_writer_buffers_per_hour_and_variant_and_flushes_json_lines() -> None:
    written: list[tuple[str, str, bytes]] = []
    writer = CaptureWriter(lambda bucket, key, body: written.append((bucket, key, body)), flush_seconds=3600)
    config = parse_config(API_CONFIG)
    later = WHEN + timedelta(hours=1)
    for when, variant in ((WHEN, "A"), (WHEN, "A"), (WHEN, "B"), (later, "A")):
        record = capture_record(
            config, request=b"1", request_type="text/csv", response=b"2", response_type="text/csv", when=when
        )
        writer.add(config, "churn", variant, record, when)
    assert written == []  # buffered until a flush
    writer.close()  # flushes
    by_prefix = {key.rsplit("/", 1)[0]: body for _, key, body in written}
    assert set(by_prefix) == {
        "capture/churn/A/2026/11/27/21",
        "capture/churn/B/2026/11/27/21",
        "capture/churn/A/2026/11/27/22",
    }
    lines = by_prefix["capture/churn/A/2026/11/27/21"].decode().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["eventVersion"] == "0" for line in lines)
    assert all(
        bucket == "lake" and re.search(r"/\d\d-\d\d-\d{3}-[0-9a-f]+\.jsonl$", key)
        for bucket, key, _ in written
    )
    assert writer.flush() == 0  # nothing left


def test_writer_failure_drops_the_batch_without_raising() -> None:
    def fail(bucket: str, key: str, body: bytes) -> None:
        raise OSError("s3 down")

    writer = CaptureWriter(fail, flush_seconds=3600)
    config = parse_config(API_CONFIG)
    record = capture_record(
        config, request=b"1", request_type="text/csv", response=b"2", response_type="text/csv", when=WHEN
    )
    writer.add(config, "churn", "A", record, WHEN)
    assert writer.flush() == 0
    writer.close()


def test_endpoint_request_adds_a_valid_data_capture_config() -> None:
    common = {
        "model_name": "m",
        "endpoint_config_name": "c",
        "endpoint_name": "e",
        "role": "arn:aws:iam::111122223333:role/r",
        "image_uri": SKLEARN_IMAGE_URI,
        "model_data_url": "s3://b/m/model.tar.gz",
        "instance_type": "ml.m5.large",
    }
    assert "DataCaptureConfig" not in endpoint_request(**common)["EndpointConfig"]
    request = endpoint_request(**common, data_capture_uri="s3://lake/capture", data_capture_percentage=25)
    validate("sagemaker", "CreateEndpointConfig", request["EndpointConfig"])
    config = parse_config(request["EndpointConfig"]["DataCaptureConfig"])
    assert config.destination == "s3://lake/capture"
    assert config.sampling_percentage == 25
    assert config.capture_input and config.capture_output
    # what the endpoint server captures from it is readable text for the pipeline's content types
    record = capture_record(
        config,
        request=b"1,2",
        request_type="text/csv",
        response=b"{}",
        response_type="application/json",
        when=WHEN,
    )
    assert [d["encoding"] for d in record["captureData"].values()] == ["CSV", "JSON"]
