"""Plain-text rendering of metric records for the terminal (the dashboard draws its own)."""

from __future__ import annotations

from evaluation import MetricRecord


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4f}"


def records_table(records: tuple[MetricRecord, ...] | list[MetricRecord]) -> str:
    """One line per record (reliability bins summarised), aligned in columns."""
    shown = [r for r in records if r.metric != "reliability_bin"]
    rows = [("family", "metric", "feature", "group", "value", "95% interval", "n", "note")]
    for r in shown:
        interval = f"[{_number(r.ci_low)}, {_number(r.ci_high)}]" if r.ci_low is not None else ""
        note = r.detail.get("reason") or r.detail.get("method_name") or r.detail.get("ci_note") or ""
        value = str(int(r.value)) if r.metric == "count" and r.value is not None else _number(r.value)
        rows.append((r.family, r.metric, r.feature or "", r.group or "", value, interval, str(r.n), note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
    bins = len(records) - len(shown)
    if bins:
        lines.append(f"(+ {bins} reliability-diagram bins; --json or --format json lists them)")
    return "\n".join(line.rstrip() for line in lines)
