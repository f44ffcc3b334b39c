"""Synthetic prediction sets for the benchmarks: 10 columns, 3 sensitive, 5 features, mild drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SENSITIVE = ["sex", "race", "age_band"]
FEATURES = ["x1", "x2", "x3", "x4", "x5"]


def predictions(rows: int, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """label, score and 8 more columns; `shift` moves the feature distributions (drift)."""
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 5, rows)
    return pd.DataFrame({
        "label": (rng.random(rows) < score).astype(np.int8),
        "score": score,
        "sex": rng.choice(["female", "male"], rows),
        "race": rng.choice(list("abcde"), rows, p=[0.6, 0.2, 0.1, 0.07, 0.03]),
        "age_band": rng.choice(["18-25", "26-40", "41-65", "65+"], rows),
        "x1": rng.normal(shift, 1, rows),
        "x2": rng.exponential(1 + shift, rows),
        "x3": rng.integers(0, 100, rows),
        "x4": rng.choice(list("pqrstu"), rows),
        "x5": rng.normal(0, 1, rows),
    })


def bench_store(folder: Path):
    """A fresh store in `folder` with user `bench` (admin) and model bench version 1; its service."""
    from governance.service import Service

    home = folder / "home"
    Service.open(home=home).init(admin="bench")
    service = Service.open(home=home, actor="bench")
    service.register_model(name="bench")
    artifact = folder / "model.bin"
    artifact.write_bytes(b"model")
    service.register_version(model="bench", version="1", artifact=artifact)
    return home, service


def cli_env(service) -> dict[str, str]:
    """The environment a `govern` child process of the benchmark acts in: bench's API token."""
    import os

    return os.environ | {"GOVERN_TOKEN": service.create_token(user="bench", name="benchmark").secret,
                         "PYTHONUNBUFFERED": "1"}
