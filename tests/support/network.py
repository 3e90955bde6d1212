"""Network helpers for tests that start servers on loopback."""

from __future__ import annotations

from devstack.stack import free_port

__all__ = ["free_port"]
