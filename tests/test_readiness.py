"""Release readiness (the Overview's board and `govern readiness`): the verdict in words with the failing rules,
columns and groups, overrides marked, what the policy gates across versions, and what waits for each role."""

from __future__ import annotations

import json

import pytest

from tests.support.policies import QUEUE_POLICY, RELEASE_POLICY
from tests.support.stores import ACS_ROLES

# parity by every sensitive column (SEX, RAC1P) far below what the ACS scores reach: fails in named columns
PARITY_POLICY = """name: p
version: 1
rules:
  - {id: parity, metric: fairness.demographic_parity_difference, feature: every, max: 0.001, min_samples: 30}
  - {id: auc, metric: performance.roc_auc, min: 0.5}
"""


@pytest.fixture
def gated(evaluated_store, tmp_path):
    """credit v1 evaluated and gated under QUEUE_POLICY: blocked by ece, 1 rule item and 4 examples open."""
    store = evaluated_store
    store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    for name, text in (("q.yaml", QUEUE_POLICY), ("r.yaml", RELEASE_POLICY), ("p.yaml", PARITY_POLICY)):
        (tmp_path / name).write_text(text)
    store.assign_policy(tmp_path / "q.yaml")
    store.as_("eng").gate(model="credit", version="1")
    store.as_("ada").add_user(name="rev2", role="reviewer")
    return store, tmp_path


def card(store, user: str = "vic"):
    [found] = store.as_(user).readiness().models
    return found


def test_a_blocked_gate_in_words_and_the_work_it_queued(gated):
    store, _ = gated
    blocked = card(store)
    assert (blocked.verdict, blocked.gated_version, blocked.production) == ("blocked", "1", None)
    [ece] = blocked.findings
    gate = store.as_("vic").latest_gate(model="credit", version="1")
    assert (ece.rule_id, ece.status, ece.blocking, ece.observed) == ("ece", "failed", True,
                                                                    gate.decision.results[0].observed)
    assert blocked.summary == \
        f"v1 BLOCKED under q v1: ece: calibration.ece {ece.observed:.3g} (must be at most 0.0001)"
    assert (blocked.open_items, blocked.active_jobs) == (5, 1)
    [point] = blocked.trend  # the gated metric against its bound
    assert (point.rule_id, point.value, point.threshold, point.status) == ("ece", ece.observed, 0.0001, "failed")
    tasks = store.as_("rey").readiness().needs_you
    assert [(t.kind, t.count, t.text) for t in tasks] == [("judge", 5, "5 items of credit v1 open for review")]
    assert store.as_("vic").readiness().needs_you == []


def test_findings_name_every_failing_column_with_its_value(gated):
    store, folder = gated
    store.assign_policy(folder / "p.yaml")
    gate = store.as_("eng").gate(model="credit", version="1")
    [parity] = [f for f in card(store).findings if f.rule_id == "parity"]
    [result] = [r for r in gate.decision.results if r.rule_id == "parity"]
    assert result.failing and parity.where == [f"{f['feature']} {f['value']:.3g}" for f in result.failing]
    assert {f["feature"] for f in result.failing} <= {"SEX", "RAC1P"}
    assert card(store).summary.startswith("v1 BLOCKED under p v1: parity: fairness.demographic_parity_difference ")


def test_findings_word_the_bound_as_a_requirement_and_insufficient_evidence_by_its_reason():
    # A new user read "leakage: performance.roc_auc 0.998 (under 0.99)", "challenger-auc: ... 0.806 (at most 0.02
    # below its baseline)" 0.097 below it, and "evidence-size: performance.accuracy 0.96" as what had failed.
    from governance.service.readiness import Finding

    leakage = Finding("leakage", "warned", False, "performance.roc_auc", "<", 0.99, 0.998, [], "…")
    assert leakage.sentence() == "leakage: performance.roc_auc 0.998 (must be under 0.99)"
    challenger = Finding("challenger-auc", "warned", False, "performance.roc_auc", "max_regression", 0.02, 0.806, [],
                         "…", baseline=0.903)
    assert challenger.sentence() == ("challenger-auc: performance.roc_auc 0.806, 0.097 below its baseline's 0.903 "
                                     "(may fall at most 0.02 below it)")
    size = Finding("evidence-size", "insufficient", True, "performance.accuracy", ">=", 0.0, 0.96, [],
                   "accuracy cannot be judged: 100 rows, under 200.")
    assert size.sentence() == "evidence-size: accuracy cannot be judged: 100 rows, under 200."


def test_sign_off_then_release_then_the_override_each_wait_for_their_role(gated):
    store, folder = gated
    store.assign_policy(folder / "r.yaml")
    store.as_("eng").gate(model="credit", version="1")
    waiting = card(store)
    assert (waiting.verdict, waiting.summary) == ("awaiting sign-off", "v1 passed every rule of r v1 but its approvals")
    for reviewer in ("rey", "rev2"):
        assert [t.kind for t in store.as_(reviewer).readiness().needs_you if t.kind == "sign_off"] == ["sign_off"]
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
        assert "sign_off" not in [t.kind for t in store.as_(reviewer).readiness().needs_you]
    [release] = [t for t in store.as_("eng").readiness().needs_you if t.kind == "release"]
    assert release.text == "credit v1 passed its gate and has its approvals: release it"
    store.as_("eng").release(model="credit", version="1")
    assert card(store).production.action == "release"
    assert not [t for t in store.as_("eng").readiness().needs_you if t.kind == "release"]

    store.as_("ada").register_version(model="credit", version="2", artifact=store.artifact)
    store.as_("ada").release(model="credit", version="2", override=True, reason="hotfix",
                             expires="2099-01-01T00:00:00Z")
    marked = card(store)
    assert (marked.production.version, marked.production.action, marked.production.expired) == ("2", "override",
                                                                                                 False)
    assert marked.summary == "v1 passed every rule of r v1 but its approvals (v2 not gated yet)"
    [override] = [t for t in store.as_("ada").readiness().needs_you if t.kind == "override"]
    assert override.text.startswith("credit v2 is in production on an override that expires 2099-01-01 (in ")
    assert not [t for t in store.as_("eng").readiness().needs_you if t.kind == "override"]  # admins' alone


def test_an_older_version_gated_since_does_not_call_the_newer_one_ungated(gated, acs_files):
    # A new user's trial: v1 evaluated again at another threshold and gated after v2's blocked gate; readiness read
    # "v1 PASSED ... (v2 not gated yet)".
    store, folder = gated
    engineer = store.as_("eng")
    engineer.register_version(model="credit", version="2", artifact=store.artifact)
    engineer.ingest(model="credit", version="2", file=acs_files[0], split="eval", roles=ACS_ROLES)
    engineer.evaluate(model="credit", version="2", resamples=0)
    assert engineer.gate(model="credit", version="2").decision.verdict == "blocked"
    store.assign_policy(folder / "r.yaml")
    engineer.gate(model="credit", version="1")
    summary = card(store).summary
    assert summary.startswith("v1 passed every rule of r v1 but its approvals") and "not gated yet" not in summary
    assert summary.endswith(" (v2, newer, was gated before it: blocked)")


def test_an_answered_escalation_leaves_engineers_and_admins_the_way_out(gated):
    # A new user's trial: once the loop's escalation was answered, readiness said "nothing waits for you" to
    # everyone while the version stayed blocked; the way out (an admin's override) was only in the README.
    store, _ = gated
    item = store.as_("eng").add_review_item(model="credit", version="1", kind="escalation",
                                            evidence={"reason": "no candidate met ece"})
    assert [t.kind for t in store.as_("eng").readiness().needs_you if t.kind in ("escalation", "decide")] == [
        "escalation"]
    store.as_("eng").dismiss_review_item(item_id=item.id, comment="the bound is out of reach; weighing an override")
    [engineer] = [t for t in store.as_("eng").readiness().needs_you if t.kind == "decide"]
    assert engineer.text.startswith("credit v1 is blocked and its retraining loop escalated, answered ")
    assert engineer.text.endswith(": nothing more runs by itself; an admin may release it on an override; or retrain "
                                  "it by hand")
    [admin] = [t for t in store.as_("ada").readiness().needs_you if t.kind == "decide"]
    assert "release it on an override (`govern release credit 1 --override --reason … --expires …`)" in admin.text
    assert not [t for t in store.as_("rey").readiness().needs_you if t.kind == "decide"]  # not reviewers' to decide
    store.as_("ada").release(model="credit", version="1", override=True, reason="weighed",
                             expires="2099-01-01T00:00:00Z")
    assert not [t for t in store.as_("ada").readiness().needs_you if t.kind == "decide"]


def test_a_version_rolled_back_from_production_is_not_simply_offered_for_release_again(gated):
    # After a deliberate rollback from v1, the board told the engineer "v1 passed its gate and has its approvals:
    # release it", as if nothing had happened.
    store, folder = gated
    store.assign_policy(folder / "r.yaml")
    admin = store.as_("ada")
    admin.register_version(model="credit", version="2", artifact=store.artifact)
    admin.release(model="credit", version="2", override=True, reason="first", expires="2099-01-01T00:00:00Z")
    store.as_("eng").gate(model="credit", version="1")
    for reviewer in ("rey", "rev2"):
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
    store.as_("eng").release(model="credit", version="1")
    admin.rollback(model="credit")
    assert card(store).production.version == "2"
    [release] = [t for t in store.as_("eng").readiness().needs_you if t.kind == "release"]
    assert release.version == "1" and release.text.startswith(
        "credit v1 passed its gate and has its approvals, but ada rolled it back from production at ")
    assert release.text.endswith(": release it again once that cause is settled")


def test_cli_readiness_text_and_json(gated, run_cli):
    store, _ = gated
    result = run_cli(store.home, "readiness", as_="rey")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "credit (high risk): not in production; 5 open review items, 1 active job"
    assert lines[1].startswith("  v1 BLOCKED under q v1: ece: calibration.ece ")
    assert lines[-2:] == ["needs you:", "  - 5 items of credit v1 open for review"]
    body = json.loads(run_cli(store.home, "readiness", "--json", as_="vic").stdout)
    assert body["role"] == "viewer" and body["needs_you"] == []
    [model] = body["models"]
    assert model["verdict"] == "blocked" and model["findings"][0]["rule_id"] == "ece"
    assert "readiness [OPTIONS]" in run_cli(store.home, "readiness", "--help").stdout
