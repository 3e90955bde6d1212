"""A real local stack per test module that asks for ``live`` (``airflow standalone`` + moto + endpoint server
+ MLflow), on free ports in a temp dir."""

from __future__ import annotations

import pytest

from tests.support.network import free_port


@pytest.fixture(scope="session", autouse=True)
def _shared_spark(spark_gateway_dir: str) -> str:
    """Every Glue run of the end-to-end tests, in-process or in a live stack, on one warm Spark JVM."""
    return spark_gateway_dir


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    from devstack import stack as local_stack
    from devstack.airflow_api import AirflowApi

    stack = local_stack.Stack(
        local_dir=tmp_path_factory.mktemp("stack"),
        ports=local_stack.Ports(
            control_plane=free_port(), endpoint=free_port(), airflow=free_port(), mlflow=free_port()
        ),
    )
    try:
        local_stack.up(stack)
        session = local_stack.boto3_session()
        yield {
            "stack": stack,
            "api": AirflowApi(stack.airflow_url, local_stack.LOCAL_USER, local_stack.LOCAL_PASSWORD),
            "s3": session.client("s3", endpoint_url=stack.control_plane_url),
            "sqs": session.client("sqs", endpoint_url=stack.control_plane_url),
        }
    finally:
        local_stack.down(stack)
