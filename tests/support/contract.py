"""The curated features contract as a pyarrow schema, shared by tests that write or read curated Parquet."""

from __future__ import annotations

import pyarrow as pa

FEATURES_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("plan", pa.string()),
        ("region", pa.string()),
        ("monthly_fee", pa.float64()),
        ("age", pa.float64()),
        ("support_tickets", pa.int32()),
        ("tenure_days", pa.int32()),
        ("n_events", pa.int64()),
        ("n_logins", pa.int64()),
        ("n_purchases", pa.int64()),
        ("total_amount", pa.float64()),
        ("avg_session_s", pa.float64()),
        ("churned", pa.int32()),
    ]
)
