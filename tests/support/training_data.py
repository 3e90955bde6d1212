"""Training inputs for tests: the scripts of include/training/ loaded by path, synthetic curated features."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from tests.support.constants import TRAINING_DIR


def load_script(name: str) -> ModuleType:
    """Import ``include/training/<name>.py`` by path (it is not a package)."""
    spec = importlib.util.spec_from_file_location(f"sagelake_test_{name}", TRAINING_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_features(n: int, seed: int) -> pd.DataFrame:
    """Curated churn features with a planted signal (tickets up, tenure/logins down, basic plan)."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "standard", "premium"], n)
    tickets = rng.poisson(1.5, n)
    tenure = rng.integers(10, 1500, n)
    logins = rng.poisson(8, n)
    purchases = rng.poisson(2, n)
    logit = -0.5 + 1.0 * tickets - 0.002 * tenure - 0.15 * logins + 1.2 * (plan == "basic")
    return pd.DataFrame(
        {
            "customer_id": [f"c{seed}-{i:05d}" for i in range(n)],
            "plan": plan,
            "region": rng.choice(["north", "south", "east", "west"], n),
            "monthly_fee": np.select([plan == "basic", plan == "standard"], [9.99, 14.99], 19.99),
            "age": rng.integers(18, 80, n).astype("float64"),
            "support_tickets": tickets.astype("int32"),
            "tenure_days": tenure.astype("int32"),
            "n_events": (logins + purchases + rng.poisson(5, n)).astype("int64"),
            "n_logins": logins.astype("int64"),
            "n_purchases": purchases.astype("int64"),
            "total_amount": purchases * 4.99,
            "avg_session_s": rng.gamma(2.0, 300.0, n),
            "churned": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int32"),
        }
    )


def write_channel(channel: Path, frames: dict[str, pd.DataFrame]) -> Path:
    """Write one Parquet file per ``dt`` partition directory, plus Spark's marker files."""
    for dt, frame in frames.items():
        part = channel / f"dt={dt}"
        part.mkdir(parents=True)
        frame.to_parquet(part / "part-00000-abc.snappy.parquet", index=False)
        (part / "_SUCCESS").write_text("")
        (part / ".part-00000-abc.snappy.parquet.crc").write_bytes(b"crc")
    return channel
