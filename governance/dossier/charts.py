"""Static charts of the dossier: Altair charts like the dashboard's, drawn to PNG by vl-convert.

governance may not import the dashboard, so the charts are built here from the same records the document
cites (each chart's caption cites the evaluation it draws). Without vl-convert-python (the `pdf` extra) a
document says so in place of the chart."""

from __future__ import annotations

import re
from typing import Any


def available() -> bool:
    try:
        import vl_convert  # noqa: F401
    except ImportError:
        return False
    return True


def group_rates_png(rows: list[dict[str, Any]], *, metric: str) -> bytes:
    """Bars of `metric` per group with their interval (value, low, high), as PNG."""
    import altair as alt
    import pandas as pd
    import vl_convert

    frame = pd.DataFrame(rows)
    base = alt.Chart(frame).encode(y=alt.Y("group:N", title=None, sort=None))
    bars = base.mark_bar(color="#4c78a8").encode(x=alt.X("value:Q", title=metric.replace("_", " ")),
                                                 tooltip=["group", "value"])
    chart = bars
    if frame[["low", "high"]].notna().all().all():
        chart = bars + base.mark_rule(color="#1d2433").encode(x="low:Q", x2="high:Q")
    spec = chart.properties(width=420, height=max(60, 22 * len(frame))).to_dict()
    return bytes(vl_convert.vegalite_to_png(spec, scale=1))


def chart_name(index: int, feature: str, metric: str) -> str:
    return f"charts/{index:02d}-{metric}-{re.sub(r'[^A-Za-z0-9_-]+', '_', feature)[:60]}.png"
