"""Altair charts the pages share. Every text that came from users is data, never markup."""

from __future__ import annotations

import altair as alt
import pandas as pd


def band_line(frame: pd.DataFrame, *, x: str, y: str, low: str, high: str, color: str | None = None,
              x_type: str = "O", sort: list | None = None, title: str | None = None) -> alt.LayerChart:
    """A line of `y` over `x` with its interval as a shaded band (the interval's rows may be empty)."""
    axis = alt.X(f"{x}:{x_type}", sort=sort, title=title or x)
    encode = {"color": alt.Color(f"{color}:N")} if color else {}
    band = alt.Chart(frame.dropna(subset=[low, high])).mark_area(opacity=0.25).encode(
        x=axis, y=alt.Y(f"{low}:Q", title=y, scale=alt.Scale(zero=False)), y2=f"{high}:Q", **encode)
    line = alt.Chart(frame).mark_line(point=True).encode(
        x=axis, y=alt.Y(f"{y}:Q", title=y, scale=alt.Scale(zero=False)), tooltip=[c for c in frame.columns], **encode)
    return band + line


def bars_with_intervals(frame: pd.DataFrame, *, category: str, value: str, low: str, high: str,
                        threshold: str | None = None, column: str | None = None) -> alt.LayerChart | alt.FacetChart:
    """Bars of `value` per `category` with error bars, and each category's policy threshold (the
    `threshold` column, where not null) as a red tick."""
    base = alt.Chart(frame)
    layers = [base.mark_bar().encode(x=alt.X(f"{category}:N", title=None), y=alt.Y(f"{value}:Q"),
                                     tooltip=list(frame.columns)),
              base.mark_errorbar().encode(x=f"{category}:N", y=alt.Y(f"{low}:Q", title=value), y2=f"{high}:Q")]
    if threshold is not None and frame[threshold].notna().any():
        layers.append(alt.Chart(frame.dropna(subset=[threshold])).mark_tick(color="red", thickness=3)
                      .encode(x=f"{category}:N", y=f"{threshold}:Q"))
    chart = alt.layer(*layers)
    if column is None:
        return chart
    return chart.properties(width=260, height=240).facet(column=f"{column}:N").resolve_scale(x="independent")
