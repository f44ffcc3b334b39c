"""The metric record contract every consumer reads, and the set of records one evaluation makes."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

Family = Literal["performance", "calibration", "fairness", "drift", "sanity", "estimated"]
# 2: impact ratios, scoring rates, parity per evidence level, intersections, sanity.feature_auc,
# performance.selection_rate
ENGINE_VERSION = "govern-metrics/2"


def _clean(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null (the record's detail says why)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class MetricRecord:
    """`{family, metric, feature, group, value, n, ci_low, ci_high, detail}`.

    `feature` is the sensitive or drifting column and `group` the group's value as a string; both
    are None where they do not apply. `value` is None when the metric is undefined on this data,
    and `detail["reason"]` then says why.
    """

    family: Family
    metric: str
    feature: str | None
    group: str | None
    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _clean(self.value))
        object.__setattr__(self, "ci_low", _clean(self.ci_low))
        object.__setattr__(self, "ci_high", _clean(self.ci_high))
        object.__setattr__(self, "n", int(self.n))

    def key(self) -> tuple[str, str, str | None, str | None]:
        return (self.family, self.metric, self.feature, self.group)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricSet:
    """All records of one evaluation plus the parameters that produced them."""

    records: tuple[MetricRecord, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def find(self, family: str, metric: str, feature: str | None = None,
             group: str | None = None) -> MetricRecord | None:
        return next((r for r in self.records if r.key() == (family, metric, feature, group)), None)

    def select(self, family: str | None = None, metric: str | None = None,
               feature: str | None = None) -> list[MetricRecord]:
        return [r for r in self.records if (family is None or r.family == family)
                and (metric is None or r.metric == metric) and (feature is None or r.feature == feature)]

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records]

    def sha256(self) -> str:
        """Hash of the records' canonical JSON: what a gate decision says it judged."""
        text = json.dumps(self.to_list(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def values_sha256(self) -> str:
        """Hash of what the records measured (each one's key, value and rows), not of their intervals or details:
        two evaluations of the same predictions with the same settings share it whatever their bootstrap, so a
        gate of either judges the same evidence."""
        measured = sorted(json.dumps([*r.key(), r.value, r.n], separators=(",", ":"), allow_nan=False)
                          for r in self.records)
        return hashlib.sha256("\n".join(measured).encode()).hexdigest()

    @classmethod
    def from_dicts(cls, rows: Iterable[dict[str, Any]], params: dict[str, Any] | None = None) -> "MetricSet":
        return cls(tuple(MetricRecord(**row) for row in rows), params or {})
