"""DAG integrity: every DAG file imports cleanly, offline, with owner, tags, retries and a module doc."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.constants import ROOT

DAG_FILES = sorted((ROOT / "dags").glob("*.py"))

# Parse each DAG file in a fresh child of one interpreter (forked after Airflow's import, as the DAG processor
# does) with every network path closed, and report what it built: nothing one file imports reaches another.
PARSE = r"""
import ast, json, os, socket, sys
def refuse(*a, **k):
    raise RuntimeError("network access at DAG parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
import botocore.client
botocore.client.BaseClient._make_api_call = refuse
from airflow.dag_processing.dagbag import DagBag

def report(path):
    bag = DagBag(dag_folder=path)
    module_doc = ast.get_docstring(ast.parse(open(path).read()), clean=False)
    out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {},
           "heavy_modules": sorted(m for m in ("sagemaker", "pyspark", "duckdb", "sklearn", "mlflow")
                                   if m in sys.modules)}
    for dag_id, dag in bag.dags.items():
        out["dags"][dag_id] = {
            "tags": sorted(dag.tags), "doc": bool(dag.doc_md and dag.doc_md.strip()),
            "doc_is_module_docstring": dag.doc_md == module_doc,
            "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries} for t in dag.tasks},
            "params_without_dialect": sorted(
                f"{t.task_id}.{name}" for t in dag.tasks for name, param in t.params.items()
                if "$schema" not in param.schema
            ),
        }
    return out

results = {}
for path in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            data = json.dumps(report(path))
        except BaseException as error:
            data = json.dumps({"crashed": repr(error)})
        with os.fdopen(write, "w") as pipe:
            pipe.write(data)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        results[os.path.basename(path)] = json.loads(pipe.read() or '{"crashed": "no answer"}')
    os.waitpid(pid, 0)
print(json.dumps(results))
"""


def parse(paths: list[Path]) -> dict[str, dict]:
    """What each DAG file builds, by file name (see ``PARSE``)."""
    env = {
        "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT / 'dags'}",
        "PATH": "/usr/bin:/bin",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "HOME": str(Path.home()),
    }
    result = subprocess.run(
        [sys.executable, "-c", PARSE, *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed_files() -> dict[str, dict]:
    return parse(DAG_FILES)


@pytest.fixture(params=DAG_FILES, ids=lambda p: p.name)
def parsed(request, parsed_files: dict[str, dict]) -> dict:
    out = parsed_files[request.param.name]
    assert "crashed" not in out, out
    return out


def test_there_are_dag_files() -> None:
    assert {p.name for p in DAG_FILES} >= {"churn_prepare.py", "churn_train_deploy.py"}


def test_imports_without_errors_or_network(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert parsed["dags"], "the file defines no DAG"


def test_heavy_libraries_are_not_imported_at_parse_time(parsed: dict) -> None:
    assert parsed["heavy_modules"] == []


def test_every_dag_has_tags_doc_owner_and_retries(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert "sagelake" in dag["tags"], dag_id
        assert dag["doc"], f"{dag_id} has no doc_md"
        assert dag["doc_is_module_docstring"], f"{dag_id}: use doc_md=__doc__ (one doc source per DAG)"
        for task_id, task in dag["tasks"].items():
            assert task["owner"] not in ("", "airflow"), f"{dag_id}.{task_id} has no owner"
            if not task_id.startswith("check_"):  # a violated data check is not retried: data won't change
                assert task["retries"] >= 1, f"{dag_id}.{task_id} has no retries"


def test_every_param_names_its_json_schema_dialect(parsed: dict) -> None:
    """Airflow validates each param of each task at every parse and task start; without ``$schema`` that
    costs a check against the draft 2020-12 meta-schema (``sagelake.config.params.param``)."""
    for dag_id, dag in parsed["dags"].items():
        assert dag["params_without_dialect"] == [], dag_id


PLUGINS = r"""
import json, sys
from airflow import plugins_manager
plugins_manager.ensure_plugins_loaded()
import requests, sagemaker
shadowing = sorted(m for m in sys.modules if m in ("glue", "athena", "lake", "stack", "demo"))
print(json.dumps({"requests": requests.__file__, "sagemaker": sagemaker.__file__, "top_level": shadowing}))
"""


def test_airflow_plugin_loading_does_not_shadow_libraries(tmp_path) -> None:
    """Airflow imports every file in plugins/ as a top-level module unless .airflowignore excludes it."""
    env = {
        "PYTHONPATH": str(ROOT / "plugins"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", PLUGINS], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "site-packages" in loaded["requests"]
    assert "site-packages" in loaded["sagemaker"]
    assert loaded["top_level"] == []
