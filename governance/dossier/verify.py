"""Prove a dossier matches the decision log, offline: its evidence against a verified audit export.

`govern audit verify EXPORT --key KEY --report REPORT` checks that the evidence was signed by the
installation's key, that the log's head it embeds is in the export, that each rendered document is the
one the evidence lists, and that every cited event is in the export unaltered and says what the
document's figures say (evidence.py lists the kinds of claims).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from governance.artifacts import sha256_file
from governance.audit_chain import AuditEvent, event_hash
from governance.audit_export import log_check_problems
from governance.dossier import DOSSIER_FORMAT, EVIDENCE
from governance.dossier.build import evidence_message, head_message
from governance.dossier.evidence import lookup
from governance.errors import InvalidInput, NotFound
from governance.keys import signature_valid

LARGEST_EVIDENCE = 256 << 20  # bytes: a report cites events by seq and hash, a few hundred bytes each


def read_evidence(report: Path) -> tuple[Path, dict[str, Any]]:
    """(folder, evidence) of a report folder or of any file in it; NotFound / InvalidInput otherwise."""
    report = Path(report)
    if not report.exists():  # its folder's evidence had been checked instead, and said to match the log
        raise NotFound(f"{report} does not exist; give the folder `govern report --out` wrote, or a document in it.")
    folder = report if report.is_dir() else report.parent
    path = folder / EVIDENCE
    if not path.is_file():
        raise NotFound(f"{report} is not a govern report: {path} is missing (give the folder `govern report --out` "
                       "wrote, or a document in it).")
    if path.stat().st_size > LARGEST_EVIDENCE:  # a 1 GB file had been read whole, at twice its size in memory
        raise InvalidInput(f"{path} is not readable evidence ({path.stat().st_size:,} bytes, more than a report's "
                           "evidence holds).")
    try:
        evidence = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"{path} is not readable evidence ({str(exc)[:200]}).") from exc
    if not isinstance(evidence, dict) or evidence.get("format") != DOSSIER_FORMAT:
        raise InvalidInput(f"{path} is not the evidence of a govern report (format {DOSSIER_FORMAT}).")
    for name, kind in (("head", dict), ("claims", list), ("citations", list), ("documents", dict),
                       ("evaluations", dict), ("texts", dict)):
        if not isinstance(evidence.get(name), kind):
            raise InvalidInput(f"{path}: '{name}' is missing or malformed.")
    return folder, evidence


def check_report(report: Path, events: list[AuditEvent] | None, key: str) -> list[str]:
    """Every problem found with the report against the export's events (empty: the report matches the log)."""
    folder, evidence = read_evidence(report)
    problems: list[str] = []
    report = Path(report)
    if not report.is_dir() and report.name != EVIDENCE and report.name not in evidence["documents"]:
        problems.append(f"{report.name} is not one of the report's documents: nothing vouches for what it says.")
    if evidence["head"].get("public_key") != key or not _signed(key, evidence_message, evidence,
                                                                 evidence.get("signature")):
        problems.append("the report's evidence is not signed by the given key: it was changed after it was "
                        "generated, or another installation made it.")
    try:  # unsigned evidence is whatever a forger wrote: what of it can be checked names the change
        return _checked(folder, evidence, events, key, problems)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, UnicodeEncodeError, RecursionError):
        return problems + ["the report's citations or claims are malformed, so they could not be checked."]


def _checked(folder: Path, evidence: dict[str, Any], events: list[AuditEvent] | None, key: str,
             problems: list[str]) -> list[str]:
    problems.extend(log_check_problems(evidence.get("log_check"), "generated"))
    if not _signed(key, head_message, evidence, evidence["head"].get("signature")):
        problems.append("the report's embedded head is not signed by the given key.")
    for name, expected in sorted(evidence["documents"].items()):
        path = folder / str(name)
        inside = not Path(str(name)).is_absolute() and ".." not in Path(str(name)).parts
        if not inside or not (path.exists() or path.is_symlink()):
            problems.append(f"the report's document {name} is missing.")
        elif path.is_symlink() or not path.is_file():
            kind = "a symbolic link" if path.is_symlink() else "not a plain file"
            problems.append(f"the report's document {name} is {kind}, not the file the report wrote.")
        elif sha256_file(path) != expected:
            problems.append(f"the document {name} was changed after it was generated: it does not match its sha256 "
                            "in the evidence.")
    listed = {str(name) for name in evidence["documents"]} | {EVIDENCE}
    names = (entry.relative_to(folder).as_posix() for entry in folder.rglob("*")
             if not entry.is_dir() or entry.is_symlink())
    unlisted = sorted(name for name in names if name not in listed
                      and not any(part.startswith(".") for part in name.split("/")))
    if unlisted:  # a forged bias-audit.html beside a model card had verified as part of it
        problems.append(f"the report's folder holds {', '.join(unlisted[:5])}{' and more' if len(unlisted) > 5 else ''}"
                        ", which its evidence does not list: not part of the report, and unverified.")
    if events is None:
        return problems + ["the export's events could not be read, so no cited event could be checked."]
    by_seq = {e.seq: e for e in events}
    head = by_seq.get(evidence["head"].get("seq"))
    if head is None or head.hash != evidence["head"].get("hash"):
        problems.append(f"the report's head (seq {evidence['head'].get('seq')}) is not in the export: export the log "
                        "after the report was generated.")
    cited = {int(c["seq"]): str(c["hash"]) for c in evidence["citations"]}
    for claim in evidence["claims"]:
        for seq, digest in zip(claim.get("seqs", [claim.get("seq")]), claim.get("hashes", [claim.get("hash")])):
            cited.setdefault(int(seq), str(digest))
    broken = set()
    for seq, digest in sorted(cited.items()):
        problem = _cited_event_problem(by_seq.get(seq), seq, digest)
        if problem:
            broken.add(seq)
            problems.append(problem)
    evaluations_checked: dict[str, bool] = {}
    for claim in evidence["claims"]:
        if claim.get("seq") in broken or any(s in broken for s in claim.get("seqs", [])):
            continue
        problem = _claim_problem(claim, by_seq, evidence, evaluations_checked)
        if problem:
            problems.append(problem)
    return problems


def _signed(key: str, message: Any, evidence: dict[str, Any], signature: Any) -> bool:
    """Whether `signature` is the key's over `message(evidence)`; evidence that cannot even be encoded
    (NaN, text that is not Unicode) is not."""
    try:
        return signature_valid(key, message(evidence), signature)
    except (ValueError, TypeError, UnicodeEncodeError):
        return False


def _cited_event_problem(event: AuditEvent | None, seq: int, digest: str) -> str | None:
    if event is None:
        return f"the report cites event seq {seq}, which the export does not hold."
    what = f"event seq {seq} ({event.action} {event.entity})"
    try:
        recomputed = event_hash(prev_hash=event.prev_hash, seq=event.seq, ts=event.ts, actor=event.actor,
                                action=event.action, entity=event.entity, payload=event.payload)
    except (ValueError, TypeError, UnicodeEncodeError):
        return f"{what} in the export cannot be hashed (text that is not valid Unicode): the event was altered."
    if recomputed != digest:
        return (f"the report cites {what} with hash {digest[:12]}…, but that event in the export does not hash to it: "
                "the event was altered.")
    if event.hash != digest:
        return f"the report cites {what} with hash {digest[:12]}…, but the export records {event.hash[:12]}…."
    return None


def _claim_problem(claim: dict[str, Any], by_seq: dict[int, AuditEvent], evidence: dict[str, Any],
                   evaluations_checked: dict[str, bool]) -> str | None:
    kind = claim.get("type")
    if kind in ("cited", "count"):
        if kind == "count" and claim.get("value") != len(claim.get("seqs", [])):
            return f"a count in the report ({claim.get('value')}) is not the number of events it cites."
        return None
    event = by_seq[int(claim["seq"])]
    what = f"event seq {event.seq} ({event.action} {event.entity})"
    payload = json.loads(event.payload)
    if kind == "payload":
        try:
            logged = lookup(payload, str(claim["field"]))
        except (KeyError, IndexError, ValueError):
            return f"the report shows {claim['field']} from {what}, which has no such field."
        if logged != claim.get("value"):
            return (f"the report shows {claim['field']} = {claim.get('value')!r} from {what}, but the event says "
                    f"{logged!r}.")
        return None
    if kind == "text":
        text = evidence["texts"].get(claim.get("text_sha256"))
        if not isinstance(text, str) or hashlib.sha256(text.encode("utf-8")).hexdigest() != payload.get(claim["field"]):
            return f"the policy text embedded in the report does not hash to the {claim['field']} of {what}."
        return None
    if kind == "record":
        evaluation = str(claim.get("evaluation"))
        if evaluation not in evaluations_checked:
            evaluations_checked[evaluation] = _records_match(evidence, evaluation, payload)
        if not evaluations_checked[evaluation]:
            return (f"the metric records of evaluation {evaluation} embedded in the report do not hash to the "
                    f"records_sha256 {what} logged: a figure of it was changed.")
        key = claim.get("key")
        records = evidence["evaluations"][evaluation]["records"]
        found = [r for r in records if [r.get("family"), r.get("metric"), r.get("feature"), r.get("group")] == key]
        if not found or found[0].get("value") != claim.get("value"):
            label = ".".join(str(k) for k in (key or []) if k is not None)
            return (f"the report shows {label} = {claim.get('value')!r} from evaluation {evaluation} ({what}), but "
                    "its records say otherwise.")
        return None
    return f"the report holds a claim of unknown type {kind!r}."


def _records_match(evidence: dict[str, Any], evaluation: str, payload: dict[str, Any]) -> bool:
    from evaluation.records import MetricSet
    embedded = evidence["evaluations"].get(evaluation)
    if not isinstance(embedded, dict) or not isinstance(embedded.get("records"), list):
        return False
    try:
        digest = MetricSet.from_dicts(embedded["records"]).sha256()
    except (TypeError, ValueError):
        return False
    return payload.get("evaluation") == evaluation and digest == payload.get("records_sha256")
