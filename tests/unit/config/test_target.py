"""Unit tests of the small plain modules: target, lake layout, approval policy, lifecycle helpers."""

from __future__ import annotations

import pytest

from sagelake.config import target


def test_target_defaults_to_local_and_rejects_unknown(monkeypatch) -> None:
    monkeypatch.delenv("SAGELAKE_TARGET", raising=False)
    assert target.current_target() == "local"
    monkeypatch.setenv("SAGELAKE_TARGET", " AWS ")
    assert target.current_target() == "aws" and not target.is_local()
    monkeypatch.setenv("SAGELAKE_TARGET", "azure")
    with pytest.raises(target.UnknownTargetError, match="set it to 'local' or 'aws'"):
        target.current_target()
