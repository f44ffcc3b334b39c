"""The review queue: pick an item, claim it, see the evidence, judge it."""

import json

import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError
from governance.records import ItemKind, ItemStatus, Verdict

st.title("Review queue")
state.show_flash()
home, actor = state.home(), state.user()
left, middle, right = st.columns(3)
status = left.selectbox("Show", ["to do", *(s.value for s in ItemStatus)], key="review.status",
                        help="to do: open items and the ones you claimed")
model_filter = middle.selectbox("Model", ["(all)", *[m.name for m in data.models(home, actor)]], key="review.model")
kind_filter = right.selectbox("Kind", ["(all)", *(k.value for k in ItemKind)], key="review.kind",
                              help="escalation: the retraining loop stopped without meeting the policy "
                                   "(engineers and admins work these)")
if status == "to do":
    items = data.review_items(home, actor, "open") + [i for i in data.review_items(home, actor, "claimed")
                                                      if i.assignee == actor]
else:
    items = data.review_items(home, actor, status)
items = [i for i in items if model_filter in ("(all)", i.model) and kind_filter in ("(all)", i.kind)]


def agreement_section() -> None:
    """How much reviewers agree (items judged by several) and their accuracy on gold items."""
    found = data.agreement(home, actor, None if model_filter == "(all)" else model_filter)
    with st.expander(f"Agreement and reviewer accuracy ({found.items} items judged by several reviewers)"):
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
st.dataframe(pd.DataFrame([{"id": i.id, "model": i.model, "version": i.version, "kind": i.kind,
                            "rule": i.rule_id or "", "priority": i.priority, "assignee": i.assignee or ""}
                           for i in items]), hide_index=True, width="stretch")
item_id = st.selectbox("Item", [i.id for i in items], key="review.item")
item = next(i for i in items if i.id == item_id)
st.subheader(f"{item.kind} · {item.model} {item.version}")
st.code(json.dumps(item.evidence, indent=2, sort_keys=True, default=str), language="json")
service = state.service()
if item.status == "open" and st.button("Claim", key="review.claim"):
    try:
        service.claim_review_item(item_id=item.id)
        state.changed()
        state.flash(f"Claimed {item.id}.")
        st.rerun()
    except GovernError as exc:
        st.error(state.plain(str(exc)))
if item.status == "claimed" and item.assignee == actor:
    with st.form("review.judge"):
        verdict = st.selectbox("Verdict", [v.value for v in Verdict],
                               key="review.verdict")
        label = st.selectbox("Corrected label (for label_wrong)", ["", "0", "1"], key="review.label")
        comment = st.text_area("Comment", key="review.comment")
        if st.form_submit_button("Judge"):
            try:
                service.judge_review_item(item_id=item.id, verdict=verdict, comment=comment,
                                          label=int(label) if label else None)
                state.changed()
                state.flash(f"Judged {item.id}.")
                st.rerun()
            except GovernError as exc:
                st.error(state.plain(str(exc)))
