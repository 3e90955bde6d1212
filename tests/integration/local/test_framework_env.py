"""Local jobs and endpoints on the framework container's versions: the environment is built once (locked,
reused), a script using a scikit-learn API newer than the container's fails locally as on AWS, the
project's training and evaluation scripts run on it, and an endpoint serves its model with it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import boto3
import pytest
import sklearn
from botocore.config import Config
from botocore.exceptions import ClientError

from sagelake.local import framework_env
from sagelake.local.endpoint_server import serve
from sagelake.local.framework_env import SKLEARN_1_4_2, FrameworkEnv, ensure_env, interpreter_for
from sagelake.local.job_requests import run_container
from sagelake.ml.artifacts import package_source_dir
from tests.support.constants import REGION, ROOT, SAGEMAKER_ROLE_ARN, SKLEARN_IMAGE_URI
from tests.support.serving import register_version
from tests.support.training_data import synthetic_features, write_channel

log = logging.getLogger("test-framework-env")
PINS = dict(r.split("==") for r in SKLEARN_1_4_2.requirements)
# An API of the Airflow venv's scikit-learn that the container's lacks (added in scikit-learn 1.5).
NEWER_API = "from sklearn.model_selection import TunedThresholdClassifierCV"
NEWER_SCRIPT = f"""
{NEWER_API}
from sklearn.linear_model import LogisticRegression
print("built", TunedThresholdClassifierCV(LogisticRegression()))
"""
VERSION_PROBE = """
import sys
import numpy, pandas, sklearn

def model_fn(model_dir):
    return {"sklearn": sklearn.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}

def input_fn(body, content_type):
    print("a print in the inference code goes to the log, not into the reply")
    return body

def predict_fn(data, model):
    if data == b"fail":
        raise ValueError("bad row")
    return {**model, "executable": sys.executable}

def output_fn(prediction, accept):
    import json
    return json.dumps(prediction), "application/json"
"""
FAKE_UV = """#!{python}
import pathlib, sys, time
log = pathlib.Path({log!r})
with log.open("a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "venv":
    target = pathlib.Path(sys.argv[-1])
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "python").touch()
    time.sleep(0.5)  # a slow build: a second caller must wait for it, not build again
elif "--offline" in sys.argv:
    sys.exit("not in the cache")
"""


@pytest.fixture(autouse=True)
def framework_envs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment switch on, whatever the developer's shell says."""
    monkeypatch.setenv("SAGELAKE_LOCAL_FRAMEWORK_ENVS", "true")


def container(
    cmd: list[str], work: Path, image: str | None = SKLEARN_IMAGE_URI
) -> subprocess.CompletedProcess:
    return run_container(
        cmd, cwd=work, env={}, timeout=300, job="j", kind="training", error=RuntimeError, logger=log,
        image_uri=image,
    )  # fmt: skip


def env_python() -> Path:
    python = interpreter_for(SKLEARN_IMAGE_URI)
    assert python is not None
    return python


def test_the_environment_has_the_containers_versions() -> None:
    probe = (
        "import json, platform, sys, numpy, pandas, pyarrow, sklearn; print(json.dumps([sys.prefix, "
        "platform.python_version(), sklearn.__version__, numpy.__version__, pandas.__version__, "
        "pyarrow.__version__]))"
    )
    prefix, python, *versions = json.loads(subprocess.check_output([env_python(), "-c", probe], text=True))
    assert versions == [PINS["scikit-learn"], PINS["numpy"], PINS["pandas"], PINS["pyarrow"]]
    assert Path(prefix) == framework_env.env_dir(SKLEARN_1_4_2) and Path(prefix) != Path(sys.prefix)
    assert python == framework_env.built_python(SKLEARN_1_4_2)  # the stamp and the failure note say it
    if framework_env.base_python(SKLEARN_1_4_2)[0] != sys.executable:  # the machine has the container's
        assert python.startswith(f"{SKLEARN_1_4_2.python}.")


def test_a_python_newer_than_the_containers_fails_locally_too(tmp_path: Path) -> None:
    env_python()
    if not (framework_env.built_python(SKLEARN_1_4_2) or "").startswith(f"{SKLEARN_1_4_2.python}."):
        pytest.skip(f"no Python {SKLEARN_1_4_2.python} on this machine: the environment runs this one")
    script = tmp_path / "stamp.py"
    script.write_text("from datetime import UTC\nprint(UTC)\n")  # Python 3.11's
    ran = container(["python3", str(script)], tmp_path)
    assert ran.returncode != 0 and "ImportError: cannot import name 'UTC'" in ran.stderr
    assert subprocess.run([sys.executable, str(script)], capture_output=True).returncode == 0


def test_a_newer_scikit_learn_api_fails_locally_as_on_aws(tmp_path: Path, monkeypatch) -> None:
    script = tmp_path / "train.py"
    script.write_text(NEWER_SCRIPT)
    on_container = container([sys.executable, str(script)], tmp_path)
    assert on_container.returncode != 0
    assert "ImportError: cannot import name 'TunedThresholdClassifierCV'" in on_container.stderr
    assert f"sagemaker-scikit-learn:1.4-2 (scikit-learn=={PINS['scikit-learn']}" in on_container.stderr

    monkeypatch.setenv("SAGELAKE_LOCAL_FRAMEWORK_ENVS", "false")  # the developer's fallback: it passes
    on_venv = container([sys.executable, str(script)], tmp_path)
    assert on_venv.returncode == 0, on_venv.stderr
    assert "built TunedThresholdClassifierCV" in on_venv.stdout


def test_train_and_evaluate_run_on_the_containers_versions(tmp_path: Path) -> None:
    channel = write_channel(tmp_path / "train", {"2026-11-24": synthetic_features(400, 3)})
    holdout = write_channel(tmp_path / "holdout", {"2026-11-25": synthetic_features(200, 4)})
    train = [
        "python3", str(ROOT / "include" / "training" / "train.py"), "--train", str(channel),
        "--model-dir", str(tmp_path / "model"), "--output-data-dir", str(tmp_path / "out"),
        "--max_iter", "20",
    ]  # fmt: skip
    trained = container(train, tmp_path)
    assert trained.returncode == 0, trained.stderr
    (tmp_path / "challenger").mkdir()
    (tmp_path / "challenger" / "model.tar.gz").write_bytes(package_source_dir(tmp_path / "model"))
    evaluate = [
        "python3", str(ROOT / "include" / "evaluation" / "evaluate.py"),
        "--challenger", str(tmp_path / "challenger"), "--holdout", str(holdout),
        "--output", str(tmp_path / "report"),
    ]  # fmt: skip
    evaluated = container(evaluate, tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["n"] == 200 and 0.5 < metrics["models"]["challenger"]["auc"] <= 1.0


def test_the_build_is_locked_reused_and_follows_the_pins(tmp_path: Path, monkeypatch) -> None:
    calls = tmp_path / "uv-calls.log"
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV.format(python=sys.executable, log=str(calls)))
    uv.chmod(0o755)
    monkeypatch.setattr(framework_env, "uv_binary", lambda: str(uv))
    monkeypatch.setenv("SAGELAKE_FRAMEWORK_ENVS_DIR", str(tmp_path / "envs"))
    env = FrameworkEnv("sagemaker-scikit-learn", "9.9-1", ("scikit-learn==9.9.0",))

    threads = [threading.Thread(target=ensure_env, args=(env,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first = calls.read_text().splitlines()
    assert [line.split()[0] for line in first] == ["venv", "pip", "pip"]  # once; offline, then online
    assert (
        "--offline" in first[1] and "--offline" not in first[2] and first[2].endswith("scikit-learn==9.9.0")
    )

    assert ensure_env(env) == tmp_path / "envs" / env.name
    assert calls.read_text().splitlines() == first  # built: reused without calling uv

    ensure_env(FrameworkEnv(env.repository, env.version, ("scikit-learn==9.9.1",)))
    assert calls.read_text().splitlines()[len(first)].startswith("venv")  # new pins: rebuilt


@pytest.fixture()
def endpoint_clients(aws_env: str, tmp_path: Path):
    """``(sagemaker, runtime, server)`` with models served on their framework environments."""
    server = serve("127.0.0.1", 0, aws_env, tmp_path / "cache", REGION, framework_envs=True)
    host, port = server.server_address[:2]
    runtime = boto3.client(
        "sagemaker-runtime", endpoint_url=f"http://{host}:{port}", region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip
    yield boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION), runtime
    server.shutdown()


def deploy(sagemaker, s3, bucket: str, model_dir: Path, image: str) -> str:
    tag = uuid.uuid4().hex[:8]
    key = f"models/probe-{tag}/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=package_source_dir(model_dir))
    container = {"Image": image, "ModelDataUrl": f"s3://{bucket}/{key}"}
    register_version(sagemaker, image, container["ModelDataUrl"])  # served: approved
    sagemaker.create_model(
        ModelName=f"m-{tag}", ExecutionRoleArn=SAGEMAKER_ROLE_ARN, PrimaryContainer=container
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": f"m-{tag}",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sagemaker.create_endpoint_config(EndpointConfigName=f"c-{tag}", ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=f"e-{tag}", EndpointConfigName=f"c-{tag}")
    return f"e-{tag}"


def test_an_endpoint_serves_its_model_on_the_containers_versions(
    endpoint_clients, s3, bucket, tmp_path
) -> None:
    sagemaker, runtime = endpoint_clients
    (tmp_path / "probe" / "code").mkdir(parents=True)
    (tmp_path / "probe" / "code" / "inference.py").write_text(VERSION_PROBE)
    assert sklearn.__version__ != PINS["scikit-learn"]  # else this test could not tell the two apart

    served = {}
    for image in (SKLEARN_IMAGE_URI, "img"):  # "img": no framework environment, served in the server
        endpoint = deploy(sagemaker, s3, bucket, tmp_path / "probe", image)
        response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/plain", Body=b"x")
        served[image] = json.loads(response["Body"].read())
    assert served[SKLEARN_IMAGE_URI]["sklearn"] == PINS["scikit-learn"]
    assert served[SKLEARN_IMAGE_URI]["numpy"] == PINS["numpy"]
    assert Path(served[SKLEARN_IMAGE_URI]["executable"]) == env_python()
    assert served["img"]["sklearn"] == sklearn.__version__

    endpoint = deploy(sagemaker, s3, bucket, tmp_path / "probe", SKLEARN_IMAGE_URI)
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/plain", Body=b"fail")
    assert raised.value.response["Error"]["Code"] == "ModelError"
    assert "ValueError: bad row" in raised.value.response["Error"]["Message"]
    again = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/plain", Body=b"x")  # still up
    assert json.loads(again["Body"].read())["sklearn"] == PINS["scikit-learn"]


def test_a_model_trained_on_the_container_is_served_by_it(endpoint_clients, s3, bucket, tmp_path) -> None:
    sagemaker, runtime = endpoint_clients
    channel = write_channel(tmp_path / "train", {"2026-11-24": synthetic_features(400, 5)})
    train = [
        "python3", str(ROOT / "include" / "training" / "train.py"), "--train", str(channel),
        "--model-dir", str(tmp_path / "model"), "--output-data-dir", str(tmp_path / "out"),
        "--max_iter", "20",
    ]  # fmt: skip
    assert container(train, tmp_path).returncode == 0
    frame = synthetic_features(5, 6).drop(columns=["customer_id", "churned"])
    body = json.dumps({"instances": frame.to_dict(orient="records")})
    # What the container's versions predict, computed outside the server: the served values must match.
    direct = (
        "import json, sys; sys.path.insert(0, sys.argv[1] + '/code'); import inference as i; "
        "m = i.model_fn(sys.argv[1]); print(i.output_fn(i.predict_fn(i.input_fn(sys.argv[2], "
        "'application/json'), m), 'application/json')[0])"
    )
    expected = subprocess.check_output([env_python(), "-c", direct, str(tmp_path / "model"), body], text=True)

    endpoint = deploy(sagemaker, s3, bucket, tmp_path / "model", SKLEARN_IMAGE_URI)
    response = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json", Accept="application/json", Body=body
    )
    assert json.loads(response["Body"].read()) == json.loads(expected)
