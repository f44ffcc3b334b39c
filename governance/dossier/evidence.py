"""The evidence of one version, gathered from the decision log and the records it hashes, every figure cited.

A figure is what a document shows (text) plus the audit event it comes from (seq, hash). Each figure also
adds a claim that `govern audit verify EXPORT --report REPORT` can check against an export offline:

- payload: the cited event's payload holds `value` at `field` (a dotted path)
- record:  a metric record of an embedded evaluation has `value`, and the embedded records hash to the
           `records_sha256` the cited `version.evaluate` event logged
- text:    the embedded text hashes to the sha256 at `field` of the cited event (a gate's policy text)
- count:   `value` is the number of the cited events (`seqs`)
- cited:   the figure is derived from the cited events (their seq and hash are checked, not the figure)
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from governance.audit_chain import AuditEvent

Figure = dict[str, Any]
OVERALL = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier_score", "ece", "mce",
           "selection_rate")
GROUP_METRICS = ("count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy", "impact_ratio")
PARITY = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
          "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio")


def number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def lookup(payload: Any, field: str) -> Any:
    """The value at a dotted path of a payload (list items by index); KeyError when absent."""
    for part in field.split("."):
        if isinstance(payload, list):
            payload = payload[int(part)]
        elif isinstance(payload, dict):
            payload = payload[part]
        else:
            raise KeyError(field)
    return payload


class Evidence:
    """The events of the log, and the figures and claims a dossier collects from them."""

    def __init__(self, events: list[AuditEvent]) -> None:
        self.events = events
        self.payloads = {e.seq: json.loads(e.payload) for e in events}
        self.claims: list[dict[str, Any]] = []
        self.cited: dict[int, AuditEvent] = {}
        self.evaluations: dict[str, dict[str, Any]] = {}  # id → {"records": [...], "seq": ..., "hash": ...}
        self.texts: dict[str, str] = {}

    # -- finding events ------------------------------------------------------------------------------------

    def where(self, *, action: str | None = None, entity: str | None = None, prefix: str | None = None,
              **payload: Any) -> list[AuditEvent]:
        """Events (oldest first) with this action (or action prefix), entity and payload values."""
        found = []
        for event in self.events:
            if action is not None and event.action != action:
                continue
            if prefix is not None and not event.action.startswith(prefix):
                continue
            if entity is not None and event.entity != entity:
                continue
            body = self.payloads[event.seq]
            if all(body.get(k) == v for k, v in payload.items()):
                found.append(event)
        return found

    def payload(self, event: AuditEvent) -> dict[str, Any]:
        return self.payloads[event.seq]

    # -- figures -------------------------------------------------------------------------------------------

    def _cite(self, event: AuditEvent) -> dict[str, Any]:
        self.cited[event.seq] = event
        return {"seq": event.seq, "hash": event.hash}

    def field(self, event: AuditEvent, field: str, text: str | None = None) -> Figure:
        """The payload value at `field` of `event`, as a figure checked against the event."""
        value = lookup(self.payload(event), field)
        self.claims.append({"type": "payload", **self._cite(event), "field": field, "value": value})
        return {"text": text if text is not None else number(value), **self._cite(event)}

    def derived(self, text: str, events: list[AuditEvent]) -> Figure:
        """A figure derived from `events` (all cited); cites the last of them."""
        if not events:
            return {"text": text}
        self.claims.append({"type": "cited", "seqs": [e.seq for e in events],
                            "hashes": [e.hash for e in events], "figure": text})
        for event in events:
            self._cite(event)
        return {"text": text, **self._cite(events[-1])}

    def count(self, events: list[AuditEvent], text: str | None = None) -> Figure:
        self.claims.append({"type": "count", "seqs": [e.seq for e in events], "hashes": [e.hash for e in events],
                            "value": len(events)})
        for event in events:
            self._cite(event)
        figure: Figure = {"text": text if text is not None else number(len(events))}
        return {**figure, **self._cite(events[-1])} if events else figure

    def policy_text(self, event: AuditEvent, text: str) -> Figure:
        """The policy text a gate judged under, proven by the sha256 its gate.decide event logged."""
        sha = self.payload(event)["policy_sha256"]
        self.texts[sha] = text
        self.claims.append({"type": "text", **self._cite(event), "field": "policy_sha256", "text_sha256": sha})
        return {"text": sha, **self._cite(event)}

    def evaluation(self, event: AuditEvent, records: list[dict[str, Any]]) -> str:
        """Embed an evaluation's records (cited by its version.evaluate event) for record figures."""
        evaluation_id = self.payload(event)["evaluation"]
        self.evaluations[evaluation_id] = {"records": records, **self._cite(event)}
        return str(evaluation_id)

    def record(self, evaluation_id: str, record: dict[str, Any], *, interval: bool = True, digits: int = 4) -> Figure:
        source = self.evaluations[evaluation_id]
        key = [record["family"], record["metric"], record["feature"], record["group"]]
        self.claims.append({"type": "record", "seq": source["seq"], "hash": source["hash"],
                            "evaluation": evaluation_id, "key": key, "value": record["value"]})
        value = record["value"]
        whole = record["metric"] == "count" and isinstance(value, float) and value.is_integer()
        text = number(int(value) if whole else value, digits)
        if interval and record.get("ci_low") is not None and record.get("ci_high") is not None:
            text += f" [{number(record['ci_low'], digits)}, {number(record['ci_high'], digits)}]"
        return {"text": text, "seq": source["seq"], "hash": source["hash"]}


def records_by_key(records: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(r["family"], r["metric"], r["feature"], r["group"]): r for r in records}


def verdict_counts(payloads: list[dict[str, Any]]) -> str:
    counts = Counter(str(p.get("verdict")) for p in payloads)
    return ", ".join(f"{verdict} {n}" for verdict, n in sorted(counts.items())) or "none"
