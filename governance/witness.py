"""The witness: an append-only file of signed audit heads, kept outside the database.

Every unit of work that appends to the audit log writes two lines: before its commit, an intent (the
seq range it appends, `from`..`seq`, and the head's hash it is about to commit), and after it, the same
head confirmed. Both are signed with the installation key. A unit whose intent cannot be written is not
committed, so a process that dies anywhere leaves no event unwitnessed: at worst an intent for a commit
that never happened (or a confirmation missing), which is told apart from tampering because its head is
not in the live chain (or is, and vouches for it). The matching lines tile the whole log. Whoever
rewrites the database (an edit with every later hash recomputed, a removed tail with its head row)
cannot make the live chain match heads witnessed before the rewrite, sign new lines without the key, or
drop lines without leaving a gap, which no crash explains. `status`, `audit verify` and the dashboard
compare the live chain with the witness. Lines are appended with one write on an O_APPEND descriptor,
so concurrent processes interleave whole lines.
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
from governance.errors import GovernError
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
    checked_against: str | None = None  # a re-witness: the export the live log was checked against
    vouched: list[str] = field(default_factory=list)  # a re-witness: the gap's events, vouched for by its auditor alone
    credential_holders: list[str] = field(default_factory=list)  # a re-witness: who else could have used its credential
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) seq of each run no line witnesses

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
    intent: bool = False  # written before the commit; a confirmed head has no phase (as every line before intents)
    rewitness: bool = False  # an auditor's `audit witness`, spanning a gap: it vouches for no intent in that gap


# Lines whose signature this process already verified, by sha256 of (key, exact line): a long-lived process
# (the dashboard) then checks only new lines. A changed line is a different key here, so it is verified again.
_verified: set[bytes] = set()


INTENT = "intent"


def _message(first: int, seq: int, head_hash: str, ts: str, intent: bool = False, rewitness: bool = False) -> bytes:
    fields: dict[str, Any] = {"from": first, "seq": seq, "hash": head_hash, "ts": ts}
    if intent:
        fields["phase"] = INTENT
    if rewitness:
        fields["rewitness"] = True
    return canonical_json(fields).encode("utf-8")


def record(path: Path, key: Ed25519PrivateKey, *, first: int, seq: int, head_hash: str, ts: str,
           intent: bool = False, rewitness: bool = False) -> None:
    """Append one signed head: this unit appends (`intent`, before its commit) or appended events
    `first`..`seq`, ending in `head_hash` (`rewitness`: an auditor's head spanning a gap)."""
    private_dir(path.parent)
    _require_same_key(path, public_key_hex(key))
    fields: dict[str, Any] = {"from": first, "seq": seq, "hash": head_hash, "ts": ts, "key": public_key_hex(key),
                              "sig": sign(key, _message(first, seq, head_hash, ts, intent, rewitness))}
    if intent:
        fields["phase"] = INTENT
    if rewitness:
        fields["rewitness"] = True
    line = canonical_json(fields) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


# Why events can lack a witness line: govern writes a unit's head before committing it, so no crash leaves
# one (a store written by a govern from before that may hold such a gap, which an auditor closes).
_UNWITNESSED = ("witness lines were removed, or the events were written around govern, which witnesses each "
                "change before it commits it (only a store written by an earlier govern can hold a gap a dying "
                "process left; an auditor who has checked the log closes it with `govern audit witness --against "
                "EXPORT`).")


def has_lines(path: Path) -> bool:
    """Whether the witness at `path` holds a line (not missing, empty, a dangling link or unreadable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return bool(handle.readline().strip())
    except (OSError, UnicodeDecodeError):
        return False


def _require_same_key(path: Path, public_key: str) -> None:
    """GovernError when the witness was begun with another key than `public_key` (GOVERN_KEY_FILE pointing at
    a stray key): its lines would read as a forged witness to everyone, for good."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = json.loads(handle.readline() or "{}")
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return  # no witness yet, or one `status` already reports as edited
    begun = first.get("key") if isinstance(first, dict) else None
    if isinstance(begun, str) and begun != public_key:
        raise GovernError(f"the signing key in use (public key {public_key[:16]}…) is not the one the witness {path} "
                          f"was begun with ({begun[:16]}…): GOVERN_KEY_FILE points at another installation's key, "
                          "so nothing was changed.")


def _parse(text: str, problems: list[str]) -> list[_Head]:
    heads = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            values = (entry["from"], entry["seq"], entry["hash"], entry["ts"], entry["sig"])
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values[:2]) or \
                    not all(isinstance(v, str) for v in values[2:]) or entry.get("phase", INTENT) != INTENT \
                    or entry.get("rewitness", True) is not True:
                raise TypeError("wrong types")
            heads.append(_Head(*values, number, line, "phase" in entry, "rewitness" in entry))
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
        return WitnessReport(not problems, str(path), 0, None, None, problems,
                             gaps=[(1, live_max)] if live_max and not path.is_dir() else [])
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

    # An intent that claims what a verified confirmation claims (same range, head and kind) says nothing more:
    # its signature is not checked, which keeps verification at one check per change, as before intents.
    confirmed: set[tuple[int, int, str, bool]] = set()
    for head in sorted(heads, key=lambda h: h.intent):  # confirmations first
        claim = (head.first, head.seq, head.hash, head.rewitness)
        if head.intent and claim in confirmed:
            continue
        seen = hashlib.sha256(f"{public_key}\n{head.text}".encode("utf-8")).digest()
        if seen in _verified or signature_valid(public_key, _message(head.first, head.seq, head.hash, head.ts,
                                                                     head.intent, head.rewitness), head.sig):
            _verified.add(seen)
            if not head.intent:
                confirmed.add(claim)
        else:
            bad(head.seq, f"line {head.line} of the witness (seq {head.seq}) is not signed by this installation's "
                          "key: the witness was edited.")
    if problems:
        return WitnessReport(False, str(path), len(heads), heads[-1].seq if heads else None, first_bad, problems)
    # An intent whose head is not in the live chain is a unit that never committed (it died, or its commit
    # collided and its retry took other seqs). Where its seq is in the chain, the unit that did append that
    # event signed an intent covering it, which matches: without one, the event was altered after that
    # intent was signed (a rewrite that kept the intents and dropped the confirmations).
    vouched = [h for h in heads if not h.rewitness and live.get(h.seq) == h.hash]
    altered = sorted({head.seq: head for head in heads
                      if head.intent and head.seq <= live_max and live.get(head.seq) != head.hash
                      and not any(v.first <= head.seq <= v.seq for v in vouched)}.items())
    for seq, head in altered[:1]:
        bad(seq, f"event seq {seq} was altered: an intent signed before its commit recorded another hash "
                 f"({head.hash[:12]}…), and no head signed since vouches for the one it has now.")
    if len(altered) > 1:  # one line, not one per event: an event deleted and the rest renumbered had read as 55
        later = [seq for seq, _ in altered[1:]]
        bad(later[0], f"so were {len(later)} later events (seq {later[0]} to {later[-1]}): every hash from seq "
                      f"{altered[0][0]} on differs from what was witnessed, as when an event there is deleted or "
                      "edited and every later hash recomputed.")
    covered = 0
    gaps: list[tuple[int, int]] = []
    for head in sorted(heads, key=lambda h: (h.first, -h.seq)):  # a re-witnessed range spans the lines it covers
        if head.intent and live.get(head.seq) != head.hash:
            continue  # a unit that never committed (checked above)
        if head.first > covered + 1:
            gaps.append((covered + 1, head.first - 1))
            bad(covered + 1, f"events seq {covered + 1} to {head.first - 1} were never witnessed: {_UNWITNESSED}")
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
        gaps.append((covered + 1, live_max))
        bad(covered + 1, f"events seq {covered + 1} to {live_max} are not witnessed: {_UNWITNESSED}")
    return WitnessReport(not problems, str(path), len(heads), heads[-1].seq if heads else None, first_bad, problems,
                         contiguous, gaps=gaps)
