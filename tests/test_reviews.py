"""Review queue, agreement, gold items, feedback sets, four-eyes sign-off, release and rollback."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from governance.agreement import cohens_kappa, krippendorff_alpha
from governance.errors import Conflict, InvalidInput, NotAllowed, NotFound
from governance.service import Service
from tests.support.policies import QUEUE_POLICY, RELEASE_POLICY
from tests.support.stores import ACS_ROLES, file_only, ingest_acs, run_sql, snapshot


@pytest.fixture
def queue(evaluated_store, tmp_path):
    """A store whose version 1 failed a gate: 1 rule item + 4 example items, all open."""
    return _failed_gate(evaluated_store, tmp_path)


@pytest.fixture(scope="module")
def shared_queue(make_shared_store, acs_files, tmp_path_factory):
    """queue's store, once per module and store kind, for the tests that assert they changed nothing."""
    store = make_shared_store()
    with store.kind.active():
        return _failed_gate(ingest_acs(store, acs_files), tmp_path_factory.mktemp("queue"))


@pytest.fixture
def unchanged_queue(shared_queue, monkeypatch):
    shared_queue[0].enter(monkeypatch)
    return shared_queue


def _failed_gate(store, folder):
    """Reviewers rev2-rev4, and version 1 evaluated and gated under QUEUE_POLICY: (store, outcome, example ids)."""
    admin = store.as_("ada")
    for name in ("rev2", "rev3", "rev4"):
        admin.add_user(name=name, role="reviewer")
    store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    policy = folder / "q.yaml"
    policy.write_text(QUEUE_POLICY)
    store.assign_policy(policy)
    outcome = store.as_("eng").gate(model="credit", version="1", policy=policy)
    examples = [i.id for i in store.as_("vic").list_review_items() if i.kind == "example"]
    return store, outcome, examples


@pytest.fixture
def releasable(queue, tmp_path):
    """Version 1 gated under a policy that passes but for its two approvals."""
    store, _, _ = queue
    policy = tmp_path / "r.yaml"
    policy.write_text(RELEASE_POLICY)
    store.assign_policy(policy)
    store.as_("eng").gate(model="credit", version="1", policy=policy)
    return store, policy


def test_claim_judge_resolve_and_the_log(queue):
    store, _, examples = queue
    item = store.as_("rey").claim_review_item(item_id=examples[0])
    assert (item.status, item.assignee) == ("claimed", "rey")
    other = 1 - item.evidence["label"]  # a correction changes the recorded label
    done = store.as_("rey").judge_review_item(item_id=examples[0], verdict="label_wrong", label=other,
                                              comment="the applicant's label is the other one")
    assert done.status == "resolved" and done.resolved_at is not None
    detail = store.as_("vic").show_review_item(item_id=examples[0])
    assert [(j.reviewer, j.verdict, j.corrected_label) for j in detail.judgments] == [("rey", "label_wrong", other)]
    actions = [e for e in _events(store) if e[2] == f"review_item:{examples[0]}"]
    assert [(actor, action) for actor, action, _ in actions] == [("rey", "review.claim"), ("rey", "review.judge")]
    assert store.as_("aud").verify_audit().ok


@file_only  # rules of the service: the store underneath changes nothing they test
def test_a_versions_creator_does_not_judge_its_review_items(queue, tmp_path):
    # An admin who registered a version claimed its sampled examples, relabelled them and built the feedback
    # its retraining learns from: the maker judging the evidence against their own model.
    store, _, examples = queue
    admin = store.as_("ada")
    artifact = tmp_path / "mine.bin"
    artifact.write_bytes(b"the admin's own weights")
    admin.register_version(model="credit", version="9", artifact=artifact)
    mine = admin.add_review_item(model="credit", version="9", evidence={"row": 3})
    before = snapshot(store.home)
    with pytest.raises(NotAllowed, match="^user 'ada' created credit version 9; four eyes: its review items are "
                                         "judged by someone else.$"):
        admin.claim_review_item(item_id=mine.id)
    assert mine.id not in [i.id for i in admin.review_worklist()] and examples[0] in [
        i.id for i in admin.review_worklist()]  # another version's items stay hers to judge
    assert not [t for t in admin.readiness().needs_you if t.kind == "judge" and t.version == "9"]  # nor offered
    assert snapshot(store.home) == before
    assert store.as_("rey").claim_review_item(item_id=mine.id).assignee == "rey"


@file_only  # rules of the service: the store underneath changes nothing they test
def test_only_an_admin_or_whoever_filed_it_by_hand_dismisses_an_item(queue, run_cli):
    # A reviewer dismissed, with a word and no claim, an item needing three judgments, an item another
    # reviewer held, and the gold item measuring them; their job then ran as if it had been judged.
    store, _, examples = queue
    gold = store.as_("ada").add_review_item(model="credit", version="1", evidence={"row": 5},
                                            gold={"verdict": "label_correct"})
    triple = store.as_("eng").add_review_item(model="credit", version="1", evidence={"n": 1}, judgments=3)
    store.as_("rev2").claim_review_item(item_id=examples[0])
    before = snapshot(store.home)
    for item in (gold.id, triple.id, examples[0], examples[1]):
        refused = run_cli(store.home, "review", "dismiss", item, "--comment", "noise", as_="rey")
        assert refused.exit_code == 2, refused.output
        # one sentence for every item: it tells no gold item apart
        assert refused.stderr == (f"error: dismissing review item {item} is for an admin (or whoever filed it by "
                                  "hand, before it is judged): judge it instead (`ambiguous` where the evidence does "
                                  "not settle it, saying what would).\n")
    assert snapshot(store.home) == before
    with pytest.raises(NotAllowed, match="is for an admin"):
        store.as_("eng").dismiss_review_item(item_id=examples[1], comment="the gate's, not mine")
    assert store.as_("eng").dismiss_review_item(item_id=triple.id, comment="filed twice").status == "dismissed"
    assert store.as_("ada").dismiss_review_item(item_id=examples[1], comment="a duplicate row").status == "dismissed"


def _events(store):
    return run_sql(store.home, lambda conn: conn.execute(
        "SELECT actor, action, entity FROM audit_events ORDER BY seq").fetchall())


def test_an_item_needing_two_judgments_resolves_on_the_second_distinct_reviewer(queue):
    store, _, _ = queue
    item = store.as_("ada").add_review_item(model="credit", version="1", evidence={"note": "check"}, judgments=2)
    store.as_("rey").claim_review_item(item_id=item.id)
    after_one = store.as_("rey").judge_review_item(item_id=item.id, verdict="ambiguous", comment="unclear")
    assert (after_one.status, after_one.assignee) == ("open", None)
    with pytest.raises(Conflict, match="you already judged review item"):
        store.as_("rey").claim_review_item(item_id=item.id)
    store.as_("rev2").claim_review_item(item_id=item.id)
    assert store.as_("rev2").judge_review_item(item_id=item.id, verdict="model_wrong",
                                               comment="the model is off").status == "resolved"


def test_a_live_claim_is_exclusive_and_an_expired_one_is_not(queue):
    store, _, examples = queue
    store.as_("rey").claim_review_item(item_id=examples[1], minutes=30)
    with pytest.raises(Conflict, match=f"review item {examples[1]} is claimed by rey until"):
        store.as_("rev2").claim_review_item(item_id=examples[1])
    run_sql(store.home, lambda conn: conn.execute(
        "UPDATE review_items SET claim_expires_at = now()::TIMESTAMP - INTERVAL 1 MINUTE WHERE id = ?",
        [examples[1]]))
    assert store.as_("rev2").claim_review_item(item_id=examples[1]).assignee == "rev2"
    with pytest.raises(NotAllowed, match="you do not hold a live claim"):
        store.as_("rey").judge_review_item(item_id=examples[1], verdict="label_correct", comment="fine")


def _claim(home: str, reviewer: str, item_id: str, results) -> None:
    try:
        Service.open(home=home, actor=reviewer, lock_timeout_s=60).claim_review_item(item_id=item_id)
        results.put((reviewer, "won"))
    except Conflict:
        results.put((reviewer, "refused"))


def test_concurrent_claims_from_several_processes_exactly_one_wins(queue):
    store, _, examples = queue
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    reviewers = ["rey", "rev2", "rev3", "rev4"]
    processes = [ctx.Process(target=_claim, args=(str(store.home), r, examples[2], results)) for r in reviewers]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    outcomes = sorted(results.get(timeout=5) for _ in reviewers)
    winners = [r for r, outcome in outcomes if outcome == "won"]
    assert len(winners) == 1 and len(outcomes) == 4
    assert store.as_("vic").show_review_item(item_id=examples[2]).item.assignee == winners[0]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(item_id="ri-nope", verdict="label_correct", comment="x"), NotFound, "review item 'ri-nope' does not exist"),
    (dict(verdict="label_wrong", label=2, comment="x"), InvalidInput, "label_wrong needs the corrected label, 0 or 1"),
    (dict(verdict="label_correct", label=1, comment="x"), InvalidInput, "a corrected label goes only with"),
    (dict(verdict="guess", comment="x"), InvalidInput, "verdict 'guess' is not one of"),
    (dict(verdict="label_correct", comment="  "), InvalidInput, "a judgment needs a comment"),
    (dict(verdict="label_correct", comment="not claimed"), NotAllowed, "you do not hold a live claim"),
])
def test_bad_judgments_are_refused_and_change_nothing(unchanged_queue, kwargs, error, message):
    store, _, examples = unchanged_queue
    before = snapshot(store.home)
    with pytest.raises(error, match=message):
        store.as_("rey").judge_review_item(**{"item_id": examples[3], **kwargs})
    assert snapshot(store.home) == before


def test_a_correction_giving_the_label_already_recorded_is_refused(queue):
    store, _, examples = queue
    recorded = store.as_("rey").claim_review_item(item_id=examples[0]).evidence["label"]
    before = snapshot(store.home)
    with pytest.raises(InvalidInput, match=f"row already has label {recorded}: a correction gives the other label"):
        store.as_("rey").judge_review_item(item_id=examples[0], verdict="label_wrong", label=recorded, comment="x")
    assert snapshot(store.home) == before
    judged = store.as_("rey").judge_review_item(item_id=examples[0], verdict="label_wrong", label=1 - recorded,
                                                comment="the other label")
    assert judged.status == "resolved"


def test_agreement_against_hand_computed_values():
    a, b = ["x", "x", "y", "y"], ["x", "y", "y", "y"]
    assert cohens_kappa(a, b) == pytest.approx(0.5)  # p_o 3/4, p_e (2·1 + 2·3)/16 = 1/2
    # Coincidences o_xx 2, o_xy = o_yx 1, o_yy 4; n_x 3, n_y 5, n 8: α = 1 − 2 / (2·3·5 / 7) = 8/15.
    assert krippendorff_alpha({i: [x, y] for i, (x, y) in enumerate(zip(a, b))}) == pytest.approx(8 / 15)


def test_agreement_matches_reference_implementations():
    import krippendorff
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 60)
    coders = [np.where(rng.random(60) < q, truth, rng.integers(0, 3, 60)) for q in (0.9, 0.7, 0.5)]
    assert cohens_kappa(list(coders[0]), list(coders[1])) == pytest.approx(cohen_kappa_score(coders[0], coders[1]))
    data = np.array(coders, dtype=float)
    data[2, :10] = np.nan  # a coder who skipped some units
    units = {u: [int(v) for v in data[:, u] if not np.isnan(v)] for u in range(60)}
    assert krippendorff_alpha(units) == pytest.approx(krippendorff.alpha(reliability_data=data,
                                                                         level_of_measurement="nominal"))


def test_agreement_and_gold_accuracy_from_the_store(queue):
    store, _, examples = queue
    admin = store.as_("ada")
    for item_id in examples[:2]:
        shared = admin.add_review_item(model="credit", version="1", evidence={"copy_of": item_id}, judgments=2)
        store.as_("rey").claim_review_item(item_id=shared.id)
    items = [i for i in store.as_("vic").list_review_items() if i.kind == "manual"]
    for item, (v1, v2) in zip(items, (("label_correct", "label_correct"), ("ambiguous", "model_wrong"))):
        for reviewer, verdict in (("rey", v1), ("rev2", v2)):
            if store.as_("vic").show_review_item(item_id=item.id).item.assignee != reviewer:
                store.as_(reviewer).claim_review_item(item_id=item.id)
            store.as_(reviewer).judge_review_item(item_id=item.id, verdict=verdict, comment="seen")
            if reviewer == "rey":  # judging again is refused as what it is, not as a missing claim
                with pytest.raises(Conflict, match=f"^you already judged review item {item.id}.$"):
                    store.as_("rey").judge_review_item(item_id=item.id, verdict=verdict, comment="again")
    gold = [admin.add_review_item(model="credit", version="1", evidence={"n": n}, gold={"verdict": "label_wrong",
                                                                                     "label": 1}) for n in range(3)]
    for item, label in zip(gold, (1, 0, 0)):
        store.as_("rev3").claim_review_item(item_id=item.id)
        store.as_("rev3").judge_review_item(item_id=item.id, verdict="label_wrong", label=label, comment="gold")
    result = store.as_("vic").agreement(model="credit")
    assert result.items == 2
    assert result.pairs == [{"reviewers": ["rev2", "rey"], "cohens_kappa": cohens_kappa(
        ["label_correct", "model_wrong"], ["label_correct", "ambiguous"]), "items": 2}]
    [rev3] = result.reviewers
    assert (rev3["reviewer"], rev3["gold_judged"], rev3["flagged"]) == ("rev3", 3, True)
    assert rev3["gold_accuracy"] == pytest.approx(1 / 3)
    assert store.as_("ada").show_review_item(item_id=gold[0].id).gold_answer == {"verdict": "label_wrong", "label": 1}
    assert store.as_("rey").show_review_item(item_id=gold[0].id).gold_answer is None  # hidden from reviewers
    for recorded in (1, 1.0, True):  # as JSON evidence may hold it
        with pytest.raises(InvalidInput, match="the gold answer corrects the label to 1, the label its evidence"):
            store.as_("ada").add_review_item(model="credit", version="1", evidence={"label": recorded},
                                             gold={"verdict": "label_wrong", "label": 1})
    with pytest.raises(NotAllowed, match="only an admin files gold items"):
        store.as_("eng").add_review_item(model="credit", version="1", evidence={"n": 0}, gold={"verdict": "ambiguous"})


def test_corrections_become_versioned_feedback_datasets(queue):
    import pandas as pd

    store, outcome, examples = queue
    other = {}  # each example's label other than the recorded one: what a correction gives
    for item_id, reviewer in zip(examples[:2], ("rey", "rev2")):
        other[item_id] = 1 - store.as_(reviewer).claim_review_item(item_id=item_id).evidence["label"]
        store.as_(reviewer).judge_review_item(item_id=item_id, verdict="label_wrong", label=other[item_id],
                                              comment="relabel")
    first = store.as_("eng").build_feedback(model="credit")
    assert (first.version, first.corrections, first.new) == (1, 2, True)
    assert store.as_("eng").build_feedback(model="credit").new is False
    frame = pd.read_parquet(store.home / "artifacts" / "sha256" / first.sha256[:2] / first.sha256)
    assert dict(zip(frame["item"], frame["corrected_label"])) == other
    assert set(frame["gate"]) == {outcome.gate_id} and set(frame["reviewers"]) == {"rey", "rev2"}
    third = 1 - store.as_("rev3").claim_review_item(item_id=examples[2]).evidence["label"]
    store.as_("rev3").judge_review_item(item_id=examples[2], verdict="label_wrong", label=third, comment="relabel")
    assert store.as_("eng").build_feedback(model="credit").version == 2
    for user, role in (("vic", "viewer"), ("rey", "reviewer")):  # a snapshot is a training data set: engineers'
        with pytest.raises(NotAllowed, match=f"^user '{user}' is a {role} and may not register models, versions "
                                             "and feedback datasets"):
            store.as_(user).build_feedback(model="credit")


def test_the_creator_cannot_sign_off_and_a_later_decision_supersedes(releasable):
    store, _ = releasable
    # An admin may both register and sign off, but never sign off a version of their own.
    store.as_("ada").register_version(model="credit", version="own", artifact=store.artifact)
    with pytest.raises(NotAllowed, match="^user 'ada' created credit version own; four eyes: its creator cannot"):
        store.as_("ada").sign_off(model="credit", version="own", decision="approve")
    with pytest.raises(NotAllowed, match="may not sign off releases"):
        store.as_("eng").sign_off(model="credit", version="1", decision="approve")
    store.as_("rey").sign_off(model="credit", version="1", decision="approve", comment="ok")
    with pytest.raises(InvalidInput, match="a rejection needs a comment"):
        store.as_("rey").sign_off(model="credit", version="1", decision="reject")
    for invisible in ("\u200b", "\u2800", " \u3164\ufeff "):  # a hostile trial's blank comments that passed
        with pytest.raises(InvalidInput, match="a rejection needs a comment"):
            store.as_("rey").sign_off(model="credit", version="1", decision="reject", comment=invisible)
    store.as_("rey").sign_off(model="credit", version="1", decision="reject", comment="parity worries me")
    [current] = store.as_("vic").signoffs(model="credit", version="1")
    assert (current.reviewer, current.decision, current.revision) == ("rey", "reject", 2)


def test_release_needs_a_passing_gate_and_the_approvals_then_rollback(releasable, queue, tmp_path):
    store, policy = releasable
    engineer = store.as_("eng")
    with pytest.raises(NotAllowed, match="has 0 of the 2 independent approvals it needs"):
        engineer.release(model="credit", version="1")
    store.as_("rey").sign_off(model="credit", version="1", decision="approve")
    store.as_("rev2").sign_off(model="credit", version="1", decision="reject", comment="not yet")
    with pytest.raises(NotAllowed, match=r"is rejected \(rev2 on credit version 1\); a rejection blocks that artifact"):
        engineer.release(model="credit", version="1")
    store.as_("rev2").sign_off(model="credit", version="1", decision="withdraw")
    store.as_("rev3").sign_off(model="credit", version="1", decision="approve")
    first = engineer.release(model="credit", version="1")
    assert (first.version, first.previous_version, first.action) == ("1", None, "release")
    assert store.as_("vic").production_version(model="credit") == "1"

    engineer.register_version(model="credit", version="2", artifact=store.artifact, parent="1")
    with pytest.raises(NotAllowed, match="has no gate decision"):
        engineer.release(model="credit", version="2")
    with pytest.raises(NotAllowed, match="may not override a gate: that needs the role admin"):
        engineer.release(model="credit", version="2", override=True, reason="hotfix", expires="2099-01-01T00:00:00Z")
    with pytest.raises(InvalidInput, match="an override needs a reason"):
        store.as_("ada").release(model="credit", version="2", override=True, reason=" ", expires="2099-01-01")
    for invisible in ("\u200b", "\u2800\u2800", "\u00ad\u034f", "\u200e", "\U000e0020\U000e0041", "\u0301\ufe0f",
                      "\u2065", "\U0001d173"):  # released on an override with them (direction marks, tags, marks)
        with pytest.raises(InvalidInput, match="an override needs a reason"):
            store.as_("ada").release(model="credit", version="2", override=True, reason=invisible,
                                     expires="2099-01-01")
    with pytest.raises(InvalidInput, match="is not in the future"):
        store.as_("ada").release(model="credit", version="2", override=True, reason="hotfix", expires="2001-01-01")
    override = store.as_("ada").release(model="credit", version="2", override=True, reason="hotfix for outage",
                                        expires="2099-01-01T00:00:00Z")
    assert (override.action, override.override_reason, override.previous_version) == ("override", "hotfix for outage",
                                                                                       "1")
    back = engineer.rollback(model="credit")
    assert (back.version, back.previous_version, back.action) == ("1", "2", "rollback")
    with pytest.raises(NotAllowed, match="only by an admin's override; only an admin puts it back"):
        engineer.rollback(model="credit", to="2")
    again = store.as_("ada").rollback(model="credit", to="2")
    assert again.version == "2"
    with pytest.raises(InvalidInput, match="was never in production before"):
        engineer.rollback(model="credit", to="7")
    # a new user's trial: "version '2' was never in production before (production has held: 1, 2)"
    with pytest.raises(InvalidInput, match="version '2' of 'credit' is in production now; roll back to a version"):
        engineer.rollback(model="credit", to="2")
    history = store.as_("vic").history(model="credit")
    assert [(m.action, m.version, m.actor) for m in history] == [
        ("release", "1", "eng"), ("override", "2", "ada"), ("rollback", "1", "eng"), ("rollback", "2", "ada")]
    logged = [(actor, action) for actor, action, entity in _events(store) if entity == "model:credit"
              and action.startswith("alias.")]
    assert logged == [("eng", "alias.release"), ("ada", "alias.override"), ("eng", "alias.rollback"),
                      ("ada", "alias.rollback")]
    assert store.as_("aud").verify_audit().ok


def test_a_blocked_gate_refuses_release(unchanged_queue):
    store, _, _ = unchanged_queue
    before = snapshot(store.home)
    with pytest.raises(NotAllowed, match="the latest gate of credit version 1 is blocked by ece"):
        store.as_("eng").release(model="credit", version="1")
    assert snapshot(store.home) == before


@pytest.mark.parametrize("user, allowed", [("vic", set()), ("rey", {"claim", "signoff"}),
                                           ("eng", {"release", "rollback"}), ("aud", set()),
                                           ("ada", {"claim", "signoff", "release", "rollback", "override"})])
def test_role_matrix_for_review_and_release_actions(releasable, user, allowed):
    store, _ = releasable
    item = store.as_("ada").add_review_item(model="credit", version="1", evidence={"x": 1})
    for reviewer in ("rey", "rev2"):
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
    store.as_("ada").release(model="credit", version="1")  # four eyes: rey and rev2 approved
    store.as_("eng").register_version(model="credit", version="3", artifact=store.artifact)
    store.as_("ada").release(model="credit", version="3", override=True, reason="seed", expires="2099-01-01")
    calls = {
        "claim": lambda s: s.claim_review_item(item_id=item.id),
        "signoff": lambda s: s.sign_off(model="credit", version="1", decision="approve"),
        "rollback": lambda s: s.rollback(model="credit", to="1"),  # 1 was released through four eyes
        # (production back on 3 first: releasing the version production holds is refused for anyone)
        "release": lambda s: (store.as_("ada").release(model="credit", version="3", override=True, reason="again",
                                                       expires="2099-01-01"), s.release(model="credit", version="1")),
        "override": lambda s: s.release(model="credit", version="3", override=True, reason="r", expires="2099-01-01"),
    }
    for action, call in calls.items():
        if action in allowed:
            call(store.as_(user))
        else:
            with pytest.raises(NotAllowed):
                call(store.as_(user))


def test_cli_review_signoff_release_history(releasable, run_cli):
    store, _ = releasable
    item = [i for i in store.as_("vic").list_review_items() if i.kind == "example"][0]
    assert run_cli(store.home, "review", "claim", item.id, as_="rey").exit_code == 0
    result = run_cli(store.home, "review", "judge", item.id, "--verdict", "label_wrong",
                     "--label", str(1 - item.evidence["label"]),
                     "--comment", "employed", as_="rey")
    assert result.exit_code == 0 and result.stdout == f"judged {item.id}: now resolved\n"
    result = run_cli(store.home, "review", "judge", item.id, "--verdict", "ambiguous", "--comment", "x", as_="rev2")
    # resolved: said first (it said "claim it first", and claiming it then said it was resolved)
    assert result.exit_code == 2
    assert f"review item {item.id} is resolved; there is nothing left to judge" in result.stderr
    for reviewer in ("rey", "rev2"):
        approved = run_cli(store.home, "signoff", "credit", "1", "--approve", as_=reviewer)
        assert approved.exit_code == 0, approved.stderr
    result = run_cli(store.home, "signoff", "credit", "1", "--reject", as_="rev3")
    assert result.exit_code == 2 and "a rejection needs a comment" in result.stderr
    assert run_cli(store.home, "release", "credit", "1", as_="eng").stdout == "credit production: - → 1\n"
    import json

    history = json.loads(run_cli(store.home, "history", "credit", "--json", as_="vic").stdout)
    assert [(h["action"], h["version"]) for h in history] == [("release", "1")]
    agreement = json.loads(run_cli(store.home, "agreement", "--json", as_="vic").stdout)
    assert set(agreement) == {"items", "krippendorff_alpha", "pairs", "reviewers"}
    assert run_cli(store.home, "review", "show", item.id, as_="vic").exit_code == 0


def test_contradictory_cli_flags_are_refused_not_settled_by_their_order(releasable, run_cli):
    store, _ = releasable
    before = snapshot(store.home)
    both = run_cli(store.home, "signoff", "credit", "1", "--approve", "--reject", "--comment", "no", as_="rey")
    assert (both.exit_code, both.stderr) == (
        2, "error: say one of --approve, --reject or --withdraw, not --approve and --reject.\n")
    none = run_cli(store.home, "signoff", "credit", "1", as_="rey")
    assert (none.exit_code, none.stderr) == (2, "error: say one of --approve, --reject or --withdraw.\n")
    label_alone = run_cli(store.home, "review", "add", "credit", "1", "--evidence", "look", "--gold-label", "1",
                          as_="ada")
    assert label_alone.exit_code == 2 and label_alone.stderr.startswith("error: --gold-label goes with --gold-verdict")
    assert snapshot(store.home) == before
    assert run_cli(store.home, "signoff", "credit", "1", "--reject", "--comment", "no", as_="rey").exit_code == 0
    withdrawn = run_cli(store.home, "signoff", "credit", "1", "--withdraw", as_="rey")
    assert (withdrawn.exit_code, withdrawn.stdout) == (0, "rey withdrew their decision on credit version 1\n")


def test_a_result_that_fails_to_print_is_not_reported_as_nothing_changed(releasable, run_cli, monkeypatch):
    from governance.cli import common

    store, _ = releasable

    def broken(*args, **kwargs):
        raise RuntimeError("the terminal went away")

    monkeypatch.setattr(common, "_render", broken)
    result = run_cli(store.home, "signoff", "credit", "1", "--approve", as_="rey")
    assert result.exit_code == 1 and result.stderr.startswith(
        "error: the command finished and what it did is stored, but printing its result failed (RuntimeError: "
        "the terminal went away)")
    assert "nothing was changed" not in result.stderr
    assert [s.reviewer for s in store.as_("vic").signoffs(model="credit", version="1")] == ["rey"]  # it was stored
    # a read whose output fails changed nothing: it says so, and exits 2 (1 read as "verification failed")
    listed = run_cli(store.home, "review", "list", as_="rey")
    assert listed.exit_code == 2 and listed.stderr.startswith(
        "error: the command changed nothing, but its output could not be written (RuntimeError: the terminal")


def test_ctrl_c_says_whether_anything_was_stored(releasable, run_cli, monkeypatch):
    # Ctrl-C had printed click's "Aborted!" whether or not the command's work was already committed.
    from governance.cli import common
    from governance.service import Service

    store, _ = releasable

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    before, sign_off = snapshot(store.home), Service.sign_off
    monkeypatch.setattr(Service, "sign_off", interrupted)
    result = run_cli(store.home, "signoff", "credit", "1", "--approve", as_="rey")
    assert (result.exit_code, result.stderr) == (130, "interrupted: nothing was changed.\n")
    assert snapshot(store.home) == before
    monkeypatch.setattr(Service, "sign_off", sign_off)
    monkeypatch.setattr(common, "_render", interrupted)  # the decision committed, then the interrupt
    result = run_cli(store.home, "signoff", "credit", "1", "--approve", as_="rey")
    assert result.exit_code == 130, result.stderr
    assert result.stderr.startswith(
        "interrupted: what the command had finished is stored (units of work are whole)")
    assert [s.reviewer for s in store.as_("vic").signoffs(model="credit", version="1")] == ["rey"]


def test_help_and_version_into_a_full_device_are_one_sentence():
    import subprocess
    import sys
    from pathlib import Path

    for args in (["--version"], ["--help"], ["review", "--help"], ["whoami", "--help"]):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "governance.cli", *args], stdout=full, stderr=subprocess.PIPE,
                                  text=True, cwd=Path(__file__).parent.parent, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (args, done.stderr)
        assert "could not be written" in done.stderr or "No space left on device" in done.stderr, done.stderr


def test_a_drifting_production_batch_files_one_drift_alert(evaluated_store, acs_files, tmp_path):
    import pandas as pd

    store = evaluated_store
    engineer = store.as_("eng")
    frame = pd.read_parquet(acs_files[0])
    calm = tmp_path / "calm.parquet"
    frame.to_parquet(calm)
    drifted = tmp_path / "drifted.parquet"
    frame.assign(AGEP=frame["AGEP"] + 25, SCHL=frame["SCHL"].clip(upper=12), MAR=1).to_parquet(drifted)
    engineer.ingest(model="credit", version="1", file=calm, split="production", roles=ACS_ROLES,
                    batch_time="2017-01-01T00:00:00Z")
    _, metrics, alert = engineer.monitor(model="credit", version="1")
    assert alert is None and metrics.find("drift", "dataset_drift").value == 0
    batch = engineer.ingest(model="credit", version="1", file=drifted, split="production", roles=ACS_ROLES,
                            batch_time="2018-01-01T00:00:00Z")
    evaluation, metrics, alert = engineer.monitor(model="credit", version="1")
    assert evaluation.prediction_set_id == batch.id and metrics.find("drift", "dataset_drift").value == 1
    item = store.as_("vic").show_review_item(item_id=alert).item
    assert item.kind == "drift_alert" and set(item.evidence["drifted_columns"]) >= {"AGEP", "SCHL", "MAR"}
    assert engineer.monitor(model="credit", version="1", batch=batch.id)[2] == alert  # once per batch
    assert len(store.as_("vic").list_evaluations(model="credit", version="1")) == 3
    with pytest.raises(NotFound, match="has not been evaluated"):  # batches are monitored, not gated
        store.as_("vic").latest_evaluation(model="credit", version="1")


def test_refused_sign_offs_and_overrides_change_nothing_and_accepted_ones_are_logged(releasable):
    store, _ = releasable
    before = snapshot(store.home)
    with pytest.raises(InvalidInput):
        store.as_("rey").sign_off(model="credit", version="1", decision="reject", comment="")
    with pytest.raises(InvalidInput):
        store.as_("ada").release(model="credit", version="1", override=True, reason="", expires="2099-01-01")
    with pytest.raises(InvalidInput):
        store.as_("ada").release(model="credit", version="1", override=True, reason="why")  # no expiry
    with pytest.raises(NotFound):
        store.as_("rey").claim_review_item(item_id="ri-missing")
    assert snapshot(store.home) == before
    store.as_("rey").sign_off(model="credit", version="1", decision="approve", comment="ok")
    store.as_("rey").sign_off(model="credit", version="1", decision="withdraw")
    logged = [(actor, action) for actor, action, entity in _events(store) if entity == "version:credit/1"
              and action.startswith("signoff.")]
    assert logged == [("rey", "signoff.approve"), ("rey", "signoff.withdraw")]
    assert store.as_("aud").verify_audit().ok


# -- working through the queue: batches of claims and judgments, guidance, gold items ---------------------

def _json(result):
    import json

    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_claims_the_next_items_and_judges_several_in_one_step(queue, run_cli):
    store, _, examples = queue
    # The worklist puts a gate's examples before its rule failure: judge the rows, then the rule.
    claimed = _json(run_cli(store.home, "review", "claim", "--next", "2", "--json", as_="rey"))
    assert [(i["id"], i["assignee"]) for i in claimed] == [(examples[0], "rey"), (examples[1], "rey")]
    one = run_cli(store.home, "review", "claim", examples[2], as_="rey")
    assert one.stdout.startswith(f"claimed {examples[2]} until")
    shown = run_cli(store.home, "review", "show", examples[0], as_="rey").stdout
    assert "  to judge: A row of the evaluated predictions, sampled because a rule of the policy failed." in shown
    assert "\n  rule ece: calibration.ece 0.0158 (point) must be <= 1.000e-04; n 3456: failed\n" in shown
    assert "; sampled by high_confidence_errors (" in shown and "rank" not in shown  # not shown to a reviewer
    assert "(rank " in run_cli(store.home, "review", "show", examples[0], as_="eng").stdout
    detail = _json(run_cli(store.home, "review", "show", examples[0], "--json", as_="rey"))
    assert (detail["rule"]["rule_id"], detail["rule"]["status"], detail["guidance"]["kind"]) == ("ece", "failed",
                                                                                                 "example")

    recorded = {e: store.as_("eng").show_review_item(item_id=e).item.evidence["label"] for e in examples[:3]}
    majority = max((0, 1), key=lambda value: list(recorded.values()).count(value))
    wrong = [e for e in examples[:3] if recorded[e] == majority]  # at least two: one step judges them all
    right = [e for e in examples[:3] if recorded[e] != majority]
    before = snapshot(store.home)
    if right:  # one item already holding the label refuses the whole step
        refused = run_cli(store.home, "review", "judge", *examples[:3], "--verdict", "label_wrong",
                          "--label", str(1 - majority), "--comment", "per payroll", as_="rey")
        assert refused.exit_code == 2 and f"review item {right[0]}'s row already has label" in refused.stderr
        assert snapshot(store.home) == before
    judged = _json(run_cli(store.home, "review", "judge", *wrong, "--verdict", "label_wrong",
                           "--label", str(1 - majority), "--comment", "per payroll", "--json", as_="rey"))
    assert [(i["id"], i["status"]) for i in judged] == [(e, "resolved") for e in wrong]
    for item_id in wrong:
        [judgment] = store.as_("vic").show_review_item(item_id=item_id).judgments
        assert (judgment.reviewer, judgment.verdict, judgment.corrected_label) == ("rey", "label_wrong", 1 - majority)
    judge_events = [entity for _, action, entity in _events(store) if action == "review.judge"]
    assert judge_events == [f"review_item:{e}" for e in wrong]  # one audited judgment per item
    assert store.as_("aud").verify_audit().ok
    rule = _json(run_cli(store.home, "review", "claim", "--next", "5", "--kind", "rule_failure", "--json", as_="rey"))
    assert [(i["kind"], i["rule_id"]) for i in rule] == [("rule_failure", "ece")]  # fewer than asked: all there is
    assert "Several IDs take the same verdict" in run_cli(store.home, "review", "judge", "--help").stdout
    assert "--next N" in run_cli(store.home, "review", "claim", "--help").stdout


def test_a_batch_with_any_refused_item_changes_nothing_and_names_each(queue, run_cli):
    store, outcome, examples = queue
    for reviewer, item_id in (("rey", examples[0]), ("rey", examples[1]), ("rev2", examples[2]), ("rey", examples[3])):
        store.as_(reviewer).claim_review_item(item_id=item_id)
    run_sql(store.home, lambda conn: conn.execute(
        "UPDATE review_items SET claim_expires_at = now()::TIMESTAMP - INTERVAL 1 MINUTE WHERE id = ?", [examples[3]]))
    [rule_item] = [i for i in outcome.review_items if i not in examples]
    # Worklists: your live claims first, then what you may claim (a lapsed claim included, others' live ones not).
    assert [i.id for i in store.as_("rey").review_worklist()] == [examples[0], examples[1], examples[3], rule_item]
    assert [i.id for i in store.as_("rev3").review_worklist()] == [examples[3], rule_item]
    before = snapshot(store.home)
    result = run_cli(store.home, "review", "judge", examples[0], examples[1], examples[2], examples[3], "ri-nope",
                     "--verdict", "label_correct", "--comment", "fine", as_="rey")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: nothing was judged: 3 of the 5 items named cannot be. "
        f"(1) you do not hold a live claim on review item {examples[2]}; claim it first with `govern review claim "
        f"{examples[2]}`. (2) you do not hold a live claim on review item {examples[3]}; claim it first with "
        f"`govern review claim {examples[3]}`. (3) review item 'ri-nope' does not exist; `govern review list` "
        "shows the queue.\n")
    twice = run_cli(store.home, "review", "judge", examples[0], examples[1], examples[0], "--verdict", "ambiguous",
                    "--comment", "x", as_="rey")
    assert (twice.exit_code, twice.stderr) == (
        2, f"error: review item '{examples[0]}' is named more than once; name each item once.\n")
    taken = run_cli(store.home, "review", "claim", examples[0], examples[2], as_="rey")  # rev2 holds examples[2]
    assert taken.exit_code == 2 and taken.stderr.startswith(
        f"error: nothing was claimed: 1 of the 2 items named cannot be. (1) review item {examples[2]} is claimed by "
        "rev2 until ")
    both = run_cli(store.home, "review", "claim", examples[0], "--next", "2", as_="rey")
    assert (both.exit_code, both.stderr) == (2, "error: name the items to claim or give --next N, not both.\n")
    with pytest.raises(InvalidInput, match="^name at least one review item.$"):
        store.as_("rey").judge_review_items(item_ids=[], verdict="ambiguous", comment="x")
    assert snapshot(store.home) == before


def test_a_rule_failure_takes_no_label_verdict_alone_or_in_a_batch(queue, run_cli):
    store, outcome, examples = queue
    [rule_item] = [i for i in outcome.review_items if i not in examples]
    store.as_("rey").claim_review_item(item_id=rule_item)
    store.as_("rey").claim_review_item(item_id=examples[0])
    before = snapshot(store.home)
    alone = run_cli(store.home, "review", "judge", rule_item, "--verdict", "label_wrong", "--label", "1",
                    "--comment", "relabel", as_="rey")
    assert (alone.exit_code, alone.stderr) == (2, (
        f"error: review item {rule_item} is a rule_failure: it has no row to relabel. Judge it model_wrong or "
        f"ambiguous (`govern review show {rule_item}` says what each means), or dismiss it with a comment.\n"))
    batch = run_cli(store.home, "review", "judge", examples[0], rule_item, "--verdict", "label_correct",
                    "--comment", "fine", as_="rey")  # right for the example, not for the rule
    assert batch.exit_code == 2 and f"review item {rule_item} is a rule_failure" in batch.stderr
    assert snapshot(store.home) == before  # nothing judged, neither item
    judged = store.as_("rey").judge_review_item(item_id=rule_item, verdict="model_wrong", comment="the gap is real")
    assert judged.status == "resolved"


def test_a_gold_item_has_the_id_an_example_of_its_row_would_have(queue, run_cli):
    from governance.service.gates import example_key

    store, outcome, examples = queue
    example = store.as_("rey").show_review_item(item_id=examples[0]).item
    taken = {store.as_("rey").show_review_item(item_id=e).item.evidence["row"] for e in examples}
    row = next(r for r in range(10_000) if r not in taken)
    gold = store.as_("ada").add_review_item(model="credit", version="1", gold={"verdict": "label_correct"},
                                            evidence={**example.evidence, "row": row})
    gate = _json(run_cli(store.home, "gate", "show", "credit", "1", "--json", as_="rey"))  # what a reviewer reads
    measured = store.as_("rey").latest_evaluation(model="credit", version="1")[1]  # and may read

    def recomputed(item) -> str:
        return "ri-" + example_key("credit", "1", gate["policy_sha256"], measured.values_sha256(), item.rule_id,
                                   item.evidence["row"])[:12]

    seen = [i for i in store.as_("rey").list_review_items(model="credit") if i.kind == "example"]
    assert gold.id in {i.id for i in seen} and len(seen) == len(examples) + 1
    assert all(recomputed(i) == i.id for i in seen)  # a random id had told the gold item apart
    before = snapshot(store.home)
    with pytest.raises(InvalidInput, match=f"row {example.evidence['row']!r} is already an example of that gate"):
        store.as_("ada").add_review_item(model="credit", version="1", gold={"verdict": "label_correct"},
                                         evidence=example.evidence)
    assert snapshot(store.home) == before


def test_whoever_filed_a_gold_item_neither_claims_nor_judges_it(queue):
    # A hostile trial: an admin claimed and judged a gold item they had filed, and it counted as one of its judgments.
    store, _, examples = queue
    example = store.as_("rey").show_review_item(item_id=examples[0]).item
    taken = {store.as_("rey").show_review_item(item_id=e).item.evidence["row"] for e in examples}
    gold = store.as_("ada").add_review_item(model="credit", version="1", gold={"verdict": "label_correct"},
                                            evidence={**example.evidence, "row": next(r for r in range(10_000)
                                                                                      if r not in taken)})
    before = snapshot(store.home)
    with pytest.raises(NotAllowed, match=f"you filed gold item {gold.id} and know its answer"):
        store.as_("ada").claim_review_item(item_id=gold.id)
    assert snapshot(store.home) == before
    assert gold.id not in [i.id for i in store.as_("ada").claim_next_review_items(count=50, model="credit")]
    store.as_("rey").claim_review_item(item_id=gold.id)  # a reviewer judges it, without its answer
    assert store.as_("rey").judge_review_item(item_id=gold.id, verdict="label_correct", comment="fine").id == gold.id


def test_a_gates_job_waits_for_the_gold_items_filed_on_it_too(queue):
    # A hostile trial: every real item resolved, the gate's job was queued while one "example" stayed open: the
    # gold one, told apart by the job's status.
    from governance.review_guidance import guidance_for

    store, outcome, examples = queue
    [job_id] = outcome.jobs
    example = store.as_("rey").show_review_item(item_id=examples[0]).item
    taken = {store.as_("rey").show_review_item(item_id=e).item.evidence["row"] for e in examples}
    gold = store.as_("ada").add_review_item(model="credit", version="1", gold={"verdict": "label_correct"},
                                            evidence={**example.evidence, "row": next(r for r in range(10_000)
                                                                                      if r not in taken)})
    assert gold.id in store.as_("eng").show_job(job_id=job_id).job.depends_on
    assert store.as_("rey").show_job(job_id=job_id).job.depends_on == []  # reviewers do not see what it waits for
    reviewer = store.as_("rey")
    for item_id in outcome.review_items:
        kind = reviewer.show_review_item(item_id=item_id).item.kind
        reviewer.claim_review_item(item_id=item_id)
        reviewer.judge_review_item(item_id=item_id, verdict="model_wrong" if kind == "rule_failure" else
                                   next(iter(guidance_for(kind).verdicts)), comment="checked")
    assert store.as_("rey").show_job(job_id=job_id).job.status == "waiting_review"  # the gold item is open
    reviewer.claim_review_item(item_id=gold.id)
    reviewer.judge_review_item(item_id=gold.id, verdict="label_correct", comment="checked")
    assert store.as_("rey").show_job(job_id=job_id).job.status == "queued"


def test_a_gold_item_passes_for_an_example_the_live_job_waits_for_after_a_pack_round_trip(queue, tmp_path):
    # An attack: gated under another pack and back, the newest example was the superseded gate's; a gold item took
    # that gate, and the job that runs did not wait for it.
    store, outcome, examples = queue
    other = tmp_path / "other.yaml"
    other.write_text(QUEUE_POLICY.replace("name: q", "name: q-other").replace("max: 0.0001", "max: 0.0002"))
    store.assign_policy(other)
    assert store.as_("eng").gate(model="credit", version="1", policy=other).superseded == outcome.jobs
    store.assign_policy(tmp_path / "q.yaml")  # the queue's own pack again
    back = store.as_("eng").gate(model="credit", version="1")
    [live] = [j for j in store.as_("eng").list_jobs(status="waiting_review")]
    assert live.id in back.jobs
    example = store.as_("rey").show_review_item(item_id=examples[0]).item
    taken = {store.as_("rey").show_review_item(item_id=e).item.evidence["row"] for e in examples}
    gold = store.as_("ada").add_review_item(model="credit", version="1", gold={"verdict": "label_correct"},
                                            evidence={**example.evidence, "row": next(r for r in range(10_000)
                                                                                      if r not in taken)})
    assert gold.id in store.as_("eng").show_job(job_id=live.id).job.depends_on
    kin = store.as_("eng").show_review_item(item_id=live.depends_on[-1]).item
    seen = store.as_("rey").show_review_item(item_id=gold.id).item
    assert (seen.rule_id, seen.gate_decision_id) == (kin.rule_id, kin.gate_decision_id)


def test_reviewers_see_gold_items_as_examples_and_everyone_else_sees_the_truth(queue, run_cli):
    store, _, examples = queue
    gold = store.as_("ada").add_review_item(model="credit", version="1", gold={"verdict": "label_wrong", "label": 1},
                                            evidence={"id": 7, "label": 0, "features": {"AGEP": 41}})

    def listed(user, *options):
        return {i["id"]: (i["kind"], i["is_gold"]) for i in _json(run_cli(store.home, "review", "list", *options,
                                                                          "--json", as_=user))}

    assert listed("rey")[gold.id] == ("example", False)
    assert gold.id in listed("rey", "--kind", "example") and listed("rey", "--kind", "gold") == {}
    # nothing in the queue tells it from the gate's examples: their rule, gate, priority and judgments
    # (a gold item all three reviewers must judge still shows the one an example needs)
    every = store.as_("ada").add_review_item(model="credit", version="1", gold={"verdict": "label_correct"},
                                             evidence={"id": 8, "label": 1, "features": {"AGEP": 30}}, judgments=3)
    as_seen = {i["id"]: i for i in _json(run_cli(store.home, "review", "list", "--json", as_="rey"))}
    shown_fields = ("kind", "rule_id", "gate_decision_id", "priority", "judgments_required", "is_gold", "shown",
                    "created_by", "created_at")
    for item_id in (gold.id, every.id):
        assert [as_seen[item_id][f] for f in shown_fields] == [as_seen[examples[0]][f] for f in shown_fields]
    assert as_seen[examples[0]]["rule_id"] is not None and as_seen[examples[0]]["priority"] == "blocking"
    truth = store.as_("eng").show_review_item(item_id=every.id).item
    assert (truth.kind, truth.judgments_required, truth.created_by) == ("gold", 3, "ada")
    assert truth.shown["judgments"] == 1 and truth.shown["created_by"] == as_seen[examples[0]]["created_by"]
    # the reviewer's list places it among those examples by the time it shows, not after them by its own
    order = [i["id"] for i in _json(run_cli(store.home, "review", "list", "--json", as_="rey"))]
    expected = sorted(as_seen.values(), key=lambda i: i["id"])
    for key, backwards in (("kind", True), ("rule_id", False), ("created_at", False)):  # the store's order
        expected.sort(key=lambda i: i[key] or "", reverse=backwards)
    assert order == [i["id"] for i in expected]
    # another reviewer's judgment of an open item stays hidden until it resolves: a gold item that needs
    # three showed "needs 1 judgment" with one judgment already made
    store.as_("rev2").claim_review_item(item_id=every.id)
    answered = store.as_("rev2").judge_review_item(item_id=every.id, verdict="label_correct", comment="fine")
    # to the reviewer who judged it, resolved as an example would be (it waits for the others it measures);
    # and no gold record moves for them until it resolves
    assert answered.status == "resolved" and store.as_("rev2").show_review_item(item_id=every.id).item.status == \
        "resolved"
    assert every.id in [i.id for i in store.as_("rev2").list_review_items(status="resolved")]
    assert every.id not in [i.id for i in store.as_("rev2").list_review_items(status="open")]
    assert store.as_("rey").show_review_item(item_id=every.id).item.status == "open"
    assert store.as_("eng").show_review_item(item_id=every.id).item.status == "open"
    assert store.as_("rev2").agreement().reviewers == []
    # and claiming it again says what it says of an example resolved by their judgment ("you already judged"
    # had told the gold item apart)
    with pytest.raises(Conflict, match=f"^review item {every.id} is resolved; there is nothing left to judge.$"):
        store.as_("rev2").claim_review_item(item_id=every.id)
    assert store.as_("rey").show_review_item(item_id=every.id).judgments == []
    assert [j.reviewer for j in store.as_("rev2").show_review_item(item_id=every.id).judgments] == ["rev2"]
    assert [j.reviewer for j in store.as_("eng").show_review_item(item_id=every.id).judgments] == ["rev2"]
    shown = _json(run_cli(store.home, "review", "show", gold.id, "--json", as_="rey"))
    assert (shown["item"]["kind"], shown["item"]["is_gold"], shown["gold_answer"]) == ("example", False, None)
    assert shown["guidance"]["kind"] == "example"
    for user in ("eng", "aud", "ada"):
        assert listed(user)[gold.id] == ("gold", True)
    assert _json(run_cli(store.home, "review", "show", gold.id, "--json", as_="ada"))["gold_answer"] == {
        "verdict": "label_wrong", "label": 1}
    assert _json(run_cli(store.home, "review", "claim", gold.id, "--json", as_="rey"))["kind"] == "example"
    judged = _json(run_cli(store.home, "review", "judge", gold.id, "--verdict", "label_wrong", "--label", "1",
                           "--comment", "employed", "--json", as_="rey"))
    assert (judged["kind"], judged["is_gold"], judged["status"]) == ("example", False, "resolved")
    [accuracy] = [r for r in store.as_("vic").agreement().reviewers if r["reviewer"] == "rey"]  # scored as gold
    # a reviewer sees only their own gold record: another's count moves when they judge a gold item
    assert [r["reviewer"] for r in store.as_("rey").agreement().reviewers] == ["rey"]
    assert "rev2" in [r["reviewer"] for r in store.as_("ada").agreement().reviewers]  # the admin sees it at once
    store.as_("eng").register_model(name="other")
    assert store.as_("ada").agreement(model="other").reviewers == []  # gold accuracy follows the model filter
    # nor an open item's agreement (two judgments on an item every example shows needing one), nor which
    # items a job waits for (the gate's own, never the gold ones)
    store.as_("rev3").claim_review_item(item_id=every.id)
    store.as_("rev3").judge_review_item(item_id=every.id, verdict="label_correct", comment="fine")
    assert store.as_("vic").agreement().items == 1 and store.as_("rey").agreement().items == 0
    waiting = [j for j in store.as_("eng").list_jobs() if j.depends_on]
    assert waiting and all(j.depends_on == [] for j in store.as_("rey").list_jobs())
    assert store.as_("rey").show_job(job_id=waiting[0].id).job.depends_on == []
    assert (accuracy["reviewer"], accuracy["gold_judged"], accuracy["gold_accuracy"]) == ("rey", 1, 1.0)


def test_the_cli_and_the_service_agree_on_the_largest_batch():
    from governance.cli import reviews as cli_reviews
    from governance.service import reviews as service_reviews

    assert cli_reviews.MAX_BATCH == service_reviews.MAX_BATCH



def test_a_gate_under_a_pack_no_longer_binding_releases_nothing(releasable, run_cli):
    # An admin assigned a stricter pack after the version was gated and approved: the release went through on
    # the old pack's pass. The same held when a risk tier change made another shipped pack binding.
    store, policy = releasable
    for reviewer in ("rey", "rev3"):
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
    admin, engineer = store.as_("ada"), store.as_("eng")
    admin.assign_policy(policy="strict", model="credit")
    before = snapshot(store.home)
    with pytest.raises(NotAllowed, match=r"ran .* and the pack binding credit now is strict-high-risk v\d+: gate it "
                                         r"again under that pack \(`govern gate credit 1`\)"):
        engineer.release(model="credit", version="1")
    assert snapshot(store.home) == before
    assert not [t for t in store.as_("eng").readiness().needs_you if t.kind == "release"]  # not offered either
    result = run_cli(store.home, "release", "credit", "1", as_="eng")
    assert result.exit_code == 2 and "gate it again under that pack" in result.stderr
    admin.assign_policy(policy=admin.register_policy(file=policy).name, model="credit")  # the pack it passed
    assert engineer.release(model="credit", version="1").version == "1"


def test_an_approval_through_a_second_admin_whose_password_the_releaser_set_does_not_count(releasable, run_cli):
    # ada made an admin bob with a password she chose, signed in as bob, minted a reviewer's token as bob, and
    # the reviewer's approval counted for ada's own release: she could have acted as bob throughout.
    store, _ = releasable
    home = store.home
    assert run_cli(home, "user", "add", "bob", "--role", "admin", "--password-stdin", input="chosen by ada 1\n",
                   as_="ada").exit_code == 0
    assert run_cli(home, "login", "bob", "--password-stdin", input="chosen by ada 1\n").exit_code == 0
    minted = run_cli(home, "--as", "bob", "token", "create", "rev2", "--json")
    assert minted.exit_code == 0, minted.output
    token = json.loads(minted.stdout)["secret"]
    assert run_cli(home, "signoff", "credit", "1", "--approve", "--comment", "fine",
                   env={"GOVERN_TOKEN": token}).exit_code == 0
    store.as_("rev3").sign_off(model="credit", version="1", decision="approve")  # in-process: rev3's own
    refused = run_cli(home, "release", "credit", "1", as_="ada")
    assert refused.exit_code == 2 and "has 1 of the 2 independent approvals" in refused.stderr
    assert "rev2 (approved with a credential ada issued or could have used" in refused.stderr
    assert store.as_("eng").release(model="credit", version="1").version == "1"  # bob and ada issued nothing of eng's


@file_only  # rules of the service: the store underneath changes nothing they test
def test_an_admin_who_acts_as_the_engineer_or_makes_the_evidence_does_not_count_as_a_second_pair_of_eyes(
        releasable, acs_files, run_cli):
    # ada minted eng's token and released with it on her own approval: history said eng released it. Then she
    # swapped in flattering eval predictions and evaluated them herself; her approval of them counted.
    store, _ = releasable
    home = store.home
    admin, engineer = store.as_("ada"), store.as_("eng")
    admin.add_user(name="boss", role="admin")  # a second admin, who assigned no pack here
    for reviewer in ("boss", "rey"):
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
    as_eng = store.as_("boss").create_token(user="eng", name="ci").secret
    before = snapshot(home)
    refused = run_cli(home, "release", "credit", "1", env={"GOVERN_TOKEN": as_eng})
    assert refused.exit_code == 2 and "has 1 of the 2 independent approvals" in refused.stderr, refused.stderr
    assert "boss (could have used the credential eng releases it with: a token they created for eng" in \
        refused.stderr
    assert snapshot(home) == before
    current, _ = acs_files
    admin.ingest(model="credit", version="1", file=current, split="eval", roles=ACS_ROLES)
    admin.evaluate(model="credit", version="1", resamples=0)
    engineer.gate(model="credit", version="1")
    for reviewer in ("ada", "rey"):
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
    refused = run_cli(home, "release", "credit", "1", as_="eng")
    assert refused.exit_code == 2 and "has 1 of the 2 independent approvals" in refused.stderr, refused.stderr
    assert "ada (ingested the eval predictions its gate judged)" in refused.stderr
    store.as_("rev3").sign_off(model="credit", version="1", decision="approve")
    assert engineer.release(model="credit", version="1").version == "1"  # eng's own credential, rey and rev3


@file_only  # rules of the service: the store underneath changes nothing they test
def test_whoever_ingested_challenger_predictions_does_not_count_as_a_second_pair_of_eyes(releasable, acs_files,
                                                                                         run_cli):
    # A challenger's scores set a `baseline: challenger` rule's bound (the strict pack blocks on it): an admin who
    # ingested a weak one by hand lowered the bar, then approved the release.
    store, _ = releasable
    current, _ = acs_files
    store.as_("ada").ingest(model="credit", version="1", file=current, split="challenger", roles=ACS_ROLES)
    for reviewer in ("ada", "rey"):
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
    refused = run_cli(store.home, "release", "credit", "1", as_="eng")
    assert refused.exit_code == 2 and "has 1 of the 2 independent approvals" in refused.stderr, refused.stderr
    assert "ada (ingested challenger predictions its gate compared with)" in refused.stderr
    store.as_("rev3").sign_off(model="credit", version="1", decision="approve")
    assert store.as_("eng").release(model="credit", version="1").version == "1"


@file_only  # rules of the service: the store underneath changes nothing they test
def test_a_token_someone_minted_for_themselves_is_followed_to_the_credential_they_minted_it_with(
        releasable, acs_files, run_cli, tmp_path):
    # ada set boss's password; boss minted a token for boss and released with it on ada's approval: the
    # self-minted token began a fresh chain, so ada counted as independent.
    store, _ = releasable
    home = store.home
    artifact = tmp_path / "v2.bin"
    artifact.write_bytes(b"version 2")
    store.as_("eng").register_version(model="credit", version="2", artifact=artifact)  # after ada's pack
    ingest_acs(store, acs_files, version="2")
    store.as_("eng").evaluate(model="credit", version="2", resamples=0)
    store.as_("eng").gate(model="credit", version="2")
    assert run_cli(home, "user", "add", "boss", "--role", "admin", "--password-stdin", input="chosen by ada 1\n",
                   as_="ada").exit_code == 0
    assert run_cli(home, "login", "boss", "--password-stdin", input="chosen by ada 1\n").exit_code == 0
    minted = json.loads(run_cli(home, "--as", "boss", "token", "create", "boss", "--json").stdout)["secret"]
    for reviewer in ("ada", "rev3"):
        store.as_(reviewer).sign_off(model="credit", version="2", decision="approve")
    refused = run_cli(home, "release", "credit", "2", env={"GOVERN_TOKEN": minted})
    assert refused.exit_code == 2, refused.output
    assert "ada (could have used the credential boss releases it with" in refused.stderr


@file_only  # rules of the service: the store underneath changes nothing they test
def test_the_readiness_board_offers_a_release_only_where_the_credential_in_use_may_make_it(releasable, run_cli):
    # Signed in with a token an admin minted, the engineer was told "release it" and the release then failed:
    # the board judged without the credential.
    store, _ = releasable
    home = store.home
    store.as_("ada").add_user(name="boss", role="admin")
    minted = store.as_("boss").create_token(user="eng", name="ci").secret
    for reviewer in ("boss", "rey"):
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
    store.as_("rev3").sign_off(model="credit", version="1", decision="approve")

    def offered(**how) -> bool:
        board = json.loads(run_cli(home, "readiness", "--json", **how).stdout)
        return any(t["kind"] == "release" and t["model"] == "credit" for t in board["needs_you"])

    assert offered(as_="eng")  # eng's own session: boss issued nothing of it, so boss's approval counts
    store.as_("rev3").sign_off(model="credit", version="1", decision="withdraw")
    assert not offered(env={"GOVERN_TOKEN": minted})  # boss could act as eng: 1 of 2
    assert run_cli(home, "release", "credit", "1", env={"GOVERN_TOKEN": minted}).exit_code == 2


@file_only  # rules of the service: the store underneath changes nothing they test
def test_an_approval_with_a_credential_an_evidence_maker_issued_does_not_count(releasable, acs_files, run_cli):
    # ada swapped in the eval predictions; her own approval was refused, but rey's, given with the password ada
    # set, counted: she approved through a credential she controls.
    store, _ = releasable
    home = store.home
    current, reference = acs_files
    store.as_("ada").ingest(model="credit", version="1", file=reference, split="reference", roles=ACS_ROLES)
    store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    store.as_("eng").gate(model="credit", version="1")
    assert run_cli(home, "signoff", "credit", "1", "--approve", "--comment", "fine", as_="rey").exit_code == 0
    store.as_("rev3").sign_off(model="credit", version="1", decision="approve")
    store.as_("ada").sign_off(model="credit", version="1", decision="approve")
    with pytest.raises(NotAllowed) as refused:
        store.as_("eng").release(model="credit", version="1")
    message = str(refused.value)
    assert "has 1 of the 2 independent approvals" in message
    assert "ada (ingested the reference predictions its gate judged)" in message
    assert "rey (approved with a credential ada issued or could have used" in message
    # and says how it can count: someone else redoes ada's step (a new evaluation needs new approvals)
    assert "ada ingested the reference predictions its gate judged: someone who issued none of rey's credentials " \
           "redoes that step" in message


@file_only  # rules of the service: the store underneath changes nothing they test
def test_whoever_dismissed_the_versions_review_items_does_not_count_as_an_approver(releasable, run_cli):
    store, _ = releasable
    open_items = store.as_("eng").list_review_items(model="credit", version="1", status="open")
    store.as_("ada").dismiss_review_item(item_id=open_items[0].id, comment="noise")
    for reviewer in ("ada", "rey"):
        store.as_(reviewer).sign_off(model="credit", version="1", decision="approve")
    with pytest.raises(NotAllowed, match=r"has 1 of the 2 .*ada \(dismissed review items of the version\)"):
        store.as_("eng").release(model="credit", version="1")
    # but credentials ada issued still approve: a dismissal cannot be undone, and every reviewer whose password
    # the admin set had stopped counting for the version for good
    assert run_cli(store.home, "signoff", "credit", "1", "--approve", "--comment", "fine", as_="rev3").exit_code == 0
    assert store.as_("eng").release(model="credit", version="1").version == "1"


def test_an_approval_says_what_the_gate_flags_without_blocking(queue, tmp_path, run_cli):
    # A gate passes with warnings; the reviewer who approves it should not learn of them only from the record.
    store, _, _ = queue
    policy = tmp_path / "w.yaml"
    policy.write_text("name: w\nversion: 1\nrules:\n  - {id: auc, metric: performance.roc_auc, min: 0.5}\n"
                      "  - {id: auc-stretch, metric: performance.roc_auc, min: 0.999, severity: warn}\n")
    store.assign_policy(policy)
    gate = store.as_("eng").gate(model="credit", version="1", policy=policy)
    assert gate.decision.verdict == "passed" and [r.rule_id for r in gate.decision.cautions] == ["auc-stretch"]
    approved = run_cli(store.home, "signoff", "credit", "1", "--approve", "--comment", "ok", as_="rev2")
    assert approved.exit_code == 0, approved.stderr
    assert f"note: the gate you approved ({gate.gate_id}) flags, without blocking:" in approved.stderr
    assert "WARN         auc-stretch:" in approved.stderr
    rejected = run_cli(store.home, "signoff", "credit", "1", "--reject", "--comment", "no", as_="rev3")
    assert rejected.exit_code == 0 and "note:" not in rejected.stderr
    # approving a blocked gate: it had listed the warnings alone, not the failure just acknowledged
    policy.write_text("name: w\nversion: 2\nrules:\n  - {id: auc-high, metric: performance.roc_auc, min: 0.999}\n"
                      "  - {id: auc-stretch, metric: performance.roc_auc, min: 0.9999, severity: warn}\n")
    store.assign_policy(policy)
    blocked = store.as_("eng").gate(model="credit", version="1", policy=policy)
    assert blocked.decision.verdict == "blocked"
    approved = run_cli(store.home, "signoff", "credit", "1", "--approve", "--acknowledge-blocked", "--comment",
                       "weighed", as_="rev2")
    assert approved.exit_code == 0, approved.stderr
    assert approved.stderr.startswith(f"note: the gate you approved ({blocked.gate_id}) is blocked, as you "
                                      "acknowledged, by:\n  FAIL         auc-high: ")
    assert "and flags, without blocking:\n  WARN         auc-stretch:" in approved.stderr


def test_an_approval_given_with_a_credential_the_releaser_issued_does_not_count(releasable, run_cli):
    # An admin created an API token for a reviewer (or set their password and signed in with it), approved
    # as them and released alone, with no override mark: the approval's credential was the releaser's doing.
    from governance.service.releases import credential_holders

    store, _ = releasable
    home = store.home
    admin = store.as_("ada")
    minted = admin.create_token(user="rev2", name="mine").secret
    admin.set_password(name="rev3", password="chosen by ada 1")
    assert run_cli(home, "login", "rev3", "--password-stdin", input="chosen by ada 1\n").exit_code == 0
    for env, who in (({"GOVERN_TOKEN": minted}, "rev2"), ({}, "rev3")):
        result = run_cli(home, "--as", who, "signoff", "credit", "1", "--approve", "--comment", "fine", env=env)
        assert result.exit_code == 0, result.output
    refused = run_cli(home, "release", "credit", "1", as_="ada")
    assert refused.exit_code == 2
    assert "has 0 of the 2 independent approvals it needs" in refused.stderr
    assert "rev2 (approved with a credential ada issued or could have used: an API token ada created" in \
        refused.stderr and "rev3 (approved with a credential ada issued" in refused.stderr
    # a reviewer who sets their own password with a session the admin's password opened is still the admin's
    # (with a token ada minted, or after ada reset it): ada could have done it; only their own proof counts
    assert run_cli(home, "--as", "rev3", "user", "passwd", "rev3", "--password-stdin",
                   input="chosen by ada 1\nrev3 own secret\n").exit_code == 0
    assert run_cli(home, "login", "rev3", "--password-stdin", input="rev3 own secret\n").exit_code == 0
    assert run_cli(home, "--as", "rev3", "signoff", "credit", "1", "--approve", "--comment", "again").exit_code == 0
    # a token ada minted cannot give rev2 a first password (an admin does that, and then it is the admin's)
    refused = run_cli(home, "user", "passwd", "rev2", "--password-stdin", input="\nrev2 new secret\n",
                      env={"GOVERN_TOKEN": minted})
    assert refused.exit_code == 2 and "rev2 has no password yet: an admin sets the first one" in refused.stderr
    admin.set_password(name="rev2", password="chosen by ada 2")
    assert run_cli(home, "user", "passwd", "rev2", "--password-stdin", input="chosen by ada 2\nrev2 new secret\n",
                   env={"GOVERN_TOKEN": minted}).exit_code == 0
    assert run_cli(home, "login", "rev2", "--password-stdin", input="rev2 new secret\n").exit_code == 0
    assert run_cli(home, "--as", "rev2", "signoff", "credit", "1", "--approve", "--comment", "again").exit_code == 0
    refused = run_cli(home, "release", "credit", "1", as_="ada")
    assert refused.exit_code == 2 and "has 0 of the 2 independent approvals" in refused.stderr
    store.as_("rev3").set_password(name="rev3", password="set in-process by rev3",  # a credential only rev3 held
                                   current="rev3 own secret")
    assert run_cli(home, "login", "rev3", "--password-stdin", input="set in-process by rev3\n").exit_code == 0
    assert run_cli(home, "--as", "rev3", "signoff", "credit", "1", "--approve", "--comment", "mine").exit_code == 0
    holders = run_sql(home, lambda conn: [credential_holders(conn, who, "version:credit/1", revision)
                                          for who, revision in (("rev2", 1), ("rev3", 1), ("rev3", 2), ("rev2", 2),
                                                                ("rev3", 3))])
    assert holders == [{"ada"}, {"ada"}, {"ada"}, {"ada"}, set()]
    # the same approvals count for a releaser who issued neither credential
    assert store.as_("eng").release(model="credit", version="1").version == "1"
