"""How ``make test`` splits the suite between pytest-xdist workers: by file, except shared folders.

A *unit* runs on one worker, its tests one after another. ``--dist loadfile`` makes each test file a unit
(a module's fixtures are built once); :class:`FileOrFolderScheduling` (``tests/conftest.py`` installs it for
``--dist loadfile``) also makes each folder of :data:`SHARED_FOLDERS` one unit, so a fixture its tests
share — the live stack of ``tests/e2e/live`` — is built once too. (xdist's ``xdist_group`` mark cannot do
this here: its ``--dist loadgroup`` spreads the other tests one by one, and with pytest 9 its workers no
longer tag the grouped tests' node ids, so it groups nothing.)
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

# Folders (relative to the rootdir, "/"-terminated) whose tests run as one unit.
SHARED_FOLDERS = ("tests/e2e/live/",)


def scope_of(nodeid: str, shared_folders: tuple[str, ...] = SHARED_FOLDERS) -> str:
    """The unit a test runs in: the shared folder it is in, else its file."""
    path = nodeid.split("::", 1)[0]
    return next((folder for folder in shared_folders if path.startswith(folder)), path)


class FileOrFolderScheduling(LoadScopeScheduling):
    """``--dist loadfile`` with one unit per shared folder."""

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)
