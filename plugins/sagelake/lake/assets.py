"""Assets that chain the pipeline's DAGs."""

from __future__ import annotations

from airflow.sdk import Asset

from sagelake.config.settings import default_params


def curated_features() -> Asset:
    """The curated churn features table; each event's ``extra["dt"]`` names the partition written."""
    bucket = default_params()["bucket"]
    return Asset(name="churn_features", uri=f"s3://{bucket}/curated/churn_features/")


def churn_scores() -> Asset:
    """The batch churn scores table; each event's ``extra`` is ``{dt, version, location}``."""
    bucket = default_params()["bucket"]
    return Asset(name="churn_scores", uri=f"s3://{bucket}/curated/churn_scores/")
