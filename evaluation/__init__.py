"""The metric engine: performance, calibration, fairness and drift per model version, in DuckDB SQL.

    from evaluation import evaluate
    metric_set = evaluate(current="eval.parquet", reference="ref.parquet", label="y", score="p",
                          sensitive=["sex"], features=["age", "income"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evaluation.errors import MetricInputError
from evaluation.records import ENGINE_VERSION, MetricRecord, MetricSet

if TYPE_CHECKING:
    from evaluation.engine import evaluate


def __getattr__(name: str) -> Any:
    # The engine (numpy, its SQL) loads on first use: reading stored records needs only the records.
    if name == "evaluate":
        from evaluation.engine import evaluate

        return evaluate
    raise AttributeError(f"module 'evaluation' has no attribute {name!r}")


__all__ = ["evaluate", "MetricInputError", "MetricRecord", "MetricSet", "ENGINE_VERSION"]
