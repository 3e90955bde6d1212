"""The approval policy: every outcome of ``decide`` at and around its boundaries, the newest-partition
rule, and the policy's configuration (Variable over environment over defaults, bad values refused)."""

from __future__ import annotations

import json
import re

import pytest

from sagelake.ml.policy import (
    APPROVE,
    ASK,
    REJECT,
    Decision,
    Policy,
    PolicyConfigError,
    decide,
    limit_to_newest,
    load_policy,
    may_promote,
)

POLICY = Policy(
    primary="auc", margin=0.01, floor=0.75, guards={"log_loss": 0.02, "recall": 0.05}, grey_factor=2
)
CHAMPION = {"auc": 0.80, "log_loss": 0.40, "recall": 0.60}


def challenger(**changes: float) -> dict:
    return {**CHAMPION, **changes}


@pytest.mark.parametrize(
    ("auc", "outcome"),
    [
        (0.75, APPROVE),  # exactly the floor
        (0.7499, REJECT),
        (0.99, APPROVE),
    ],
)
def test_without_a_champion_the_floor_decides(auc: float, outcome: str) -> None:
    decision = decide({"auc": auc}, None, POLICY)
    assert decision.outcome == outcome
    assert "no champion" in decision.reasons[0]


@pytest.mark.parametrize(
    ("auc", "outcome", "says"),
    [
        (0.81, APPROVE, "meets the margin"),  # exactly the margin (0.81 - 0.80 is 0.0100000000000001)
        (0.83, APPROVE, "meets the margin"),
        (0.8099, ASK, "below the margin"),  # better, but by less than the margin
        (0.8001, ASK, "below the margin"),
        (0.80, REJECT, "not better"),  # equal is not better
        (0.79, REJECT, "not better"),
    ],
)
def test_primary_metric_against_the_champion(auc: float, outcome: str, says: str) -> None:
    decision = decide(challenger(auc=auc), CHAMPION, POLICY)
    assert decision.outcome == outcome, decision
    assert says in decision.reasons[0]


@pytest.mark.parametrize(
    ("guard", "outcome"),
    [
        ({"log_loss": 0.42}, APPROVE),  # worse by exactly the tolerance (lower is better)
        ({"log_loss": 0.30}, APPROVE),  # better
        ({"log_loss": 0.4201}, ASK),  # just beyond the tolerance: the grey zone
        ({"log_loss": 0.44}, ASK),  # exactly grey_factor x tolerance
        ({"log_loss": 0.4401}, REJECT),
        ({"recall": 0.55}, APPROVE),  # higher is better: worse by exactly 0.05
        ({"recall": 0.5499}, ASK),
        ({"recall": 0.50}, ASK),
        ({"recall": 0.4999}, REJECT),
    ],
)
def test_guard_metrics_tolerance_and_grey_zone(guard: dict, outcome: str) -> None:
    decision = decide(challenger(auc=0.82, **guard), CHAMPION, POLICY)
    assert decision.outcome == outcome, decision


def test_a_rejection_beats_the_grey_zone_and_every_reason_is_given() -> None:
    decision = decide(challenger(auc=0.805, log_loss=0.50), CHAMPION, POLICY)
    assert decision.outcome == REJECT
    assert any("beyond 2× the tolerance" in r for r in decision.reasons)
    assert any("below the margin" in r for r in decision.reasons)


def test_better_than_a_weak_champion_but_below_the_floor_asks() -> None:
    weak = {"auc": 0.60, "log_loss": 0.60, "recall": 0.40}
    decision = decide({"auc": 0.70, "log_loss": 0.55, "recall": 0.45}, weak, POLICY)
    assert decision.outcome == ASK
    assert "below the floor" in decision.reasons[0]


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), "x", True])
def test_an_unusable_challenger_metric_is_a_rejection(bad: object) -> None:
    assert decide({"auc": bad}, None, POLICY).outcome == REJECT
    assert decide(challenger(recall=bad), CHAMPION, POLICY).outcome == REJECT


def test_a_champion_without_the_metric_asks() -> None:
    decision = decide(challenger(auc=0.9), {"auc": 0.8}, POLICY)
    assert decision.outcome == ASK and "champion metric(s) log_loss, recall missing" in decision.reasons[0]


def test_lower_is_better_primary_metric() -> None:
    policy = Policy(primary="log_loss", margin=0.01, floor=0.5, guards={"auc": 0.01})
    assert decide({"log_loss": 0.5}, None, policy).outcome == APPROVE
    assert decide({"log_loss": 0.51}, None, policy).outcome == REJECT
    assert decide(challenger(log_loss=0.39), CHAMPION, policy).outcome == APPROVE
    assert decide(challenger(log_loss=0.395), CHAMPION, policy).outcome == ASK
    assert decide(challenger(log_loss=0.41), CHAMPION, policy).outcome == REJECT


def test_only_the_newest_published_partition_may_promote() -> None:
    assert may_promote("2026-11-26", "2026-11-26")
    assert not may_promote("2026-11-20", "2026-11-26")  # a backfill
    assert not may_promote("2026-11-27", "2026-11-26")  # not published
    assert not may_promote("2026-11-26", None)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        may_promote("2026/11/26", "2026-11-26")
    approve = Decision(APPROVE, ["auc fine"])
    assert limit_to_newest(approve, "2026-11-26", "2026-11-26") is approve
    capped = limit_to_newest(approve, "2026-11-20", "2026-11-26")
    assert capped.outcome == ASK and capped.reasons[1:] == ["auc fine"]
    assert "not the newest published partition" in capped.reasons[0]
    reject = Decision(REJECT, ["worse"])
    assert limit_to_newest(reject, "2026-11-20", "2026-11-26") is reject


def test_defaults_environment_and_variable_layer_key_by_key() -> None:
    assert load_policy(None, {}) == Policy()
    env = {
        "SAGELAKE_APPROVAL_MARGIN": "0.02",
        "SAGELAKE_MIN_AUC": "0.7",
        "SAGELAKE_APPROVAL_GUARDS": "brier:0.01, recall:0.03",
        "SAGELAKE_APPROVAL_GREY_FACTOR": "3",
    }
    from_env = load_policy(None, env)
    assert (from_env.margin, from_env.floor, from_env.grey_factor) == (0.02, 0.7, 3.0)
    assert dict(from_env.guards) == {"brier": 0.01, "recall": 0.03}
    assert load_policy(None, env | {"SAGELAKE_APPROVAL_FLOOR": "0.8"}).floor == 0.8  # over SAGELAKE_MIN_AUC
    variable = json.dumps({"margin": 0.001, "guards": {"log_loss": 0.05}, "primary": "pr_auc"})
    layered = load_policy(variable, env)
    assert (layered.primary, layered.margin, layered.floor) == ("pr_auc", 0.001, 0.7)
    assert dict(layered.guards) == {"log_loss": 0.05}
    assert dict(load_policy(None, {"SAGELAKE_APPROVAL_GUARDS": '{"f1": 0.1}'}).guards) == {"f1": 0.1}
    assert dict(load_policy(None, {"SAGELAKE_APPROVAL_GUARDS": "none"}).guards) == {}
    assert load_policy("  ", {}) == Policy()


@pytest.mark.parametrize(
    ("variable", "env", "message"),
    [
        ("{not json", {}, "sagelake_approval_policy is not valid JSON"),
        ("[1]", {}, "must be a JSON object"),
        ('{"min_auc": 0.7}', {}, "unknown key"),
        ('{"primary": "roc"}', {}, "primary='roc' is not an evaluated metric"),
        ('{"primary": 3}', {}, "must be a metric name"),
        ('{"margin": -0.1}', {}, "margin=-0.1 must be >= 0"),
        ('{"margin": "abc"}', {}, "margin='abc' is not a number"),
        ('{"floor": "nan"}', {}, "not a finite number"),
        ('{"grey_factor": 0.5}', {}, "grey_factor=0.5 must be >= 1"),
        ('{"guards": {"auc": 0.1}}', {}, "is the primary metric"),
        ('{"guards": {"speed": 0.1}}', {}, "guards='speed' is not an evaluated metric"),
        ('{"guards": {"recall": -1}}', {}, "guards.recall=-1.0 must be >= 0"),
        ('{"guards": [1]}', {}, "must map metric"),
        (None, {"SAGELAKE_APPROVAL_MARGIN": "lots"}, "margin='lots' is not a number"),
        (None, {"SAGELAKE_APPROVAL_GUARDS": "recall"}, "guard 'recall' is not metric:tolerance"),
        (None, {"SAGELAKE_APPROVAL_GUARDS": "{bad"}, "SAGELAKE_APPROVAL_GUARDS: guards is not valid JSON"),
        (None, {"SAGELAKE_MIN_AUC": "high"}, "floor='high' is not a number"),
    ],
)
def test_bad_configuration_is_refused_with_the_setting_named(variable, env, message) -> None:
    with pytest.raises(PolicyConfigError, match=re.escape(message)):
        load_policy(variable, env)
