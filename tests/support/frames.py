"""Prediction and training tables the tests build: generated, and UCI German credit (real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent.parent / "data"


def predictions_frame(n: int = 200, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "label": rng.integers(0, 2, n),
        "score": rng.random(n).round(6),
        "sex": rng.choice(["female", "male"], n),
        "age": rng.integers(18, 90, n),
        "income": rng.normal(50_000, 9_000, n).round(2),
    })


def german_frame() -> pd.DataFrame:
    """UCI German credit (real data): 20 coded attributes and `label` (1 = bad credit)."""
    frame = pd.read_csv(DATA / "german.data", sep=" ", header=None)
    frame.columns = [f"a{i:02d}" for i in range(1, 21)] + ["label"]
    frame["label"] = (frame["label"] == 2).astype(int)
    return frame


def biased(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Training data whose labels depend on x and z, and on sex through a biased labelling process."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "sex": rng.choice(["f", "m"], n),
                          "c": rng.choice(list("abc"), n)})
    logit = 1.5 * frame["x"] - frame["z"] + np.where(frame["sex"] == "m", 1.0, -0.8)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame
