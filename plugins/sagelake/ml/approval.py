"""Model approval policy: a plain decision from evaluation metrics, applied by ``ModelApprovalOperator``."""

from __future__ import annotations

from dataclasses import dataclass

APPROVED = "Approved"
REJECTED = "Rejected"


@dataclass(frozen=True)
class Decision:
    status: str  # Approved | Rejected
    reason: str

    @property
    def approved(self) -> bool:
        return self.status == APPROVED


def decide(metrics: dict[str, float], *, metric: str = "auc", minimum: float) -> Decision:
    """Approve when ``metrics[metric] >= minimum``; a missing metric is a rejection, never a pass."""
    if metric not in metrics:
        return Decision(REJECTED, f"metric {metric!r} missing from evaluation (have: {sorted(metrics)})")
    value = float(metrics[metric])
    if value != value:  # NaN
        return Decision(REJECTED, f"{metric} is NaN")
    if value >= minimum:
        return Decision(APPROVED, f"{metric}={value:.4f} >= {minimum:.4f}")
    return Decision(REJECTED, f"{metric}={value:.4f} < {minimum:.4f}")


def metrics_from_metadata(metadata: dict[str, str]) -> dict[str, float]:
    """Recover ``metric_*`` entries that registration stored in CustomerMetadataProperties."""
    return {k.removeprefix("metric_"): float(v) for k, v in metadata.items() if k.startswith("metric_")}
