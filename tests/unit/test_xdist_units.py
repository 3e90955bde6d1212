"""The split of ``make test`` between xdist workers: a unit per file, one per shared folder."""

from __future__ import annotations

import pytest

from tests.support.constants import ROOT
from tests.support.xdist_units import SHARED_FOLDERS, scope_of


@pytest.mark.parametrize(
    ("nodeid", "unit"),
    [
        ("tests/e2e/test_pipeline.py::test_one", "tests/e2e/test_pipeline.py"),
        ("tests/e2e/test_pipeline.py::Class::test_one[a::b]", "tests/e2e/test_pipeline.py"),
        ("tests/e2e/live/test_event_stack.py::test_one", "tests/e2e/live/"),
        ("tests/e2e/live/test_stack_restart.py::test_two[x]", "tests/e2e/live/"),
        ("tests/e2e/lively/test_x.py::test_three", "tests/e2e/lively/test_x.py"),  # not the folder
    ],
)
def test_a_test_runs_in_its_shared_folders_unit_else_in_its_files(nodeid: str, unit: str) -> None:
    assert scope_of(nodeid, ("tests/e2e/live/",)) == unit


def test_every_shared_folder_exists_and_holds_tests() -> None:
    for folder in SHARED_FOLDERS:
        assert folder.endswith("/")
        assert list((ROOT / folder).glob("test_*.py")), f"{folder} holds no tests"
