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
        if _is_number(values):
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


def fit_encode(frame: pd.DataFrame, features: Sequence[str], rows: np.ndarray,
               categorical: Sequence[str] = ()) -> tuple[TabularSpec, torch.Tensor, torch.Tensor]:
    """`fit_spec` on `frame.iloc[rows]`, then `encode(frame)`: the same results, with each categorical
    column factorised once rather than once to fit and once to encode (most of the time at 1M rows).
    `categorical` names columns of numbers to take as category codes."""
    numeric = [c for c in features if _is_number(frame[c]) and c not in categorical]
    fitted = fit_spec(frame[numeric].iloc[rows], numeric)
    categorical, vocab, found_by = [], {}, {}
    for column in (c for c in features if c not in numeric):
        found, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        text = _as_text(uniques)
        seen = np.flatnonzero(np.bincount(found[rows] + 1, minlength=len(text) + 1)[1:])  # np.unique's, 4x faster
        levels = sorted(set(text[seen].tolist()))
        if len(levels) <= MAX_CATEGORY_LEVELS:
            categorical.append(column)
            vocab[column] = levels
            found_by[column] = (found, text)
    spec = TabularSpec(numeric, categorical, fitted.means, fitted.stds, vocab)
    return spec, _numbers(frame, spec), _codes(frame, spec, found_by)


def encode(frame: pd.DataFrame, spec: TabularSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(numbers as float32 [n, numeric], category codes as int64 [n, categorical]), column-wise and
    vectorised (one pass per column, no per-row Python)."""
    return _numbers(frame, spec), _codes(frame, spec)


FARTHEST = 1e6  # standard deviations from the training mean a number is taken to lie at most


def _numbers(frame: pd.DataFrame, spec: TabularSpec) -> torch.Tensor:
    numbers = np.zeros((len(frame), len(spec.numeric)), dtype=np.float32)
    for j, c in enumerate(spec.numeric):
        values = number_values(frame[c])
        scaled = (values - spec.means[c]) / spec.stds[c]
        # a value over a million standard deviations out counts as that far: float32 holds no larger
        # product of it (1e308 scored NaN); missing and non-numbers count as the mean
        numbers[:, j] = np.where(np.isfinite(scaled), np.clip(scaled, -FARTHEST, FARTHEST), 0.0)
    return torch.from_numpy(numbers)


def number_values(values: pd.Series) -> np.ndarray:
    """A column read as numbers (float64): what is not a number is NaN, and so are dates and durations,
    which pandas would read as nanoseconds (a date in an age column scored as an age of 10^18)."""
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values) \
            or isinstance(values.dtype, pd.PeriodDtype):
        return np.full(len(values), np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _codes(frame: pd.DataFrame, spec: TabularSpec, factorised: dict | None = None) -> torch.Tensor:
    codes = np.zeros((len(frame), len(spec.categorical)), dtype=np.int64)
    for j, c in enumerate(spec.categorical):
        # Factorise once, then look the few distinct values up in the vocabulary: no per-row strings.
        if factorised and c in factorised:
            found, text = factorised[c]
        else:
            found, uniques = pd.factorize(frame[c], use_na_sentinel=True)
            text = _as_text(uniques)
        position = {level: i + 1 for i, level in enumerate(spec.vocab[c])}
        lookup = np.array([position.get(u, 0) for u in text] + [0], dtype=np.int64)
        codes[:, j] = lookup[found]  # the NA sentinel -1 reads the trailing 0: "unseen or missing"
    return torch.from_numpy(codes)


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _as_text(uniques) -> np.ndarray:
    """A column's distinct values as the strings the vocabulary holds (str() of each, as astype(str)); codes
    in a column of numbers (a `categorical` setting) read alike as integers and floats: 3 and 3.0 are "3"."""
    if not len(uniques):
        return np.array([], dtype=object)
    values = pd.Series(uniques)
    if _is_number(values):
        return np.array([category_text(v) for v in values], dtype=object)
    return pd.Series(uniques, dtype=object).astype(str).to_numpy()


def category_text(value: Any) -> str:
    """A number taken as a category code, as text: integral values without a decimal point."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _levels(values: pd.Series) -> np.ndarray:
    """The distinct non-missing values of a column as text."""
    return _as_text(pd.factorize(values, use_na_sentinel=True)[1])
