"""The local stack as background processes: control plane (moto), endpoint server, MLflow, a warm Spark
JVM and ``airflow standalone``.

``python -m devstack.stack up|down|status``. Everything lives in the git-ignored ``.local/``:
Airflow home and logs, process ids, the endpoint's model cache, and the control plane's state (the local
lake, catalog, registry, endpoints, queues… snapshotted to ``.local/control-plane/``, restored on ``up``;
see docs/local-stack.md). Processes are stopped by the PIDs this launcher recorded (their whole process
group), never by name. ``up`` says where the restored state and Airflow's run history disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelake.config.settings import PROJECT_ROOT
from sagelake.local.java import JavaNotFoundError

LOCAL_DIR = Path(os.environ.get("SAGELAKE_LOCAL_DIR", PROJECT_ROOT / ".local"))
REGION = "us-east-1"
LOCAL_USER, LOCAL_PASSWORD = "admin", "admin"
LOCAL_KEY_ID, LOCAL_SECRET = "testing", "testing"  # moto accepts any credentials
EVENTS_QUEUE = "sagelake-events"
# seconds between snapshots of the control plane's state while it changes: the most a crash loses
CONTROL_PLANE_SNAPSHOT_S = 10.0


class StackError(RuntimeError):
    """A one-line, actionable problem with the local stack."""


def env_port(name: str, default: int) -> int:
    """A port from the environment variable ``name``, else ``default``; a clear error if it is not one."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{name}={raw!r} is not a TCP port: set it to a number from 1 to 65535, or unset it")
    return int(raw)


@dataclass(frozen=True)
class Ports:
    control_plane: int = field(default_factory=lambda: env_port("SAGELAKE_CONTROL_PLANE_PORT", 4566))
    endpoint: int = field(default_factory=lambda: env_port("SAGELAKE_ENDPOINT_PORT", 8085))
    airflow: int = field(default_factory=lambda: env_port("SAGELAKE_AIRFLOW_PORT", 8080))
    mlflow: int = field(default_factory=lambda: env_port("SAGELAKE_MLFLOW_PORT", 5000))


@dataclass(frozen=True)
class Stack:
    """Paths and addresses of one local stack."""

    local_dir: Path = LOCAL_DIR
    ports: Ports = field(default_factory=Ports)

    @property
    def control_plane_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.control_plane}"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.endpoint}"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.airflow}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.mlflow}"

    @property
    def mlflow_dir(self) -> Path:
        """The MLflow server's SQLite store and artefacts."""
        return self.local_dir / "mlflow"

    @property
    def control_plane_state_dir(self) -> Path:
        """The control plane's persisted state (``sagelake.local.state_store``): lake, catalog, registry…"""
        return self.local_dir / "control-plane"

    @property
    def airflow_home(self) -> Path:
        return self.local_dir / "airflow"

    @property
    def spark_gateway_dir(self) -> Path:
        """The warm Spark JVM local Glue runs share (``devstack.warm_spark``); ``SAGELAKE_SPARK_GATEWAY_DIR``
        names one the caller runs (the test session's), else the stack starts its own here."""
        given = os.environ.get("SAGELAKE_SPARK_GATEWAY_DIR", "").strip()
        return Path(given) if given else self.local_dir / "spark-gateway"

    @property
    def webhook_key_file(self) -> Path:
        return self.local_dir / "webhook-key"

    def pid_file(self, name: str) -> Path:
        return self.local_dir / "pids" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.local_dir / "logs" / f"{name}.log"


def aws_connection(control_plane_url: str, endpoint_url: str) -> str:
    """``aws_default`` for the local target: every service on the control plane, runtime on the server."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": LOCAL_KEY_ID,
            "password": LOCAL_SECRET,
            "extra": {
                "region_name": REGION,
                "endpoint_url": control_plane_url,
                "service_config": {"sagemaker-runtime": {"endpoint_url": endpoint_url}},
            },
        }
    )


def aws_env() -> dict[str, str]:
    """Placeholder credentials for processes that talk to the local control plane directly."""
    return {
        "AWS_ACCESS_KEY_ID": LOCAL_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET,
        "AWS_DEFAULT_REGION": REGION,
    }


def boto3_session() -> Any:
    """A boto3 session with the local stack's placeholder credentials and region."""
    import boto3

    return boto3.Session(
        aws_access_key_id=LOCAL_KEY_ID, aws_secret_access_key=LOCAL_SECRET, region_name=REGION
    )


def webhook_key(stack: Stack) -> str:
    """The local webhook's API key: generated on first start, kept in ``.local/webhook-key`` (mode 0600)."""
    path = stack.webhook_key_file
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    path.chmod(0o600)
    return key


def airflow_env(stack: Stack, webhook_api_key: str, events_queue_url: str) -> dict[str, str]:
    """Environment of every Airflow process of the local stack (also used by the tests)."""
    home = stack.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        # its own metadata DB, whatever the caller's environment names (a test session's, another stack's)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",  # 6 checks at once took as long as 3 + 3 (2 cores): no more
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "3",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{LOCAL_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{stack.airflow_url}/execution/",
        "AIRFLOW__API__PORT": str(stack.ports.airflow),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        # an idle scheduler looks again after 0.2 s, not 1 s: each task of a chain starts up to 0.8 s sooner
        # (≈25 hops from a landed day to a deployed model) for a few % of a core
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(stack.local_dir / "logs" / "airflow"),
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(stack.control_plane_url, stack.endpoint_url),
        "AIRFLOW_CONN_EVENTBRIDGE_WEBHOOK": json.dumps({"conn_type": "generic", "password": webhook_api_key}),
        "SAGELAKE_EVENTS_QUEUE_URL": events_queue_url,
        "SAGELAKE_MLFLOW_TRACKING_URI": stack.mlflow_url,  # sagelake.ml.tracking
        "SAGELAKE_TARGET": "local",
        "SAGELAKE_LOCAL_DIR": str(stack.local_dir),  # the local engines' state (sagelake.config.settings)
        "SAGELAKE_SPARK_GATEWAY_DIR": str(stack.spark_gateway_dir),  # the warm Spark JVM Glue runs share
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]),
        "NO_PROXY": "127.0.0.1,localhost",
        # standalone starts its components as `airflow …`: this venv's, whatever the caller's PATH
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        **aws_env(),
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def throwaway_stack(prefix: str = "sagelake-") -> Stack:
    """A stack in a new temp dir on free ports (benchmarks and tests; ``make demo``'s stack is untouched)."""
    ports = Ports(control_plane=free_port(), endpoint=free_port(), airflow=free_port(), mlflow=free_port())
    return Stack(local_dir=Path(tempfile.mkdtemp(prefix=prefix)), ports=ports)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def running_pid(stack: Stack, name: str) -> int | None:
    """PID recorded for ``name`` if that process is still alive."""
    path = stack.pid_file(name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return pid


def wait_for_http(url: str, what: str, timeout_s: float, log: Path, pid: int | None = None) -> None:
    """Wait until ``url`` answers; fail at once if the process ``pid`` died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise StackError(f"{what} exited during start-up: see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise StackError(f"{what} did not answer on {url} within {timeout_s:.0f}s: see {log}")


def start_process(stack: Stack, name: str, argv: list[str], env: dict[str, str], port: int) -> int:
    """Start ``argv`` in its own session, logging to .local/logs; refuse an occupied port."""
    pid = running_pid(stack, name)
    if pid:
        return pid
    if port_in_use(port):
        raise StackError(
            f"port {port} is in use by another program: stop it, or choose another port with "
            f"SAGELAKE_{name.upper().replace('-', '_')}_PORT"
        )
    for path in (stack.pid_file(name), stack.log_file(name)):
        path.parent.mkdir(parents=True, exist_ok=True)
    log = stack.log_file(name).open("ab")
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )
    stack.pid_file(name).write_text(str(proc.pid))
    return proc.pid


def mlflow_server_argv(stack: Stack) -> list[str]:
    """``mlflow server`` for the local stack: SQLite store and proxied artefacts under ``.local/mlflow``,
    on loopback, one worker (the UI and the REST API the pipeline's tasks log to)."""
    stack.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{stack.mlflow_dir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(stack.mlflow_dir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(stack.ports.mlflow),
        "--workers",
        "1",
    ]


# no GenAI job runner (a second process, unused by the pipeline)
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def start_mlflow(stack: Stack) -> int:
    """Start (or keep) the stack's MLflow server; its PID, without waiting (:func:`wait_for_mlflow`)."""
    return start_process(stack, "mlflow", mlflow_server_argv(stack), MLFLOW_SERVER_ENV, stack.ports.mlflow)


def wait_for_mlflow(stack: Stack, pid: int, timeout_s: float = 180) -> None:
    """Wait until the MLflow server answers its health check."""
    wait_for_http(f"{stack.mlflow_url}/health", "MLflow server", timeout_s, stack.log_file("mlflow"), pid)


def bootstrap_control_plane(
    control_plane_url: str,
    bucket: str,
    roles: tuple[str, ...],
    queue: str = EVENTS_QUEUE,
    workgroup: str | None = None,
) -> str:
    """What infrastructure-as-code provides on AWS: the lake bucket, the service roles, the events queue;
    then the lake set-up the ``lake_setup`` DAG applies (``sagelake.lake.setup``), on the bucket and the
    Athena ``workgroup`` (default: the settings').

    Returns the queue's URL.
    """
    from botocore.exceptions import ClientError

    from sagelake.aws_errors import has_code
    from sagelake.config.settings import default_params
    from sagelake.lake.setup import LakePolicy, apply, desired_state

    session = boto3_session()
    s3 = session.client("s3", endpoint_url=control_plane_url)
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as error:
        if not has_code(error, "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    # The same set-up as on AWS; over plain HTTP it leaves out the TLS-only policy (see docs/lake.md).
    try:
        policy = LakePolicy.from_settings()
    except ValueError as error:  # a bad SAGELAKE_LAKE_* / SAGELAKE_ATHENA_* setting: one line, no trace
        raise StackError(str(error)) from None
    lake = desired_state(
        bucket,
        workgroup or str(default_params()["athena_workgroup"]),
        policy,
        s3_endpoint_url=control_plane_url,
    )
    apply(s3, session.client("athena", endpoint_url=control_plane_url), lake)
    iam = session.client("iam", endpoint_url=control_plane_url)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": ["glue.amazonaws.com", "sagemaker.amazonaws.com"]},
            }
        ],
    }
    for role in roles:
        try:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        except ClientError as error:
            if not has_code(error, "EntityAlreadyExists"):
                raise
    sqs = session.client("sqs", endpoint_url=control_plane_url)
    bootstrap_alerts(session, control_plane_url)
    return sqs.create_queue(QueueName=queue)["QueueUrl"]  # returns the existing queue's URL if it exists


def bootstrap_alerts(session: Any, control_plane_url: str) -> tuple[str, str]:
    """The alerts topic (``sagelake.config.settings.ALERTS_TOPIC``) and the queue ``sagelake-alerts``
    subscribed to it, where failure notifications can be read locally; returns (topic ARN, queue URL).
    Idempotent: create calls return what exists, and the subscription is made once."""
    from sagelake.config.settings import ALERTS_TOPIC

    sns = session.client("sns", endpoint_url=control_plane_url)
    sqs = session.client("sqs", endpoint_url=control_plane_url)
    topic = sns.create_topic(Name=ALERTS_TOPIC)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=ALERTS_TOPIC)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    subscribed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    if not any(s["Endpoint"] == queue_arn for s in subscribed):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue_url


def up(stack: Stack, report: Callable[[str], None] = print) -> list[str]:
    """Start (or keep) the services and wait until each answers; then ``report`` (and return) each
    problem of the control plane's restore and each disagreement between Airflow's history and the
    restored state (:func:`reconcile`)."""
    from sagelake.config.settings import default_params, deployment_settings
    from sagelake.local.java import find_java_home

    find_java_home()  # fail early, with its one-line advice, rather than in the Glue task
    mlflow_pid = start_mlflow(stack)  # slow to start: it starts with the others, waited for last
    python = sys.executable
    plugins = {"PYTHONPATH": str(PROJECT_ROOT / "plugins"), **aws_env()}
    module = [
        python,
        "-m",
        "sagelake.local.control_plane",
        "--port",
        str(stack.ports.control_plane),
        "--state-dir",
        str(stack.control_plane_state_dir),
        "--snapshot-interval",
        str(CONTROL_PLANE_SNAPSHOT_S),
    ]
    pid = start_process(stack, "control-plane", module, plugins, stack.ports.control_plane)
    wait_for_http(
        f"{stack.control_plane_url}/moto-api/", "control plane", 120, stack.log_file("control-plane"), pid
    )
    notes = restore_problems(stack)
    params = default_params()
    roles = (deployment_settings()["glue_role"], deployment_settings()["sagemaker_role"])
    queue_url = bootstrap_control_plane(stack.control_plane_url, str(params["bucket"]), roles)

    module = [
        python,
        "-m",
        "sagelake.local.endpoint_server",
        "--port",
        str(stack.ports.endpoint),
        "--control-plane-url",
        stack.control_plane_url,
        "--cache-dir",
        str(stack.local_dir / "endpoint-cache"),
    ]
    pid = start_process(stack, "endpoint", module, plugins, stack.ports.endpoint)
    wait_for_http(f"{stack.endpoint_url}/ping", "endpoint server", 60, stack.log_file("endpoint"), pid)

    stack.airflow_home.mkdir(parents=True, exist_ok=True)
    passwords = stack.airflow_home / "passwords.json"
    passwords.write_text(json.dumps({LOCAL_USER: LOCAL_PASSWORD}))
    passwords.chmod(0o600)
    write_local_settings(stack)
    airflow = str(Path(python).with_name("airflow"))
    env = airflow_env(stack, webhook_key(stack), queue_url)
    pid = start_process(stack, "airflow", [airflow, "standalone"], env, stack.ports.airflow)
    wait_for_http(
        f"{stack.airflow_url}/api/v2/monitor/health", "Airflow", 300, stack.log_file("airflow"), pid
    )
    # after Airflow is up: its warm-up would slow Airflow's start (16 s → 30 s on 2 cores) more than it saves
    start_spark_gateway(stack)
    wait_for_mlflow(stack, mlflow_pid)
    try:
        notes += reconcile(stack)
    except Exception as error:  # noqa: BLE001 - the stack is up; the comparison is advice
        notes.append(f"could not compare Airflow's history with the control plane's state: {error}")
    for note in notes:
        report(note)
    return notes


# What the pipeline's tasks import that Airflow does not: the local scheduler imports it once, before it
# forks its LocalExecutor workers, and every task process (forked from them) starts with it loaded —
# ≈2 s less per task that tracks in MLflow or names a SageMaker image, ≈0.5 s per quality check.
PRELOADED_MODULES = (
    "mlflow",
    "sagemaker.core.image_uris",
    "airflow.providers.amazon.aws.hooks.sagemaker",
    "airflow.providers.amazon.aws.hooks.s3",
    "duckdb",
    "sqlglot",
    "pandas",
    "pyarrow.parquet",
)
# The AWS services the pipeline's tasks make clients of: the scheduler parses their botocore data (endpoints,
# service models) once into the process's shared loader (sagelake.config.botocore_data), and every task
# process forked from it starts with it parsed (≈0.2 s of CPU per task otherwise).
PRELOADED_AWS_SERVICES = (
    "s3",
    "glue",
    "athena",
    "sagemaker",
    "sagemaker-runtime",
    "cloudwatch",
    "sns",
    "sqs",
    "application-autoscaling",
    "iam",
    "sts",
    "logs",
    "redshift-data",
)
LOCAL_SETTINGS = '''"""Written by devstack.stack for the local stack: the scheduler preloads what tasks
import (its LocalExecutor workers and their task processes are forked from it) and the AWS SDK's data for
the clients they make; other processes skip it."""

import importlib
import sys

__all__: list[str] = []  # no cluster policy here

if sys.argv[1:2] == ["scheduler"]:
    for _name in {modules!r}:
        try:
            importlib.import_module(_name)
        except Exception:  # noqa: BLE001 - a task imports it itself, and reports the error there
            pass
    try:
        from sagelake.config.botocore_data import warm_up

        warm_up({services!r})
    except Exception:  # noqa: BLE001 - a task parses what it needs itself
        pass
    # The Amazon provider's hooks call inspect.stack() for each client they make (their user agent's
    # "Caller/"); a process's first call maps the file of every module loaded (a realpath of each), ≈0.3 s
    # of CPU per task process. Mapped once here, the tasks inherit the map and add only their own modules.
    import inspect

    inspect.getmodule(sys._getframe())
'''


def write_local_settings(stack: Stack) -> Path:
    """``airflow_local_settings.py`` in the stack's Airflow home (``config/``, on Airflow's path)."""
    path = stack.airflow_home / "config" / "airflow_local_settings.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LOCAL_SETTINGS.format(modules=PRELOADED_MODULES, services=PRELOADED_AWS_SERVICES))
    return path


def start_spark_gateway(stack: Stack) -> int | None:
    """Start (or keep) the stack's warm Spark JVM; its PID (``None``: one was running already)."""
    from devstack import warm_spark

    if running_pid(stack, "spark-gateway"):
        return None
    pid = warm_spark.start(stack.spark_gateway_dir, stack.log_file("spark-gateway"))
    if pid is not None:
        stack.pid_file("spark-gateway").parent.mkdir(parents=True, exist_ok=True)
        stack.pid_file("spark-gateway").write_text(str(pid))
    return pid


def restore_problems(stack: Stack) -> list[str]:
    """What the control plane's last start could not restore (a damaged snapshot set aside…), a line each."""
    from sagelake.local.state_store import RESTORE_REPORT, read_stats

    restored = read_stats(stack.control_plane_state_dir, RESTORE_REPORT) or {}
    return [f"control plane state: {problem}" for problem in restored.get("problems", [])]


def reconcile(stack: Stack, dag_id: str = "churn_prepare", api: Any = None) -> list[str]:
    """Where Airflow's history and the control plane's restored state disagree, one line each: every
    successful ``dag_id`` run whose day the restored catalog does not publish, or publishes at a location
    with no objects in the restored lake. Nothing is changed (re-run the day with ``reprocess`` to rebuild
    it, or ``make clean`` to start over)."""
    from botocore.exceptions import ClientError

    from devstack.airflow_api import AirflowApi, AirflowApiError
    from sagelake.config.settings import default_params
    from sagelake.lake.layout import split_s3_uri
    from sagelake.lake.publish import published

    api = api or AirflowApi(stack.airflow_url, LOCAL_USER, LOCAL_PASSWORD)
    runs: list[dict[str, Any]] = []
    try:
        while True:
            page = api.dag_runs(dag_id, state="success", limit=100, offset=len(runs), order_by="run_after")
            runs += page
            if len(page) < 100:
                break
    except AirflowApiError as error:
        if "404" in str(error):  # the DAG was never parsed: no history
            return []
        raise
    session = boto3_session()
    glue = session.client("glue", endpoint_url=stack.control_plane_url)
    s3 = session.client("s3", endpoint_url=stack.control_plane_url)
    defaults = default_params()
    found = []
    for run in runs:
        conf = run.get("conf") or {}
        dt = conf.get("dt") or (run.get("logical_date") or run.get("run_after") or "")[:10]
        database = conf.get("glue_database") or defaults["glue_database"]
        where = f"{dag_id} run {run['dag_run_id']} (dt={dt}) succeeded, but"
        try:
            current = published(glue, str(database), "churn_features", dt)
        except (ClientError, ValueError) as error:
            found.append(f"{where} its partition cannot be read from the restored catalog: {error}")
            continue
        if current is None:
            found.append(
                f"{where} partition dt={dt} of {database}.churn_features is missing from the catalog"
            )
            continue
        bucket, prefix = split_s3_uri(current.location)
        try:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/", MaxKeys=1)
        except ClientError as error:
            found.append(f"{where} its published location {current.location} cannot be listed: {error}")
            continue
        if not listed.get("KeyCount"):
            found.append(f"{where} its published location {current.location} holds no objects in the lake")
    return found


def down(stack: Stack) -> list[str]:
    """Stop every process this launcher started (by recorded PID and its process group)."""
    stopped = []
    for name in ("airflow", "endpoint", "control-plane", "mlflow", "spark-gateway"):
        pid = running_pid(stack, name)
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.3)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        stack.pid_file(name).unlink(missing_ok=True)
        stopped.append(name)
    return stopped


def state_status(stack: Stack) -> str:
    """One line on the control plane's persisted state: the last snapshot's time, size and duration."""
    from sagelake.local.state_store import read_stats

    stats = read_stats(stack.control_plane_state_dir)
    if stats is None:
        return f"control-plane state: no snapshot yet in {stack.control_plane_state_dir}"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stats["saved_at"]))
    return (
        f"control-plane state: last snapshot {when}, {stats['bytes'] / 1e6:.1f} MB, "
        f"{stats['seconds']:.2f}s ({stats['backends']} backends), in {stack.control_plane_state_dir}"
    )


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):  # reap it if it is our own child (same invocation)
        os.waitpid(pid, os.WNOHANG)
    return True


def bootstrap(control_plane_url: str) -> str:
    """:func:`bootstrap_control_plane` with the settings' bucket and roles, as ``up`` runs it (the compose
    stack's init runs it as ``bootstrap``); the events queue's URL."""
    from sagelake.config.settings import default_params, deployment_settings

    roles = (deployment_settings()["glue_role"], deployment_settings()["sagemaker_role"])
    return bootstrap_control_plane(control_plane_url, str(default_params()["bucket"]), roles)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sagelake local stack")
    parser.add_argument("command", choices=["up", "down", "status", "bootstrap"])
    parser.add_argument(
        "--control-plane-url", help="bootstrap: the control plane to set up (default: this stack's)"
    )
    args = parser.parse_args(argv)
    try:
        stack = Stack()
        if args.command == "up":
            up(stack)
            print(
                f"local stack up: Airflow {stack.airflow_url} (login {LOCAL_USER}/{LOCAL_PASSWORD}), "
                f"control plane {stack.control_plane_url}, endpoints {stack.endpoint_url}, "
                f"MLflow {stack.mlflow_url}"
            )
        elif args.command == "bootstrap":
            queue_url = bootstrap(args.control_plane_url or stack.control_plane_url)
            print(f"control plane bootstrapped: events queue {queue_url}")
        elif args.command == "down":
            stopped = down(stack)
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        else:
            for name in ("control-plane", "endpoint", "airflow", "mlflow", "spark-gateway"):
                pid = running_pid(stack, name)
                print(f"{name}: {f'running (pid {pid})' if pid else 'stopped'}")
            print(state_status(stack))
    except (StackError, JavaNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
