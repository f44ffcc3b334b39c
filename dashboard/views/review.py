"""The review queue: claim items (one, or the next N), read each one's evidence as a person would, and
judge it, or several claimed items at once with one verdict; after a judgment the next claimed item comes
up. Every action is one service call; what to judge per kind comes from governance.review_guidance."""

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Callable

import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError
from governance.records import ItemKind, ItemStatus, ReviewItem, Verdict
from governance.review_guidance import STRATEGIES, guidance_for, settled_jobs
from governance.roles import Action

SHOW_NEXT = "review.show_next"  # the item to show after an action, applied before the picker is drawn
CLAIM_NEXT_DEFAULT = 10


@st.cache_data(ttl=30, show_spinner=False)
def worklist(home: str, actor: str, model: str | None, kind: str | None) -> list[ReviewItem]:
    """The user's claimed items, then the open items they may claim (the service's working order)."""
    return state.service().review_worklist(model=model, kind=kind)


@st.cache_data(ttl=30, show_spinner=False)
def item_detail(home: str, actor: str, item_id: str):
    return state.service().show_review_item(item_id=item_id)


def text(value: Any) -> str:
    """Evidence values as text for a table cell: nested values as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return text(value)


def table(rows: dict[str, Any], names: tuple[str, str] = ("", "value")) -> None:
    """Name → value as a two-column table (a dataframe shows its cells as text, never as markup)."""
    st.dataframe(pd.DataFrame({names[0] or " ": list(rows), names[1]: [text(v) for v in rows.values()]}),
                 hide_index=True, width="stretch", height="content")


def show_guidance(kind: str, evidence: dict[str, Any] | None = None) -> None:
    guidance = guidance_for(kind, evidence)
    st.info(state.plain(guidance.question))
    st.markdown("\n".join(f"- `{verdict}`: {state.plain(meaning)}" for verdict, meaning in guidance.verdicts.items()))


def show_row(evidence: dict[str, Any]) -> None:
    """A sampled row: score, recorded label, prediction, why it was sampled, and its features."""
    score, label, prediction = st.columns(3)
    score.metric("Score", number(evidence.get("score"), 3) if "score" in evidence else "—")
    label.metric("Recorded label", number(evidence.get("label")) if "label" in evidence else "—")
    prediction.metric("Prediction", number(evidence.get("prediction")) if "prediction" in evidence else "—")
    strategy = evidence.get("strategy")
    if strategy:
        why = STRATEGIES.get(str(strategy), "")
        groups = evidence.get("groups") if isinstance(evidence.get("groups"), dict) else {}
        rank = f", rank {number(evidence['rank'])}" if "rank" in evidence else ""
        st.write(state.plain(f"Why it was sampled: {strategy}{rank}"
                             + (f" ({why})" if why else "") + "."
                             + (" Its groups: " + ", ".join(f"{k} = {v}" for k, v in groups.items()) + "."
                                if groups else "")))
    st.caption(state.plain(f"Row {number(evidence.get('row', '—'))}, id {number(evidence.get('id', '—'))}"))
    table(dict(evidence["features"]), ("feature", "value"))


RULE_TITLES = {ItemKind.RULE_FAILURE: "The rule that failed", ItemKind.MONITOR_ALERT: "The monitoring rule the "
               "batch broke"}


def show_rule(rule: dict[str, Any], item: ReviewItem) -> None:
    """A rule's result as it was judged: its metric, the value judged, the bound it was held to."""
    sampled_for = isinstance(item.evidence.get("features"), dict)
    title = "The rule these rows were sampled for" if sampled_for else RULE_TITLES.get(item.kind, "The rule")
    st.markdown(f"**{title}**")
    comparison, threshold = rule.get("comparison"), rule.get("threshold")
    bound = ("—" if comparison is None or threshold is None else
             f"at most {number(threshold)} worse than the baseline's {number(rule.get('baseline_value'))}"
             if comparison == "max_regression" else f"{comparison} {number(threshold)}")
    rows = {"rule": rule.get("rule_id"), "metric": rule.get("metric") or rule.get("kind"),
            "column": rule.get("feature") or "—", "group": rule.get("group") or "—",
            "observed": number(rule.get("observed")),
            "judged": f"{number(rule.get('judged'))} ({rule.get('bound') or 'point'})",
            "must be": bound, "rows (n)": number(rule.get("n")), "result": rule.get("status"),
            "severity": rule.get("severity")}
    if rule.get("failing_groups"):
        rows["failing"] = ", ".join(map(str, rule["failing_groups"]))
    if rule.get("excluded"):
        rows["set aside"] = "; ".join(f"{e.get('feature')}={e.get('group')} ({e.get('why')})"
                                      for e in rule["excluded"] if isinstance(e, dict))
    table(rows)
    if rule.get("reason"):
        st.caption(state.plain(str(rule["reason"])))


def show_evidence(item: ReviewItem) -> None:
    """What the item is about, in words and small tables: a sampled row, a drift alert, or the evidence's
    fields (a rule failure's rule is drawn by show_rule)."""
    evidence = item.evidence
    if isinstance(evidence.get("features"), dict):
        show_row(evidence)
    elif item.kind == ItemKind.DRIFT_ALERT:
        table({"share of drifted columns": number(evidence.get("share_of_drifted_columns")),
               "drifted columns": ", ".join(map(str, evidence.get("drifted_columns") or [])),
               "batch time": evidence.get("batch_time"), "prediction set": evidence.get("prediction_set"),
               "evaluation": evidence.get("evaluation")})
    elif isinstance(evidence.get("rule"), dict):  # the rule is drawn by show_rule; here the rest
        if isinstance(evidence.get("retraining"), str):  # the loop escalated: no job waits on this review
            st.info(state.plain(f"Retraining: {evidence['retraining']}"))
        rest = {k: v for k, v in evidence.items() if k not in ("rule", "retraining")}
        if rest:
            table(rest)
    else:
        table(evidence)


def rule_of(item: ReviewItem, detail) -> dict[str, Any] | None:
    """The item's rule as the gate decision judged it (a rule failure or monitoring alert carries it in its
    evidence too)."""
    found = detail.rule if detail.rule is not None else item.evidence.get("rule")
    return found if isinstance(found, dict) and found.get("rule_id") else None


def act(call: Callable[[], Any], message: Callable[[Any], str], show_next: Callable[[Any], str | None]) -> None:
    """Run one service call; on success clear cached reads, flash `message(result)` and rerun showing the
    item `show_next(result)` ("": whichever comes first, with an empty comment; None: the one shown)."""
    try:
        result = call()
    except GovernError as exc:
        st.error(state.plain(str(exc)))
        return
    state.changed()
    state.flash(message(result))
    st.session_state[SHOW_NEXT] = show_next(result)
    st.rerun()


def settled(judged: list[ReviewItem]) -> str:
    """What the judgments did to retraining jobs (a job queued or cancelled by the last of its gate's items), as
    sentences after the flash's first; "" when nothing."""
    if not any(item.status == ItemStatus.RESOLVED and item.gate_decision_id for item in judged):
        return ""
    try:
        return "".join(f" {sentence}" for sentence in settled_jobs(judged, service.list_jobs()))
    except GovernError:  # the judgments are stored: the flash still says so
        return ""


def may_work(item: ReviewItem) -> bool:
    """Whether the signed-in role works items of this kind: escalations are engineers' and admins', the rest
    reviewers' and admins' (the service decides again when the item is claimed)."""
    return state.may(Action.RESOLVE_ESCALATION if item.kind == ItemKind.ESCALATION else Action.JUDGE)


def label_of(item: ReviewItem) -> str:
    row = f" · row {item.evidence['row']}" if isinstance(item.evidence.get("row"), int) else ""
    return f"{item.id} · {item.kind}{row} · {item.model} {item.version}"


def claim_next_form(model: str | None, kind: str | None) -> None:
    with st.form("review.claim_batch", border=False):
        count, go = st.columns([3, 1], vertical_alignment="bottom")
        wanted = count.number_input("How many", min_value=1, max_value=100, value=CLAIM_NEXT_DEFAULT,
                                    key="review.claim_count",
                                    help="Claims the next open items you may judge, blocking first and a gate's "
                                         "examples before its rule failure, for an hour.")
        if go.form_submit_button("Claim next"):
            act(lambda: service.claim_next_review_items(count=int(wanted), model=model, kind=kind),
                lambda claimed: f"Claimed {len(claimed)} items." if claimed else "No open item left for you to claim.",
                lambda claimed: claimed[0].id if claimed else None)


def bulk_form(mine: list[ReviewItem]) -> None:
    """Several claimed items, one verdict, one call (all judged or, if any is refused, none)."""
    by_id = {i.id: i for i in mine}
    # Keyed by the claimed set, so that newly claimed items start selected.
    claimed_set = hashlib.sha256(",".join(sorted(by_id)).encode()).hexdigest()[:12]
    with st.form("review.bulk"):
        st.markdown(f"**Judge several claimed items with one verdict** ({len(mine)} claimed by you)")
        picked = st.multiselect("Claimed items to judge", list(by_id), default=list(by_id),
                                format_func=lambda i: label_of(by_id[i]), key=f"review.bulk_items.{claimed_set}")
        left, right = st.columns(2)
        verdict = left.selectbox("Verdict for all", [v.value for v in Verdict], key="review.bulk_verdict")
        label = right.selectbox("Corrected label for all (with label_wrong)", ["", "0", "1"],
                                key="review.bulk_label", format_func=lambda v: v or "(none)")
        comment = st.text_input("Comment for all", key="review.bulk_comment",
                                help="Why, in a sentence. Enter judges the selected items.")
        if st.form_submit_button("Judge selected"):
            misfits = [i for i in picked if verdict not in guidance_for(by_id[i].kind).verdicts]
            if misfits:
                st.error(state.plain(f"{verdict} does not apply to " + ", ".join(
                    f"{i} ({by_id[i].kind}: judge it {' or '.join(guidance_for(by_id[i].kind).verdicts)})"
                    for i in misfits) + "; leave them out or judge them one at a time."))
                return
            rest = [i.id for i in mine if i.id not in picked]
            act(lambda: service.judge_review_items(item_ids=picked, verdict=verdict, comment=comment,
                                                   label=int(label) if label else None),
                lambda judged: f"Judged {len(judged)} items: {', '.join(i.id for i in judged)}." + settled(judged),
                lambda _: rest[0] if rest else "")


def judge_form(item: ReviewItem, following: str | None) -> None:
    verdicts = list(guidance_for(item.kind).verdicts)
    with st.form("review.judge"):
        verdict = st.selectbox("Verdict", verdicts, key="review.verdict")
        label = (st.selectbox("Corrected label (for label_wrong)", ["", "0", "1"], key="review.label",
                              format_func=lambda v: v or "(none)") if "label_wrong" in verdicts else "")
        comment = st.text_area("Comment", key="review.comment",
                               help="Why, in a sentence. Ctrl+Enter (⌘+Enter) judges the item.")
        if st.form_submit_button("Judge"):
            act(lambda: service.judge_review_item(item_id=item.id, verdict=verdict, comment=comment,
                                                  label=int(label) if label else None),
                lambda judged: f"Judged {judged.id}: now {judged.status}." + settled([judged])
                               + (" Your next claimed item is below." if following else ""),
                lambda _: following or "")


st.title("Review queue")
state.show_flash()
home, actor = state.home(), state.user()
service = state.service()
st.session_state.setdefault(SHOW_NEXT, None)
left, middle, right = st.columns(3)
status = left.selectbox("Show", ["to do", *(s.value for s in ItemStatus)], key="review.status",
                        help="to do: the items you claimed, then the open items you may claim")
model_filter = middle.selectbox("Model", ["(all)", *[m.name for m in data.models(home, actor)]], key="review.model")
kinds = [k.value for k in ItemKind if not (k is ItemKind.GOLD and state.role() == "reviewer")]
kind_filter = right.selectbox("Kind", ["(all)", *kinds], key="review.kind",
                              help="escalation: the retraining loop stopped without meeting the policy "
                                   "(engineers and admins work these)")
model_or_none, kind_or_none = (None if model_filter == "(all)" else model_filter,
                               None if kind_filter == "(all)" else kind_filter)
if status == "to do":
    items = worklist(home, actor, model_or_none, kind_or_none)
else:
    items = [i for i in data.review_items(home, actor, status)
             if model_filter in ("(all)", i.model) and kind_filter in ("(all)", i.kind)]


def agreement_section() -> None:
    """How much reviewers agree (items judged by several) and their accuracy on gold items, computed once the
    expander is opened (opening it reruns the page)."""
    section = st.expander("Agreement and reviewer accuracy", key="review.agreement", on_change="rerun")
    if not section.open:
        return
    found = data.agreement(home, actor, model_or_none)
    with section:
        st.caption(f"{found.items} items judged by several reviewers.")
        st.write("Krippendorff's alpha: " + ("n/a (no item has two judgments yet)" if found.alpha is None
                                             else f"{found.alpha:.3f}"))
        if found.pairs:
            st.dataframe(pd.DataFrame([{"reviewers": " & ".join(p["reviewers"]), "Cohen's kappa": p["cohens_kappa"],
                                        "items": p["items"]} for p in found.pairs]), hide_index=True)
        if found.reviewers:
            st.dataframe(pd.DataFrame([{"reviewer": r["reviewer"], "gold judged": r["gold_judged"],
                                        "gold accuracy": r["gold_accuracy"], "flagged": r["flagged"]}
                                       for r in found.reviewers]), hide_index=True)


agreement_section()
if not items:
    st.info(f"No review items ({status}).")
    st.stop()
now = datetime.now(timezone.utc).replace(tzinfo=None)  # claims are stored in naive UTC
mine = [i for i in items if i.status == ItemStatus.CLAIMED and i.assignee == actor and i.claim_expires_at is not None
        and i.claim_expires_at >= now]
claimable = {i.id for i in items if may_work(i) and (i.status == ItemStatus.OPEN or (
    i.status == ItemStatus.CLAIMED and (i.claim_expires_at is None or i.claim_expires_at < now)))}
st.dataframe(pd.DataFrame([{"id": i.id, "model": i.model, "version": i.version, "kind": i.kind,
                            "rule": i.rule_id or "", "priority": i.priority, "status": i.status,
                            "assignee": i.assignee or ""} for i in items]), hide_index=True, width="stretch")
if status == "to do":
    if claimable:
        claim_next_form(model_or_none, kind_or_none)
    if len(mine) >= 2:
        bulk_form(mine)

ids = [i.id for i in items]
pending = st.session_state[SHOW_NEXT]
if pending is not None:
    if pending in ids:
        st.session_state["review.item"] = pending
    if pending == "" or pending in ids:
        st.session_state["review.comment"] = ""  # the last comment was about the item just judged
    st.session_state[SHOW_NEXT] = None
by_id, mine_ids = {i.id: i for i in items}, {i.id for i in mine}
item_id = st.selectbox("Item", ids, key="review.item", format_func=lambda i: label_of(by_id[i])
                       + (" · claimed by you" if i in mine_ids else ""))
item = by_id[item_id]
detail = item_detail(home, actor, item.id)
st.subheader(state.plain(f"{item.kind} · {item.model} {item.version}"))
rule = rule_of(item, detail)
evidence_side, judging_side = st.columns([3, 2], gap="large")
has_row = isinstance(item.evidence.get("features"), dict)
with evidence_side:
    if rule is not None and not has_row:
        show_rule(rule, item)
    show_evidence(item)
    if rule is not None and has_row:
        show_rule(rule, item)
with judging_side:
    show_guidance(item.kind, item.evidence)
    if detail.judgments:
        table({j.reviewer: f"{j.verdict}" + (f" → {j.corrected_label}" if j.corrected_label is not None else "")
               + f": {j.comment}" for j in detail.judgments}, ("reviewer", "judgment"))
    if item.id in claimable and st.button("Claim", key="review.claim"):
        act(lambda: service.claim_review_item(item_id=item.id), lambda claimed: f"Claimed {claimed.id}.",
            lambda claimed: claimed.id)
    if item.status == ItemStatus.CLAIMED and item.id not in claimable and item.id not in mine_ids:
        st.caption(state.plain(f"Claimed by {item.assignee} until {item.claim_expires_at:%Y-%m-%d %H:%M} UTC."))
    if item.id in mine_ids:
        later = [i.id for i in mine if i.id != item.id]
        judge_form(item, later[0] if later else None)
with st.expander("Evidence as recorded (JSON)"):
    st.code(json.dumps(item.evidence, indent=2, sort_keys=True, default=str), language="json")
