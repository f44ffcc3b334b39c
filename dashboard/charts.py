"""Altair charts the pages share. Every text that came from users is data, never markup."""

from __future__ import annotations

import altair as alt
import pandas as pd


def tooltips(frame: pd.DataFrame) -> list[alt.Tooltip]:
    """A tooltip per column, as channel objects: Altair resolves a bare column name through its whole schema
    (about 10 ms each), which on a page of charts adds up to most of its render time."""
    return [alt.Tooltip(str(column)) for column in frame.columns]


def band_line(frame: pd.DataFrame, *, x: str, y: str, low: str, high: str, color: str | None = None,
              x_type: str = "O", sort: list | None = None, title: str | None = None) -> alt.LayerChart:
    """A line of `y` over `x` with its interval as a shaded band (the interval's rows may be empty)."""
    axis = alt.X(f"{x}:{x_type}", sort=sort, title=title or x)
    encode = {"color": alt.Color(f"{color}:N")} if color else {}
    band = alt.Chart(frame.dropna(subset=[low, high])).mark_area(opacity=0.25).encode(
        x=axis, y=alt.Y(f"{low}:Q", title=y, scale=alt.Scale(zero=False)), y2=alt.Y2(f"{high}:Q"), **encode)
    line = alt.Chart(frame).mark_line(point=True).encode(
        x=axis, y=alt.Y(f"{y}:Q", title=y, scale=alt.Scale(zero=False)), tooltip=tooltips(frame), **encode)
    return band + line


def bars_with_intervals(frame: pd.DataFrame, *, category: str, value: str, low: str, high: str,
                        threshold: str | None = None, column: str | None = None) -> alt.LayerChart | alt.FacetChart:
    """Bars of `value` per `category` with error bars, and each category's policy threshold (the
    `threshold` column, where not null) as a red tick."""
    base = alt.Chart(frame)
    layers = [base.mark_bar().encode(x=alt.X(f"{category}:N", title=None), y=alt.Y(f"{value}:Q"),
                                     tooltip=tooltips(frame)),
              base.mark_errorbar().encode(x=alt.X(f"{category}:N"), y=alt.Y(f"{low}:Q", title=value),
                                          y2=alt.Y2(f"{high}:Q"))]
    if threshold is not None and frame[threshold].notna().any():
        layers.append(alt.Chart(frame.dropna(subset=[threshold])).mark_tick(color="red", thickness=3)
                      .encode(x=alt.X(f"{category}:N"), y=alt.Y(f"{threshold}:Q")))
    chart = alt.layer(*layers)
    if column is None:
        return chart
    return chart.properties(width=260, height=240).facet(column=f"{column}:N").resolve_scale(x="independent")


def tradeoff(frame: pd.DataFrame, *, x: str, y: str, bound: float | None, x_title: str) -> alt.LayerChart:
    """A search's candidates: `y` (accuracy) against `x` (the flagged metric), coloured by whether each
    passed the policy, the chosen one ringed, and the rule's bound on `x` as a dashed line."""
    base = alt.Chart(frame)
    layers = [
        base.mark_circle(size=90, opacity=0.85).encode(
            x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(zero=False)),
            y=alt.Y(f"{y}:Q", title=y, scale=alt.Scale(zero=False)),
            color=alt.Color("result:N", scale=alt.Scale(domain=["passes", "fails"], range=["#2e7d32", "#c62828"]),
                            title=None),
            tooltip=tooltips(frame)),
        alt.Chart(frame[frame["chosen"]]).mark_point(size=400, shape="circle", strokeWidth=3, color="black")
        .encode(x=alt.X(f"{x}:Q"), y=alt.Y(f"{y}:Q")),
    ]
    if bound is not None:
        layers.append(alt.Chart(pd.DataFrame({"bound": [bound]})).mark_rule(strokeDash=[6, 4], color="#c62828")
                      .encode(x=alt.X("bound:Q")))
    return alt.layer(*layers)


# How a value stands against the policy, everywhere the page colours it (bars, tables, the summary).
STANDING = ["fails, blocks release", "fails, warning", "passes", "set aside", "not judged"]
STANDING_COLOURS = ["#c62828", "#ef6c00", "#2e7d32", "#9e9e9e", "#5c7fa3"]


def judged_bars(frame: pd.DataFrame, *, category: str, value: str, low: str, high: str, standing: str,
                threshold: str, label: str, title: str, tooltip: list[str], across: bool) -> alt.LayerChart:
    """Horizontal bars of `value` per `category` (full names: no label is cut short) with their intervals,
    coloured by `standing` (one of STANDING), and the policy's threshold where the `threshold` column is not
    null, described by the `label` column (for screen readers and tooltips): with `across`, a dashed line
    through every row (the rows share one threshold), else a tick on each row. The layers share one copy of
    the data and typed tooltips: the page draws several of these, and Altair validates what it infers."""
    y = alt.Y(f"{category}:N", title=None, sort=list(dict.fromkeys(frame[category])),
              axis=alt.Axis(labelLimit=0, labelFontSize=12))
    x = alt.X(f"{value}:Q", title=title)
    tips = [alt.Tooltip(f"{c}:{'Q' if pd.api.types.is_numeric_dtype(frame[c]) else 'N'}") for c in tooltip]
    base = alt.Chart()
    layers = [
        base.mark_bar().encode(
            y=y, x=x, tooltip=tips,
            color=alt.Color(f"{standing}:N", title=None, scale=alt.Scale(domain=STANDING, range=STANDING_COLOURS),
                            legend=alt.Legend(orient="bottom"))),
        base.mark_rule(color="#212121", strokeWidth=1.5).encode(y=y.bandPosition(0.5),
                                                                x=alt.X(f"{low}:Q", title=title),
                                                                x2=alt.X2(f"{high}")),
    ]
    if frame[threshold].notna().any():
        line = {"x": alt.X(f"{threshold}:Q", title=title), "description": alt.Description(f"{label}:N"),
                "tooltip": [alt.Tooltip(f"{label}:N", title="policy")]}
        mark = (base.mark_rule(strokeDash=[6, 3], strokeWidth=2, color="#b71c1c").encode(**line) if across
                else base.mark_tick(thickness=3, color="#b71c1c").encode(y=y, **line))
        layers.append(mark.transform_filter(f"isValid(datum[{threshold!r}])"))
    return alt.layer(*layers, data=frame).properties(height=alt.Step(26))


def search_candidates(candidates: list[dict], rule: str) -> pd.DataFrame:
    """A retraining search's candidates as rows for `tradeoff`: accuracy against `rule`'s metric, whether each
    passed the policy, which was chosen and why the others failed. Where the search weighed errors by a decision
    threshold other than 0.5 (`aim.weighted_accuracy`), a "weighted accuracy" column too (`search_y`)."""
    weighted = any(c["metrics"].get("weighted_accuracy") not in (None, c["metrics"].get("accuracy"))
                   for c in candidates)
    return pd.DataFrame([{"candidate": c["strategy"], "accuracy": c["metrics"].get("accuracy"),
                          **({WEIGHTED: c["metrics"].get("weighted_accuracy")} if weighted else {}),
                          rule: c["metrics"].get(rule), "ECE": c["metrics"].get("ece"),
                          "result": "passes" if c["passes"] else "fails", "chosen": c["chosen"],
                          "failing": "; ".join(c["failing"])} for c in candidates])


WEIGHTED = "weighted accuracy"


def search_y(frame: pd.DataFrame) -> str:
    """The accuracy the search chose by, as `search_candidates` names its column."""
    return WEIGHTED if WEIGHTED in frame.columns else "accuracy"


def search_choice(chosen: dict, frame: pd.DataFrame) -> str:
    """Why the chosen candidate, in words."""
    why = "the most accurate that passes" if chosen["passes"] else "none passed; the closest to passing"
    return why + ("; each error weighted by the decision threshold, as the search weighs them"
                  if search_y(frame) == WEIGHTED else "")
