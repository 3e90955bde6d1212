"""The pipeline as tests see it: DAG tasks rendered for a run, the requests they build, API validation."""

from __future__ import annotations

import boto3
from botocore.validate import validate_parameters

from sagelake.lake.layout import Lake
from sagelake.ml.aws_requests import training_request
from sagelake.ml.naming import resource_name
from tests.support.constants import REGION, ROOT, SKLEARN_IMAGE_URI

DT = "2026-11-26"
RUN_ID = "scheduled__2026-11-26T00:00:00+00:00"
VERSION = "20261126T000000000000Z-abcd1234"  # what plan_partition returns for a run


class PlannedRun:
    """The task instance of a rendered task: ``plan_partition``'s XCom holds this run's version."""

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **_: object) -> dict:
        assert (task_ids, key) == ("plan_partition", "plan"), f"unexpected xcom_pull of {task_ids!r}/{key!r}"
        return {"version": VERSION}


def validate(service: str, operation: str, params: dict) -> None:
    """Raise botocore's ParamValidationError unless ``params`` is a valid request of ``operation``."""
    model = boto3.client(service, region_name=REGION).meta.service_model.operation_model(operation)
    validate_parameters(params, model.input_shape)


def rendered_task(dag_file: str, dag_id: str, task_id: str, conf: dict | None = None):
    """The task with its templates rendered for a run of logical date DT, or, given ``conf``, for a run
    started by an event: no logical date (so no ``ds``), conf overriding the DAG's params."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags" / dag_file)).dags[dag_id]
    task = dag.get_task(task_id)
    params = dag.params.dump() | (conf or {})
    context = {"params": params, "run_id": RUN_ID, "ti": PlannedRun()} | ({} if conf else {"ds": DT})
    for field in task.template_fields:
        value = getattr(task, field)
        if isinstance(value, str | dict | list):
            setattr(task, field, task.render_template(value, context, jinja_env=dag.get_template_env()))
    return task


def training(bucket: str = "sagelake-lake") -> dict:
    lake = Lake(bucket)
    return training_request(
        job_name=resource_name("churn", DT, RUN_ID),
        role="sagelake-sagemaker",
        image_uri=SKLEARN_IMAGE_URI,
        train_uri=lake.curated_features(DT),
        output_uri=lake.model_output(),
        source_uri=lake.code("training/sourcedir-abc.tar.gz"),
        instance_type="ml.m5.large",
        hyperparameters={"max_iter": 200, "learning_rate": 0.08},
    )


_MIGRATED: set[str] = set()


def use_local_target(mp, control_plane_url: str, endpoint_url: str = "http://127.0.0.1:9") -> None:
    """Point DAG runs (``dag.test``) at the local control plane, on the local target, with a migrated
    metadata DB (once per session). ``mp``: a ``pytest.MonkeyPatch`` the caller undoes."""

    from devstack.stack import aws_connection

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "SAGELAKE_TARGET": "local",
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(control_plane_url, endpoint_url),
    }.items():
        mp.setenv(key, value)
    migrate_metadata_db()


def migrate_metadata_db() -> None:
    """``airflow db migrate`` on this session's metadata DB, once per test process."""
    import os
    import subprocess
    import sys

    database = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if database not in _MIGRATED:
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
        _MIGRATED.add(database)
