"""Agreement between reviewers: Cohen's kappa per pair, Krippendorff's alpha (nominal) per batch."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations
from typing import Hashable, Mapping


def cohens_kappa(first: list[Hashable], second: list[Hashable]) -> float | None:
    """κ = (p_o − p_e) / (1 − p_e) over paired labels; None when undefined (no pairs, or p_e = 1)."""
    n = len(first)
    if n == 0 or n != len(second):
        return None
    observed = sum(a == b for a, b in zip(first, second)) / n
    left, right = Counter(first), Counter(second)
    expected = sum(left[c] * right[c] for c in set(left) | set(right)) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha(units: Mapping[Hashable, list[Hashable]]) -> float | None:
    """Nominal α = 1 − D_o / D_e over units with at least two values (Krippendorff 2011)."""
    coincidences: Counter = Counter()
    for values in units.values():
        m = len(values)
        if m < 2:
            continue
        for a, b in ((x, y) for i, x in enumerate(values) for j, y in enumerate(values) if i != j):
            coincidences[(a, b)] += 1 / (m - 1)
    total = sum(coincidences.values())
    if total == 0:
        return None
    marginal: Counter = Counter()
    for (a, _), weight in coincidences.items():
        marginal[a] += weight
    disagreement_observed = sum(w for (a, b), w in coincidences.items() if a != b)
    disagreement_expected = sum(marginal[a] * marginal[b] for a in marginal for b in marginal if a != b) / (total - 1)
    if disagreement_expected == 0:
        return None
    return 1 - disagreement_observed / disagreement_expected


def pairwise_kappas(judgments: Mapping[Hashable, Mapping[str, Hashable]]
                    ) -> dict[tuple[str, str], tuple[float | None, int]]:
    """(reviewer, reviewer) → (kappa, items both judged), from item → {reviewer: label}."""
    by_pair: dict[tuple[str, str], tuple[list, list]] = defaultdict(lambda: ([], []))
    for labels in judgments.values():
        for a, b in combinations(sorted(labels), 2):
            by_pair[(a, b)][0].append(labels[a])
            by_pair[(a, b)][1].append(labels[b])
    return {pair: (cohens_kappa(x, y), len(x)) for pair, (x, y) in sorted(by_pair.items())}
