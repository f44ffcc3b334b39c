"""UCI Adult as a pandas frame with a 0/1 `income` label (for the training benchmarks)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "data"
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income"]


def load_adult() -> pd.DataFrame:
    parts = []
    for name, skip in (("adult.data.gz", 0), ("adult.test.gz", 1)):
        frame = pd.read_csv(DATA / name, header=None, names=COLUMNS, skipinitialspace=True, skiprows=skip,
                            na_values="?")
        parts.append(frame)
    frame = pd.concat(parts, ignore_index=True).dropna(subset=["income"])
    frame["income"] = frame["income"].str.rstrip(".").eq(">50K").astype(int)
    return frame
