"""Release readiness: what waits for the signed-in user; per model the production version (an override
marked, with its expiry), the latest binding gate's verdict in words with the failing rules, columns and
groups, what the policy gates across versions against its bounds, open review items and active jobs."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, data, state
from governance.roles import Action

TASK_PAGES = {"judge": ("views/review.py", Action.JUDGE), "claimed": ("views/review.py", Action.JUDGE),
              "sign_off": ("views/release.py", Action.SIGN_OFF), "release": ("views/release.py", Action.RELEASE),
              "override": ("views/release.py", Action.OVERRIDE), "failed_job": ("views/jobs.py", Action.VIEW),
              "escalation": ("views/review.py", Action.RESOLVE_ESCALATION),
              "decide": ("views/release.py", Action.VIEW)}
STATUS_COLOURS = alt.Scale(domain=["passed", "warned", "insufficient", "failed"],
                           range=["#2e7d32", "#ef6c00", "#757575", "#c62828"])
STATUS_RANK = {"failed": 0, "warned": 1, "insufficient": 2, "passed": 3}


def show_tasks(board) -> None:
    st.subheader("Needs you")
    if not board.needs_you:
        st.caption(f"Nothing waits for you ({board.role}).")
        return
    for task in board.needs_you:
        page, action = TASK_PAGES.get(task.kind, (None, Action.VIEW))
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.markdown(f"- {state.plain(task.text)}")
        if page and state.may(action):
            right.page_link(page, label="Open", icon=":material/arrow_forward:")


def production_badge(column, card) -> None:
    move = card.production
    if move is None:
        column.badge("not in production", color="gray")
        return
    column.badge(f"production v{move.version}", color="blue", icon=":material/rocket_launch:")
    if move.action == "override":
        expires = f"{move.override_expires:%Y-%m-%d %H:%M} UTC" if move.override_expires else "no expiry"
        if move.expired:
            column.badge(f"OVERRIDE EXPIRED {expires}", color="red", icon=":material/timer_off:",
                         help=state.plain(f"admin {move.actor}'s override: {move.override_reason}"))
        else:
            column.badge(f"OVERRIDE until {expires}", color="orange", icon=":material/gavel:",
                         help=state.plain(f"admin {move.actor}'s override: {move.override_reason}"))


def verdict_line(card) -> None:
    text = state.plain(card.summary)
    if card.verdict == "passed":
        st.success(text, icon=":material/check_circle:")
    elif card.verdict == "blocked":
        st.error(text, icon=":material/block:")
    elif card.verdict == "awaiting sign-off":
        st.warning(text, icon=":material/how_to_reg:")
    else:
        st.info(text, icon=":material/hourglass_empty:")


def show_findings(card) -> None:
    others = [f for f in card.findings if not f.blocking]
    if not others:
        return
    with st.expander(f"{len(others)} warning{'s' if len(others) != 1 else ''} and rules without enough evidence"):
        for finding in others:
            st.markdown(f"- **{finding.status}** {state.plain(finding.sentence())}")


def trend_chart(card):
    frame = pd.DataFrame([{"version": p.version, "value": p.value, "low": p.ci_low, "high": p.ci_high,
                           "bound": p.threshold, "status": p.status,
                           "rule": f"{p.rule_id}: {p.metric.split('.')[-1]}",
                           "where": p.feature if p.group is None else f"{p.feature}={p.group}"}
                          for p in card.trend if p.value is not None])
    if frame.empty:
        return None
    order = list(dict.fromkeys(frame["version"]))
    latest = frame[frame["version"] == order[-1]]
    rules = sorted(dict.fromkeys(frame["rule"]), key=lambda rule: min(
        (STATUS_RANK.get(s, 9) for s in latest.loc[latest["rule"] == rule, "status"]), default=9))  # failing first
    x = alt.X("version:O", sort=order, title="version", axis=alt.Axis(labelAngle=0))
    base = alt.Chart()  # the layers take the facet's data: each panel one rule's points
    # Channels as objects, not "field:type" strings: Altair resolves each string through its whole schema
    # (about 10 ms apiece), which made this chart a third of the page's time.
    y = alt.Y("value:Q", title=None)
    line = base.mark_line(color="#90a4ae").encode(x=x, y=y)
    dots = base.mark_circle(size=110).encode(
        x=x, y=y, color=alt.Color("status:N", scale=STATUS_COLOURS, title="the gate said",
                                  legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("rule:N"), alt.Tooltip("version:O"), alt.Tooltip("where:N"),
                 alt.Tooltip("value:Q", format=".4f"), alt.Tooltip("bound:Q"), alt.Tooltip("status:N")])
    band = base.transform_filter("isValid(datum.low) && isValid(datum.high)").mark_errorbar().encode(
        x=x, y=alt.Y("low:Q"), y2=alt.Y2("high:Q"))
    bound = base.mark_rule(strokeDash=[6, 4], color="#c62828").encode(y=alt.Y("bound:Q"))
    return alt.layer(band, line, dots, bound, data=frame).properties(width=210, height=150).facet(
        facet=alt.Facet("rule:N", title=None, sort=rules, header=alt.Header(labelLimit=0)), columns=3,
    ).resolve_scale(y="independent")


def headline_metrics(names: list[str]) -> None:
    left, right = st.columns(2)
    model = left.selectbox("Model", names, index=data.busiest(home, actor, names), key="overview.model")
    points = data.trend(home, actor, model)
    if not points:
        st.info("No version of this model has been evaluated yet (`govern evaluate`).")
        return
    metrics = list(dict.fromkeys(p.metric for p in points))
    metric = right.selectbox("Metric", metrics, key="overview.metric")
    frame = pd.DataFrame([{"version": p.version, "value": p.value, "low": p.ci_low, "high": p.ci_high, "n": p.n,
                           "series": p.feature or "overall"} for p in points if p.metric == metric])
    order = list(dict.fromkeys(p.version for p in points))  # oldest version first
    st.altair_chart(charts.band_line(frame, x="version", y="value", low="low", high="high", color="series",
                                     sort=order), width="stretch")
    st.caption("Each version's latest evaluation; the band is the bootstrap confidence interval. "
               "Parity differences have one line per sensitive feature.")


st.title("Overview")
st.caption("Release readiness: is each model fit, what failed and where, and what waits for you.")
state.show_flash()
home, actor = state.home(), state.user()
seen = data.witness(home, actor)
if not seen.ok:
    st.error("The decision log no longer matches the heads witnessed before: " + " ".join(seen.problems)
             + " An auditor should compare it with the latest export (`govern audit verify NEW --since OLD`).",
             icon="🚨")
board = data.readiness(home, actor)
for expired in [m.production for m in board.models if m.production and m.production.expired]:
    st.error(f"{expired.model}: production version {expired.version} rests on an admin override that EXPIRED "
             f"{expired.override_expires:%Y-%m-%d %H:%M} UTC (reason: {state.plain(expired.override_reason)}). "
             "Release a version through the gate and sign-off, roll back, or override again.", icon="⏰")
show_tasks(board)
if not board.models:
    st.info("No models yet. Register one with `govern model register` or `govern train`.")
    st.stop()

for card in board.models:
    with st.container(border=True):
        title, badges = st.columns([1, 3], vertical_alignment="center")
        title.markdown(f"### {state.plain(card.model)}")
        title.caption(f"risk tier {card.risk_tier} · {card.versions} version{'s' if card.versions != 1 else ''}")
        with badges:
            row = st.container(horizontal=True)
            production_badge(row, card)
            if card.production_verdict and card.production and card.gated_version != card.production.version:
                row.badge(f"production's gate: {card.production_verdict}",
                          color="green" if card.production_verdict == "passed" else "red")
            row.badge(f"{card.open_items} open review item{'s' if card.open_items != 1 else ''}",
                      color="violet" if card.open_items else "gray", icon=":material/rate_review:")
            row.badge(f"{card.active_jobs} active job{'s' if card.active_jobs != 1 else ''}",
                      color="violet" if card.active_jobs else "gray", icon=":material/model_training:")
        verdict_line(card)
        show_findings(card)
        chart = trend_chart(card)
        if chart is not None:
            st.caption("What the policy gates, per version: the value each version's gate judged (the worst column "
                       "or group; small groups set aside as the gate did), the bound dashed, the interval where "
                       "the value is a record's own.")
            st.altair_chart(chart)
        if card.gated_version:
            st.page_link("views/version.py", label=f"Why: {card.model} v{card.gated_version} in detail",
                         icon=":material/insights:", query_params={"model": card.model, "version": card.gated_version})

# Drawn only once opened (the expander reruns the page when toggled): the board above is what most visits need.
headline = st.expander("Headline metrics across versions (any metric)", key="overview.headline", on_change="rerun")
if headline.open:
    with headline:
        headline_metrics([m.model for m in board.models])
