"""The hash chain of the audit log: canonical events and their verification.

Pure functions over event rows, shared by the live check (`govern audit verify`) and the offline
check of an export (`govern audit verify DIR`), so both judge a chain by the same rules.
hash = sha256(prev_hash ‖ canonical event), where the canonical event is the sorted-key, compact
JSON of seq, ts, actor, action, entity and the payload's exact text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, Iterable

GENESIS_HASH = "0" * 64


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"{type(value).__name__} is not allowed in an audit payload")


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 text, no NaN: one text per value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    )


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    ts: str
    actor: str | None
    action: str
    entity: str
    payload: str
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def event_hash(*, prev_hash: str, seq: int, ts: str, actor: str | None, action: str, entity: str, payload: str) -> str:
    body = canonical_json(
        {"seq": seq, "ts": ts, "actor": actor, "action": action, "entity": entity, "payload": payload}
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def seal(*, prev_hash: str, seq: int, ts: str, actor: str | None, action: str, entity: str, payload: Any) -> AuditEvent:
    """A new event following `prev_hash`, its payload made canonical and its hash computed."""
    payload_text = canonical_json(payload)
    digest = event_hash(
        prev_hash=prev_hash, seq=seq, ts=ts, actor=actor, action=action, entity=entity, payload=payload_text
    )
    return AuditEvent(seq, ts, actor, action, entity, payload_text, prev_hash, digest)


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking a chain: ok, or the first event that breaks it and why."""

    ok: bool
    event_count: int
    head_seq: int | None
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None
    witnessed: int | None = None  # signed heads the live chain was compared with

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_chain(events: Iterable[AuditEvent]) -> ChainReport:
    """Walk `events` in the order given; the first deletion, insertion, reordering or edit fails it."""
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for event in events:
        count += 1

        def broken(problem: str) -> ChainReport:
            return ChainReport(False, count, event.seq, prev_hash, broken_seq=event.seq, problem=problem)

        if event.seq != expected_seq:
            return broken(
                f"event {count} in order has seq {event.seq} where seq {expected_seq} belongs: "
                "events were deleted, inserted or reordered."
            )
        if event.prev_hash != prev_hash:
            return broken(
                f"event seq {event.seq} does not follow event seq {event.seq - 1}: its prev_hash "
                f"{event.prev_hash[:12]}… is not that event's hash {prev_hash[:12]}…."
            )
        recomputed = event_hash(
            prev_hash=event.prev_hash, seq=event.seq, ts=event.ts, actor=event.actor,
            action=event.action, entity=event.entity, payload=event.payload,
        )
        if recomputed != event.hash:
            return broken(
                f"event seq {event.seq} ({event.action} {event.entity}) was altered: its content does not match "
                "its hash."
            )
        expected_seq, prev_hash = event.seq + 1, event.hash
    return ChainReport(True, count, expected_seq - 1 if count else None, prev_hash)
