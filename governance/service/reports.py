"""The auditor's dossier: a document of one version generated only from stored evidence, every figure citing
its audit event, the signed head of the log embedded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from governance.errors import InvalidInput
from governance.roles import Action
from governance.service.audit import AuditActions
from governance.service.base import _require_version
from governance.service.folders import new_folder
from governance.service.recompute import RecomputeActions
from governance.service.reviews import ReviewActions
from governance.store import audit_log, evaluations, gates, registry, review_items

REPORT_FORMATS = ("html", "md", "pdf")


class ReportActions(RecomputeActions, ReviewActions, AuditActions):

    def generate_report(self, *, model: str, version: str, kind: str, out: Path,
                        formats: tuple[str, ...] = ("html", "md")) -> dict[str, Any]:
        """Write the document `kind` (model-card, annex-iv, validation, bias-audit) of the version into the
        new folder `out`, in each of `formats` (html, md, pdf: WeasyPrint renders the HTML), plus
        `evidence.json`: every cited event's seq and hash, the claims `govern audit verify EXPORT --report OUT`
        checks, and the log's head signed with the installation's key. Auditors and admins; the report is itself
        an audit event, the head it signs. Returns the evidence (without the embedded records)."""
        from governance.dossier import EVIDENCE, KIND_NAMES

        if kind not in KIND_NAMES:
            raise InvalidInput(f"report kind {kind!r} is not one of {', '.join(KIND_NAMES)}.")
        unknown = [f for f in formats if f not in REPORT_FORMATS]
        if unknown or not formats:
            raise InvalidInput(f"report format {unknown[0] if unknown else '(none)'!r} is not one of html, md, pdf.")
        if "pdf" in formats:
            from governance.dossier.render import require_pdf
            require_pdf()
        self._run(lambda conn: (self._authorize(conn, Action.AUDIT), _require_version(conn, model, version)))
        agreement = self.agreement(model=model).to_dict()
        key = self._signing_key()

        def unit(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            from governance.dossier.build import write_dossier

            user = self._authorize(conn, Action.AUDIT)
            _require_version(conn, model, version)
            log_check = self._live_log_check(conn)
            self._log(conn, "report.generate", f"version:{model}/{version}",
                      {"kind": kind, "formats": list(formats), "out": out.name})
            sources = _sources(conn, model, version, agreement)
            return write_dossier(scratch, kind=kind, formats=formats, events=audit_log.read_events(conn),
                                 sources=sources, generated_by=user.name, key=key, report_name=out.name,
                                 log_check=log_check)

        out = Path(out)
        with new_folder(out, what="report") as scratch:
            evidence = self._run(unit)
        evidence["files"] = sorted([*evidence["documents"], EVIDENCE])
        return evidence


def _sources(conn: duckdb.DuckDBPyConnection, model: str, version: str, agreement: dict[str, Any]) -> Any:
    from governance.dossier.sections import Sources
    from governance.store.audit_log import utc_timestamp

    records = {e.id: evaluations.metric_set(conn, e).to_list()
               for e in evaluations.list_evaluations(conn, model, version)}
    splits = {p.id: p.split for p in registry.list_prediction_sets(conn, model, version)}
    gate_ids = [json.loads(e.payload).get("gate") for e in
                audit_log.filter_events(conn, model=model, actor=None, action="gate.decide", since=None, until=None,
                                        limit=100_000)[1]]
    decided: dict[str, dict[str, Any]] = {}
    for gate_id in gate_ids:
        found = gates.get_gate(conn, gate_id) if isinstance(gate_id, str) else None
        if found is not None and found.version == version:
            decided[gate_id] = {"results": found.decision.to_dict().get("results", []),
                                "policy_text": gates.policy_text(conn, gate_id)}
    items = [{"id": i.id, "status": str(i.status), "kind": i.kind}
             for i in review_items.list_items(conn, model=model, version=version)]
    return Sources(model=model, version=version, records=records, splits=splits, gates=decided, review_items=items,
                   agreement=agreement, generated_at=utc_timestamp(),
                   model_review_items=[i.id for i in review_items.list_items(conn, model=model)])
