"""Assemble a dossier: sections from the evidence, the signed head, the rendered documents, evidence.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance import __version__
from governance.audit_chain import AuditEvent, canonical_json
from governance.dossier import DOSSIER_FORMAT, EVIDENCE
from governance.dossier.evidence import Evidence
from governance.dossier.render import pdf, render
from governance.dossier.sections import Sources, build

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def head_message(evidence: dict[str, Any]) -> bytes:
    """What the embedded head's signature covers: which document of which version, and the log's head."""
    return canonical_json({"format": evidence["format"], "kind": evidence["kind"], "model": evidence["model"],
                           "version": evidence["version"], "generated_at": evidence["generated_at"],
                           "head_seq": evidence["head"]["seq"], "head_hash": evidence["head"]["hash"]}).encode()


def evidence_message(evidence: dict[str, Any]) -> bytes:
    """What the evidence's signature covers: all of it but that signature."""
    return canonical_json({k: v for k, v in evidence.items() if k != "signature"}).encode()


def document_name(kind: str, fmt: str) -> str:
    return f"{kind}.{fmt}"


def _draw_charts(folder: Path, sections: list[dict[str, Any]]) -> dict[str, str]:
    """Draw every chart block to PNG under charts/ (its data URI for the HTML); the files' sha256s."""
    import base64

    from governance.dossier import charts

    drawn: dict[str, str] = {}
    blocks = [b for s in sections for b in s["blocks"] if b["type"] == "chart"]
    if not blocks:
        return drawn
    if not charts.available():
        for block in blocks:
            block.update(type="text", text=f"(Chart of {block['caption']} omitted: drawing charts needs "
                                           "vl-convert-python, pip install 'govern[pdf]'.)")
        return drawn
    (folder / "charts").mkdir()
    for index, block in enumerate(blocks, 1):
        if not block["rows"]:
            block.update(type="text", text=f"(No {block['caption']} to draw: no group has a value.)")
            continue
        png = charts.group_rates_png(block["rows"], metric=block["metric"])
        name = charts.chart_name(index, block["feature"], block["metric"])
        (folder / name).write_bytes(png)
        drawn[name] = hashlib.sha256(png).hexdigest()
        block.update(file=name, data_uri="data:image/png;base64," + base64.b64encode(png).decode("ascii"))
    return drawn


def write_dossier(folder: Path, *, kind: str, formats: tuple[str, ...], events: list[AuditEvent], sources: Sources,
                  generated_by: str, key: Ed25519PrivateKey, report_name: str,
                  log_check: dict[str, Any] | None = None) -> dict[str, Any]:
    from governance.keys import public_key_hex, sign

    ev = Evidence(events)
    title, sections = build(kind, ev, sources)
    head = events[-1]
    evidence: dict[str, Any] = {
        "format": DOSSIER_FORMAT, "kind": kind, "title": title, "model": sources.model, "version": sources.version,
        "generated_at": sources.generated_at, "generated_by": generated_by, "govern_version": __version__,
        "head": {"seq": head.seq, "hash": head.hash, "public_key": public_key_hex(key)},
        **({"log_check": log_check} if log_check is not None else {}),  # the live log's check when generated
    }
    evidence["head"]["signature"] = sign(key, head_message(evidence))
    recompute = [e for e in events if e.action == "version.recompute"
                 and e.entity == f"version:{sources.model}/{sources.version}"]
    recompute_line = "not independently recomputed yet"
    if recompute:
        body = json.loads(recompute[-1].payload)
        recompute_line = (f"independently recomputed: agrees to {body['tolerance']:g}" if body.get("agrees") else
                          "independently recomputed: DISAGREES (see Independent recomputation)")
        recompute_line += f" [seq {recompute[-1].seq}]"
    citations = [{"seq": e.seq, "hash": e.hash, "ts": e.ts, "actor": e.actor, "action": e.action,
                  "entity": e.entity} for _, e in sorted(ev.cited.items())]
    context = {**evidence, "sections": sections, "citations": citations, "recompute_line": recompute_line,
               "report_name": report_name}
    documents = _draw_charts(folder, sections)
    for fmt in formats:
        name = document_name(kind, fmt)
        data = pdf(render("html", context)) if fmt == "pdf" else render(fmt, context).encode("utf-8")
        (folder / name).write_bytes(data)
        documents[name] = hashlib.sha256(data).hexdigest()
    evidence.update({"documents": documents, "citations": [{"seq": c["seq"], "hash": c["hash"]} for c in citations],
                     "claims": ev.claims, "evaluations": ev.evaluations, "texts": ev.texts,
                     "sections": [{"id": s["id"], "heading": s["heading"]} for s in sections]})
    evidence["signature"] = sign(key, evidence_message(evidence))
    (folder / EVIDENCE).write_text(json.dumps(evidence, indent=1, sort_keys=True, allow_nan=False) + "\n",
                                   encoding="utf-8")
    return {k: v for k, v in evidence.items() if k not in ("evaluations", "texts", "claims")} | {
        "claim_count": len(ev.claims), "cited_count": len(citations)}
