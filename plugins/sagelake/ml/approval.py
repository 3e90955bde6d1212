"""Model decisions in the SageMaker Model Registry: the policy's, or a person's, with who and why.

:mod:`sagelake.ml.policy` decides approve / reject / ask from the evaluation report; this module turns a
decision into the package version's ``ModelApprovalStatus`` and ``ApprovalDescription`` and writes the
comparison a person sees in the Airflow UI (Required Actions) when the policy asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelake.ml.policy import APPROVE, ASK, REJECT, Decision

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
STATUS = {APPROVE: APPROVED, REJECT: REJECTED, ASK: PENDING}
APPROVAL_DESCRIPTION_MAX_LEN = 1024  # UpdateModelPackage's ApprovalDescription limit
COMPARED = ("auc", "pr_auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1")


class ReportError(ValueError):
    """The evaluation report does not hold the challenger's metrics."""


def models_from_report(report: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(challenger, champion or None)`` metrics from an evaluation report's ``metrics.json``."""
    models = report.get("models") or {}
    if not isinstance(models.get("challenger"), Mapping):
        raise ReportError(f"evaluation report has no challenger metrics (models: {sorted(models)})")
    champion = models.get("champion")
    return dict(models["challenger"]), dict(champion) if isinstance(champion, Mapping) else None


def policy_description(decision: Decision) -> str:
    """``ApprovalDescription`` of a policy decision: ``policy <outcome>: reasons``."""
    return f"policy {decision.summary()}"[:APPROVAL_DESCRIPTION_MAX_LEN]


def person_description(
    chosen: str, user: Mapping[str, Any] | None, reason: str | None, *, timed_out: bool
) -> str:
    """``ApprovalDescription`` of a person's answer in the Airflow UI, or of the timeout's default."""
    if timed_out or not user:
        return "rejected: nobody answered before the approval timeout (the default is to reject)"
    who = user.get("name") or user.get("id") or "unknown user"
    why = (reason or "").strip() or "no reason given"
    verb = "approved" if chosen == "Approve" else "rejected"
    return f"{verb} by {who} in the Airflow UI: {why}"[:APPROVAL_DESCRIPTION_MAX_LEN]


def record(sagemaker: Any, package_arn: str, status: str, description: str) -> None:
    """Write ``status`` and ``description`` to the package version (``UpdateModelPackage``)."""
    if status not in (APPROVED, REJECTED, PENDING):
        raise ValueError(f"ModelApprovalStatus {status!r} is not Approved, Rejected or PendingManualApproval")
    sagemaker.update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus=status,
        ApprovalDescription=description[:APPROVAL_DESCRIPTION_MAX_LEN],
    )


def _cell(metrics: Mapping[str, Any] | None, name: str) -> str:
    value = (metrics or {}).get(name)
    return f"{value:.4f}" if isinstance(value, int | float) else "—"


def comparison_markdown(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    *,
    decision: Decision,
    report_url: str,
    package_arn: str,
    dt: str,
) -> str:
    """The body of the person's approval request: both models' metrics side by side, why the policy
    asks, and the report link (Markdown, as the Required Actions page renders it)."""
    rows = [
        f"| {name} | {_cell(challenger, name)} | {_cell(champion, name)} |"
        for name in COMPARED
        if name in challenger or (champion and name in champion)
    ]
    reasons = "\n".join(f"- {reason}" for reason in decision.reasons)
    return "\n".join(
        [
            f"Challenger `{package_arn}`, trained on the window up to **dt={dt}**, scored with the "
            "model serving production on the same held-out rows.",
            "",
            "| metric | challenger | champion |",
            "|---|---|---|",
            *rows,
            "",
            "The policy asks a person because:",
            reasons,
            "",
            f"Evaluation report: {report_url}",
            "",
            "**Approve** deploys the challenger to the production endpoint; **Reject** (also the answer "
            "when nobody answers in time) keeps the champion. Say why in *reason*: it is written to the "
            "model registry with your name.",
        ]
    )


def metrics_from_metadata(metadata: Mapping[str, str]) -> dict[str, float]:
    """Recover ``metric_*`` entries that registration stored in CustomerMetadataProperties."""
    return {k.removeprefix("metric_"): float(v) for k, v in metadata.items() if k.startswith("metric_")}
