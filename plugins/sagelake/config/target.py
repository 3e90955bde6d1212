"""The one place where the deployment target is chosen.

``SAGELAKE_TARGET`` is ``local`` (default: everything on this machine, control plane in moto)
or ``aws`` (the Amazon provider talks to real AWS). Operators ask :func:`current_target` at run
time, never at DAG parse time.
"""

from __future__ import annotations

import os
from typing import Literal

Target = Literal["local", "aws"]
TARGETS: tuple[Target, ...] = ("local", "aws")
ENV_VAR = "SAGELAKE_TARGET"


class UnknownTargetError(ValueError):
    """Raised when ``SAGELAKE_TARGET`` holds something other than ``local`` or ``aws``."""


def current_target() -> Target:
    """Return the configured target, ``local`` when unset."""
    value = os.environ.get(ENV_VAR, "local").strip().lower() or "local"
    if value not in TARGETS:
        raise UnknownTargetError(
            f"{ENV_VAR}={value!r} is not a target: set it to 'local' or 'aws' (or unset it for 'local')."
        )
    return value  # type: ignore[return-value]


def is_local() -> bool:
    """True when the pipeline runs against the local stack."""
    return current_target() == "local"
