"""``make demo``: start the local stack, land a day of data, run the pipeline through Airflow, report.

The pipeline is started through Airflow's REST API and followed to the end; the summary is read back
from what the run produced (lake objects, task results, the control plane, a real HTTP prediction).
Exit code 0 only when every stage happened.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from devstack import stack as local_stack
from devstack.airflow_api import AirflowApi, AirflowApiError
from devstack.webhook_client import deliver, object_created_event
from sagelake.config.target import current_target
from sagelake.lake.layout import Lake, check_dt, split_s3_uri
from sagelake.local.java import JavaNotFoundError

PREPARE, TRAIN, SQS_EVENTS = "churn_prepare", "churn_train_deploy", "eventbridge_sqs"
PROFILE, WAREHOUSE = "lake_profile", "warehouse_load"
ON_PUBLISH = (TRAIN, PROFILE, WAREHOUSE)  # the DAGs the curated asset event starts
TERMINAL = {"success", "failed"}
FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}  # a task that will not run again
AWAITING = "awaiting_input"  # a human-in-the-loop task waits for a person (the demo does not answer)
# How often the demo asks Airflow about a run. Each poll costs the API server ≈50 ms of CPU (the run's task
# instances): at 0.5 s, with the run's state too, that was ≈14 % of a core of a 2-core machine the pipeline
# itself needs; a poll a second adds at most a second to when the demo sees a run end.
POLL_S = 1.0
RUN_STATE_EVERY_S = 15.0  # the run's own state: once its tasks are all finished, or at least this often


class Clock:
    """Elapsed time since the demo started: printed with every line, and per stage at the end."""

    def __init__(self) -> None:
        self.started, self.stages = time.monotonic(), []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stage(self, name: str) -> None:
        """Record and print that ``name`` is done now."""
        self.stages.append((name, self.elapsed()))
        print(f"[{self.elapsed():6.1f} s] {name}", flush=True)

    def table(self) -> str:
        """Each stage with the time it took and the time since the start."""
        lines, before = ["", "stage times (s):"], 0.0
        for name, at in self.stages:
            lines.append(f"  {at - before:6.1f}  {at:6.1f}  {name}")
            before = at
        return "\n".join(lines)


def follow(api: AirflowApi, dag_id: str, run_id: str, timeout_s: float, clock: Clock | None = None) -> str:
    """Print each task's state changes until the run ends (its final state) or waits for a person
    (``awaiting_input``): the demo stays non-interactive. The run's state is asked for once no task is left
    to run (or every ``RUN_STATE_EVERY_S``), not at every poll."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    ask_run_at = time.monotonic() + RUN_STATE_EVERY_S
    while time.monotonic() < deadline:
        tis = api.task_instances(dag_id, run_id)
        for ti in tis:
            state = ti.get("state") or "none"
            key = ti["task_id"] + ("" if ti.get("map_index", -1) < 0 else f"[{ti['map_index']}]")
            if seen.get(key) != state:
                seen[key] = state
                at = f"[{clock.elapsed():6.1f} s] " if clock else ""
                print(f"  {at}[{dag_id}] {key:<32} {state}", flush=True)
        if AWAITING in seen.values():
            return AWAITING
        settled = bool(tis) and all(ti.get("state") in FINISHED for ti in tis)
        if settled or time.monotonic() >= ask_run_at:
            state = api.dag_run(dag_id, run_id)["state"]
            if state in TERMINAL:
                return state
            ask_run_at = time.monotonic() + RUN_STATE_EVERY_S
        time.sleep(POLL_S)
    raise TimeoutError(f"{dag_id} run {run_id} did not finish within {timeout_s:.0f}s")


def wait_for_asset_run(api: AirflowApi, dag_id: str, after: str, timeout_s: float = 120) -> str:
    """The run of ``dag_id`` that the curated asset event created after ``after``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in api.dag_runs(dag_id, order_by="-run_after", limit=5):
            if run.get("run_type") == "asset_triggered" and (run.get("run_after") or "") >= after:
                return run["dag_run_id"]
        time.sleep(POLL_S)
    raise TimeoutError(f"no asset-triggered {dag_id} run appeared within {timeout_s:.0f}s")


def read_etl_metrics(s3: Any, location: str) -> dict[str, Any]:
    """The metrics record the Glue ETL wrote into the published version at ``location``."""
    bucket, prefix = split_s3_uri(location)
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    for obj in objects:
        if obj["Key"].endswith(".json"):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            return json.loads(body.strip().splitlines()[0])
    raise FileNotFoundError(f"no ETL metrics under {location}")


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable end-of-demo report."""
    etl = s["etl"]
    lines = [
        "",
        f"sagelake demo — partition dt={s['dt']}, published version {s['version']}",
        f"  landed       customers={etl['customers_landed']} events={etl['events_landed']}",
        f"  cleaned      feature rows={etl['features_rows']} events={etl['events_cleaned']}",
        f"  quarantined  {etl['quarantined']} {json.dumps(etl.get('quarantined_by_reason', {}))}",
        "  quality checks:",
    ]
    for check in s["checks"]:
        verdict = "PASS" if check["passed"] else ("WARN" if check["severity"] == "warn" else "FAIL")
        scanned = check.get("bytes_scanned")
        expect = f"expect {check['expectation']}"
        lines.append(
            f"    {verdict}  {check['name']:<28} value={check['value']:<10g} {expect:<35}"
            + (f" {scanned} B scanned" if scanned is not None else "")
        )
    model, evaluation, decision = s["model"], s["evaluation"], s["decision"]
    metrics = " ".join(f"{k}={v:.4f}" for k, v in model["metrics"].items())
    held_out = " ".join(
        f"{k}={evaluation['challenger'][k]:.4f}"
        + (f" (champion {evaluation['champion'][k]:.4f})" if evaluation["champion"] else "")
        for k in ("auc", "log_loss")
        if k in evaluation["challenger"]
    )
    lines += [
        f"  tuning       {model['tuning_job']}: {model['trials']} trials; best {model['training_job']}",
        f"               {metrics}",
        f"  mlflow       {model['mlflow']['url']}",
        f"  evaluation   held out: {held_out}" + ("" if evaluation["champion"] else "  (no champion yet)"),
        f"               report: {evaluation['report']}",
        f"               open: {evaluation['report_url']}",
        f"  decision     {decision['outcome']}: {'; '.join(decision['reasons'])}",
    ]
    if decision["waiting"]:
        lines.append(f"               waiting for a person: approve or reject at {decision['where']}")
    elif decision["outcome"] == "ask":
        lines.append(f"               a person answered at {decision['where']}")
    else:
        lines.append(f"               when the policy asks, a person answers at {decision['where']}")
    lines += [
        f"  registered   {s['package']['arn']}  status={s['package']['status']}",
        f"  endpoint     {s['endpoint']['name']}  ({s['endpoint']['status']})"
        + ("  now serving this model" if decision["deployed"] else "  still serving the champion"),
        f"  prediction   {json.dumps(s['prediction']['output'])}  for {json.dumps(s['prediction']['input'])}",
    ]
    return "\n".join(lines + format_beside(s))


def format_beside(s: dict[str, Any]) -> list[str]:
    """The report lines of the DAGs that run beside training (profile, warehouse), when they are known."""
    lines = []
    if "profile" in s:
        lines += [
            f"  profile      {s['profile']['report']}",
            f"               open: {s['profile']['report_url']}",
        ]
    if "warehouse" in s:
        lines.append(
            f"  warehouse    {s['warehouse']['customers']} customers of dt={s['dt']} loaded "
            f"({s['warehouse']['plans']} plans in the analytics join)"
        )
    return lines


def webhook_url(stack: local_stack.Stack) -> str:
    """The stack's EventBridge webhook."""
    return f"{stack.airflow_url}/webhooks/eventbridge"


@dataclass(frozen=True)
class DemoClients:
    """The running local stack and the clients the demo talks to it with."""

    stack: local_stack.Stack
    session: boto3.Session
    s3: Any
    glue: Any
    sagemaker: Any
    runtime: Any
    api: AirflowApi
    lake: Lake
    database: str
    endpoint_name: str


def start_stack() -> DemoClients:
    """Start the local stack and make AWS clients (control plane, endpoint server) and an Airflow client."""
    from sagelake.config.settings import default_params, deployment_settings

    stack = local_stack.Stack()
    print(f"starting the local stack in {stack.local_dir} …", flush=True)
    local_stack.up(stack)
    params = default_params()
    session = local_stack.boto3_session()
    return DemoClients(
        stack=stack,
        session=session,
        s3=session.client("s3", endpoint_url=stack.control_plane_url),
        glue=session.client("glue", endpoint_url=stack.control_plane_url),
        sagemaker=session.client("sagemaker", endpoint_url=stack.control_plane_url),
        runtime=session.client("sagemaker-runtime", endpoint_url=stack.endpoint_url),
        api=AirflowApi(stack.airflow_url, local_stack.LOCAL_USER, local_stack.LOCAL_PASSWORD),
        lake=Lake(str(params["bucket"])),
        database=str(params["glue_database"]),
        endpoint_name=deployment_settings()["endpoint_name"],
    )


def export_seed(glue: Any, database: str, dt: str, now: float) -> int:
    """Which export of day ``dt`` to land: the first (0) unless the local stack, which keeps its state,
    has published the day already; then a new export (an unchanged input would publish nothing, and
    nothing downstream would run)."""
    from sagelake.lake.publish import published

    return 0 if published(glue, database, "churn_features", dt) is None else int(now)


def land_demo_day(clients: DemoClients, dt: str, n_customers: int) -> list[str]:
    """Generate day ``dt`` and land it in the raw zone; return the landed ``s3://`` URIs."""
    from devstack.datagen import generate_day, land_day

    seed = export_seed(clients.glue, clients.database, dt, time.time())
    if seed:
        print(f"dt={dt} is published already (the stack keeps its state): landing a new export of it")
    uris = land_day(clients.s3, clients.lake, dt, generate_day(dt, n_customers=n_customers, seed=seed))
    for uri in uris:
        print(f"landed {uri}")
    return uris


def enable_dags(api: AirflowApi) -> None:
    """Wait until Airflow has parsed the demo's DAGs, then unpause them."""
    for dag_id in (PREPARE, *ON_PUBLISH, SQS_EVENTS):  # the SQS way in is live too (see docs/events.md)
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)


def start_run_through_webhook(clients: DemoClients, landed_uri: str, now: datetime) -> str:
    """POST what EventBridge would send for ``landed_uri`` to the webhook; return the prepare run's id."""
    stack = clients.stack
    # A real-format S3 "Object Created" event for the object landed
    bucket, key = split_s3_uri(landed_uri)
    head = clients.s3.head_object(Bucket=bucket, Key=key)
    sts = clients.session.client("sts", endpoint_url=stack.control_plane_url)
    event = object_created_event(
        bucket,
        key,
        head["ContentLength"],
        head["ETag"],
        region=local_stack.REGION,
        account=sts.get_caller_identity()["Account"],
        time=now,
    )
    status, answer = deliver(webhook_url(stack), event, local_stack.webhook_key(stack))
    if status not in (200, 202):
        raise local_stack.StackError(f"the webhook answered HTTP {status}: {answer.get('error')}")
    run_id = answer["dag_run_id"]
    print(f"POSTed S3 Object Created for {key} to {webhook_url(stack)} → {PREPARE} run {run_id}", flush=True)
    return run_id


def follow_pipeline(
    api: AirflowApi,
    airflow_url: str,
    prepare_run: str,
    after: str,
    timeout_s: float,
    clock: Clock | None = None,
) -> dict[str, str] | None:
    """Follow the prepare run, then the training run its asset event starts (to the first prediction);
    the ids of every run the event started, by DAG, or None (with the reason on stderr) when a run fails.
    The DAGs beside training are followed afterwards (:func:`follow_beside`)."""
    if follow(api, PREPARE, prepare_run, timeout_s, clock) != "success":
        print(f"error: {PREPARE} failed; see the Airflow UI at {airflow_url}", file=sys.stderr)
        return None
    if clock:
        clock.stage(f"{PREPARE}: partition checked and published")
    waiting = waiting_run(api, TRAIN)
    runs = {
        dag_id: wait_for_asset_run(api, dag_id, after=after)
        for dag_id in ON_PUBLISH
        if not (dag_id == TRAIN and waiting)
    }
    for dag_id, run_id in runs.items():
        print(f"{dag_id} run {run_id} started by the curated asset event", flush=True)
    if waiting:  # one training run at a time (max_active_runs=1): the new day queues behind a person
        print(
            f"{TRAIN} run {waiting} is waiting for a person ({airflow_url}/dags/{TRAIN}/runs/{waiting}/"
            "required_actions): this day's training starts once it is answered; the summary shows that run",
            flush=True,
        )
        runs[TRAIN] = waiting
    if follow(api, TRAIN, runs[TRAIN], timeout_s, clock) not in ("success", AWAITING):
        print(f"error: {TRAIN} failed; see the Airflow UI at {airflow_url}", file=sys.stderr)
        return None
    if clock:
        done = "an earlier run waits for a person" if waiting else "tuned, evaluated, decided, deployed"
        clock.stage(f"{TRAIN}: {done}")
    return runs


def waiting_run(api: AirflowApi, dag_id: str) -> str | None:
    """A running run of ``dag_id`` with a task waiting for a person (``awaiting_input``), if any."""
    for run in api.dag_runs(dag_id, state="running", limit=20):
        if any(ti.get("state") == AWAITING for ti in api.task_instances(dag_id, run["dag_run_id"])):
            return run["dag_run_id"]
    return None


def follow_beside(
    api: AirflowApi, airflow_url: str, runs: dict[str, str], timeout_s: float, clock: Clock | None = None
) -> bool:
    """Follow the runs beside training (profile, warehouse load) to their end; False if one failed."""
    for dag_id in ON_PUBLISH:
        if dag_id == TRAIN:
            continue
        if follow(api, dag_id, runs[dag_id], timeout_s, clock) != "success":
            print(f"error: {dag_id} failed; see the Airflow UI at {airflow_url}", file=sys.stderr)
            return False
        if clock:
            clock.stage(f"{dag_id} done")
    return True


def build_summary(clients: DemoClients, dt: str, prepare_run: str, runs: dict[str, str]) -> dict[str, Any]:
    """The end-of-demo summary, read back from the runs, the lake, the control plane and the endpoint."""
    from sagelake.lake.publish import published_location
    from sagelake.ml.lifecycle import invoke_with_rows

    api, s3, sagemaker = clients.api, clients.s3, clients.sagemaker
    announced = api.xcom(PREPARE, prepare_run, "publish_partition")  # {dt, version, location}
    metrics_location = published_location(clients.glue, clients.database, "etl_metrics", dt)
    checks = [
        api.xcom(PREPARE, prepare_run, ti["task_id"])
        for ti in api.task_instances(PREPARE, prepare_run)
        if ti["task_id"].startswith("check_")
    ]
    train_run = runs[TRAIN]
    best = api.xcom(TRAIN, train_run, "best_model")
    tuning = api.xcom(TRAIN, train_run, "tune")["Tuning"]
    decision = api.xcom(TRAIN, train_run, "decide")
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(TRAIN, train_run)}
    package = sagemaker.describe_model_package(ModelPackageName=decision["model_package_arn"])
    endpoint = sagemaker.describe_endpoint(EndpointName=clients.endpoint_name)
    name, location = endpoint["EndpointName"], announced["location"]
    answer = invoke_with_rows(sagemaker, clients.runtime, s3, name, location, n=1)
    airflow = clients.stack.airflow_url
    return {
        "dt": dt,
        "version": announced["version"],
        "etl": read_etl_metrics(s3, metrics_location),
        "checks": sorted(checks, key=lambda c: c["name"]),
        "model": {
            "training_job": best["training_job"],
            "metrics": best["metrics"],
            "mlflow": best["mlflow"],
            "trials": tuning["TrainingJobStatusCounters"].get("Completed", 0),
            "tuning_job": tuning["HyperParameterTuningJobName"],
        },
        "evaluation": {
            "report": api.xcom(TRAIN, train_run, "track_evaluation", "report_html"),
            "report_url": api.xcom(TRAIN, train_run, "track_evaluation", "report_url"),
            "challenger": decision["challenger"],
            "champion": decision["champion"],
        },
        "decision": {
            "outcome": decision["outcome"],
            "reasons": decision["reasons"],
            "waiting": states.get("ask_a_person") == AWAITING,
            "where": f"{airflow}/dags/{TRAIN}/runs/{train_run}/tasks/ask_a_person/required_actions",
            "deployed": states.get("deploy") == "success",
        },
        "package": {
            "arn": package["ModelPackageArn"],
            "status": package["ModelApprovalStatus"],
            "description": package.get("ApprovalDescription", ""),
        },
        "endpoint": {"name": endpoint["EndpointName"], "status": endpoint["EndpointStatus"]},
        "prediction": {"input": answer["instance"], "output": answer["prediction"]},
    }


def build_beside(api: AirflowApi, dt: str, runs: dict[str, str]) -> dict[str, Any]:
    """What the runs beside training produced: the profile report and the warehouse's analytics join."""
    profile = api.xcom(PROFILE, runs[PROFILE], "profile_churn_features")
    analytics = api.xcom(WAREHOUSE, runs[WAREHOUSE], "report")
    return {
        "dt": dt,
        "profile": {"report_url": profile["report_url"], "report": profile["report"]},
        "warehouse": {
            "customers": sum(int(row["customers"]) for row in analytics if row["dt"] == dt),
            "plans": len([row for row in analytics if row["dt"] == dt]),
        },
    }


def run_demo(dt: str, n_customers: int, timeout_s: float) -> int:
    """Run the whole demo for partition ``dt``; print the summary as soon as the endpoint answered, then
    the DAGs that ran beside training, then each stage's time. 0 when every stage happened, else 1."""
    clock = Clock()
    clients = start_stack()
    clock.stage("local stack up (control plane, endpoint server, MLflow, Airflow)")
    uris = land_demo_day(clients, dt, n_customers)
    clock.stage(f"day landed in raw/ ({n_customers} customers)")
    enable_dags(clients.api)
    clock.stage("DAGs parsed and unpaused")
    now = datetime.now(UTC)
    prepare_run = start_run_through_webhook(clients, uris[-1], now)
    airflow_url = clients.stack.airflow_url
    runs = follow_pipeline(clients.api, airflow_url, prepare_run, now.isoformat(), timeout_s, clock)
    if runs is None:
        return 1
    print(format_summary(build_summary(clients, dt, prepare_run, runs)))
    clock.stage("first prediction from the endpoint")
    if not follow_beside(clients.api, airflow_url, runs, timeout_s, clock):
        return 1
    print("\n".join(format_beside(build_beside(clients.api, dt, runs))))
    print(clock.table())
    print(f"\nAirflow UI: {airflow_url}  (login {local_stack.LOCAL_USER} / {local_stack.LOCAL_PASSWORD})")
    print(f"MLflow UI:  {clients.stack.mlflow_url}")
    print("The stack keeps running; `make down` stops it.")
    return 0


def main(argv: list[str] | None = None) -> int:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dt", default=yesterday, help="partition to land and process (default: yesterday)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per DAG run")
    args = parser.parse_args(argv)
    try:
        if current_target() != "local":
            raise local_stack.StackError(
                "make demo runs the local target, but SAGELAKE_TARGET=aws: unset SAGELAKE_TARGET to run it"
            )
        return run_demo(check_dt(args.dt), args.customers, args.timeout)
    except (local_stack.StackError, AirflowApiError, JavaNotFoundError, TimeoutError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
