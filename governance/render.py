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


_STATUS = {"passed": "PASS", "failed": "FAIL", "warned": "WARN", "insufficient": "INSUFFICIENT"}


def _shown(value: float | int | None) -> str:
    """Counts (approvals, open items) as integers, metric values as records_table shows them."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else _number(value)


def _threshold(result: dict) -> str:
    """What a rule's value was held to, in words: "<= 0.05", ">= 2", or the regression allowed."""
    comparison, threshold = result.get("comparison"), result.get("threshold")
    if comparison is None or threshold is None:
        return "—"
    if comparison == "max_regression":
        return (f"at most {_shown(threshold)} worse than the baseline's "
                f"{_shown(result.get('baseline_value'))}")
    return f"{comparison} {_shown(threshold)}"


def gate_decision_text(record) -> str:
    """A stored gate decision (a GateRecord) as text: what was decided under which policy and evidence,
    then per rule its status, the value judged against its bound, rows, failing groups and reason."""
    decision = record.decision
    lines = [f"{record.model} version {record.version}: gate {record.verdict.upper()} [{record.id}]",
             f"  mode:           {decision.get('mode', 'enforce')}",
             f"  decided:        {record.created_at:%Y-%m-%d %H:%M:%S} by {record.created_by}",
             f"  policy:         {record.policy_name} v{record.policy_version} (sha256 {record.policy_sha256})",
             f"  evaluation:     {record.evaluation_id} (metrics sha256 {record.metrics_sha256})",
             f"  baseline:       {decision.get('baseline') or '-'}",
             f"  rules:          {len(decision.get('results', []))}"]
    for result in decision.get("results", []):
        judged = result.get("judged") if result.get("judged") is not None else result.get("observed")
        what = result.get("metric") or result["kind"]
        where = "".join(f" {key} {result[key]}" for key in ("feature", "group") if result.get(key) is not None)
        lines += [f"  {_STATUS.get(result['status'], result['status'].upper()):<12} {result['rule_id']} "
                  f"({result['kind']}, severity {result['severity']}{', blocking' if result['blocking'] else ''})",
                  f"      {what}{where}: {_shown(judged)}"
                  + (f" (judged at {result['bound']})" if result.get("bound") not in (None, "point") else "")
                  + f"; threshold {_threshold(result)}" + (f"; n {result['n']}" if result.get("n") is not None else "")]
        if result.get("failing_groups"):
            lines.append(f"      failing groups: {', '.join(result['failing_groups'])}")
        lines.append(f"      {result['reason']}")
    return "\n".join(lines)
