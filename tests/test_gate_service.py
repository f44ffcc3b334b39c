"""`govern gate` on the store: stored decisions, queued reviews and jobs, idempotency, dry runs, exit
codes and JUnit output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from governance.errors import NotAllowed, NotFound
from governance.store import aliases, registry
from tests.support.stores import ACS_ROLES, ingest_acs, run_sql, snapshot

FAILING = """name: tight
version: 2
rules:
  - id: ece
    metric: calibration.ece
    max: 0.001
    on_fail:
      review: {sample: 5, strategy: high_confidence_errors, judgments: 2}
      retrain: {strategy: recalibrate}
  - id: parity
    metric: fairness.demographic_parity_difference
    feature: SEX
    max: 0.0001
    on_fail:
      review: {sample: 3, strategy: worst_group}
      retrain: {strategy: [reweight, recalibrate]}
  - id: uncertain-drift
    metric: drift.share_of_drifted_columns
    max: 0.0
    severity: warn
    on_fail:
      review: {sample: 4, strategy: uncertain}
  - id: auc
    metric: performance.roc_auc
    min: 0.5
"""
LENIENT = """name: lenient
version: 1
rules:
  - {id: auc, metric: performance.roc_auc, min: 0.5}
  - {id: ece, metric: calibration.ece, max: 0.5, judge: ci_upper}
"""


@pytest.fixture
def gated(evaluated_store, tmp_path):
    """Version 1 evaluated (50 resamples) and FAILING assigned to credit: (store, the policy file)."""
    return _assign_failing(evaluated_store, tmp_path)


@pytest.fixture(scope="module")
def shared_gated(make_shared_store, acs_files, tmp_path_factory):
    """gated's store, once per module and store kind, for the tests that assert they changed nothing."""
    store = make_shared_store()
    with store.kind.active():
        return _assign_failing(ingest_acs(store, acs_files), tmp_path_factory.mktemp("gated"))


@pytest.fixture
def unchanged_gated(shared_gated, monkeypatch):
    shared_gated[0].enter(monkeypatch)
    return shared_gated


def _assign_failing(store, folder):
    store.as_("eng").evaluate(model="credit", version="1", resamples=50)
    policy = folder / "tight.yaml"
    policy.write_text(FAILING)
    store.assign_policy(policy)
    return store, policy


def test_a_blocked_gate_stores_its_decision_and_queues_reviews_and_one_job(gated):
    store, policy = gated
    outcome = store.as_("eng").gate(model="credit", version="1", policy=policy)
    decision = outcome.decision
    assert decision.verdict == "blocked"
    assert [(r.rule_id, r.status) for r in decision.results] == [
        ("ece", "failed"), ("parity", "failed"), ("uncertain-drift", "passed"), ("auc", "passed")]

    items = store.as_("vic").list_review_items(model="credit", version="1")
    assert sorted(i.id for i in items) == sorted(outcome.review_items)
    assert [(i.kind, i.rule_id) for i in items if i.kind == "rule_failure"] == [("rule_failure", "ece"),
                                                                                ("rule_failure", "parity")]
    examples = {rule: [i for i in items if i.kind == "example" and i.rule_id == rule] for rule in ("ece", "parity")}
    assert len(examples["ece"]) == 5 and len(examples["parity"]) == 3
    confident = sorted((i.evidence for i in examples["ece"]), key=lambda e: e["rank"])
    assert all(e["prediction"] != e["label"] for e in confident)  # they are errors …
    margins = [abs(e["score"] - 0.5) for e in confident]
    assert margins == sorted(margins, reverse=True)  # … the most confident first
    assert all(i.judgments_required == 2 and i.priority == "blocking" and i.status == "open" for i in examples["ece"])

    [job] = store.as_("vic").list_jobs()
    assert job.id == outcome.jobs[0] and job.gate_decision_id == outcome.gate_id
    assert (job.status, job.strategies, job.failing_rules) == ("waiting_review", ["recalibrate", "reweight"],
                                                                ["ece", "parity"])
    assert sorted(job.depends_on) == sorted(outcome.review_items)
    stored = store.as_("vic").latest_gate(model="credit", version="1")
    assert (stored.id, stored.verdict, stored.policy_name, stored.policy_version) == (outcome.gate_id, "blocked",
                                                                                       "tight", "2")
    assert stored.metrics_sha256 == store.as_("vic").latest_evaluation(model="credit", version="1")[1].sha256()
    assert store.as_("aud").verify_audit().ok


def test_worst_group_examples_of_a_parity_gap_come_from_the_group_it_selects_least(gated):
    # They came from the least accurate group: on OJ with one store's purchases recorded against it, every
    # example came from another store, and reviewers who knew the truth found nothing to correct.
    store, policy = gated
    store.as_("eng").gate(model="credit", version="1", policy=policy)
    _, metrics = store.as_("vic").latest_evaluation(model="credit", version="1")
    least = min(metrics.select("fairness", "selection_rate", "SEX"), key=lambda r: r.value).group
    examples = [i for i in store.as_("vic").list_review_items() if i.kind == "example" and i.rule_id == "parity"]
    assert {e.evidence["groups"]["SEX"] for e in examples} == {least}


def test_a_row_two_rules_sampled_is_one_review_item_and_each_rule_still_gets_its_sample(gated, tmp_path):
    # A new user's trial: a gate's 120 example items covered 72 distinct rows; reviewers judged the same rows
    # again under each rule that sampled them.
    store, _ = gated
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: twice\nversion: 1\nrules:\n" + "".join(
        f"  - id: {name}\n    metric: calibration.ece\n    max: 0.0001\n"
        f"    on_fail: {{review: {{sample: 6, strategy: high_confidence_errors}}}}\n" for name in ("one", "two")))
    store.assign_policy(twice)
    outcome = store.as_("eng").gate(model="credit", version="1", policy=twice)
    examples = [i for i in store.as_("vic").list_review_items() if i.kind == "example" and i.gate_decision_id
                == outcome.gate_id]
    by_rule = {rule: [i.evidence["row"] for i in examples if i.rule_id == rule] for rule in ("one", "two")}
    assert len(by_rule["one"]) == len(by_rule["two"]) == 6
    assert not set(by_rule["one"]) & set(by_rule["two"])  # the same sampling: the second rule takes the next 6
    again = store.as_("eng").gate(model="credit", version="1", policy=twice)
    assert sorted(again.review_items) == sorted(outcome.review_items)  # the same evidence files the same items


def test_worst_group_is_the_disadvantaged_group_of_each_gap_metric_and_else_the_least_accurate():
    from evaluation import MetricRecord, MetricSet
    from governance.service.gates import _worst_group
    from policies.decision import RuleResult

    rates = {"selection_rate": {"a": 0.6, "b": 0.2, "c": 0.4}, "true_positive_rate": {"a": 0.5, "b": 0.9, "c": 0.3},
             "accuracy": {"a": 0.7, "b": 0.8, "c": 0.9}}
    metrics = MetricSet([MetricRecord("fairness", name, "g", group, value, 100)
                         for name, by_group in rates.items() for group, value in by_group.items()], {})

    def worst(metric: str, excluded=()) -> str:
        result = RuleResult("r", "metric", "failed", True, "block", "", metric=metric, feature="g",
                            excluded=list(excluded))
        return _worst_group(result, metrics)[1]

    assert worst("fairness.demographic_parity_difference") == "b"
    assert worst("fairness.demographic_parity_ratio") == "b"
    assert worst("fairness.equal_opportunity_difference") == "c"
    assert worst("fairness.equalized_odds_difference") == "c"
    assert worst("fairness.equalized_odds_difference", [{"feature": "g", "group": "c"}]) == "a"  # c set aside
    assert worst("calibration.ece") == "a"  # no gap metric: the least accurate


def test_worst_group_examples_come_from_each_column_the_rule_failed_in():
    # A new user's Wage run failed parity on race and marital status; every example was race=Black, so the marital
    # status group the model selected least got none.
    from evaluation import MetricRecord, MetricSet
    from governance.service.gates import _worst_groups
    from policies.decision import RuleResult

    rates = {("race", "black"): 0.05, ("race", "white"): 0.3, ("maritl", "never"): 0.08, ("maritl", "married"): 0.35,
             ("maritl", "tiny"): 0.0}
    metrics = MetricSet([MetricRecord("fairness", "selection_rate", column, group, value, 100)
                         for (column, group), value in rates.items()], {})
    both = RuleResult("parity", "metric", "failed", True, "block", "", metric="fairness.demographic_parity_difference",
                      feature="race", failing=[{"feature": "race", "group": None, "value": 0.25},
                                               {"feature": "maritl", "group": None, "value": 0.27}],
                      excluded=[{"feature": "maritl", "group": "tiny", "n": 3, "why": "3 rows, under 50"}])
    assert _worst_groups(both, metrics) == [("race", "black"), ("maritl", "never")]
    one = RuleResult("parity", "metric", "failed", True, "block", "", metric="fairness.demographic_parity_difference",
                     feature="race", failing=[{"feature": "race", "group": None, "value": 0.25}])
    assert _worst_groups(one, metrics) == [("race", "black")]


def test_gating_again_on_the_same_evidence_queues_nothing_new(gated):
    store, policy = gated
    first = store.as_("eng").gate(model="credit", version="1", policy=policy)
    second = store.as_("eng").gate(model="credit", version="1", policy=policy)
    assert second.review_items == first.review_items and second.jobs == first.jobs
    assert len(store.as_("vic").list_review_items()) == len(first.review_items)
    assert len(store.as_("vic").list_jobs()) == 1
    assert second.gate_id != first.gate_id  # each run is on the record


def test_a_dry_run_writes_nothing(unchanged_gated):
    store, policy = unchanged_gated
    before = snapshot(store.home)
    outcome = store.as_("eng").gate(model="credit", version="1", policy=policy, dry_run=True)
    assert outcome.decision.verdict == "blocked" and outcome.gate_id is None and not outcome.review_items
    assert snapshot(store.home) == before


def test_open_reviews_rule_counts_the_queued_items(gated, tmp_path):
    store, policy = gated
    store.as_("eng").gate(model="credit", version="1", policy=policy)
    rule = tmp_path / "open.yaml"
    rule.write_text("name: o\nversion: 1\nrules:\n  - {id: open, kind: open_reviews, max: 0}\n")
    result = store.as_("eng").gate(model="credit", version="1", policy=rule, dry_run=True).decision.results[0]
    assert result.status == "failed" and result.observed == 10


def test_regression_against_the_production_alias_a_named_version_and_the_origin(evaluated_store, acs_files, tmp_path):
    engineer = evaluated_store.as_("eng")
    engineer.evaluate(model="credit", version="1", resamples=0)
    engineer.register_version(model="credit", version="2", artifact=evaluated_store.artifact, parent="1")
    worse = tmp_path / "worse.parquet"
    import pandas as pd

    frame = pd.read_parquet(acs_files[0])
    frame["predicted_probability"] = (frame["predicted_probability"] * 0.5 + 0.25)  # same ranks: AUC unchanged
    frame.loc[frame.index[::3], "predicted_probability"] = 0.5  # but a third of the ranking lost
    frame.to_parquet(worse)
    engineer.ingest(model="credit", version="2", file=worse, split="eval", roles=ACS_ROLES)
    engineer.evaluate(model="credit", version="2", reference_version="1", resamples=0)
    policy = tmp_path / "reg.yaml"
    policy.write_text("name: r\nversion: 1\nrules:\n"
                      "  - {id: vs-prod, metric: performance.roc_auc, max_regression: 0.01}\n"
                      "  - {id: vs-v1, metric: performance.roc_auc, max_regression: 0.01, baseline: '1'}\n"
                      "  - {id: vs-origin, metric: performance.roc_auc, max_regression: 0.01, baseline: origin}\n")
    before = engineer.gate(model="credit", version="2", policy=policy, dry_run=True).decision
    assert [r.status for r in before.results] == ["insufficient", "failed", "failed"]  # no production version yet
    assert before.results[2].reason.endswith("(origin, version 1); at most 0.01 worse is allowed.")
    # a version registered without a parent has nothing to compare with
    orphan = engineer.gate(model="credit", version="1", policy=policy, dry_run=True).decision.results[2]
    assert orphan.status == "insufficient" and "no evaluated baseline (origin)" in orphan.reason
    # where a retraining loop started: the nearest ancestor (or the version itself) no retraining job made
    run_sql(evaluated_store.home, lambda conn: conn.execute(
        "UPDATE versions SET lineage_json = ? WHERE model = 'credit' AND version = '2'", ['{"job": "job-x"}']))
    origins = run_sql(evaluated_store.home, lambda conn: [registry.loop_origin(conn, "credit", v)
                                                          for v in ("2", "1", None)])
    assert origins == ["1", "1", None]

    run_sql(evaluated_store.home, lambda conn: aliases.set_alias(conn, model="credit", alias="production", version="1",
                                                               actor="ada"))
    after = engineer.gate(model="credit", version="2", policy=policy, dry_run=True).decision
    assert [r.status for r in after.results] == ["failed", "failed", "failed"]
    assert after.results[0].reason.endswith("(production, version 1); at most 0.01 worse is allowed.")

    # Judged again once in production, a version is compared with what production held before it, not itself.
    from datetime import datetime, timezone

    from governance.records import AliasMove

    def release_2(conn, previous):
        aliases.set_alias(conn, model="credit", alias="production", version="2", actor="ada")
        if previous:
            aliases.insert_move(conn, AliasMove("credit", aliases.next_move_seq(conn, "credit"), "production", "2",
                                                previous, "release", None, None, None, "ada",
                                                datetime.now(timezone.utc)))

    run_sql(evaluated_store.home, lambda conn: release_2(conn, None))
    alone = engineer.gate(model="credit", version="2", policy=policy, dry_run=True).decision.results[0]
    assert alone.status == "insufficient" and "0 better than the baseline" not in alone.reason
    run_sql(evaluated_store.home, lambda conn: release_2(conn, "1"))
    released = engineer.gate(model="credit", version="2", policy=policy, dry_run=True).decision.results[0]
    assert released.status == "failed"
    assert released.reason.endswith("(production before version 2, version 1); at most 0.01 worse is allowed.")


def test_cli_exit_codes_json_and_junit(gated, run_cli, tmp_path):
    store, policy = gated
    junit = tmp_path / "gate.xml"
    result = run_cli(store.home, "gate", "credit", "1", "--policy", policy, "--junit", junit, as_="eng")
    assert result.exit_code == 1 and result.stdout.startswith("gate BLOCKED under tight v2: blocked by ece, parity")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("4", "2")
    assert [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None] == ["ece", "parity"]

    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(LENIENT)
    store.assign_policy(lenient)
    result = run_cli(store.home, "gate", "credit", "1", "--json", as_="eng")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["decision"]["verdict"] == "passed" and body["gate_id"].startswith("gd-")

    listed = json.loads(run_cli(store.home, "review", "list", "--status", "open", "--json", as_="vic").stdout)
    assert len(listed) == 10
    # the version passes the pack that binds now: the retrain the earlier gate queued is cancelled, not left to run
    jobs = json.loads(run_cli(store.home, "jobs", "list", "--json", as_="vic").stdout)
    assert [(job["status"], job["id"]) for job in jobs] == [("cancelled", body["superseded"][0])]


def test_cli_errors_exit_2(store, evaluated_store, run_cli, tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("name: p\nversion: 1\nrules:\n  - {id: x, metric: fairness.demographic_parity_difference, "
                      "feature: age, max: 0.1}\n")
    evaluated_store.assign_policy(policy)
    result = run_cli(evaluated_store.home, "gate", "credit", "1", "--policy", policy, as_="eng")
    assert result.exit_code == 2 and "has not been evaluated" in result.stderr
    evaluated_store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    result = run_cli(evaluated_store.home, "gate", "credit", "1", "--policy", policy, as_="eng")
    assert result.exit_code == 2
    assert result.stderr == ("error: p@1: rule 'x' (line 4): the evaluation has no "
                             "fairness.demographic_parity_difference for feature 'age'; evaluate with that "
                             "sensitive or feature column, or fix the rule.\n")
    result = run_cli(evaluated_store.home, "gate", "credit", "1", "--policy", tmp_path / "missing.yaml", "--dry-run",
                     as_="eng")
    assert result.exit_code == 2 and "no policy pack or file" in result.stderr


def test_only_engineers_and_admins_gate(unchanged_gated):
    store, policy = unchanged_gated
    before = snapshot(store.home)
    with pytest.raises(NotAllowed, match="may not run the release gate: that needs the role engineer or admin"):
        store.as_("rey").gate(model="credit", version="1", policy=policy)
    with pytest.raises(NotFound):
        store.as_("eng").gate(model="credit", version="9", policy=policy)
    with pytest.raises(NotFound, match="no policy pack or file"):
        store.as_("eng").gate(model="credit", version="1", policy=store.home / "none.yaml", dry_run=True)
    assert snapshot(store.home) == before


def test_a_job_without_review_items_to_wait_for_is_queued(evaluated_store, tmp_path):
    evaluated_store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    policy = tmp_path / "retrain-only.yaml"
    policy.write_text("name: r\nversion: 1\nrules:\n  - id: ece\n    metric: calibration.ece\n    max: 0.0001\n"
                      "    on_fail: {retrain: {strategy: curriculum}}\n")
    evaluated_store.assign_policy(policy)
    outcome = evaluated_store.as_("eng").gate(model="credit", version="1", policy=policy)
    [job] = evaluated_store.as_("vic").list_jobs()
    assert (job.id, job.status, job.depends_on, outcome.review_items) == (outcome.jobs[0], "queued", [], [])


def test_uncertain_examples_are_the_scores_closest_to_the_threshold(shared_evaluated_store, monkeypatch):
    evaluated_store = shared_evaluated_store.enter(monkeypatch)
    import numpy as np
    import pandas as pd

    from governance.sampling import sample_examples

    prediction_set = evaluated_store.as_("vic").show_version(model="credit", version="1").prediction_sets[0]
    path = evaluated_store.as_("vic").prediction_set_path(prediction_set)
    picked = sample_examples(path, prediction_set, strategy="uncertain", count=7, seed=3)
    scores = pd.read_parquet(path)["predicted_probability"].to_numpy()
    closest = np.sort(np.abs(scores - 0.5))[:7]
    assert [abs(e["score"] - 0.5) for e in picked] == pytest.approx(list(closest))
    assert picked == sample_examples(path, prediction_set, strategy="uncertain", count=7, seed=3)


def test_an_examples_id_is_its_id_not_one_of_its_features(tmp_path):
    from types import SimpleNamespace

    import pandas as pd

    from governance.sampling import sample_examples

    path = tmp_path / "p.parquet"
    pd.DataFrame({"row_id": [7, 8], "label": [1, 0], "score": [0.9, 0.6], "sex": ["f", "m"], "x": [1.5, 2.5]}
                 ).to_parquet(path)
    prediction_set = SimpleNamespace(label_column="label", score_column="score", id_column="row_id",
                                     sensitive=("sex",), id="ps-1", intersections=())
    picked = sample_examples(path, prediction_set, strategy="uncertain", count=2, seed=0)
    assert [(e["id"], e["features"]) for e in picked] == [(8, {"sex": "m", "x": 2.5}), (7, {"sex": "f", "x": 1.5})]


def test_a_gate_that_escalates_says_the_loop_stopped_and_what_its_review_items_are_for():
    # Under the strict pack a retrained version's gate files review items and escalates; the output once
    # listed the items as "following from this gate" with nothing saying that no retrain would.
    from types import SimpleNamespace

    from governance.cli.render import gate_outcome
    decision = SimpleNamespace(summary=lambda: "BLOCKED by ece", results=[], decision_threshold=0.3, rows=1234)
    outcome = SimpleNamespace(decision=decision, gate_id="g-1", review_items=["ri-a", "ri-b"], jobs=[], worked=[],
                              escalations=["ri-esc"], superseded=[])
    text = gate_outcome(outcome, dry_run=False)
    assert text.splitlines()[0] == "BLOCKED by ece [g-1], at decision threshold 0.3, 1,234 eval rows"
    assert text.splitlines()[-1] == (
        "the retraining loop stopped and escalated to engineers (ri-esc: `govern review show ri-esc` says why); "
        "no retrain follows the review items, which are for people to judge")
    quiet = gate_outcome(SimpleNamespace(decision=decision, gate_id="g-1", review_items=[], jobs=["job-1"],
                                         escalations=[], worked=[], superseded=[]), dry_run=False)
    assert "escalated" not in quiet


def test_the_default_pack_blocks_an_evaluation_of_too_few_rows(store, tmp_path):
    # Every other rule set a small eval set aside as insufficient, mostly as a warning: the default pack
    # passed a 2-row eval set having judged nothing.
    from governance.ingest import ColumnRoles
    from tests.support.frames import predictions_frame

    path = tmp_path / "tiny.csv"
    predictions_frame(40).to_csv(path, index=False)
    engineer = store.as_("eng")
    roles = ColumnRoles(id="id", sensitive=("sex",))
    for split in ("eval", "reference"):
        engineer.ingest(model="credit", version="1", file=path, split=split, roles=roles)
    engineer.evaluate(model="credit", version="1", resamples=0)
    store.assign_policy("default")
    decision = engineer.gate(model="credit", version="1", dry_run=True).decision
    [size] = [r for r in decision.results if r.rule_id == "evidence-size"]
    assert decision.verdict == "blocked" and size.blocking and size.status == "insufficient"
    assert "200" in size.reason and "40" in size.reason, size.reason


def test_an_escalation_names_the_rules_no_candidate_met():
    # A new user's trial under the strict pack: the escalation said only that max_rounds was reached; that no
    # candidate could meet the calibration rule was in the candidates' text alone.
    from governance.cli.render import escalation_lines

    tried = [{"strategy": s, "metrics": {"accuracy": 0.7}, "failing": failing} for s, failing in (
        ("plain", ["ece-upper: 0.05 above 0.03", "parity: 0.2 above 0.1"]), ("penalty 0.3", ["ece-upper: 0.04"]),
        ("offsets", ["ece-upper: 0.06", "parity: 0.12 above 0.1"]))]
    lines = escalation_lines({"reason": "the lineage had 2 retrain(s), the policy's max_rounds is 2",
                              "candidates": tried})
    assert lines[2] == "  no candidate met ece-upper; parity failed 2 of 3"
    assert escalation_lines({"reason": "r", "candidates": [{"strategy": "a", "failing": []}]})[2].startswith(
        "  candidates the last search tried")  # nothing failed: no summary
