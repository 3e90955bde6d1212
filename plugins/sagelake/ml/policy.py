"""The approval policy: approve, reject or ask a person, from the challenger's and the champion's metrics.

Both models are scored on the same held-out data (``include/evaluation/evaluate.py``); ``decide`` compares
them. ``p`` is the primary metric, ``Δ`` how much better the challenger is on it (sign-corrected, so that
``Δ > 0`` always means better, also for lower-is-better metrics), and for each guard metric ``w`` how much
*worse* the challenger is (``w <= 0``: as good or better). Comparisons allow ``EPSILON`` for float noise.

With a champion:

1. the challenger's primary or a guard metric missing or not finite → **reject**;
2. ``Δ <= 0`` (not better) → **reject**; a guard with ``w > grey_factor × tolerance`` → **reject**;
3. ``Δ >= margin`` and every guard ``w <= tolerance`` → **approve** — unless the challenger's primary is
   below ``floor``, then **ask**;
4. otherwise → **ask** (the grey zone): better but by less than ``margin``, and/or a guard worse than its
   tolerance but within ``grey_factor × tolerance``. A champion metric missing → **ask** too.

Without a champion: primary at least ``floor`` → **approve**, else **reject**.

Only the newest published partition may promote automatically (:func:`may_promote`); for any other day
:func:`limit_to_newest` turns an approval into **ask**. The policy is deployment configuration — the Airflow
Variable ``sagelake_approval_policy`` (JSON) over ``SAGELAKE_APPROVAL_*`` environment variables over the
defaults (:func:`load_policy`) — never a run's params.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelake.lake.layout import check_dt

APPROVE, REJECT, ASK = "approve", "reject", "ask"
OUTCOMES = (APPROVE, REJECT, ASK)
EPSILON = 1e-9
VARIABLE = "sagelake_approval_policy"
# Metrics of the evaluation report and their direction.
HIGHER_IS_BETTER = {
    "auc": True,
    "pr_auc": True,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "log_loss": False,
    "brier": False,
}
ENV = {
    "primary": "SAGELAKE_APPROVAL_PRIMARY_METRIC",
    "margin": "SAGELAKE_APPROVAL_MARGIN",
    "floor": "SAGELAKE_APPROVAL_FLOOR",
    "guards": "SAGELAKE_APPROVAL_GUARDS",
    "grey_factor": "SAGELAKE_APPROVAL_GREY_FACTOR",
}
DEFAULT_GUARDS = {"log_loss": 0.02, "recall": 0.02}


class PolicyConfigError(ValueError):
    """The approval policy configuration is invalid; the message names the setting and what to fix."""


@dataclass(frozen=True)
class Policy:
    """Thresholds of :func:`decide`.

    :param primary: the metric a challenger must improve (a key of ``HIGHER_IS_BETTER``).
    :param margin: how much better than the champion on ``primary`` approves automatically (>= 0).
    :param floor: the value of ``primary`` a model needs to be approved without a champion, and that an
        automatic approval never goes below (for a lower-is-better primary: the highest allowed value).
    :param guards: metric → tolerance: how much worse than the champion a guard metric may be (>= 0).
    :param grey_factor: a guard worse than ``tolerance`` but at most ``grey_factor × tolerance`` asks a
        person instead of rejecting (>= 1; 1 means no grey zone for guards).
    """

    primary: str = "auc"
    margin: float = 0.005
    floor: float = 0.75
    guards: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_GUARDS))
    grey_factor: float = 2.0

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class Decision:
    outcome: str  # approve | reject | ask
    reasons: list[str]

    @property
    def approved(self) -> bool:
        return self.outcome == APPROVE

    def summary(self) -> str:
        return f"{self.outcome}: " + "; ".join(self.reasons)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PolicyConfigError(f"approval policy {name}={value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise PolicyConfigError(f"approval policy {name}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise PolicyConfigError(f"approval policy {name}={value!r} is not a finite number")
    return number


def _metric(name: str, value: Any) -> str:
    if value not in HIGHER_IS_BETTER:
        raise PolicyConfigError(
            f"approval policy {name}={value!r} is not an evaluated metric: use one of "
            + ", ".join(sorted(HIGHER_IS_BETTER))
        )
    return value


def validate(policy: Policy) -> None:
    """Raise :class:`PolicyConfigError` unless every threshold of ``policy`` makes sense."""
    _metric("primary", policy.primary)
    if _number("margin", policy.margin) < 0:
        raise PolicyConfigError(f"approval policy margin={policy.margin} must be >= 0")
    _number("floor", policy.floor)
    if _number("grey_factor", policy.grey_factor) < 1:
        raise PolicyConfigError(f"approval policy grey_factor={policy.grey_factor} must be >= 1")
    if not isinstance(policy.guards, Mapping):
        raise PolicyConfigError(f"approval policy guards={policy.guards!r} must map metric → tolerance")
    for metric, tolerance in policy.guards.items():
        _metric("guards", metric)
        if metric == policy.primary:
            raise PolicyConfigError(f"approval policy guards: {metric!r} is the primary metric, not a guard")
        if _number(f"guards.{metric}", tolerance) < 0:
            raise PolicyConfigError(f"approval policy guards.{metric}={tolerance} must be >= 0")


def _better_by(metric: str, challenger: float, champion: float) -> float:
    """How much better ``challenger`` is than ``champion`` on ``metric`` (negative: worse)."""
    return challenger - champion if HIGHER_IS_BETTER[metric] else champion - challenger


def _value(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    raw = (metrics or {}).get(metric)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _meets_floor(policy: Policy, value: float) -> bool:
    return _better_by(policy.primary, value, policy.floor) >= -EPSILON


def decide(challenger: dict, champion: dict | None, policy: Policy) -> Decision:
    """Approve, reject or ask a person about ``challenger`` given ``champion`` (or none); see the module."""
    p = policy.primary
    needed = [p, *policy.guards] if champion is not None else [p]
    unusable = [m for m in needed if _value(challenger, m) is None]
    if unusable:
        return Decision(REJECT, [f"challenger metric(s) {', '.join(unusable)} missing or not finite"])
    value = _value(challenger, p)
    if champion is None:
        if _meets_floor(policy, value):
            return Decision(APPROVE, [f"no champion; {p}={value:.4f} meets the floor {policy.floor:.4f}"])
        return Decision(REJECT, [f"no champion; {p}={value:.4f} is below the floor {policy.floor:.4f}"])

    unknown = [m for m in [p, *policy.guards] if _value(champion, m) is None]
    if unknown:
        return Decision(ASK, [f"champion metric(s) {', '.join(unknown)} missing: cannot compare"])
    rejections, asks, fine = [], [], []
    delta = _better_by(p, value, _value(champion, p))
    versus = f"{p} {value:.4f} vs champion {_value(champion, p):.4f} ({delta:+.4f} better)"
    if delta <= EPSILON:
        rejections.append(f"{versus}: not better")
    elif delta < policy.margin - EPSILON:
        asks.append(f"{versus}: below the margin {policy.margin:.4f}")
    else:
        fine.append(f"{versus}: meets the margin {policy.margin:.4f}")
    for metric, tolerance in policy.guards.items():
        worse = -_better_by(metric, _value(challenger, metric), _value(champion, metric))
        guard = (
            f"guard {metric} {_value(challenger, metric):.4f} vs champion {_value(champion, metric):.4f} "
            f"({worse:+.4f} worse, tolerance {tolerance:.4f})"
        )
        if worse <= tolerance + EPSILON:
            fine.append(f"{guard}: within tolerance")
        elif worse <= policy.grey_factor * tolerance + EPSILON:
            asks.append(f"{guard}: beyond tolerance, within {policy.grey_factor:g}× it")
        else:
            rejections.append(f"{guard}: beyond {policy.grey_factor:g}× the tolerance")
    if rejections:
        return Decision(REJECT, rejections + asks)
    if asks:
        return Decision(ASK, asks + fine)
    if not _meets_floor(policy, value):
        return Decision(ASK, [f"{p}={value:.4f} is below the floor {policy.floor:.4f}", *fine])
    return Decision(APPROVE, fine)


def may_promote(dt: str, newest_published_dt: str | None) -> bool:
    """Whether a model trained for partition ``dt`` may replace the serving model without a person:
    only when ``dt`` is the newest published partition (backfills and reprocessing of older days never)."""
    check_dt(dt)
    return newest_published_dt is not None and check_dt(newest_published_dt) == dt


def limit_to_newest(decision: Decision, dt: str, newest_published_dt: str | None) -> Decision:
    """``decision``, with an approval turned into ``ask`` unless ``dt`` is the newest published partition."""
    if decision.outcome != APPROVE or may_promote(dt, newest_published_dt):
        return decision
    reason = f"dt={dt} is not the newest published partition ({newest_published_dt}): a person decides"
    return Decision(ASK, [reason, *decision.reasons])


def _guards(raw: Any, source: str) -> dict[str, float]:
    """Guards as a mapping, or (environment) JSON of one, or ``metric:tolerance,metric:tolerance``."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        raise PolicyConfigError(f"{source}: guards={raw!r} must map metric → tolerance")
    text = raw.strip()
    if not text or text.lower() == "none":
        return {}
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyConfigError(f"{source}: guards is not valid JSON: {exc}") from None
        return _guards(parsed, source)
    guards = {}
    for item in text.split(","):
        metric, sep, tolerance = item.partition(":")
        if not sep:
            raise PolicyConfigError(f"{source}: guard {item.strip()!r} is not metric:tolerance")
        guards[metric.strip()] = tolerance.strip()
    return guards


def load_policy(variable: str | None = None, environ: Mapping[str, str] | None = None) -> Policy:
    """The policy from deployment configuration: defaults, overridden by ``SAGELAKE_APPROVAL_*``
    environment variables (``SAGELAKE_MIN_AUC`` is the floor's fallback), overridden key by key by
    ``variable``, the JSON of the Airflow Variable ``sagelake_approval_policy`` (e.g.
    ``{"primary": "auc", "margin": 0.005, "floor": 0.75, "guards": {"log_loss": 0.02}, "grey_factor": 2}``).
    Raises :class:`PolicyConfigError` naming the bad setting."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    floor = environ.get(ENV["floor"], "").strip() or environ.get("SAGELAKE_MIN_AUC", "").strip()
    if floor:
        values["floor"] = floor
    for key, name in ENV.items():
        raw = environ.get(name, "").strip()
        if raw and key != "floor":
            values[key] = _guards(raw, name) if key == "guards" else raw
    if variable is not None and variable.strip():
        try:
            overrides = json.loads(variable)
        except json.JSONDecodeError as exc:
            raise PolicyConfigError(f"Airflow Variable {VARIABLE} is not valid JSON: {exc}") from None
        if not isinstance(overrides, dict):
            raise PolicyConfigError(f"Airflow Variable {VARIABLE} must be a JSON object, got {overrides!r}")
        unknown = sorted(set(overrides) - set(ENV))
        if unknown:
            raise PolicyConfigError(
                f"Airflow Variable {VARIABLE}: unknown key(s) {', '.join(unknown)}; known: {', '.join(ENV)}"
            )
        if "guards" in overrides:
            overrides["guards"] = _guards(overrides["guards"], f"Airflow Variable {VARIABLE}")
        values.update(overrides)
    for key in ("margin", "floor", "grey_factor"):
        if key in values:
            values[key] = _number(key, values[key])
    if "guards" in values:
        values["guards"] = {m: _number(f"guards.{m}", t) for m, t in values["guards"].items()}
    if "primary" in values and not isinstance(values["primary"], str):
        raise PolicyConfigError(f"approval policy primary={values['primary']!r} must be a metric name")
    return Policy(**values)


def policy_from_airflow() -> Policy:
    """:func:`load_policy` with the Airflow Variable ``sagelake_approval_policy`` (read at run time)."""
    from airflow.sdk import Variable

    return load_policy(Variable.get(VARIABLE, default=None))
