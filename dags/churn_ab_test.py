"""A/B test: champion and challenger share the production endpoint; the outcome decides, a person promotes.

Triggered manually with `{"model_package_arn": "<an Approved version>", "labels_dt": "YYYY-MM-DD"}`;
`labels_dt` names a published `churn_features` day whose `churned` column labels the customers the
endpoint answered during the test (empty: no outcome test, the champion stays). Settings
(`SAGELAKE_AB_*`, deployment settings no trigger can change): the challenger's weight (0.1), the
observation period (60 min), the labelled predictions each variant needs (100), the significance level.
1. **plan** — refuses a version that is not Approved, an endpoint that serves nothing or already serves
   several variants, a challenger that is the champion or needs another request format (script mode vs
   built-in XGBoost); builds the three endpoint configs of the test: A/B, champion alone, challenger alone.
2. **start_ab_test** — the endpoint on the two variants `champion` (the model it serves now) and
   `challenger` with the weights (e.g. 90/10), through the project's deploy operator (create-or-update,
   verified; locally it waits until the endpoint server routes to the new config).
3. **observation_window** / **observe** — a deferrable sensor waits out the observation period.
4. **compare_variants** — per variant, SageMaker's CloudWatch metrics (`Invocations`,
   `Invocation4XXErrors`, `Invocation5XXErrors`, `ModelLatency`; namespace `AWS/SageMaker`, dimensions
   `EndpointName`, `VariantName`) and the outcome test: each variant's captured predictions joined on
   `customer_id` with the labels, accuracy at 0.5 compared by a two-proportion z-test. The verdict:
   `challenger_wins`, `champion_wins`, `no_difference` or `not_enough_data` (XCom and log).
5. **route** — `challenger_wins`: **ask_to_promote** (a person approves on the Required Actions page, the
   comparison as the body; the answer is written to the model registry) → **shift_to_challenger**
   (`UpdateEndpointWeightsAndCapacities`: all traffic to the challenger, 0/1) → **serve_challenger** (the
   challenger alone). Otherwise **keep_champion**.
6. **still_on_ab_test** → **back_to_champion** — whenever the endpoint still serves the A/B config at the
   end (the champion won, no difference, a person rejected or did not answer, a promotion step failed),
   the champion alone again. **autoscale** — target tracking on the single variant that serves.

See docs/serving.md, "A/B testing".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import TriggerRule, dag, task

from sagelake.config.params import param, setting_params, task_defaults
from sagelake.config.settings import (
    AWS_CONN_ID,
    ab_test_settings,
    deployment_settings,
    model_settings,
    rollout_settings,
)
from sagelake.operators.sagemaker import DeployEndpointOperator, PersonApprovalOperator

DEPLOYMENT = deployment_settings()  # production endpoint: not a run param
MODEL = model_settings()  # approval timeout
ROLLOUT = rollout_settings()  # instance count, autoscaling bounds
AB = ab_test_settings()  # weights, observation period, sample size, significance level


def sagemaker_client() -> Any:
    return AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="sagemaker").conn


@task(multiple_outputs=True)
def plan(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Check the challenger and the endpoint; the A/B, champion-alone and challenger-alone requests."""
    from airflow.sdk.exceptions import AirflowFailException

    from sagelake.ml.ab_testing import ModelRef, ab_endpoint_request, single_variant_request
    from sagelake.ml.deployment import live_config
    from sagelake.ml.drift_store import capture_destination
    from sagelake.ml.images import is_builtin_xgboost_model
    from sagelake.ml.lifecycle import package_container, package_version
    from sagelake.ml.naming import resource_name
    from sagelake.ml.serving import serving_model

    arn, endpoint = params["model_package_arn"], DEPLOYMENT["endpoint_name"]
    sagemaker = sagemaker_client()
    container, status = package_container(sagemaker, arn)
    if status != "Approved":
        raise AirflowFailException(f"model package {arn} is {status}, not Approved: refusing to test it")
    champion = serving_model(sagemaker, endpoint)
    if champion is None:
        raise AirflowFailException(f"endpoint {endpoint} serves nothing: deploy a champion first")
    live = sagemaker.describe_endpoint_config(EndpointConfigName=live_config(sagemaker, endpoint))
    if len(live["ProductionVariants"]) != 1:
        names = [v["VariantName"] for v in live["ProductionVariants"]]
        raise AirflowFailException(f"endpoint {endpoint} serves {names}: an A/B test is running already")
    if container["ModelDataUrl"] == champion.model_url:
        raise AirflowFailException(f"{arn} is the model {endpoint} serves already")
    if is_builtin_xgboost_model(container) != champion.builtin_xgboost:
        raise AirflowFailException("the challenger and the champion take different request formats")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    name = resource_name("churn-ab", today, run_id, f"v{package_version(arn)}")
    capture = capture_destination(params["bucket"])
    common = {
        "endpoint_name": endpoint,
        "role": DEPLOYMENT["sagemaker_role"],
        "instance_type": params["endpoint_instance_type"],
        "instance_count": ROLLOUT.instance_count,
        "data_capture_uri": capture,
    }
    champion_ref = ModelRef(champion.model_name, champion.image, champion.model_url)
    challenger_ref = ModelRef(name, container["Image"], container["ModelDataUrl"])
    ab = ab_endpoint_request(
        champion=champion_ref,
        challenger_model_name=name,
        challenger_image=container["Image"],
        challenger_model_url=container["ModelDataUrl"],
        endpoint_config_name=f"{name}-ab",
        weights=AB.weights(),
        **common,
    )
    print(f"A/B test of {arn} against {champion.model_name} on {endpoint}, weights {AB.weights()}")
    return {
        "ab": ab,
        "ab_config": f"{name}-ab",
        "champion_only": single_variant_request(
            model=champion_ref, endpoint_config_name=f"{name}-champion", **common
        ),
        "challenger_only": single_variant_request(
            model=challenger_ref, endpoint_config_name=f"{name}-challenger", **common
        ),
        "capture_uri": capture,
    }


@task
def observation_window(deployed: dict[str, Any]) -> dict[str, str]:
    """From now (both variants serve) until the observation period has passed."""
    start = datetime.now(UTC)
    end = start + timedelta(minutes=AB.observation_minutes)
    print(f"{deployed['Endpoint']['EndpointName']}: observing from {start:%H:%M:%S} to {end:%H:%M:%S} UTC")
    return {"start": start.isoformat(), "end": end.isoformat()}


@task(multiple_outputs=True)
def compare_variants(window: dict[str, str], capture_uri: str, params: dict[str, Any]) -> dict[str, Any]:
    """Per-variant CloudWatch metrics and the outcome test; the verdict and the person's Markdown."""
    from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

    from sagelake.lake.publish import published_location
    from sagelake.ml.ab_testing import (
        CHALLENGER,
        CHAMPION,
        comparison_markdown,
        labels_from_rows,
        no_labels_test,
        outcome_test,
        variant_metrics,
    )
    from sagelake.ml.training_data import read_partition

    endpoint = DEPLOYMENT["endpoint_name"]
    start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    cloudwatch = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="cloudwatch").conn
    metrics = variant_metrics(cloudwatch, endpoint, (CHAMPION, CHALLENGER), start, end)
    unjoined: dict[str, int] = {}
    if params.get("labels_dt"):
        s3 = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
        glue = GlueCatalogHook(aws_conn_id=AWS_CONN_ID).get_conn()
        location = published_location(glue, params["glue_database"], "churn_features", params["labels_dt"])
        frame = read_partition(s3, location)
        labels = labels_from_rows(frame[["customer_id", "churned"]].to_dict(orient="records"))
        test, unjoined = outcome_test(s3, capture_uri, endpoint, start, end, labels, AB)
    else:
        test = no_labels_test(AB)
    markdown = comparison_markdown(endpoint, metrics, test.to_dict(), params["model_package_arn"])
    print(markdown)
    return {
        "verdict": test.verdict,
        "metrics": metrics,
        "test": test.to_dict(),
        "unjoined": unjoined,
        "markdown": markdown,
    }


@task.branch
def route(verdict: str) -> str:
    """``challenger_wins``: ask a person to promote it; any other verdict keeps the champion."""
    from sagelake.ml.ab_testing import CHALLENGER_WINS

    return "ask_to_promote" if verdict == CHALLENGER_WINS else "keep_champion"


@task
def shift_to_challenger() -> dict[str, float]:
    """``UpdateEndpointWeightsAndCapacities``: all traffic to the challenger before its config replaces
    the A/B one."""
    from sagelake.ml.ab_testing import CHALLENGER, CHAMPION, shift_weights

    return shift_weights(sagemaker_client(), DEPLOYMENT["endpoint_name"], {CHAMPION: 0.0, CHALLENGER: 1.0})


@task.short_circuit(trigger_rule=TriggerRule.ALL_DONE, ignore_downstream_trigger_rules=False)
def still_on_ab_test(ab_config: str) -> bool:
    """Whether the endpoint still serves the A/B config (then it goes back to the champion alone); False
    skips only ``back_to_champion``, not ``autoscale``."""
    from sagelake.ml.deployment import live_config

    live = live_config(sagemaker_client(), DEPLOYMENT["endpoint_name"])
    print(f"{DEPLOYMENT['endpoint_name']} serves {live}")
    return live == ab_config


@task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
def autoscale() -> dict[str, Any]:
    """Target tracking on invocations per instance for the single variant that serves after the test."""
    from sagelake.ml.ab_testing import PRIMARY
    from sagelake.ml.deployment import apply_autoscaling

    client = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="application-autoscaling").conn
    return apply_autoscaling(client, DEPLOYMENT["endpoint_name"], PRIMARY, ROLLOUT)


def deploy(task_id: str, config: Any, **kwargs: Any) -> DeployEndpointOperator:
    return DeployEndpointOperator(
        task_id=task_id,
        config=config,
        operation="create",
        wait_for_completion=True,
        deferrable=True,
        check_interval=15,
        **kwargs,
    )


@dag(
    dag_id="churn_ab_test",
    schedule=None,  # manual: a person starts a test of a chosen version
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one test at a time on the production endpoint
    params={
        "model_package_arn": param(
            type="string",
            pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/.+/\d+$",
            description="The challenger: an Approved version of the model package group.",
        ),
        "labels_dt": param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="A published churn_features day labelling the tested customers (churned); "
            "empty: no outcome test, the champion stays.",
        ),
        **setting_params("bucket", "glue_database", "endpoint_instance_type"),
    },
    default_args=task_defaults("ml-engineering"),
    tags=["sagelake", "sagemaker", "deployment", "ab-test"],
    doc_md=__doc__,
)
def churn_ab_test() -> None:
    planned = plan()
    start = deploy("start_ab_test", planned["ab"])
    window = observation_window(start.output)
    observe = DateTimeSensorAsync(
        task_id="observe", target_time="{{ ti.xcom_pull(task_ids='observation_window')['end'] }}"
    )
    comparison = compare_variants(window, planned["capture_uri"])
    window >> observe >> comparison
    ask = PersonApprovalOperator(
        task_id="ask_to_promote",
        subject="Promote the A/B test's challenger to production?",
        body=comparison["markdown"],
        model_package_arn="{{ params.model_package_arn }}",
        response_timeout=timedelta(minutes=int(MODEL["approval_timeout_minutes"])),
    )
    keep = EmptyOperator(task_id="keep_champion")
    route(comparison["verdict"]) >> [ask, keep]
    serve_challenger = deploy("serve_challenger", planned["challenger_only"])
    ask >> shift_to_challenger() >> serve_challenger
    back = deploy("back_to_champion", planned["champion_only"])
    [keep, serve_challenger] >> still_on_ab_test(planned["ab_config"]) >> back
    [serve_challenger, back] >> autoscale()


churn_ab_test()
