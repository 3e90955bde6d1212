"""``make down`` / ``make up`` on a real local stack keeps the lake, the catalog and Airflow's history in
step: the same query answers the same rows, and a redelivered event is still a duplicate of its run."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.support.constants import ACCOUNT_ID, REGION
from tests.support.lake_days import features, publish_day
from tests.support.live_stack import LIVE_DAYS

pytestmark = pytest.mark.e2e

(DT,) = LIVE_DAYS["restart"]
QUERY = f"SELECT customer_id, churned FROM churn_features WHERE dt = '{DT}' ORDER BY customer_id"


def athena_rows(stack, glue, sql: str, database: str) -> list[tuple]:
    """The rows of ``sql`` as the local Athena engine reads the lake through the catalog."""
    from sagelake.local.athena.engine import LocalAthenaEngine

    with LocalAthenaEngine(
        glue, s3_endpoint_url=stack.control_plane_url, region=REGION, access_key_id="t", secret_access_key="t"
    ) as engine:
        return engine.execute(sql, database).rows


def test_a_restart_keeps_the_published_day_and_the_runs_it_answers_for(live) -> None:
    from devstack import stack as local_stack
    from devstack.datagen import generate_day, land_day
    from devstack.demo import webhook_url
    from devstack.webhook_client import deliver, object_created_event
    from sagelake.config.settings import default_params
    from sagelake.lake import catalog
    from sagelake.lake.layout import Lake, split_s3_uri

    stack, api, s3 = live["stack"], live["api"], live["s3"]
    glue = local_stack.boto3_session().client("glue", endpoint_url=stack.control_plane_url)
    params = default_params()
    database, lake = str(params["glue_database"]), Lake(str(params["bucket"]))
    catalog.ensure_database(glue, database)
    catalog.ensure_tables(glue, database, lake)
    uris = land_day(s3, lake, DT, generate_day(DT, n_customers=300))
    location = publish_day(s3, glue, database, lake, DT, features(300, seed=7))
    rows = athena_rows(stack, glue, QUERY, database)
    assert len(rows) == 300

    # an event for the day (the DAG stays paused, so its run waits, queued, and changes nothing)
    api.wait_for_dag("churn_prepare")
    assert "churn_prepare" not in api.unpaused_dags()
    bucket, key = split_s3_uri(uris[-1])
    event = object_created_event(
        bucket, key, 1, "etag", region=local_stack.REGION, account=ACCOUNT_ID, time=datetime.now(UTC)
    )
    status, first = deliver(webhook_url(stack), event, local_stack.webhook_key(stack))
    assert status == 202 and first["duplicate"] is False, first  # accepted: a new run

    assert local_stack.down(stack) == ["airflow", "endpoint", "control-plane", "mlflow"]
    assert (stack.control_plane_state_dir / "moto-state.pickle").exists()
    started = time.monotonic()
    notes = local_stack.up(stack, report=lambda _: None)
    print(f"restart: {time.monotonic() - started:.1f}s")

    assert notes == []  # the restore was whole and agrees with Airflow's history
    restored = local_stack.boto3_session().client("glue", endpoint_url=stack.control_plane_url)
    assert athena_rows(stack, restored, QUERY, database) == rows
    partition = restored.get_partition(
        DatabaseName=database, TableName="churn_features", PartitionValues=[DT]
    )
    assert partition["Partition"]["StorageDescriptor"]["Location"] == location
    status, again = deliver(webhook_url(stack), event, local_stack.webhook_key(stack))
    assert status == 200 and again["duplicate"] is True and again["dag_run_id"] == first["dag_run_id"], again
