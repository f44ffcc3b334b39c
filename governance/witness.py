"""The witness: an append-only file of signed audit heads, kept outside the database.

After every unit of work that appended to the audit log, the service appends the new head
(seq, hash) signed with the installation key. Whoever rewrites the database (an edit with every
later hash recomputed, a deleted tail with its head row) cannot make the live chain match heads
witnessed before the rewrite, nor sign new ones without the key. `status`, `audit verify` and the
dashboard compare the live chain with the witness. Lines are appended with one write on an
O_APPEND descriptor, so concurrent processes interleave whole lines.
"""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _message(seq: int, head_hash: str, ts: str) -> bytes:
    return canonical_json({"seq": seq, "hash": head_hash, "ts": ts}).encode("utf-8")


def record(path: Path, key: Ed25519PrivateKey, *, seq: int, head_hash: str, ts: str) -> None:
    """Append one signed head."""
    private_dir(path.parent)
    line = canonical_json({"seq": seq, "hash": head_hash, "ts": ts, "key": public_key_hex(key),
                           "sig": sign(key, _message(seq, head_hash, ts))}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def check(path: Path, public_key: str, live: dict[int, str]) -> WitnessReport:
    """Compare every witnessed head with the live chain's hash at that seq (`live`: seq → hash).

    A mismatch whose line carries a valid signature of this installation means the chain was rewritten
    at or before that seq; a line that does not verify means the witness itself was tampered with.
    """
    if not path.exists():
        return WitnessReport(True, str(path), 0, None)
    problems: list[str] = []
    bad_seqs: list[int] = []
    heads: list[tuple[int, str, str, str]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return WitnessReport(False, str(path), 0, None, None, [f"the witness {path} cannot be read ({exc})."])
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            heads.append((int(entry["seq"]), str(entry["hash"]), str(entry["ts"]), str(entry["sig"])))
        except (ValueError, KeyError, TypeError):
            problems.append(f"line {number} of the witness is not a signed head: the witness was edited.")
    live_max = max(live) if live else 0
    genuine = lambda seq, digest, ts, sig: signature_valid(public_key, _message(seq, digest, ts), sig)  # noqa: E731
    last_good = 0
    for seq, digest, ts, sig in sorted(heads):
        if live.get(seq) == digest:
            last_good = seq
            continue
        if not genuine(seq, digest, ts, sig):
            problems.append(f"the witnessed head at seq {seq} is not signed by this installation's key: "
                            "the witness was edited.")
            continue
        bad_seqs.append(seq)
        if seq > live_max:
            problems.append(f"the witness saw event seq {seq} but the live chain ends at seq {live_max}: "
                            "events were removed from the end of the log.")
        elif last_good + 1 == seq:
            problems.append(f"event seq {seq} was altered: its hash is not the one witnessed ({digest[:12]}…) "
                            "and the chain was rebuilt from there.")
        else:
            problems.append(f"the log was rewritten at an event between seq {last_good + 1} and seq {seq}: seq {seq} "
                            f"no longer has the hash witnessed for it ({digest[:12]}…).")
        break  # every later head differs too; the first is the one to look at
    latest = max(heads) if heads else None
    if latest and not bad_seqs and not genuine(*latest):
        problems.append(f"the newest witnessed head (seq {latest[0]}) is not signed by this installation's key.")
    return WitnessReport(not problems, str(path), len(heads), latest[0] if latest else None,
                         bad_seqs[0] if bad_seqs else None, problems)
