"""The metric engine: performance, calibration, fairness and drift per model version, in DuckDB SQL.

    from evaluation import evaluate
    metric_set = evaluate(current="eval.parquet", reference="ref.parquet", label="y", score="p",
                          sensitive=["sex"], features=["age", "income"])
"""

from evaluation.engine import evaluate
from evaluation.errors import MetricInputError
from evaluation.records import ENGINE_VERSION, MetricRecord, MetricSet

__all__ = ["evaluate", "MetricInputError", "MetricRecord", "MetricSet", "ENGINE_VERSION"]
