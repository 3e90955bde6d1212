"""The evaluation step as requests: a SageMaker Processing job running ``include/evaluation/evaluate.py``.

The job scores the challenger and the champion (the model serving production) on the same held-out data
and writes its report under ``s3://<lake>/reports/evaluation/dt=<dt>/<job>/``; the challenger's package
version points to the report's model-quality statistics (:func:`model_metrics`). The job's container is
:func:`evaluation_image_uri`'s: scikit-learn for script-mode models, XGBoost when a model is a built-in
XGBoost one. Plain functions of the run; the only I/O is through clients the caller passes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sagelake.config.settings import INCLUDE_DIR
from sagelake.lake.layout import Lake, check_dt, split_s3_uri
from sagelake.ml.images import sklearn_image_uri, xgboost_image_uri

EVALUATION_DIR = INCLUDE_DIR / "evaluation"
EVALUATION_SCRIPT = EVALUATION_DIR / "evaluate.py"
PROCESSING_ROOT = "/opt/ml/processing"
CODE_INPUT, CHALLENGER_INPUT, CHAMPION_INPUT, HOLDOUT_INPUT = "code", "challenger", "champion", "holdout"
REPORT_OUTPUT = "report"
METRICS_FILE = "metrics.json"
MODEL_QUALITY_FILE = "model_quality.json"
CHAMPION_MODEL_QUALITY_FILE = "champion_model_quality.json"
REPORT_FILE = "report.html"


class EvaluationImageError(ValueError):
    """No SageMaker container can score this pair of models together; the message names the fix."""


def evaluation_image_uri(
    region: str,
    instance_type: str,
    *,
    challenger_builtin_xgboost: bool,
    champion_builtin_xgboost: bool | None = None,
    local: bool = False,
) -> str:
    """The evaluation job's container image for this pair of models.

    No built-in XGBoost model: the scikit-learn container (:func:`sagelake.ml.images.sklearn_image_uri`),
    which loads the script-mode ``model.joblib``. A built-in XGBoost model (``xgboost-model``; the champion
    ``None`` when there is none): the XGBoost 1.7-1 container (:func:`sagelake.ml.images.xgboost_image_uri`),
    which has xgboost, and scikit-learn, pandas, pyarrow and matplotlib for the script itself.

    A *mixed* pair (one built-in XGBoost, one script-mode model) is refused on AWS: the 1.7-1 container runs
    Python 3.8, whose newest scikit-learn is 1.3, and cannot load the script-mode model pickled by
    scikit-learn 1.4; the scikit-learn container has no xgboost. With ``local=True`` the local processing
    runner runs the script on this interpreter, which has both, so the XGBoost image is only recorded.
    """
    kinds = {"challenger": challenger_builtin_xgboost}
    if champion_builtin_xgboost is not None:
        kinds["champion"] = champion_builtin_xgboost
    if not any(kinds.values()):
        return sklearn_image_uri(region, instance_type)
    if not all(kinds.values()) and not local:
        builtin = next(name for name, is_builtin in kinds.items() if is_builtin)
        script = next(name for name, is_builtin in kinds.items() if not is_builtin)
        raise EvaluationImageError(
            f"the {builtin} is a built-in XGBoost model and the {script} a script-mode scikit-learn model: "
            "no SageMaker container scores both (the XGBoost 1.7-1 image runs Python 3.8 and cannot load a "
            "scikit-learn 1.4 model; the scikit-learn image has no xgboost). Fix: train the challenger the "
            "way the champion serving production was trained (both script mode or both built-in XGBoost), "
            "or pass evaluation_request an image_uri with xgboost 1.7 and scikit-learn 1.4"
        )
    return xgboost_image_uri(region)


def input_path(name: str) -> str:
    """Where the container finds ``ProcessingInput`` ``name``: ``/opt/ml/processing/input/<name>``."""
    return f"{PROCESSING_ROOT}/input/{name}"


def output_path(name: str) -> str:
    """Where the container writes ``ProcessingOutput`` ``name``: ``/opt/ml/processing/output/<name>``."""
    return f"{PROCESSING_ROOT}/output/{name}"


def report_prefix(bucket: str, dt: str, job_name: str) -> str:
    """The evaluation report's folder in the lake: ``s3://<bucket>/reports/evaluation/dt=<dt>/<job>/``."""
    return Lake(bucket).uri(f"reports/evaluation/dt={check_dt(dt)}/{job_name}/")


def report_files(report_uri: str) -> dict[str, str]:
    """S3 URIs of the report's files (``metrics``, ``model_quality``, ``html``) under ``report_uri``."""
    base = report_uri.rstrip("/") + "/"
    return {
        "metrics": base + METRICS_FILE,
        "model_quality": base + MODEL_QUALITY_FILE,
        "html": base + REPORT_FILE,
    }


def publish_evaluation_code(s3: Any, bucket: str, script: Path = EVALUATION_SCRIPT) -> str:
    """Upload the evaluation script, content-addressed (``code/evaluation/<sha>/evaluate.py``); its URI.

    Idempotent: the same script always lands at the same key.
    """
    body = Path(script).read_bytes()
    uri = Lake(bucket).code(f"evaluation/{hashlib.sha256(body).hexdigest()[:16]}/{Path(script).name}")
    target_bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=target_bucket, Key=key, Body=body)
    return uri


def _s3_input(name: str, uri: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": input_path(name),
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def evaluation_request(
    *,
    job_name: str,
    role: str,
    image_uri: str,
    code_uri: str,
    challenger_model_uri: str,
    holdout_uri: str,
    report_uri: str,
    instance_type: str,
    champion_model_uri: str | None = None,
    threshold: float = 0.5,
    max_runtime_s: int = 3600,
) -> dict[str, Any]:
    """A CreateProcessingJob request: ``evaluate.py`` in ``image_uri`` (:func:`evaluation_image_uri`).

    ``code_uri`` is the uploaded script (:func:`publish_evaluation_code`); ``challenger_model_uri`` and
    ``champion_model_uri`` (optional: no champion yet) are ``model.tar.gz`` URIs; ``holdout_uri`` is the
    held-out day's curated features prefix; ``report_uri`` the report folder (:func:`report_prefix`).
    """
    script = code_uri.rstrip("/").rsplit("/", 1)[-1]
    if not script.endswith(".py"):
        raise ValueError(f"code_uri {code_uri!r} must name the evaluation script (…/evaluate.py)")
    for name, uri in (("challenger", challenger_model_uri), ("champion", champion_model_uri)):
        if uri is not None and not uri.endswith("/model.tar.gz"):
            raise ValueError(f"{name}_model_uri {uri!r} is not a SageMaker …/model.tar.gz artefact")
    inputs = [
        _s3_input(CODE_INPUT, code_uri),
        _s3_input(CHALLENGER_INPUT, challenger_model_uri),
        _s3_input(HOLDOUT_INPUT, holdout_uri),
    ]
    arguments = [
        "--challenger",
        input_path(CHALLENGER_INPUT),
        "--holdout",
        input_path(HOLDOUT_INPUT),
        "--output",
        output_path(REPORT_OUTPUT),
        "--threshold",
        json.dumps(float(threshold)),
    ]
    if champion_model_uri:
        inputs.insert(2, _s3_input(CHAMPION_INPUT, champion_model_uri))
        arguments[2:2] = ["--champion", input_path(CHAMPION_INPUT)]
    return {
        "ProcessingJobName": job_name,
        "RoleArn": role,
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": ["python3", f"{input_path(CODE_INPUT)}/{script}"],
            "ContainerArguments": arguments,
        },
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": REPORT_OUTPUT,
                    "AppManaged": False,
                    "S3Output": {
                        "S3Uri": report_uri.rstrip("/"),
                        "LocalPath": output_path(REPORT_OUTPUT),
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 10}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
        "Environment": {"PYTHONUNBUFFERED": "1"},
    }


def model_metrics(report_uri: str) -> dict[str, Any]:
    """``ModelMetrics`` for CreateModelPackage: model quality statistics = the report's challenger stats."""
    return {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": report_files(report_uri)["model_quality"],
            }
        }
    }


def output_files_to_xcom() -> list[dict[str, str]]:
    """The provider operator's ``output_files_to_xcom``: ``metrics.json`` as ``OutputFiles["Evaluation"]``."""
    return [{"output_name": REPORT_OUTPUT, "file_name": METRICS_FILE, "result_name": "Evaluation"}]


def read_report(s3: Any, report_uri: str) -> dict[str, Any]:
    """The report's ``metrics.json`` (``{"models": {"challenger": {...}, "champion": {...}?}, ...}``)."""
    bucket, key = split_s3_uri(report_files(report_uri)["metrics"])
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
