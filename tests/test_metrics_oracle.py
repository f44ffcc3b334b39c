"""Every record the engine makes equals the reference libraries' value on the same data (1e-6
relative): scikit-learn, torchmetrics, fairlearn and Evidently 0.7."""

from __future__ import annotations

import math

import pytest
import torch

from evaluation import evaluate
from evaluation import reference as oracles
from evaluation.classification import BIN_EDGES
from tests.support import datasets


def _close(ours, theirs) -> bool:
    if ours is None or theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return ours is None and (theirs is None or math.isnan(theirs))
    return math.isclose(ours, theirs, rel_tol=1e-6, abs_tol=1e-12)


def _oracle(case: dict) -> dict:
    cur, ref = case["current"], case["reference"]
    label, score = case.get("label", "y"), case.get("score", "p")
    y, p = cur[label].to_numpy(), cur[score].to_numpy(dtype=float)
    expected = oracles.classification_oracle(y, p, 0.5)
    for feature in case["sensitive"]:
        expected.update(oracles.fairness_oracle(y, p, cur[feature], feature, 0.5))
    drift_columns = case["features"] + case["sensitive"]
    expected.update(oracles.drift_oracle(cur[drift_columns + [label, score]], ref[drift_columns + [label, score]],
                                         drift_columns + [score, label], drift_columns))
    return expected


@pytest.fixture(scope="module", params=list(datasets.ALL))
def compared(request):
    case = datasets.ALL[request.param]()
    ours = evaluate(current=case["current"], reference=case["reference"], label=case.get("label", "y"),
                    score=case.get("score", "p"), sensitive=case["sensitive"], features=case["features"],
                    resamples=50)
    return request.param, ours, _oracle(case)


def test_every_record_equals_the_reference_library(compared):
    name, ours, expected = compared
    checked, mismatches = set(), []
    for record in ours.records:
        key = record.key()
        if record.metric == "reliability_bin":
            key = (record.family, f"reliability_bin[{record.detail['bin']}]", record.feature, record.group)
            acc, conf, count = expected[key]
            ok = _close(record.value, acc) and _close(record.detail["mean_score"], conf) and record.n == count
        elif record.metric == "drift_score":
            value, method_name = expected[record.key()]
            ok = _close(record.value, value) and record.detail["method_name"] == method_name
        else:
            ok = key in expected and _close(record.value, expected[key])
        checked.add(key)
        if not ok:
            mismatches.append((key, record.value, expected.get(key)))
    assert mismatches == []
    assert set(expected) - checked == set(), "the references computed metrics we did not report"


def test_bin_edges_are_torchmetrics_boundaries():
    assert list(BIN_EDGES) == torch.linspace(0, 1, 16, dtype=torch.float64).tolist()


def test_expected_methods_are_exercised(compared):
    name, ours, _ = compared
    methods = {r.detail.get("method") for r in ours.select("drift", "drift_score")}
    wanted = {"skewed": {"wasserstein", "jensenshannon"}, "small_reference": {"ks", "chisquare", "z"},
              "edges": {"ks", "z"}, "acs": {"wasserstein", "jensenshannon"}, "german": {"ks", "chisquare", "z"}}
    assert wanted[name] <= methods
