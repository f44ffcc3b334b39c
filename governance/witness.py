"""The witness: an append-only file of signed audit heads, kept outside the database.

After every unit of work that appended to the audit log, the service appends one line: the seq range the
unit appended (`from`..`seq`) and the new head's hash, signed with the installation key. The lines tile
the whole log: each line's `from` is the previous line's `seq` + 1. Whoever rewrites the database (an
edit with every later hash recomputed, a removed tail with its head row) cannot make the live chain
match heads witnessed before the rewrite, sign new lines without the key, or drop lines without leaving
a gap. `status`, `audit verify` and the dashboard compare the live chain with the witness. Lines are
appended with one write on an O_APPEND descriptor, so concurrent processes interleave whole lines.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.audit_chain import canonical_json
from governance.keys import public_key_hex, sign, signature_valid
from governance.private import private_dir


@dataclass(frozen=True)
class WitnessReport:
    """How the live chain compares with the witnessed heads; `problems` is empty exactly when `ok`."""

    ok: bool
    path: str
    witnessed: int  # lines read
    latest_seq: int | None  # the newest witnessed head
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    covered: int = 0  # seq 1 to this are witnessed without a gap

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Head:
    first: int
    seq: int
    hash: str
    ts: str
    sig: str
    line: int
    text: str


# Lines whose signature this process already verified, by sha256 of (key, exact line): a long-lived process
# (the dashboard) then checks only new lines. A changed line is a different key here, so it is verified again.
_verified: set[bytes] = set()


def _message(first: int, seq: int, head_hash: str, ts: str) -> bytes:
    return canonical_json({"from": first, "seq": seq, "hash": head_hash, "ts": ts}).encode("utf-8")


def record(path: Path, key: Ed25519PrivateKey, *, first: int, seq: int, head_hash: str, ts: str) -> None:
    """Append one signed head: this unit appended events `first`..`seq`, ending in `head_hash`."""
    private_dir(path.parent)
    line = canonical_json({"from": first, "seq": seq, "hash": head_hash, "ts": ts, "key": public_key_hex(key),
                           "sig": sign(key, _message(first, seq, head_hash, ts))}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _parse(text: str, problems: list[str]) -> list[_Head]:
    heads = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            values = (entry["from"], entry["seq"], entry["hash"], entry["ts"], entry["sig"])
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values[:2]) or \
                    not all(isinstance(v, str) for v in values[2:]):
                raise TypeError("wrong types")
            heads.append(_Head(*values, number, line))
        except (ValueError, KeyError, TypeError, RecursionError):
            problems.append(f"line {number} of the witness is not a signed head: the witness was edited.")
    return heads


def check(path: Path, public_key: str, live: dict[int, str]) -> WitnessReport:
    """Compare the witness with the live chain (`live`: seq → hash).

    Every line must carry this installation's signature, the lines must tile seq 1 to the live head
    without a gap, and each witnessed head must still be the live chain's hash at its seq. A missing
    or empty witness for a non-empty log is a problem too.
    """
    problems: list[str] = []
    live_max = max(live) if live else 0
    if not path.exists() or path.is_dir():
        if live_max and not path.is_dir():
            problems.append(f"the witness {path} is missing although the log holds {live_max} events: it was "
                            "removed (or GOVERN_WITNESS_FILE points elsewhere).")
        elif path.is_dir():
            problems.append(f"the witness {path} is a folder, not a file.")
        return WitnessReport(not problems, str(path), 0, None, None, problems)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return WitnessReport(False, str(path), 0, None, None, [f"the witness {path} cannot be read ({exc})."])
    heads = sorted(_parse(text, problems), key=lambda h: (h.seq, h.first))
    first_bad: int | None = None

    def bad(seq: int, problem: str) -> None:
        nonlocal first_bad
        problems.append(problem)
        first_bad = seq if first_bad is None else min(first_bad, seq)

    for head in heads:
        seen = hashlib.sha256(f"{public_key}\n{head.text}".encode("utf-8")).digest()
        if seen in _verified:
            continue
        if signature_valid(public_key, _message(head.first, head.seq, head.hash, head.ts), head.sig):
            _verified.add(seen)
        else:
            bad(head.seq, f"line {head.line} of the witness (seq {head.seq}) is not signed by this installation's "
                          "key: the witness was edited.")
    if problems:
        return WitnessReport(False, str(path), len(heads), heads[-1].seq if heads else None, first_bad, problems)
    covered = 0
    for head in sorted(heads, key=lambda h: (h.first, -h.seq)):  # a re-witnessed range spans the lines it covers
        if head.first > covered + 1:
            bad(covered + 1, f"events seq {covered + 1} to {head.first - 1} were never witnessed: witness lines were "
                             "removed, or a process died between its commit and its witness line (an auditor who "
                             "has checked the log records the head again with `govern audit witness`).")
        covered = max(covered, head.seq)
        if head.seq > live_max:
            bad(head.seq, f"the witness saw event seq {head.seq} but the live chain ends at seq {live_max}: events "
                          "were removed from the end of the log.")
            break
        if live.get(head.seq) != head.hash:
            where = (f"event seq {head.seq} was altered" if head.first == head.seq else
                     f"an event between seq {head.first} and seq {head.seq} was altered")
            bad(head.first, f"{where}: the live chain no longer has the hash witnessed at seq {head.seq} "
                            f"({head.hash[:12]}…), and every head witnessed before still matches.")
            break
    contiguous = covered if first_bad is None else min(covered, first_bad - 1)
    if covered < live_max and not problems:
        bad(covered + 1, f"events seq {covered + 1} to {live_max} are not witnessed: witness lines were removed, "
                         "or a process died between its commit and its witness line (an auditor who has checked "
                         "the log records the head again with `govern audit witness`).")
    return WitnessReport(not problems, str(path), len(heads), heads[-1].seq if heads else None, first_bad, problems,
                         contiguous)
