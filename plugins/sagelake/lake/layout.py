"""Where things live in the data lake: one function per S3 location, keyed by the run's partition."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_DT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_dt(dt: str) -> str:
    """Return ``dt`` if it is a ``YYYY-MM-DD`` partition value, else raise a clear error."""
    if not isinstance(dt, str) or not _DT.match(dt):
        raise ValueError(f"partition dt={dt!r} is not a date in YYYY-MM-DD form")
    try:
        date.fromisoformat(dt)
    except ValueError:
        raise ValueError(f"partition dt={dt!r} is not a date in YYYY-MM-DD form") from None
    return dt


@dataclass(frozen=True)
class Lake:
    """S3 layout of the lake in one bucket: ``raw/`` → ``processed/`` → ``curated/``, partitioned by dt."""

    bucket: str

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def raw_customers(self, dt: str) -> str:
        return self.uri(f"raw/customers/dt={check_dt(dt)}/")

    def raw_events(self, dt: str) -> str:
        return self.uri(f"raw/events/dt={check_dt(dt)}/")

    def processed_events(self, dt: str) -> str:
        return self.uri(f"processed/events/dt={check_dt(dt)}/")

    def curated_features(self, dt: str) -> str:
        return self.uri(f"curated/churn_features/dt={check_dt(dt)}/")

    def quarantine(self, dt: str) -> str:
        return self.uri(f"quarantine/churn/dt={check_dt(dt)}/")

    def etl_metrics(self, dt: str) -> str:
        return self.uri(f"metrics/etl/dt={check_dt(dt)}/")

    def quality_results(self, dt: str) -> str:
        return self.uri(f"metrics/quality/dt={check_dt(dt)}/")

    def athena_results(self) -> str:
        return self.uri("athena-results/")

    def code(self, name: str) -> str:
        return self.uri(f"code/{name}")

    def model_output(self) -> str:
        return self.uri("models/churn/")

    def training_data(self, dt: str, run: str) -> str:
        """One run's training channels and held-out rows (scratch: expired by the lake's lifecycle)."""
        return self.uri(f"training/churn/dt={check_dt(dt)}/run={run}/")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; raise on anything else."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key
