"""Effective challenge: `govern recompute` recomputes a stored evaluation with scikit-learn, torchmetrics,
fairlearn and Evidently from its stored prediction set, agrees on the demo's evaluations, names a stored
record someone altered, and logs its verdict."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from governance.service import Service
from tests.support.credentials import credential_for
from tests.support.stores import run_sql, snapshot


@pytest.fixture
def demo_copy(demo_store, tmp_path):
    """This test's own copy of the reduced demo's store."""
    home = tmp_path / "home"
    shutil.copytree(demo_store[0], home)
    return home


def _recompute_events(home):
    return run_sql(home, lambda conn: conn.execute(
        "SELECT seq, hash, entity, payload FROM audit_events WHERE action = 'version.recompute' ORDER BY seq"
    ).fetchall())


def test_the_demos_evaluations_agree_with_the_reference_libraries_and_the_agreement_is_logged(demo_copy, run_cli):
    for model, version in (("income", "2"), ("employment", "1")):
        result = run_cli(demo_copy, "recompute", model, version, as_="audrey")
        assert result.exit_code == 0, result.output
        assert "independently recomputed: agrees to 1e-06" in result.output
    events = _recompute_events(demo_copy)
    assert [e[2] for e in events] == ["version:income/2", "version:employment/1"]
    payload = json.loads(events[0][3])
    assert payload["agrees"] is True and payload["records_intact"] is True and payload["mismatches"] == []
    families = {f["family"]: f for f in payload["families"]}
    assert set(families) >= {"performance", "calibration", "fairness", "drift"}
    for name in ("performance", "calibration", "fairness", "drift"):
        assert families[name]["compared"] > 0 and families[name]["max_relative_difference"] <= 1e-6
    employment = json.loads(events[1][3])
    assert any(f["family"] == "fairness" and f["compared"] > 100 for f in employment["families"])  # SEX*RAC1P too
    latest = Service.open(home=demo_copy, actor="victor").latest_recomputation(model="income", version="2")
    assert (latest["seq"], latest["hash"], latest["agrees"]) == (events[0][0], events[0][1], True)


def test_an_altered_stored_record_is_named_and_the_verdict_is_exit_1(demo_copy, run_cli):
    def alter(conn):
        evaluation = conn.execute(
            "SELECT e.id FROM evaluations e JOIN prediction_sets p ON p.id = e.prediction_set_id WHERE e.model = "
            "'income' AND e.version = '2' AND p.split = 'eval' ORDER BY e.created_at DESC LIMIT 1").fetchone()[0]
        conn.execute("UPDATE metric_records SET value = value + 0.01 WHERE evaluation_id = ? AND metric = 'roc_auc' "
                     "AND feature IS NULL", [evaluation])

    run_sql(demo_copy, alter)
    result = run_cli(demo_copy, "recompute", "income", "2", as_="erin")
    assert result.exit_code == 1, result.output
    assert "DIFFERS performance.roc_auc: stored" in result.output
    [event] = _recompute_events(demo_copy)
    payload = json.loads(event[3])
    assert payload["agrees"] is False and payload["records_intact"] is False
    assert [(m["family"], m["metric"]) for m in payload["mismatches"]] == [("performance", "roc_auc")]


def test_viewers_and_reviewers_may_not_recompute_and_nothing_changes(demo_copy, run_cli):
    for user in ("victor", "rosa", "audrey"):
        credential_for(demo_copy, user)  # the test's API tokens are made (and logged) before the snapshot
    before = snapshot(demo_copy)
    for user in ("victor", "rosa"):
        result = run_cli(demo_copy, "recompute", "income", "2", as_=user)
        assert result.exit_code == 2
        assert "recomputing an evaluation is for auditors, engineers and admins." in result.output
    result = run_cli(demo_copy, "recompute", "income", "9", as_="audrey")
    assert result.exit_code == 2 and "income" in result.output and "9" in result.output
    unlabelled = run_sql(demo_copy, lambda conn: conn.execute(
        "SELECT e.id FROM evaluations e JOIN prediction_sets p ON p.id = e.prediction_set_id WHERE e.model = "
        "'employment' AND p.split = 'production' AND p.label_column IS NULL LIMIT 1").fetchone()[0])
    result = run_cli(demo_copy, "recompute", "employment", "1", "--evaluation", unlabelled, as_="audrey")
    assert result.exit_code == 2
    assert f"evaluation {unlabelled} was made without labels" in result.output
    assert snapshot(demo_copy) == before


def test_without_the_reference_libraries_it_says_what_to_install(demo_copy, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "evaluation.reference", None)
    credential_for(demo_copy, "audrey")
    before = snapshot(demo_copy)
    result = run_cli(demo_copy, "recompute", "income", "2", as_="audrey")
    assert result.exit_code == 2
    assert "pip install 'govern[reference]'" in result.output
    assert snapshot(demo_copy) == before


def test_records_no_reference_library_computes_are_named_by_metric():
    # A new user's trial: "sanity 2 records … 5 not recomputed", with nothing saying which or why.
    from types import SimpleNamespace

    from governance.cli.reports import _recomputed
    from governance.recompute import compare
    records = [{"family": "sanity", "metric": "feature_auc", "feature": c, "group": None, "value": 0.6, "n": 9,
                "detail": {}} for c in ("a", "b")] + [
        {"family": "sanity", "metric": "score_range", "feature": None, "group": None, "value": 1.0, "n": 9,
         "detail": {}}]
    families, mismatches = compare(records, {("sanity", "score_range", None, None): 1.0})
    [sanity] = families
    assert (sanity.compared, sanity.not_recomputed, sanity.not_recomputed_metrics, mismatches) == (
        1, 2, ["feature_auc"], [])
    shown = _recomputed(SimpleNamespace(model="m", version="1", evaluation="ev-1", families=families, mismatches=[],
                                        summary=lambda: "independently recomputed: agrees to 1e-06", seq=7,
                                        hash="ab" * 32))
    assert ("  sanity          1 records, max relative difference 0, 2 not recomputed (feature_auc: no reference "
            "library computes them as the engine does)") in shown
