"""What a reviewer is asked to judge on each kind of review item, and what each verdict means there.

The CLI's `review show` and the dashboard's review page both render this, so a reviewer reads the same
guidance wherever they work. Only the verdicts that make sense for a kind are listed for it: a rule
failure, a drift alert or an escalation has no row whose label could be right or wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governance.records import ItemKind


@dataclass(frozen=True)
class Guidance:
    """`question`: what to judge; `verdicts`: each verdict that makes sense here and what it says."""

    kind: str
    question: str
    verdicts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "question": self.question, "verdicts": dict(self.verdicts)}


_ROW_VERDICTS = {
    "label_correct": "the recorded label is right for these features; nothing to correct.",
    "label_wrong": "the recorded label is wrong: give the corrected label (0 or 1). Corrections feed the "
                   "model's next feedback dataset, which retraining learns from.",
    "model_wrong": "the label is right and the prediction is wrong in a way an engineer should look at "
                   "(a confident error, a pattern you have seen before).",
    "ambiguous": "the features do not settle what the label should be; say what is missing.",
}

GUIDANCE = {g.kind: g for g in (
    Guidance(ItemKind.EXAMPLE, "A row of the evaluated predictions, sampled because a rule of the policy failed. "
             "Is its recorded label right for its features?", _ROW_VERDICTS),
    Guidance(ItemKind.RULE_FAILURE, "A rule of the policy failed on this version's evaluation. Is the failure "
             "real, so that the model or its data must change? Label verdicts do not apply: a rule failure has no "
             "row to relabel (judge the rule's example items for that).", {
                 "model_wrong": "the failure is real: the model (or its training data) needs to change before "
                                "release; a retraining job waiting for this review runs once its items are "
                                "worked.",
                 "ambiguous": "the evidence does not settle it (a small group, a metric that does not fit this "
                              "use, a threshold in doubt); say what would. Unless someone judges it model_wrong, "
                              "a retraining job waiting for it is cancelled and an engineer decides.",
             }),
    Guidance(ItemKind.DRIFT_ALERT, "A production batch drifted from the version's reference data. Does the "
             "drift matter for this model? Label verdicts do not apply: there is no row to relabel.", {
                 "model_wrong": "the drift matters: the model needs retraining or an engineer's look.",
                 "ambiguous": "expected or harmless drift (a season, a known change upstream), or too early to "
                              "tell; say which.",
             }),
    Guidance(ItemKind.MONITOR_ALERT, "A production batch broke a monitoring rule on an estimated metric (its "
             "labels have not arrived). Is the estimated problem real enough to act on? Label verdicts do not apply: "
             "there is no row to relabel.", {
                 "model_wrong": "the estimate is credible: the model needs retraining or an engineer's look (a "
                                "retraining job may be waiting for this review).",
                 "ambiguous": "the estimate may be off (few rows, poorly calibrated scores, a shift estimation cannot "
                              "see); wait for the labels (`govern labels`) or say what would settle it.",
             }),
    Guidance(ItemKind.ESCALATION, "The retraining loop stopped without meeting the policy (engineers and admins "
             "work these). What should happen to the model? Or dismiss the item with a comment.", {
                 "model_wrong": "the model or its data need an engineer's change (features, data, another "
                                "model); more retraining of the same kind will not do it.",
                 "ambiguous": "the policy or its threshold may be what is wrong; say what to reconsider.",
             }),
    Guidance(ItemKind.OVERRIDE_EXPIRED, "An admin's override of a blocked gate ran out and the version is still "
             "in production on it (admins only). The judgment records the decision; the action is a release, a "
             "rollback or a new override on the Sign-off and release page.", {
                 "model_wrong": "the blocked version should leave production: roll it back or release a fixed one.",
                 "ambiguous": "keep it for now: override again with a new reason and expiry.",
             }),
    Guidance(ItemKind.GOLD, "A gold item: its answer is known and measures reviewers' accuracy (reviewers see it "
             "as an example). Is its recorded label right?", _ROW_VERDICTS),
    Guidance(ItemKind.MANUAL, "Filed by hand: its evidence says what to look at. Judge what it asks.", {
        "label_correct": "a row's recorded label is right, or the concern does not hold.",
        "label_wrong": "a row's recorded label is wrong: give the corrected label (0 or 1).",
        "model_wrong": "the model is at fault and an engineer should act.",
        "ambiguous": "it cannot be settled from what is here; say what is missing.",
    }),
)}

# Why an example row was sampled, by the policy's sampling strategy (governance.sampling).
STRATEGIES = {
    "high_confidence_errors": "a wrong prediction the model made with high confidence",
    "uncertain": "a score close to the decision threshold: the model was unsure",
    "worst_group": "a row of the group where the failing rule does worst, errors first",
    "random": "a row drawn at random from the evaluation rows",
}


def guidance_for(kind: str, evidence: dict[str, Any] | None = None) -> Guidance:
    """The guidance for items of `kind`; a hand-filed item's own kind reads as `manual`. An item whose evidence
    says no retraining follows it (the loop stopped) is not told that a job waiting for it runs: a new user read
    both on one item."""
    found = GUIDANCE.get(kind) or Guidance(kind, GUIDANCE[ItemKind.MANUAL].question,
                                           GUIDANCE[ItemKind.MANUAL].verdicts)
    if evidence is None or not isinstance(evidence.get("retraining"), str) or "model_wrong" not in found.verdicts:
        return found
    return Guidance(found.kind, found.question, {**found.verdicts, "model_wrong": (
        "the failure is real: the model (or its training data) needs to change before release. No retraining job "
        "follows this review (see retraining below): the engineers the loop escalated to decide what changes.")})


def settled_jobs(items: list[Any], jobs: list[Any]) -> list[str]:
    """What the judgments of `items` did to retraining jobs, one sentence each: the last judgment of a gate's
    items queues its job (or cancels it), which had happened silently, seen only in the jobs list. `jobs` are the
    store's, as the judge may see them: matched by the gate that filed both (reviewers do not see a job's items)."""
    gates = {item.gate_decision_id for item in items if item.status == "resolved" and item.gate_decision_id}
    return [f"Retraining job {job.id} of {job.model} v{job.version} "
            + ("is queued, its review done: `govern worker --once` runs it." if job.status == "queued" else
               f"was cancelled: `govern jobs show {job.id}` says why.")
            for job in jobs if job.gate_decision_id in gates and job.status in ("queued", "cancelled")]
