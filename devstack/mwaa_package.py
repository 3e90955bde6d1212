"""Build what an Amazon MWAA environment takes: ``make package`` → ``dist/mwaa/`` (see docs/mwaa.md).

``python -m devstack.mwaa_package [--out DIR] [--set SAGELAKE_NAME=VALUE ...]`` writes:

* ``dags/`` — the DAG files, plus ``dags/include/`` (SQL, Glue script, training and evaluation scripts,
  contracts, the profile schema, the EventBridge files) and a ``.airflowignore`` that keeps the DAG
  processor out of ``include/``. A folder, not a zip: MWAA syncs the DAGs folder from S3 file by file,
  and the code reads ``include/`` as plain files (SQL templates, scripts uploaded to S3).
* ``plugins.zip`` — the ``plugins/`` tree (the ``sagelake`` package, the webhook plugin and the
  ``.airflowignore`` that keeps Airflow's plugin loader out of the package), without ``__pycache__``.
  Written deterministically (sorted entries, fixed timestamps): the same tree gives the same bytes, so an
  unchanged upload does not need an environment update.
* ``requirements.txt`` — the constraints line MWAA documents for :data:`MWAA_AIRFLOW_VERSION`, then the
  packages the DAGs import on the ``aws`` target: unpinned where the constraints file pins them, pinned
  (``==``, the project lock's version) where it does not.
* ``startup.sh`` — exports ``SAGELAKE_TARGET=aws`` and ``SAGELAKE_INCLUDE_DIR`` (where ``include/`` lands
  on MWAA), plus any ``--set`` deployment settings. No Java: on ``aws`` Glue, Athena and SageMaker do the
  work; the local engines are never started.

Developer tooling (``devstack/``), tests, notebooks, CloudFormation (``include/infra/``, deployed before
the environment), the exploration queries (``include/sql/explore/``, read by ``devstack.explore``) and
local state (``.local/``) stay out.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "dist" / "mwaa"

# The newest Airflow 3 Amazon MWAA offers (the MWAA user guide's version table lists v3.3.1, Python 3.12,
# available since 2026-09-01). The project runs 3.3.2 locally; change this one line when MWAA offers it.
MWAA_AIRFLOW_VERSION = "3.3.1"
MWAA_PYTHON_VERSION = "3.12"
CONSTRAINTS_URL = (
    "https://raw.githubusercontent.com/apache/airflow/constraints-{airflow}/constraints-{python}.txt"
)

# What the DAGs and the sagelake package import on the aws target (the local engines' libraries, Spark,
# DuckDB, moto, sqlglot, xgboost, are never imported there). The constraints file pins these, so no version.
CONSTRAINED = (
    "apache-airflow-providers-amazon[aiobotocore]",
    "apache-airflow-providers-standard",  # ApprovalOperator (HITL), Airflow 3.1+
    "jsonschema",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
)
# Not in Airflow's constraints file: pinned, at the versions of the project's lock (requirements.txt).
# mlflow-skinny is the tracking client (not the MLflow server); sagemaker-mlflow signs calls to SageMaker's
# managed MLflow.
PINNED = ("matplotlib", "mlflow-skinny", "sagemaker-mlflow")
# Imported on the aws target but not installable on MWAA: every sagemaker-core 2.x (the ``sagemaker.core``
# module sagelake.ml.images looks container image URIs up with) requires importlib-metadata<7, and Airflow 3
# on Python 3.12, the only Python MWAA runs Airflow 3 on, requires importlib-metadata>=7. Listing it would
# fail the whole requirements install. docs/mwaa.md says what breaks.
LEFT_OUT = {"sagemaker-core": "needs importlib-metadata<7; Airflow 3 on Python 3.12 needs >=7"}

# On MWAA, AIRFLOW_HOME is /usr/local/airflow; the DAGs folder is synced to $AIRFLOW_HOME/dags and
# plugins.zip is extracted to $AIRFLOW_HOME/plugins.
MWAA_INCLUDE_DIR = "${AIRFLOW_HOME:-/usr/local/airflow}/dags/include"
INCLUDE_EXCLUDED = ("infra", "sql/explore")
SKIPPED_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache")
SKIPPED_SUFFIXES = (".pyc", ".pyo")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SETTING = re.compile(r"^SAGELAKE_[A-Z0-9_]+$")
ARTEFACTS = ("dags", "plugins.zip", "requirements.txt", "startup.sh")


class PackageError(ValueError):
    """A package that cannot be built as asked: a missing source folder, a bad ``--set``."""


@dataclass(frozen=True)
class Package:
    """What :func:`build` wrote."""

    out: Path
    dags: Path
    plugins_zip: Path
    requirements: Path
    startup: Path

    def sizes(self) -> dict[str, int]:
        """Bytes of each artefact (the DAGs folder summed over its files)."""
        dag_bytes = sum(p.stat().st_size for p in self.dags.rglob("*") if p.is_file())
        artefacts = (self.plugins_zip, self.requirements, self.startup)
        return {"dags/": dag_bytes, **{p.name: p.stat().st_size for p in artefacts}}


def constraints_url(airflow: str = MWAA_AIRFLOW_VERSION, python: str = MWAA_PYTHON_VERSION) -> str:
    """The Airflow constraints file MWAA resolves requirements against."""
    return CONSTRAINTS_URL.format(airflow=airflow, python=python)


def lock_pins(lock: Path, names: tuple[str, ...] = PINNED) -> dict[str, str]:
    """The versions ``lock`` (a pip-compile'd requirements file) pins for ``names``."""
    pins = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep and name.lower() in names:
            pins[name.lower()] = version.strip()
    missing = sorted(set(names) - set(pins))
    if missing:
        raise PackageError(f"{lock} pins no version of {', '.join(missing)}: run make lock")
    return pins


def requirements_text(
    pins: Mapping[str, str], airflow: str = MWAA_AIRFLOW_VERSION, python: str = MWAA_PYTHON_VERSION
) -> str:
    """``requirements.txt`` for MWAA: the ``--constraint`` line first, as MWAA documents, then packages."""
    lines = [
        f'--constraint "{constraints_url(airflow, python)}"',
        f"# sagelake on Amazon MWAA (Airflow {airflow}, Python {python}), by devstack/mwaa_package.py",
        "# pinned by the constraints file:",
        *CONSTRAINED,
        "# not in the constraints file:",
        *(f"{name}=={version}" for name, version in sorted(pins.items())),
        *(f"# left out: {name} ({reason}; see docs/mwaa.md)" for name, reason in sorted(LEFT_OUT.items())),
    ]
    return "\n".join(lines) + "\n"


def startup_text(settings: Mapping[str, str] | None = None) -> str:
    """``startup.sh``: the target, where ``include/`` is, and the deployment settings given (shell-quoted)."""
    settings = dict(settings or {})
    for name in settings:
        if not _SETTING.match(name):
            raise PackageError(
                f"{name!r} is not a sagelake setting (SAGELAKE_*): set others on the environment"
            )
    for fixed in ("SAGELAKE_TARGET", "SAGELAKE_INCLUDE_DIR"):
        if fixed in settings:
            raise PackageError(f"{fixed} is fixed by the package on MWAA; leave it out of --set")
    lines = [
        "#!/bin/sh",
        "# sagelake on Amazon MWAA: run before every Airflow component starts (generated by",
        "# devstack/mwaa_package.py). No Java or other system packages: on the aws target Glue, Athena and",
        "# SageMaker do the work, and the local engines are never started.",
        "export SAGELAKE_TARGET=aws",
        "# include/ travels in the DAGs folder, which MWAA syncs from S3 to $AIRFLOW_HOME/dags.",
        f'export SAGELAKE_INCLUDE_DIR="{MWAA_INCLUDE_DIR}"',
    ]
    if settings:
        lines.append("# deployment settings (docs/mwaa.md); secrets belong in connections, never here")
        lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(settings.items())]
    return "\n".join(lines) + "\n"


def _files(root: Path, excluded: tuple[str, ...] = ()) -> Iterator[Path]:
    """Files under ``root`` in a stable order, without caches, compiled files and ``excluded`` subfolders."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or any(part in SKIPPED_PARTS for part in relative.parts):
            continue
        if path.suffix in SKIPPED_SUFFIXES:
            continue
        if any(relative.as_posix().startswith(f"{prefix}/") for prefix in excluded):
            continue
        yield path


def _copy_tree(source: Path, target: Path, excluded: tuple[str, ...] = ()) -> None:
    for path in _files(source, excluded):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def _write_zip(source: Path, target: Path) -> None:
    """Zip the contents of ``source`` (entries relative to it), byte-for-byte reproducible."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in _files(source):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())


def build(out: Path = DEFAULT_OUT, root: Path = ROOT, settings: Mapping[str, str] | None = None) -> Package:
    """Write the MWAA package of the project at ``root`` into ``out`` (replaced if present)."""
    sources = {name: root / name for name in ("dags", "plugins", "include")}
    for name, path in sources.items():
        if not path.is_dir():
            raise PackageError(f"{path} is missing: run from a sagelake checkout ({name}/ is packaged)")
    startup = startup_text(settings)  # validates the settings before anything is written
    requirements = requirements_text(lock_pins(root / "requirements.txt"))
    if out.exists():
        strangers = sorted(p.name for p in out.iterdir() if p.name not in ARTEFACTS)
        if strangers:
            shown = ", ".join(strangers[:3])
            raise PackageError(f"{out} holds more than a package ({shown}): not replacing it")
        shutil.rmtree(out)
    dags = out / "dags"
    dags.mkdir(parents=True)
    for dag_file in sorted(sources["dags"].glob("*.py")):
        shutil.copy2(dag_file, dags / dag_file.name)
    _copy_tree(sources["include"], dags / "include", INCLUDE_EXCLUDED)
    (dags / ".airflowignore").write_text(
        "# include/ holds SQL, scripts and data files the DAGs read, not DAGs\ninclude/\n"
    )
    package = Package(
        out=out,
        dags=dags,
        plugins_zip=out / "plugins.zip",
        requirements=out / "requirements.txt",
        startup=out / "startup.sh",
    )
    _write_zip(sources["plugins"], package.plugins_zip)
    package.requirements.write_text(requirements)
    package.startup.write_text(startup)
    package.startup.chmod(0o755)
    return package


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.mwaa_package", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: dist/mwaa)")
    parser.add_argument(
        "--set",
        dest="settings",
        type=_setting,
        action="append",
        default=[],
        metavar="SAGELAKE_NAME=VALUE",
        help="a deployment setting exported by startup.sh (repeatable), e.g. SAGELAKE_BUCKET=my-lake",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        package = build(args.out, settings=dict(args.settings))
    except PackageError as error:
        print(f"make package: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(f"MWAA package for Airflow {MWAA_AIRFLOW_VERSION} in {package.out} ({elapsed:.2f} s):")
    for name, size in package.sizes().items():
        print(f"  {name:<18} {size / 1024:8.1f} KiB")
    for name, reason in LEFT_OUT.items():
        print(f"  left out of requirements.txt: {name} ({reason})")
    print("Upload: docs/mwaa.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
