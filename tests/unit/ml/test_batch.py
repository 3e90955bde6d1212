"""Batch inference as requests: a valid CreateTransformJob (botocore's model) for each model kind, input the
inference code reads, SageMaker's output naming, scores joined and refused, the ``churn_scores`` table."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from botocore.exceptions import ParamValidationError

from sagelake.lake.layout import Lake
from sagelake.ml.batch import (
    CSV,
    INSTANCES_PER_LINE,
    JSON,
    SCORES_COLUMNS,
    BatchScoringError,
    batch_prefix,
    output_object_uri,
    parse_scores,
    scores_fingerprint,
    scores_frame,
    scores_partition,
    scores_table_input,
    transform_payload,
    transform_request,
)
from sagelake.ml.training_data import CSV_FEATURE_COLUMNS, serving_csv
from tests.support.pipeline import DT, validate
from tests.support.training_data import load_script, synthetic_features

PREFIX = batch_prefix("sagelake-lake", DT, "abcd1234")


def request(**overrides) -> dict:
    return transform_request(
        **{
            "job_name": "churn-score-20261126-abcd1234",
            "model_name": "churn-20261126-abcd1234-v3",
            "input_uri": PREFIX + "input/",
            "output_uri": PREFIX + "output/",
            "content_type": JSON,
            "instance_type": "ml.m5.large",
            **overrides,
        }
    )


def test_scratch_and_scores_live_in_the_lake_by_partition() -> None:
    assert PREFIX == "s3://sagelake-lake/batch/churn_scores/dt=2026-11-26/run=abcd1234/"
    assert scores_partition("sagelake-lake", DT) == "s3://sagelake-lake/curated/churn_scores/dt=2026-11-26/"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        batch_prefix("b", "2026-13-01", "r")


@pytest.mark.parametrize(("content_type", "strategy"), [(JSON, "SingleRecord"), (CSV, "MultiRecord")])
def test_requests_are_valid_and_speak_the_models_protocol(content_type: str, strategy: str) -> None:
    config = request(content_type=content_type)
    validate("sagemaker", "CreateTransformJob", config)
    assert config["BatchStrategy"] == strategy
    assert config["TransformInput"]["ContentType"] == config["TransformOutput"]["Accept"] == content_type
    assert config["TransformInput"]["SplitType"] == "Line"
    assert config["TransformInput"]["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3Uri": PREFIX + "input/",
    }
    assert config["TransformOutput"]["S3OutputPath"] == PREFIX + "output"
    assert config["TransformOutput"]["AssembleWith"] == "Line"
    assert config["ModelName"] == "churn-20261126-abcd1234-v3"


def test_the_request_is_strict_about_what_it_is_given() -> None:
    with pytest.raises(ValueError, match="content_type"):
        request(content_type="application/x-npy")
    with pytest.raises(ValueError, match="must be a prefix"):
        request(input_uri=PREFIX + "input/part-0.jsonl")
    with pytest.raises(ValueError, match="not an s3://"):
        request(output_uri="/tmp/out/")
    with pytest.raises(ParamValidationError):  # the validator itself is not vacuous
        validate("sagemaker", "CreateTransformJob", {**request(), "TransformResources": {}})


def test_json_lines_are_requests_the_inference_code_reads() -> None:
    inference = load_script("inference")
    frame = synthetic_features(INSTANCES_PER_LINE + 7, 3)
    frame.loc[2, "avg_session_s"] = float("nan")
    body, content_type = transform_payload(frame, builtin_xgboost=False)
    assert content_type == JSON
    lines = body.decode().splitlines()
    assert len(lines) == 2 and body.endswith(b"\n")
    instances = [i for line in lines for i in inference.input_fn(line.encode(), content_type)]
    assert len(instances) == len(frame)
    assert all("customer_id" not in i and "churned" not in i for i in instances)
    assert instances[2]["avg_session_s"] is None  # valid JSON: null, read as missing
    first = instances[0]
    assert first["avg_session_s"] == frame.loc[0, "avg_session_s"]  # every digit survives
    assert (
        first["plan"] == frame.loc[0, "plan"] and first["support_tickets"] == frame.loc[0, "support_tickets"]
    )
    features = [c for c in frame.columns if c not in ("customer_id", "churned")]
    rebuilt = inference.to_frame(instances, features, ["plan", "region"])
    assert math.isnan(rebuilt.loc[2, "avg_session_s"])
    assert rebuilt["tenure_days"].tolist() == frame["tenure_days"].astype(float).tolist()


def test_builtin_xgboost_input_is_the_serving_csv() -> None:
    frame = synthetic_features(20, 4)
    body, content_type = transform_payload(frame, builtin_xgboost=True)
    assert content_type == CSV
    assert body == serving_csv(frame)
    assert {len(line.split(",")) for line in body.decode().splitlines()} == {len(CSV_FEATURE_COLUMNS)}


def test_empty_partitions_are_refused() -> None:
    with pytest.raises(BatchScoringError, match="no rows"):
        transform_payload(synthetic_features(0, 1), builtin_xgboost=False)


def test_outputs_are_named_as_sagemaker_names_them() -> None:
    assert (
        output_object_uri(PREFIX + "input/", PREFIX + "input/part-0.jsonl", PREFIX + "output")
        == PREFIX + "output/part-0.jsonl.out"
    )
    assert output_object_uri("s3://b/in/x", "s3://b/in/xa/f.csv", "s3://b/out/") == "s3://b/out/xa/f.csv.out"
    with pytest.raises(ValueError, match="not under"):
        output_object_uri("s3://b/in/", "s3://other/in/f.csv", "s3://b/out")


def test_scores_are_parsed_in_input_order() -> None:
    json_out = b'{"predictions":[{"churn_probability":0.25,"churned":0},{"churn_probability":0.75}]}\n'
    json_out += b'{"predictions":[{"churn_probability":0.5}]}\n'
    assert parse_scores(json_out, JSON) == [0.25, 0.75, 0.5]
    assert parse_scores(b"0.1\n0.2\n\n0.3\n", CSV) == [0.1, 0.2, 0.3]
    with pytest.raises(BatchScoringError, match="line 1"):
        parse_scores(b'{"error": "boom"}\n', JSON)
    with pytest.raises(BatchScoringError, match="one score per line"):
        parse_scores(b"0.1\nnot-a-number\n", CSV)


def test_scores_frame_joins_ids_and_lineage_or_refuses() -> None:
    lineage = {
        "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/sagelake-churn/3",
        "model_url": "s3://b/models/churn/j/output/model.tar.gz",
        "transform_job": "churn-score-20261126-abcd1234",
        "scored_at": "2026-11-26T03:00:00+00:00",
    }
    frame = scores_frame(["a", "b"], [0.1, 0.9], **lineage)
    assert list(frame.columns) == [name for name, _ in SCORES_COLUMNS]
    assert frame["customer_id"].tolist() == ["a", "b"]
    assert frame["churn_probability"].tolist() == [0.1, 0.9]
    assert frame["model_package_arn"].unique().tolist() == [lineage["model_package_arn"]]
    with pytest.raises(BatchScoringError, match="1 scores for 2 customers"):
        scores_frame(["a", "b"], [0.1], **lineage)
    with pytest.raises(BatchScoringError, match="not probabilities"):
        scores_frame(["a"], [1.5], **lineage)


def test_scores_table_is_a_valid_parquet_table_partitioned_by_dt() -> None:
    table = scores_table_input(Lake("sagelake-lake"))
    validate("glue", "CreateTable", {"DatabaseName": "sagelake", "TableInput": table})
    assert table["Name"] == "churn_scores"
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    storage = table["StorageDescriptor"]
    assert storage["Location"] == "s3://sagelake-lake/curated/churn_scores/"
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == SCORES_COLUMNS
    assert "parquet" in storage["SerdeInfo"]["SerializationLibrary"].lower()


def test_fingerprint_changes_with_the_features_version_or_the_model() -> None:
    base = scores_fingerprint("s3://b/curated/churn_features/dt=D/version=1/", "s3://b/m1/model.tar.gz")
    assert base == scores_fingerprint(
        "s3://b/curated/churn_features/dt=D/version=1/", "s3://b/m1/model.tar.gz"
    )
    assert base != scores_fingerprint(
        "s3://b/curated/churn_features/dt=D/version=2/", "s3://b/m1/model.tar.gz"
    )
    assert base != scores_fingerprint(
        "s3://b/curated/churn_features/dt=D/version=1/", "s3://b/m2/model.tar.gz"
    )


def test_ids_must_be_there_to_join_on() -> None:
    from sagelake.ml.batch import prepare_transform_input

    with pytest.raises(BatchScoringError, match="customer_id"):
        prepare_transform_input(None, pd.DataFrame({"plan": ["basic"]}), PREFIX, builtin_xgboost=False)
