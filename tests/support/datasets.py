"""Data sets the metric engine is checked on: generated edge cases and the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import governance
from tests.support.frames import german_frame

PACKAGE_DATA = Path(governance.__file__).resolve().parent / "data"
BOUNDARIES = np.array([float.fromhex(h) for h in ("0x1.1111111111111p-4", "0x1.999999999999ap-3",
                                                  "0x1.5555555555555p-1", "0x1.ddddddddddddep-1")])


def skewed(seed: int = 0) -> dict:
    """Skewed scores, a tiny and an imbalanced group, an unseen category, a constant column, drift;
    reference > 1000 rows (Wasserstein / Jensen-Shannon)."""
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: float, categories: list[str]) -> pd.DataFrame:
        p = rng.beta(0.4, 3.0, n)
        return pd.DataFrame({
            "y": (rng.random(n) < np.clip(p * 1.4 + 0.02, 0, 1)).astype(int),
            "p": p,
            "sex": rng.choice(["female", "male"], n, p=[0.35, 0.65]),
            "race": rng.choice(["w", "b", "a", "o", "tiny"], n, p=[0.7, 0.15, 0.1, 0.047, 0.003]),
            "x": rng.normal(shift, 1.0, n),
            "k": rng.integers(0, 4, n),
            "c": rng.choice(categories, n),
            "const": np.ones(n),
            "amount": rng.lognormal(3 + shift, 1, n).round(2),
        })

    return {"current": frame(4000, 0.25, ["u", "v", "w", "new"]), "reference": frame(1500, 0.0, ["u", "v", "w"]),
            "sensitive": ["sex", "race"], "features": ["x", "k", "c", "const", "amount"]}


def small_reference(seed: int = 1) -> dict:
    """Reference ≤ 1000 rows: K-S, chi-square and Z-test; a binary and a 4-valued integer column."""
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: float) -> pd.DataFrame:
        p = rng.uniform(0, 1, n)
        return pd.DataFrame({
            "y": (rng.random(n) < p).astype(int), "p": p, "grp": rng.choice(["a", "b", "c"], n),
            "x": rng.normal(shift, 1, n), "flag": rng.choice([0, 1], n, p=[0.5 + shift / 2, 0.5 - shift / 2]),
            "level": rng.integers(1, 5, n), "colour": rng.choice(["red", "green"], n),
        })

    return {"current": frame(900, 0.2), "reference": frame(700, 0.0), "sensitive": ["grp"],
            "features": ["x", "flag", "level", "colour"]}


def edges(seed: int = 2) -> dict:
    """Exact 0.0 and 1.0 scores, scores on bin boundaries and the threshold, a group with no positives."""
    rng = np.random.default_rng(seed)
    n = 400
    p = rng.random(n)
    p[:40] = 0.0
    p[40:80] = 1.0
    p[80:100] = rng.choice(BOUNDARIES, 20)
    p[100:110] = 0.5
    y = (rng.random(n) < p).astype(int)
    group = rng.choice(["g1", "g2"], n)
    group[-12:] = "allneg"
    y[-12:] = 0
    current = pd.DataFrame({"y": y, "p": p, "group": group, "z": rng.normal(size=n)})
    reference = current.sample(300, random_state=seed).assign(z=lambda f: f["z"] + 1.0)
    return {"current": current, "reference": reference, "sensitive": ["group"], "features": ["z"]}


def acs() -> dict:
    """Real: ACS employment, Massachusetts; 2015 as reference, 2016 as current, the shipped model's scores."""
    frame = pd.read_csv(PACKAGE_DATA / "acs_employment_ma_every20th.csv.gz")
    return {
        "current": frame[frame["year"] == 2016].reset_index(drop=True),
        "reference": frame[frame["year"] == 2015].reset_index(drop=True),
        "label": "employed", "score": "predicted_probability",
        "sensitive": ["SEX", "RAC1P"], "features": ["AGEP", "SCHL", "MAR", "DIS", "CIT", "MIG", "NATIVITY"],
    }


def german() -> dict:
    """Real: German credit with a logistic regression's scores; sex/status and foreign worker as groups."""
    from sklearn.linear_model import LogisticRegression

    frame = german_frame()
    numeric = ["a02", "a05", "a08", "a11", "a13", "a16", "a18"]
    model = LogisticRegression(max_iter=1000).fit(frame[numeric][:600], frame["label"][:600])
    frame["score"] = model.predict_proba(frame[numeric])[:, 1]
    return {"current": frame[600:].reset_index(drop=True), "reference": frame[:600].reset_index(drop=True),
            "label": "label", "score": "score", "sensitive": ["a09", "a20"], "features": ["a02", "a05", "a13", "a01"]}


ALL = {"skewed": skewed, "small_reference": small_reference, "edges": edges, "acs": acs, "german": german}
