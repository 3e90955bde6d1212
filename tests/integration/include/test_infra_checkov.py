"""checkov on the CloudFormation templates of include/infra/, from its own environment (make venv builds
``.venv/tools/checkov``; its pins conflict with cfn-lint's): nothing fails, and every suppression the
templates carry is needed (without them, exactly the suppressed checks fail)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.constants import ROOT

TEMPLATES = sorted((ROOT / "include" / "infra").glob("*.cfn.json"))


def checkov_skips(tpl: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(resource, check id, comment) of every checkov suppression in the template."""
    return [
        (name, skip["id"], skip["comment"])
        for name, resource in tpl["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


CHECKOV = ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"  # make venv builds it (own env)


def checkov_failures(paths: list[Path]) -> dict[str, list[tuple[str, str]]]:
    """Template file name → (resource, check id) of every failed checkov check, all templates in one run of
    checkov's own environment."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run make venv (requirements-checkov.txt)"
    files = [arg for path in paths for arg in ("-f", str(path))]
    done = subprocess.run(
        [str(CHECKOV), *files, "--framework", "cloudformation", "-o", "json", "--compact"],
        capture_output=True,
        text=True,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: some check failed
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    failed: dict[str, list[tuple[str, str]]] = {path.name: [] for path in paths}
    for check in (c for r in reports for c in r.get("results", {}).get("failed_checks", [])):
        failed[Path(check["file_path"]).name].append((check["resource"].split(".")[-1], check["check_id"]))
    return {name: sorted(found) for name, found in failed.items()}


BARE = "bare."  # the name prefix of a template's copy without its suppressions


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """checkov's failures on the templates as they are, and on copies without their suppressions (one
    checkov run for both: its start is most of its time)."""
    bare_dir = tmp_path_factory.mktemp("bare")
    bare = []
    for path in TEMPLATES:
        tpl = json.loads(path.read_text())
        for resource in tpl["Resources"].values():
            resource.get("Metadata", {}).pop("checkov", None)
        (bare_dir / f"{BARE}{path.name}").write_text(json.dumps(tpl))
        bare.append(bare_dir / f"{BARE}{path.name}")
    found = checkov_failures([*TEMPLATES, *bare])
    return {
        "as is": {path.name: found[path.name] for path in TEMPLATES},
        "bare": {path.name: found[f"{BARE}{path.name}"] for path in TEMPLATES},
    }


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_checkov_fails_nothing_and_every_suppression_is_needed(path: Path, failures) -> None:
    assert failures["as is"][path.name] == []
    needed = sorted((r, c) for r, c, _ in checkov_skips(json.loads(path.read_text())))
    assert failures["bare"][path.name] == needed
