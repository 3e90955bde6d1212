"""The layout as a rule: what ships to Airflow, who may reach the local engines, where tests go."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.constants import ROOT

PLUGINS = ROOT / "plugins"
PACKAGE = PLUGINS / "sagelake"
SUBPACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
# Test folders mirror the package's subpackages, plus what lives outside it.
TEST_FOLDERS = {*SUBPACKAGES, "devstack", "dags", "include"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def importers_of(prefix: str, files: list[Path]) -> list[str]:
    return sorted(
        str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        for path in files
        if any(m == prefix or m.startswith(prefix + ".") for m in imported_modules(path))
    )


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_layout_test_sees_imports_at_any_depth(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from devstack.stack import up\n    import sagelake.local.java\n")
    assert importers_of("devstack", [module]) == importers_of("sagelake.local", [module]) != []


def test_nothing_that_ships_to_airflow_imports_developer_tooling() -> None:
    shipped = python_files(PLUGINS, ROOT / "dags")
    assert shipped, "no plugin or DAG files found"
    assert importers_of("devstack", shipped) == []


def test_only_operators_and_local_engines_reach_into_sagelake_local() -> None:
    allowed = (PACKAGE / "operators", PACKAGE / "local")
    others = [p for p in python_files(PLUGINS, ROOT / "dags") if not p.is_relative_to(allowed[0])]
    others = [p for p in others if not p.is_relative_to(allowed[1])]
    assert importers_of("sagelake.local", others) == []


def test_plugins_holds_the_package_and_airflow_plugin_files_only() -> None:
    entries = {p.name for p in PLUGINS.iterdir() if p.name != "__pycache__"}
    top_level = {name for name in entries if name.endswith(".py")}
    assert entries - top_level == {"sagelake", ".airflowignore"}
    for name in top_level:
        assert "AirflowPlugin" in (PLUGINS / name).read_text(), f"plugins/{name} is not an Airflow plugin"


def test_every_module_of_the_package_lives_in_a_subpackage() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "aws_errors.py"))
    assert loose == [], f"put {loose} into one of {SUBPACKAGES}"


@pytest.mark.parametrize("tier", ["unit", "integration"])
def test_test_folders_mirror_the_layout(tier: str) -> None:
    folders = {p.name for p in (ROOT / "tests" / tier).iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= TEST_FOLDERS, f"tests/{tier}/{sorted(folders - TEST_FOLDERS)} mirror nothing"
