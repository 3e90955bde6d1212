"""The params the pipeline's DAGs take: the partition ``dt`` and every pipeline setting."""

from __future__ import annotations

from airflow.sdk import Param

from sagelake.config.settings import default_params


def pipeline_params(dt_fallback: str) -> dict[str, Param]:
    """``dt`` (``YYYY-MM-DD``; empty means ``dt_fallback``) and the settings of ``default_params()``."""
    return {
        "dt": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description=f"Partition to process (YYYY-MM-DD); empty: {dt_fallback}.",
        ),
        **{name: Param(value) for name, value in default_params().items()},
    }
