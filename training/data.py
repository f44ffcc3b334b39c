"""Tabular encoding for the torch model: standardised numbers, integer codes for categories."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

MAX_CATEGORY_LEVELS = 200  # beyond this a text column is not a category: leave it out


@dataclass(frozen=True)
class TabularSpec:
    """How columns become tensors; fitted on training data and stored with the model."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    vocab: dict[str, list[str]] = field(default_factory=dict)  # index 0 is "unseen or missing"

    def cardinalities(self) -> list[int]:
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TabularSpec":
        return cls(**data)


def fit_spec(frame: pd.DataFrame, features: Sequence[str]) -> TabularSpec:
    """Numbers (not booleans) are numeric; everything else with at most 200 levels is categorical."""
    numeric, categorical, means, stds, vocab = [], [], {}, {}, {}
    for column in features:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numeric.append(column)
            finite = values.astype(float)
            means[column] = float(finite.mean()) if finite.notna().any() else 0.0
            std = float(finite.std(ddof=0)) if finite.notna().any() else 1.0
            stds[column] = std if std > 0 else 1.0
        else:
            levels = sorted(set(_levels(values).tolist()))
            if len(levels) <= MAX_CATEGORY_LEVELS:
                categorical.append(column)
                vocab[column] = levels
    return TabularSpec(numeric, categorical, means, stds, vocab)


def encode(frame: pd.DataFrame, spec: TabularSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(numbers as float32 [n, numeric], category codes as int64 [n, categorical]), column-wise and
    vectorised (one pass per column, no per-row Python)."""
    n = len(frame)
    numbers = np.zeros((n, len(spec.numeric)), dtype=np.float32)
    for j, c in enumerate(spec.numeric):
        values = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        scaled = (values - spec.means[c]) / spec.stds[c]
        numbers[:, j] = np.where(np.isfinite(scaled), scaled, 0.0)
    codes = np.zeros((n, len(spec.categorical)), dtype=np.int64)
    for j, c in enumerate(spec.categorical):
        # Factorise once, then look the few distinct values up in the vocabulary: no per-row strings.
        found, uniques = pd.factorize(frame[c], use_na_sentinel=True)
        position = {level: i + 1 for i, level in enumerate(spec.vocab[c])}
        lookup = np.array([position.get(u, 0) for u in _as_text(uniques)] + [0], dtype=np.int64)
        codes[:, j] = lookup[found]  # the NA sentinel -1 reads the trailing 0: "unseen or missing"
    return torch.from_numpy(numbers), torch.from_numpy(codes)


def _as_text(uniques) -> np.ndarray:
    """A column's distinct values as the strings the vocabulary holds (str() of each, as astype(str))."""
    return pd.Series(uniques, dtype=object).astype(str).to_numpy() if len(uniques) else np.array([], dtype=object)


def _levels(values: pd.Series) -> np.ndarray:
    """The distinct non-missing values of a column as text."""
    return _as_text(pd.factorize(values, use_na_sentinel=True)[1])
