"""The shipped rule pattern (include/events/) on the control plane's EventBridge: what reaches the queue."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3

from tests.support.constants import REGION, ROOT

EVENTS = ROOT / "include" / "events"
ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


def put_entry(event: dict[str, Any]) -> dict[str, Any]:
    """A PutEvents entry carrying ``event``'s source, detail-type, detail and resources."""
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
    }


def variant(event: dict[str, Any], *, bucket: str | None = None, key: str | None = None) -> dict[str, Any]:
    changed = json.loads(json.dumps(event))
    if bucket:
        changed["detail"]["bucket"]["name"] = bucket
        changed["resources"] = [f"arn:aws:s3:::{bucket}"]
    if key:
        changed["detail"]["object"]["key"] = key
    return changed


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message in the queue, received and deleted."""
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_rule_delivers_raw_uploads_of_the_lake_bucket_and_nothing_else(aws_env: str) -> None:
    events = boto3.client("events", endpoint_url=aws_env, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=aws_env, region_name=REGION)
    name = f"sagelake-raw-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=name, EventPattern=(EVENTS / "s3-raw-rule-pattern.json").read_text(), State="ENABLED"
    )
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    try:
        sample = json.loads((EVENTS / "samples" / "s3-object-created.json").read_text())
        outside_raw = variant(sample, key="processed/events/dt=2026-11-26/part-0.parquet")
        other_bucket = variant(sample, bucket="someone-elses-bucket")
        response = events.put_events(Entries=[put_entry(e) for e in (outside_raw, other_bucket, sample)])
        assert response["FailedEntryCount"] == 0

        delivered = drain(sqs, queue_url)
    finally:
        events.remove_targets(Rule=name, Ids=["queue"])
        events.delete_rule(Name=name)
        sqs.delete_queue(QueueUrl=queue_url)

    assert len(delivered) == 1
    (event,) = delivered
    assert set(event) >= ENVELOPE - {"account"}  # moto's SQS delivery leaves out "account"
    assert event["region"] == REGION and str(uuid.UUID(event["id"])) == event["id"]
    assert (event["source"], event["detail-type"]) == (sample["source"], sample["detail-type"])
    assert event["detail"] == sample["detail"]
    assert event["resources"] == sample["resources"]
