"""MLflow tracking on a SQLite store in a temp dir: what is logged, retries, lineage, configuration."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from sagelake.ml import tracking
from sagelake.ml.aws_requests import model_package_extras

TRACKING_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/sagelake"


pytestmark = pytest.mark.usefixtures("restore_mlflow_tracking_uri")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite tracking store (its schema is created once per module: tests use their own experiment)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture()
def group() -> str:
    return f"group-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def report(tmp_path: Path) -> Path:
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps({"metrics": {"auc": 0.81}}))
    return path


def trial(store: str, group: str, **overrides) -> tracking.TrialRun:
    kwargs = {
        "model_package_group": group,
        "training_job_name": "churn-2026-01-05-ab12cd",
        "dt": "2026-01-05",
        "version": "20260105T101500-1a2b",
        "hyperparameters": {"max_iter": 200, "learning_rate": 0.1, "objective": "binary:logistic"},
        "metrics": {"validation:auc": 0.8125, "validation:f1": 0.5},
        "model_artifact": "s3://lake/models/churn-2026-01-05-ab12cd/output/model.tar.gz",
        "dag_id": "churn_train_deploy",
        "airflow_run_id": "asset_triggered__2026-01-05T10:20:00+00:00",
        "uri": store,
    }
    return tracking.log_trial(**{**kwargs, **overrides})


def sagelake_tags(run) -> dict[str, str]:
    return {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}


def test_log_trial_logs_exactly_the_params_metrics_tags_and_artefacts_given(
    store: str, group: str, report: Path, tmp_path: Path
) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "roc.png").write_bytes(b"\x89PNG-roc")
    result = trial(store, group, artifacts=[report, plots], tags={"sagelake.algorithm": "xgboost"})

    client = tracking.client(store)
    run = client.get_run(result.run_id)
    assert run.data.params == {"max_iter": "200", "learning_rate": "0.1", "objective": "binary:logistic"}
    assert run.data.metrics == {"validation:auc": 0.8125, "validation:f1": 0.5}
    assert sagelake_tags(run) == {
        "sagelake.training_job": "churn-2026-01-05-ab12cd",
        "sagelake.model_package_group": group,
        "sagelake.dt": "2026-01-05",
        "sagelake.version": "20260105T101500-1a2b",
        "sagelake.model_artifact": "s3://lake/models/churn-2026-01-05-ab12cd/output/model.tar.gz",
        "sagelake.dag_id": "churn_train_deploy",
        "sagelake.airflow_run_id": "asset_triggered__2026-01-05T10:20:00+00:00",
        "sagelake.algorithm": "xgboost",
    }
    assert run.data.tags["mlflow.runName"] == "churn-2026-01-05-ab12cd"
    assert run.info.status == "FINISHED"
    assert client.get_experiment(result.experiment_id).name == group
    assert sorted(a.path for a in client.list_artifacts(result.run_id)) == ["evaluation.json", "plots"]
    assert [a.path for a in client.list_artifacts(result.run_id, "plots")] == ["plots/roc.png"]
    downloaded = Path(client.download_artifacts(result.run_id, "evaluation.json", str(tmp_path / "dl")))
    assert downloaded.read_bytes() == report.read_bytes()
    # a direct SQLite store keeps its artefacts beside its database, never in the current directory
    assert run.info.artifact_uri.startswith(Path(store.removeprefix("sqlite:///")).parent.as_uri())
    assert result == tracking.TrialRun(
        store, result.experiment_id, run.info.run_id, "churn-2026-01-05-ab12cd", "2026-01-05", result.version
    )
    assert tracking.TrialRun.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    found = tracking.trial_for_job(
        model_package_group=group, training_job_name=result.training_job_name, uri=store
    )
    assert found == result


def test_a_retry_logs_into_the_same_run_and_duplicates_nothing(store: str, group: str, report: Path) -> None:
    first = trial(store, group)
    second = trial(store, group, artifacts=[report])  # the retry also got as far as the artefacts

    assert second == first
    client = tracking.client(store)
    runs = client.search_runs([first.experiment_id])
    assert [r.info.run_id for r in runs] == [first.run_id]
    assert len(client.get_metric_history(first.run_id, "validation:auc")) == 1
    assert [a.path for a in client.list_artifacts(first.run_id)] == ["evaluation.json"]
    # another training job of the same group: another run of the same experiment
    other = trial(store, group, training_job_name="churn-2026-01-05-ab12cd-r2")
    assert (other.experiment_id, other.run_id != first.run_id) == (first.experiment_id, True)


def test_a_retry_after_a_crash_finishes_the_run_the_crash_left(store: str, group: str) -> None:
    experiment_id = tracking.ensure_experiment(group, uri=store)
    client = tracking.client(store)
    left = client.create_run(experiment_id, tags={tracking.TAG_TRAINING_JOB: "churn-2026-01-05-ab12cd"})
    assert left.info.status == "RUNNING"

    result = trial(store, group)

    assert result.run_id == left.info.run_id
    assert client.get_run(left.info.run_id).info.status == "FINISHED"
    assert tracking.ensure_experiment(group, uri=store) == experiment_id  # found, not created again


def test_two_attempts_racing_keep_one_run(store: str, group: str, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment_id = tracking.ensure_experiment(group, uri=store)
    client = tracking.client(store)
    earlier = client.create_run(experiment_id, tags={tracking.TAG_TRAINING_JOB: "churn-2026-01-05-ab12cd"})
    real_find = tracking.find_trial_run
    calls = []

    def blind_first_search(*args):  # this attempt searched before the other one created its run
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args)

    monkeypatch.setattr(tracking, "find_trial_run", blind_first_search)
    result = trial(store, group)

    assert result.run_id == earlier.info.run_id
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [earlier.info.run_id]


def test_a_changed_hyperparameter_is_a_conflict_not_an_overwrite(store: str, group: str) -> None:
    first = trial(store, group)
    with pytest.raises(tracking.TrackingConflictError, match="max_iter='200', not '300'"):
        trial(store, group, hyperparameters={"max_iter": 300})
    assert tracking.client(store).get_run(first.run_id).data.params["max_iter"] == "200"


def test_log_evaluation_adds_the_report_to_the_trial_run(store: str, group: str, report: Path) -> None:
    result = trial(store, group)
    for _ in range(2):  # the evaluate task's retry changes nothing
        logged = tracking.log_evaluation(
            model_package_group=group,
            training_job_name=result.training_job_name,
            metrics={"auc": 0.79, "f1": 0.48},
            champion_metrics={"auc": 0.77},
            champion_model_package="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
            report_uri="s3://lake/evaluations/churn-2026-01-05-ab12cd/report.html",
            report_files=[report],
            uri=store,
        )
    assert logged == result
    client = tracking.client(store)
    run = client.get_run(result.run_id)
    assert run.data.metrics == {
        "validation:auc": 0.8125,
        "validation:f1": 0.5,
        "eval_auc": 0.79,
        "eval_f1": 0.48,
        "champion_eval_auc": 0.77,
    }
    assert len(client.get_metric_history(result.run_id, "eval_auc")) == 1
    assert run.data.tags["sagelake.evaluation_report"].endswith("/report.html")
    assert run.data.tags["sagelake.champion_model_package"].endswith("model-package/g/1")
    assert [a.path for a in client.list_artifacts(result.run_id, "evaluation")] == [
        "evaluation/evaluation.json"
    ]


def test_log_evaluation_without_a_trial_is_a_clear_error(store: str, group: str) -> None:
    with pytest.raises(LookupError, match="no MLflow run for training job churn-x.*log_trial must run first"):
        tracking.log_evaluation(model_package_group=group, training_job_name="churn-x", metrics={}, uri=store)


def test_lineage_round_trips_through_the_registry_metadata(store: str, group: str) -> None:
    result = trial(store, group)
    lineage = tracking.registry_lineage(result)
    assert lineage == {
        "mlflow_run_id": result.run_id,
        "mlflow_experiment_id": result.experiment_id,
        "training_job": "churn-2026-01-05-ab12cd",
        "dt": "2026-01-05",
        "version": "20260105T101500-1a2b",
    }
    # merged into the registration's metadata, it agrees with what the DAG already records there
    extras = model_package_extras(
        evaluation_uri="s3://lake/e.json",
        metrics={"auc": 0.8},
        dt="2026-01-05",
        run_id="run-1",
        training_job="churn-2026-01-05-ab12cd",
    )
    metadata = {**extras["CustomerMetadataProperties"], **lineage}
    assert all(metadata[k] == v for k, v in extras["CustomerMetadataProperties"].items())
    assert all(len(k) <= 128 and len(v) <= 256 for k, v in metadata.items())  # SageMaker's limits

    class Registry:  # DescribeModelPackage's answer, as boto3 gives it
        def describe_model_package(self, ModelPackageName: str) -> dict:
            assert ModelPackageName == "arn:pkg"
            return {"ModelPackageArn": ModelPackageName, "CustomerMetadataProperties": metadata}

    back = tracking.read_lineage(Registry(), "arn:pkg")
    assert back == tracking.Lineage(
        result.run_id, result.experiment_id, result.training_job_name, result.dt, result.version
    )
    run = tracking.client(store).get_run(back.mlflow_run_id)
    assert run.data.tags["sagelake.training_job"] == back.training_job
    with pytest.raises(KeyError, match="mlflow_run_id"):
        tracking.lineage_from_metadata(extras["CustomerMetadataProperties"])


def test_link_model_package_tags_the_run(store: str, group: str) -> None:
    result = trial(store, group)
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/sagelake-churn/3"
    tracking.link_model_package(
        model_package_group=group,
        training_job_name=result.training_job_name,
        model_package_arn=arn,
        uri=store,
    )
    assert tracking.client(store).get_run(result.run_id).data.tags["sagelake.model_package_arn"] == arn


def test_a_job_name_sagemaker_would_refuse_is_refused(store: str, group: str) -> None:
    with pytest.raises(ValueError, match="not a SageMaker training job name"):
        trial(store, group, training_job_name="x' OR tags.a = 'b")


# --- what a training job gives to log -----------------------------------------------------------------


def test_hyperparameters_from_a_script_mode_request() -> None:
    request_hps = {
        "max_iter": "200",
        "learning_rate": "0.1",
        "objective": '"binary:logistic"',
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://lake/code/sourcedir.tar.gz"',
        "eta": "not json",
    }
    assert tracking.hyperparameters_from_request(request_hps) == {
        "max_iter": "200",
        "learning_rate": "0.1",
        "objective": "binary:logistic",
        "eta": "not json",
    }


def test_final_metrics_from_a_log_are_the_last_values() -> None:
    log = (
        "epoch 1\nvalidation:auc=0.70\n"
        "[5]#011train-logloss:0.41#011validation-auc:0.83\nvalidation:auc=0.8125\n"
    )
    assert tracking.metrics_from_log(log) == {"validation:auc": 0.8125}
    definitions = [{"Name": "validation:auc", "Regex": r"validation-auc:([0-9.]+)"}]
    assert tracking.metrics_from_log(log, definitions) == {"validation:auc": 0.83}
    assert tracking.metrics_from_log("nothing here", definitions) == {}


def test_final_metrics_from_a_description_and_an_evaluation() -> None:
    description = {"FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.8, "Timestamp": 0}]}
    assert tracking.metrics_from_description(description) == {"validation:auc": 0.8}
    assert tracking.metrics_from_description({}) == {}
    evaluation = {"metrics": {"auc": 0.8, "n": 3, "ok": True, "label": "x"}, "n_train": 10}
    assert tracking.metrics_from_evaluation(evaluation) == {"auc": 0.8, "n": 3.0}


# --- configuration ------------------------------------------------------------------------------------


@pytest.fixture()
def no_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SAGELAKE_MLFLOW_TRACKING_ARN", "SAGELAKE_MLFLOW_TRACKING_URI", "SAGELAKE_MLFLOW_PORT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_local_tracking_uri_is_the_stack_server(no_mlflow_env: pytest.MonkeyPatch) -> None:
    no_mlflow_env.setenv("SAGELAKE_TARGET", "local")
    no_mlflow_env.setenv("SAGELAKE_MLFLOW_TRACKING_ARN", TRACKING_ARN)  # ignored locally
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"
    no_mlflow_env.setenv("SAGELAKE_MLFLOW_PORT", "5123")
    assert tracking.tracking_uri() == "http://127.0.0.1:5123"
    no_mlflow_env.setenv("SAGELAKE_MLFLOW_TRACKING_URI", "http://127.0.0.1:6000")
    assert tracking.tracking_uri() == "http://127.0.0.1:6000"
    no_mlflow_env.delenv("SAGELAKE_MLFLOW_TRACKING_URI")
    no_mlflow_env.setenv("SAGELAKE_MLFLOW_PORT", "port")
    with pytest.raises(tracking.TrackingConfigError, match="SAGELAKE_MLFLOW_PORT='port'"):
        tracking.tracking_uri()


def test_aws_tracking_uri_is_the_tracking_server_arn(no_mlflow_env: pytest.MonkeyPatch) -> None:
    no_mlflow_env.setenv("SAGELAKE_TARGET", "aws")
    with pytest.raises(tracking.TrackingConfigError, match="set SAGELAKE_MLFLOW_TRACKING_ARN"):
        tracking.tracking_uri()
    no_mlflow_env.setenv("SAGELAKE_MLFLOW_TRACKING_URI", "https://mlflow.example.com")
    assert tracking.tracking_uri() == "https://mlflow.example.com"
    no_mlflow_env.setenv("SAGELAKE_MLFLOW_TRACKING_ARN", TRACKING_ARN)
    assert tracking.tracking_uri() == TRACKING_ARN
    no_mlflow_env.setenv("SAGELAKE_MLFLOW_TRACKING_ARN", "arn:aws:s3:::bucket")
    with pytest.raises(tracking.TrackingConfigError, match="is not the ARN of a SageMaker MLflow"):
        tracking.tracking_uri()


def test_ui_urls_only_for_http_servers() -> None:
    assert tracking.experiment_url("http://127.0.0.1:5000/", "3") == "http://127.0.0.1:5000/#/experiments/3"
    assert (
        tracking.run_url("http://127.0.0.1:5000", "3", "abc")
        == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    )
    assert tracking.experiment_url(TRACKING_ARN, "3") is None
    assert tracking.run_url("sqlite:///x.db", "3", "abc") is None


def test_the_arn_goes_through_the_sagemaker_mlflow_plugin_signed_and_routed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No network: MLflow's HTTP layer is replaced by a recorder answering as the tracking server would."""
    import requests
    from mlflow.utils import rest_utils
    from sagemaker_mlflow.auth import AuthBoto
    from sagemaker_mlflow.mlflow_sagemaker_store import MlflowSageMakerStore

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", raising=False)
    monkeypatch.delenv("SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN", raising=False)
    sent = []

    def answer(method, url, *args, **kwargs):
        sent.append((method, url, kwargs))
        response = requests.Response()
        response.url = url
        if url.endswith("/experiments/get-by-name"):
            response.status_code = 404
            body = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such experiment"}
        else:
            response.status_code = 200
            body = {"experiment_id": "42"}
        response._content = json.dumps(body).encode()
        return response

    monkeypatch.setattr(rest_utils, "_get_http_response_with_retries", answer)

    client = tracking.client(TRACKING_ARN)
    assert isinstance(client._tracking_client.store, MlflowSageMakerStore)
    assert tracking.ensure_experiment("sagelake-churn", uri=TRACKING_ARN) == "42"

    assert [(m, u) for m, u, _ in sent] == [
        ("GET", "https://eu-west-1.experiments.sagemaker.aws/api/2.0/mlflow/experiments/get-by-name"),
        ("POST", "https://eu-west-1.experiments.sagemaker.aws/api/2.0/mlflow/experiments/create"),
    ]
    for _, url, kwargs in sent:
        assert kwargs["headers"]["x-mlflow-sm-tracking-server-arn"] == TRACKING_ARN
        auth = kwargs["auth"]
        assert isinstance(auth, AuthBoto) and auth.region == "eu-west-1"
        signed = auth(requests.Session().prepare_request(requests.Request("GET", url)))
        assert (
            signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            and "/eu-west-1/sagemaker-mlflow/aws4_request" in signed.headers["Authorization"]
        )


def test_the_plugins_header_warning_is_dropped_for_non_arn_servers_only(store: str) -> None:
    import logging

    logger = logging.getLogger("mlflow.tracking.request_header.registry")
    noise = "Encountered unexpected error during resolving request headers: list index out of range"

    def passes(message: str) -> bool:
        return logger.filter(logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, (), None))

    tracking.client(store)
    assert not passes(noise)
    assert passes("Encountered something else")
    tracking.client(TRACKING_ARN)  # on the managed server, a failing header provider must be seen
    assert passes(noise)
