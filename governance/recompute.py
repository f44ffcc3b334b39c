"""Independent recomputation of a stored evaluation with the reference libraries (effective challenge).

The metric engine computes every record in SQL; `evaluation.reference` computes the same records with
scikit-learn, torchmetrics, fairlearn and Evidently. Here the two meet on a stored evaluation: the
reference libraries read the very prediction set (and reference set) the evaluation read, with the
options it recorded, and every stored record is compared with theirs. The result says, per family, how
many records were compared and the largest relative difference, and names each record that differs.

Needs the reference libraries (`pip install 'govern[reference]'`); `load_oracles` says so when they are
missing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from governance.errors import InvalidInput

TOLERANCE = 1e-6  # relative, as the oracle tests use it
ABSOLUTE = 1e-12  # differences below this are rounding, whatever the relative size
LIBRARIES = ("scikit-learn", "torchmetrics", "fairlearn", "evidently")


@dataclass(frozen=True)
class FamilyAgreement:
    family: str
    compared: int
    max_relative_difference: float | None  # None: a value is missing on one side
    not_recomputed: int = 0  # records the reference libraries have no counterpart for
    not_recomputed_metrics: list[str] = field(default_factory=list)  # their metrics, named once each


@dataclass(frozen=True)
class Mismatch:
    family: str
    metric: str
    feature: str | None
    group: str | None
    stored: Any
    reference: Any

    def label(self) -> str:
        where = "".join(f"[{part}]" for part in (self.feature, self.group) if part is not None)
        return f"{self.family}.{self.metric}{where}"


@dataclass(frozen=True)
class Recomputation:
    """The verdict on one stored evaluation; `agrees` exactly when `mismatches` is empty."""

    model: str
    version: str
    evaluation: str
    records_sha256: str
    tolerance: float
    agrees: bool
    families: list[FamilyAgreement]
    mismatches: list[Mismatch] = field(default_factory=list)
    libraries: dict[str, str] = field(default_factory=dict)
    records_intact: bool = True  # the stored records still hash to the sha256 logged when they were made
    seq: int | None = None  # the audit event that records it
    hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if not self.records_intact and not self.mismatches:
            return ("independently recomputed: the values agree, but the stored records no longer hash to the "
                    f"sha256 logged when they were made ({self.records_sha256[:12]}…): they were changed")
        if self.agrees:
            return f"independently recomputed: agrees to {self.tolerance:g}"
        return (f"independently recomputed: {len(self.mismatches)} records differ by more than {self.tolerance:g} "
                f"({', '.join(m.label() for m in self.mismatches[:5])})")


def load_oracles() -> ModuleType:
    """`evaluation.reference`, or InvalidInput saying how to install what it needs."""
    import importlib
    try:
        reference = importlib.import_module("evaluation.reference")
    except ImportError as exc:
        raise InvalidInput(f"independent recomputation needs the reference libraries ({', '.join(LIBRARIES)}), "
                           f"which are not installed ({exc.name or exc}): pip install 'govern[reference]'.") from exc
    return reference


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "unknown"
    return found


def reference_values(oracles: ModuleType, current: Any, reference: Any | None, params: dict[str, Any]) -> dict:
    """The reference libraries' value of every record the engine made with `params` on these frames."""
    label, score, threshold = params["label"], params["score"], float(params["threshold"])
    y, p = current[label].to_numpy(), current[score].to_numpy(dtype=float)
    expected = dict(oracles.classification_oracle(y, p, threshold))
    judged = {feature: current[feature] for feature in params.get("sensitive", [])}
    for parts in params.get("intersections", []):
        judged["*".join(parts)] = _intersection(current, parts)
    for feature, groups in judged.items():
        kept = groups.notna().to_numpy()
        expected.update(oracles.fairness_oracle(y[kept], p[kept], groups[kept], feature, threshold))
    expected.update(_feature_aucs(current, label, params.get("probed", [])))
    if reference is not None:
        columns = list(params.get("features", [])) + list(params.get("sensitive", []))
        drifting = columns + [c for c in (score, label) if c in reference.columns]
        both = list(dict.fromkeys(drifting))
        expected.update(oracles.drift_oracle(current[both], reference[both], drifting, columns))
    return expected


def _feature_aucs(frame: Any, label: str, probed: list[str]) -> dict:
    """scikit-learn's ROC AUC of each numeric probed column alone, folded (max(auc, 1 − auc)); categorical
    columns and columns with missing values (the engine scores them two ways) are not recomputed."""
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    from sklearn.metrics import roc_auc_score
    y = frame[label].to_numpy()
    out = {}
    if len(np.unique(y)) < 2:
        return out
    for column in probed:
        values = frame[column]
        if is_numeric_dtype(values) and not is_bool_dtype(values) and values.notna().all():
            auc = float(roc_auc_score(y, values.to_numpy(dtype=float)))
            out[("sanity", "feature_auc", column, None)] = max(auc, 1.0 - auc)
    return out


def _intersection(frame: Any, parts: list[str]) -> Any:
    """An intersection's groups as the engine names them ("f & white"); missing when any part is."""
    import pandas as pd
    text = [frame[p].astype("string") for p in parts]
    joined = text[0].str.cat(text[1:], sep=" & ")
    return joined.where(pd.concat([frame[p].notna() for p in parts], axis=1).all(axis=1))


def compare(records: list[dict[str, Any]], expected: dict, *, tolerance: float = TOLERANCE
            ) -> tuple[list[FamilyAgreement], list[Mismatch]]:
    """Every stored record against the reference value for its key."""
    compared: dict[str, int] = {}
    worst: dict[str, float] = {}
    missing: dict[str, int] = {}
    missing_metrics: dict[str, set[str]] = {}
    mismatches: list[Mismatch] = []
    for r in records:
        family, metric, feature, group = r["family"], r["metric"], r["feature"], r["group"]
        key = (family, metric, feature, group)
        stored = r["value"]
        if metric == "reliability_bin":
            key = (family, f"reliability_bin[{r['detail'].get('bin')}]", feature, group)
        if key not in expected:
            missing[family] = missing.get(family, 0) + 1
            missing_metrics.setdefault(family, set()).add(metric)
            compared.setdefault(family, 0)
            continue
        theirs = expected[key]
        pairs: list[tuple[Any, Any]]
        same_method = True
        if metric == "reliability_bin":
            pairs = [(stored, theirs[0]), (r["detail"].get("mean_score"), theirs[1]), (r["n"], theirs[2])]
        elif metric == "drift_score":
            pairs = [(stored, theirs[0])]
            same_method = r["detail"].get("method_name") == theirs[1]
        else:
            pairs = [(stored, theirs)]
        compared[family] = compared.get(family, 0) + 1
        differences = [_relative_difference(a, b) for a, b in pairs]
        worst[family] = max([worst.get(family, 0.0)] + [d for d in differences if math.isfinite(d)])
        if not same_method or any(not d <= tolerance for d in differences):
            mismatches.append(Mismatch(family, metric if metric != "reliability_bin" else key[1], feature, group,
                                       stored, theirs[0] if isinstance(theirs, tuple) else theirs))
            if any(math.isinf(d) for d in differences):
                worst[family] = math.inf
    families = [FamilyAgreement(f, compared[f], None if math.isinf(worst.get(f, 0.0)) else worst.get(f, 0.0),
                                missing.get(f, 0), sorted(missing_metrics.get(f, ()))) for f in sorted(compared)]
    return families, mismatches


def _relative_difference(ours: Any, theirs: Any) -> float:
    """|ours − theirs| relative to the larger magnitude; 0 when both are missing, inf when one is."""
    theirs_missing = theirs is None or (isinstance(theirs, float) and math.isnan(theirs))
    ours_missing = ours is None or (isinstance(ours, float) and math.isnan(ours))
    if ours_missing or theirs_missing:
        return 0.0 if ours_missing and theirs_missing else math.inf
    a, b = float(ours), float(theirs)
    if abs(a - b) <= ABSOLUTE:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))
