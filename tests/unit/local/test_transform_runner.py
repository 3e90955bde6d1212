"""The transform runner's contract without servers: records, mini-batches, assembly, refused requests."""

from __future__ import annotations

import pytest

from sagelake.local.transform_runner import (
    TransformJobFailedError,
    TransformRequestError,
    _check,
    assemble,
    mini_batches,
    split_records,
)
from sagelake.ml.batch import CSV, JSON, transform_request


def request(**overrides) -> dict:
    base = transform_request(
        job_name="j",
        model_name="m",
        input_uri="s3://b/in/",
        output_uri="s3://b/out/",
        content_type=CSV,
        instance_type="ml.m5.large",
    )
    return {**base, **overrides}


def test_records_are_lines_or_the_whole_object() -> None:
    assert split_records(b"a,1\n\nb,2\nc,3", "Line") == [b"a,1", b"b,2", b"c,3"]
    assert split_records(b"a\nb\n", "None") == [b"a\nb\n"]
    assert split_records(b"", "None") == []


def test_single_record_sends_each_line_alone() -> None:
    assert list(mini_batches([b"a", b"bb", b"c"], "SingleRecord", 100)) == [b"a", b"bb", b"c"]


def test_multi_record_fills_each_request_up_to_the_payload_limit() -> None:
    records = [b"%03d" % i for i in range(10)]  # 3 bytes + newline each
    batches = list(mini_batches(records, "MultiRecord", 9))
    assert batches == [b"000\n001\n", b"002\n003\n", b"004\n005\n", b"006\n007\n", b"008\n009\n"]
    assert b"".join(batches).split() == records  # nothing lost, order kept
    assert list(mini_batches(records, "MultiRecord", 1000)) == [b"\n".join(records) + b"\n"]
    with pytest.raises(TransformJobFailedError, match="exceeds MaxPayloadInMB"):
        list(mini_batches([b"x" * 10], "MultiRecord", 9))


def test_assemble_with_line_ends_each_response_once() -> None:
    assert assemble([b"0.1", b"0.2\n0.3\n"], "Line") == b"0.1\n0.2\n0.3\n"
    assert assemble([b"ab", b"cd"], "None") == b"abcd"


def test_the_requests_settings_are_read_with_sagemakers_defaults() -> None:
    settings = _check(request())
    assert (settings["split_type"], settings["strategy"], settings["assemble_with"]) == (
        "Line",
        "MultiRecord",
        "Line",
    )
    assert settings["max_payload"] == 6 * 1024 * 1024
    assert settings["content_type"] == settings["accept"] == CSV
    bare = request(BatchStrategy=None, MaxPayloadInMB=None)
    bare.pop("BatchStrategy")
    bare["TransformInput"] = {"DataSource": bare["TransformInput"]["DataSource"], "ContentType": JSON}
    bare["TransformOutput"] = {"S3OutputPath": "s3://b/out"}
    settings = _check(bare)
    assert (settings["split_type"], settings["strategy"], settings["assemble_with"]) == (
        "None",
        "SingleRecord",
        "None",
    )
    assert settings["accept"] == JSON


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DataProcessing": {"JoinSource": "Input"}}, "DataProcessing"),
        ({"BatchStrategy": "Everything"}, "BatchStrategy"),
        ({"TransformOutput": {"S3OutputPath": "s3://b/o", "AssembleWith": "Tab"}}, "AssembleWith"),
    ],
)
def test_what_does_not_run_locally_is_refused_by_name(change: dict, message: str) -> None:
    with pytest.raises(TransformRequestError, match=message):
        _check(request(**change))


def test_a_missing_field_is_named() -> None:
    config = request()
    config.pop("ModelName")
    with pytest.raises(TransformRequestError, match="lacks ModelName"):
        _check(config)


def test_manifests_compression_and_unsplit_multi_record_are_refused() -> None:
    config = request()
    config["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"
    with pytest.raises(TransformRequestError, match="ManifestFile"):
        _check(config)
    config = request()
    config["TransformInput"]["CompressionType"] = "Gzip"
    with pytest.raises(TransformRequestError, match="compressed"):
        _check(config)
    config = request()
    config["TransformInput"]["SplitType"] = "None"
    with pytest.raises(TransformRequestError, match="MultiRecord needs SplitType Line"):
        _check(config)
