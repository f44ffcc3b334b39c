"""Two evaluations side by side: the difference of every shared record and whether it is significant.

Each record carries a bootstrap percentile interval at the evaluation's confidence level. Its
standard error is read back from the interval's width (width / (2 z)), and the difference of two
records is judged with a two-sided normal test on `(b - a) / sqrt(se_a² + se_b²)`.

That treats the two evaluations as independent samples. When both versions were scored on the same
eval rows their errors are positively correlated, the true variance of the difference is smaller,
and the test is conservative: a difference it calls significant is one; some real ones it misses.
Records without an interval (drift, counts, zero resamples) get a difference but no verdict, and so do
records over fewer than MIN_ROWS rows in either evaluation: a bootstrap of a handful of rows says
nothing of their spread (one row resamples to a single point, which read as exact would call any
change significant). A gap between a column's groups counts its smallest group's rows, and gets no
verdict either where the two evaluations hold different groups of that column (north/south against
north/east is not the same gap).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

from evaluation.records import MetricSet

SKIPPED = {"reliability_bin"}
MIN_ROWS = 30  # the rows a record needs in both evaluations for a verdict (the normal test's usual rule)


@dataclass(frozen=True)
class Difference:
    family: str
    metric: str
    feature: str | None
    group: str | None
    a: float | None
    b: float | None
    difference: float | None
    p_value: float | None
    significant: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _standard_error(low: float | None, high: float | None, z: float) -> float | None:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    return (high - low) / (2 * z)


def compare(a: MetricSet, b: MetricSet, *, alpha: float = 0.05) -> list[Difference]:
    """Every record present in both sets (same family, metric, feature, group), in `a`'s order."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}.")
    z_a = NormalDist().inv_cdf(0.5 + float(a.params.get("confidence", 0.95)) / 2)
    z_b = NormalDist().inv_cdf(0.5 + float(b.params.get("confidence", 0.95)) / 2)
    by_key = {(r.family, r.metric, r.feature, r.group): r for r in b.records if r.metric not in SKIPPED}
    groups_a, groups_b = _group_sizes(a), _group_sizes(b)
    out: list[Difference] = []
    for first in a.records:
        second = by_key.get((first.family, first.metric, first.feature, first.group))
        if second is None:
            continue
        if first.value is None or second.value is None:
            out.append(Difference(first.family, first.metric, first.feature, first.group, first.value, second.value,
                                  None, None, None))
            continue
        difference = second.value - first.value
        se_a = _standard_error(first.ci_low, first.ci_high, z_a)
        se_b = _standard_error(second.ci_low, second.ci_high, z_b)
        p_value: float | None = None
        rows = min(first.n or 0, second.n or 0)
        if first.family == "fairness" and first.group is None and first.feature in groups_a:  # a gap between groups
            sizes_a, sizes_b = groups_a[first.feature], groups_b.get(first.feature, {})
            rows = min(rows, *sizes_a.values(), *sizes_b.values()) if sizes_a.keys() == sizes_b.keys() else 0
        if se_a is not None and se_b is not None and rows >= MIN_ROWS:
            spread = math.hypot(se_a, se_b)
            if spread > 0:
                p_value = 2 * (1 - NormalDist().cdf(abs(difference) / spread))
            else:  # both intervals are points: any difference is exact, none is no difference
                p_value = 0.0 if difference != 0 else 1.0
        out.append(Difference(first.family, first.metric, first.feature, first.group, first.value, second.value,
                              difference, p_value, None if p_value is None else p_value < alpha))
    return out


def _group_sizes(metrics: MetricSet) -> dict[str, dict[str, int]]:
    """Rows per group of each sensitive column (its `fairness.count` records)."""
    sizes: dict[str, dict[str, int]] = {}
    for record in metrics.records:
        if record.family == "fairness" and record.metric == "count" and record.feature and record.group is not None:
            sizes.setdefault(record.feature, {})[record.group] = record.n
    return sizes
