"""The control plane's state survives a clean stop and a crash (kill -9 after the snapshot window), and a
damaged snapshot is reported and set aside without preventing the start.

Each test runs the control plane as its own process (``--state-dir``): the session's in-process control
plane holds other tests' state and must not be restored over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.stack import aws_env, wait_for_http
from sagelake.config.settings import PROJECT_ROOT
from sagelake.local.state_store import PREVIOUS, SNAPSHOT, STATS
from tests.support.constants import ACCOUNT_ID, REGION, SAGEMAKER_ROLE_ARN
from tests.support.network import free_port

INTERVAL_S = 1.0
BUCKET, DATABASE, TABLE = "state-lake", "state_db", "features"
GROUP, QUEUE, TOPIC, ENDPOINT = "churn-models", "state-events", "state-alerts", "churn-endpoint"
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB of every byte value: S3 bodies are kept byte for byte


class ControlPlane:
    """One control-plane process on a free port, keeping its state in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = state_dir.parent / "control-plane.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "sagelake.local.control_plane", "--port", str(self.port)]
        argv += ["--state-dir", str(self.state_dir), "--snapshot-interval", str(INTERVAL_S)]
        env = {**os.environ, **aws_env(), "PYTHONPATH": str(PROJECT_ROOT / "plugins")}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_http(f"{self.url}/moto-api/", "control plane", 120, self.log, self.proc.pid)

    def stop(self) -> None:
        """A clean stop, as ``make down`` does it (SIGTERM)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture()
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    control_plane = ControlPlane(tmp_path / "state")
    control_plane.start()
    yield control_plane
    if control_plane.proc is not None and control_plane.proc.poll() is None:
        control_plane.kill()


def populate(plane: ControlPlane) -> None:
    """A little of every kind of state the pipeline keeps on the control plane."""
    s3 = plane.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="curated/features/dt=2026-11-26/part-0.parquet", Body=PAYLOAD)
    s3.put_object(Bucket=BUCKET, Key="raw/events/dt=2026-11-26/events.jsonl", Body=b'{"v": 1}\n')
    s3.put_object(Bucket=BUCKET, Key="raw/events/dt=2026-11-26/events.jsonl", Body=b'{"v": 2}\n')
    glue = plane.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    columns = [{"Name": "customer_id", "Type": "string"}, {"Name": "churned", "Type": "int"}]
    glue.create_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": TABLE,
            "StorageDescriptor": {"Columns": columns, "Location": f"s3://{BUCKET}/curated/features/"},
            "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        },
    )
    glue.create_partition(
        DatabaseName=DATABASE,
        TableName=TABLE,
        PartitionInput={
            "Values": ["2026-11-26"],
            "StorageDescriptor": {"Location": f"s3://{BUCKET}/curated/features/dt=2026-11-26/"},
            "Parameters": {"sagelake_version": "v1"},
        },
    )
    sagemaker = plane.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"dt": "2026-11-26"},
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/models/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )
    sagemaker.create_model(
        ModelName="churn-model-1",
        ExecutionRoleArn=SAGEMAKER_ROLE_ARN,
        PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/models/model.tar.gz"},
    )
    variant = {"VariantName": "primary", "ModelName": "churn-model-1", "InitialInstanceCount": 1}
    sagemaker.create_endpoint_config(
        EndpointConfigName="churn-config-1", ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}]
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="churn-config-1")
    sqs = plane.client("sqs")
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody='{"detail": {"object": {"key": "raw/x"}}}')
    plane.client("iam").create_role(RoleName="glue-role", AssumeRolePolicyDocument="{}")
    plane.client("cloudwatch").put_metric_data(
        Namespace="sagelake/drift",
        MetricData=[
            {"MetricName": "psi", "Dimensions": [{"Name": "feature", "Value": "tenure"}], "Value": 0.3}
        ],
    )
    plane.client("sns").create_topic(Name=TOPIC)


def observe(plane: ControlPlane) -> dict[str, Any]:
    """The reads the pipeline makes of that state (none of them changes it)."""
    s3, glue, sagemaker = plane.client("s3"), plane.client("glue"), plane.client("sagemaker")
    sqs, cloudwatch = plane.client("sqs"), plane.client("cloudwatch")
    body = s3.get_object(Bucket=BUCKET, Key="curated/features/dt=2026-11-26/part-0.parquet")["Body"].read()
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="raw/")["Versions"]
    partition = glue.get_partition(DatabaseName=DATABASE, TableName=TABLE, PartitionValues=["2026-11-26"])
    package = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][0]
    described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    statistics = cloudwatch.get_metric_statistics(
        Namespace="sagelake/drift",
        MetricName="psi",
        Dimensions=[{"Name": "feature", "Value": "tenure"}],
        StartTime=time.time() - 3600,
        EndTime=time.time() + 3600,
        Period=3600,
        Statistics=["Maximum"],
    )
    return {
        "body": body,
        "versions": [(v["Key"], v["VersionId"], v["IsLatest"], v["ETag"]) for v in versions],
        "partition": (
            partition["Partition"]["StorageDescriptor"]["Location"],
            partition["Partition"]["Parameters"],
        ),
        "package": (
            described["ModelPackageArn"],
            described["ModelApprovalStatus"],
            described["CustomerMetadataProperties"],
        ),
        "model": sagemaker.describe_model(ModelName="churn-model-1")["PrimaryContainer"],
        "config": sagemaker.describe_endpoint_config(EndpointConfigName="churn-config-1")[
            "ProductionVariants"
        ],
        "endpoint": (endpoint["EndpointArn"], endpoint["EndpointConfigName"], endpoint["EndpointStatus"]),
        "messages": sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"],
        "role": plane.client("iam").get_role(RoleName="glue-role")["Role"]["Arn"],
        "metric": [point["Maximum"] for point in statistics["Datapoints"]],
        "topics": [t["TopicArn"] for t in plane.client("sns").list_topics()["Topics"]],
    }


def test_state_survives_a_clean_stop(plane: ControlPlane) -> None:
    populate(plane)
    before = observe(plane)
    assert before["messages"] == {"ApproximateNumberOfMessages": "1"} and before["metric"] == [0.3]
    plane.stop()
    plane.start()
    assert observe(plane) == before
    # the launcher's bootstrap creates the lake bucket on every start (in us-east-1 a no-op for its
    # owner): the restored bucket and its objects must stay
    plane.client("s3").create_bucket(Bucket=BUCKET)
    assert observe(plane) == before
    # the queued message is still deliverable, and the endpoint still switches configs (the extensions)
    sqs = plane.client("sqs")
    received = sqs.receive_message(QueueUrl=sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"])["Messages"]
    assert json.loads(received[0]["Body"])["detail"]["object"]["key"] == "raw/x"
    assert f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{TOPIC}" in before["topics"]
    assert "state: restored" in plane.log_text()


def saved_at(plane: ControlPlane) -> float:
    """When the last snapshot was taken (0: none yet)."""
    stats_file = plane.state_dir / STATS
    return json.loads(stats_file.read_text())["saved_at"] if stats_file.exists() else 0.0


def wait_for_snapshot_after(plane: ControlPlane, moment: float, timeout_s: float = 30) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if saved_at(plane) > moment:
            return saved_at(plane)
        time.sleep(0.2)
    raise AssertionError(f"no snapshot after {moment} within {timeout_s}s")


def test_state_survives_a_crash_after_the_snapshot_window(plane: ControlPlane) -> None:
    populate(plane)
    changed_at = time.time()
    before = observe(plane)
    wait_for_snapshot_after(plane, changed_at)  # the next periodic snapshot after the last change
    plane.kill()  # kill -9: no final snapshot
    plane.start()
    assert observe(plane) == before


def test_reads_and_empty_receives_take_no_snapshot_a_received_message_does(plane: ControlPlane) -> None:
    populate(plane)
    last = wait_for_snapshot_after(plane, time.time())
    sqs = plane.client("sqs")
    queue_url = sqs.create_queue(QueueName="idle-watch")["QueueUrl"]  # empty: as the SQS watcher polls it
    created = wait_for_snapshot_after(plane, last)
    idle_until = time.monotonic() + 4 * INTERVAL_S
    while time.monotonic() < idle_until:  # what an idle stack answers: the watcher's and endpoint's polls
        assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)
        observe(plane)
    assert saved_at(plane) == created
    sqs.send_message(QueueUrl=queue_url, MessageBody="event")
    sent = wait_for_snapshot_after(plane, created)
    assert sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=600)["Messages"][0]["Body"] == "event"
    wait_for_snapshot_after(plane, sent)  # the message is in flight now: a crash must not deliver it again


def test_a_damaged_snapshot_is_set_aside_and_the_previous_one_restored(plane: ControlPlane) -> None:
    populate(plane)
    before = observe(plane)
    plane.stop()  # the clean stop's snapshot becomes the previous one at the next write: make one
    plane.start()
    plane.stop()
    snapshot = plane.state_dir / SNAPSHOT
    assert (plane.state_dir / PREVIOUS).exists()
    snapshot.write_bytes(snapshot.read_bytes()[:-100])  # a truncated file (the disk filled up, say)
    (plane.state_dir / f".{SNAPSHOT}.123.tmp").write_bytes(b"half a snapshot")  # a write a crash cut short
    plane.start()
    assert observe(plane) == before
    log = plane.log_text()
    assert "is truncated" in log and "moved aside" in log and "unfinished snapshot" in log
    assert list(plane.state_dir.glob(f"{SNAPSHOT}.corrupt-*"))
    assert not list(plane.state_dir.glob(f".{SNAPSHOT}.*.tmp"))


def test_with_no_readable_snapshot_it_starts_empty_and_says_so(plane: ControlPlane) -> None:
    populate(plane)
    plane.stop()
    for name in (SNAPSHOT, PREVIOUS):
        path = plane.state_dir / name
        if path.exists():
            data = bytearray(path.read_bytes())
            data[-10] ^= 0xFF  # one flipped byte: caught by the checksum
            path.write_bytes(bytes(data))
    plane.start()
    assert plane.client("s3").list_buckets()["Buckets"] == []
    log = plane.log_text()
    assert "checksum does not match" in log and "starts EMPTY" in log
    report = json.loads((plane.state_dir / "restore.json").read_text())
    assert report["source"] is None and any("EMPTY" in problem for problem in report["problems"])
