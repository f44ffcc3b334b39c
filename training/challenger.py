"""The challenger: a logistic regression fitted on the rows the torch model trains on.

A simple, well-understood benchmark the model has to beat (model-risk guidance calls this
benchmarking, part of effective challenge): `govern train` scores the eval rows with it as well, and a
policy rule with `baseline: challenger` judges the model against it. Numbers are standardised (missing
values take the training median), categories one-hot encoded (unseen levels are all zeros), columns
with more than MAX_CATEGORY_LEVELS levels left out, as the torch model's encoding does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from training.data import MAX_CATEGORY_LEVELS, category_text

MAX_ITER = 1000
NAME = "logistic regression"


@dataclass(frozen=True)
class Challenger:
    """A fitted pipeline, or a constant score (the training base rate) when a regression cannot be
    fitted: one class only, or no usable column."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    pipeline: object | None
    constant: float

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The probability of 1 for each row of `frame`."""
        if self.pipeline is None:
            return np.full(len(frame), self.constant)
        return self.pipeline.predict_proba(_columns(frame, self.numeric, self.categorical))[:, 1]


def fit_challenger(frame: pd.DataFrame, *, label: str, features: Sequence[str], seed: int,
                   sample_weights: np.ndarray | None = None, categorical: Sequence[str] = ()) -> Challenger:
    """A seeded logistic regression of `label` on `features` over every row of `frame`; `categorical`
    names columns of numbers to one-hot encode as category codes, as the version's network does."""
    from sklearn.compose import ColumnTransformer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    y = frame[label].to_numpy().astype(int)
    weights = None if sample_weights is None else np.asarray(sample_weights, dtype=float)
    base_rate = float(np.average(y, weights=weights)) if len(y) else 0.5
    numeric = tuple(c for c in features if _is_number(frame[c]) and c not in categorical)
    categorical = tuple(c for c in features if c not in numeric
                        and frame[c].nunique(dropna=True) <= MAX_CATEGORY_LEVELS)
    if len(np.unique(y)) < 2 or not (numeric or categorical):
        return Challenger(numeric, categorical, None, base_rate)
    parts = []
    if numeric:
        parts.append(("numbers", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                               StandardScaler()), list(numeric)))
    if categorical:
        parts.append(("categories", OneHotEncoder(handle_unknown="ignore"), list(categorical)))
    pipeline = Pipeline([("encode", ColumnTransformer(parts)),
                         ("regression", LogisticRegression(max_iter=MAX_ITER, random_state=seed))])
    with warnings.catch_warnings():  # a benchmark that stopped at MAX_ITER is still a benchmark
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(_columns(frame, numeric, categorical), y, regression__sample_weight=weights)
    return Challenger(numeric, categorical, pipeline, base_rate)


def _columns(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """Numbers as floats (infinities as missing), categories as text (missing as its own level)."""
    out = {}
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        out[column] = np.where(np.isfinite(values), values, np.nan)
    for column in categorical:
        values = frame[column]
        text = values.map(category_text) if _is_number(values) else values.astype(object).astype(str)
        out[column] = text.where(values.notna(), "\x00missing").astype(str).to_numpy()
    return pd.DataFrame(out, index=frame.index)


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
