"""Four-eyes sign-off, release of the production alias (or an admin's marked override), rollback."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb

from governance.errors import Conflict, InvalidInput, NotAllowed
from governance.records import AliasMove, SignOff
from governance.roles import Action
from governance.service.base import (
    ServiceBase,
    _now,
    _require_model,
    _require_version,
    parse_time,
)
from governance.store import gates, reviews

DECISIONS = ("approve", "reject", "withdraw")
ALIAS = "production"


class ReleaseActions(ServiceBase):
    def sign_off(self, *, model: str, version: str, decision: str, comment: str = "") -> SignOff:
        """Record a reviewer's approve / reject / withdraw; a later decision supersedes their earlier one
        (both stay on the record). The version's creator cannot sign it off."""
        if decision not in DECISIONS:
            raise InvalidInput(f"decision {decision!r} is not one of {', '.join(DECISIONS)}.")
        if decision == "reject" and not comment.strip():
            raise InvalidInput("a rejection needs a comment saying what must change.")

        def unit(conn: duckdb.DuckDBPyConnection) -> SignOff:
            user = self._authorize(conn, Action.SIGN_OFF)
            record = _require_version(conn, model, version)
            if record.created_by == user.name:
                raise NotAllowed(f"user {user.name!r} created {model} version {version}; four eyes: its creator "
                                 "cannot sign it off.")
            signoff = SignOff(model, version, user.name, reviews.next_signoff_revision(conn, model, version, user.name),
                              decision, comment.strip(), _now())
            reviews.insert_signoff(conn, signoff)
            self._log(conn, f"signoff.{decision}", f"version:{model}/{version}",
                      {"revision": signoff.revision, "comment": signoff.comment})
            return signoff

        return self._run(unit)

    def signoffs(self, *, model: str, version: str) -> list[SignOff]:
        def unit(conn: duckdb.DuckDBPyConnection) -> list[SignOff]:
            self._authorize(conn, Action.VIEW)
            _require_version(conn, model, version)
            return reviews.current_signoffs(conn, model, version)

        return self._run(unit)

    def release(self, *, model: str, version: str, override: bool = False, reason: str | None = None,
                expires: str | datetime | None = None) -> AliasMove:
        """Point the model's production alias at `version`.

        Needs the latest gate passed (its approvals rules aside), the approvals those rules ask for
        and no standing rejection; or, with `override`, an admin, a reason and a future expiry,
        which the history marks.
        """
        expires_at = _future(expires) if override else None
        if override and not (reason and reason.strip()):
            raise InvalidInput("an override needs a reason saying why the gate is set aside.")

        def unit(conn: duckdb.DuckDBPyConnection) -> AliasMove:
            user = self._authorize(conn, Action.OVERRIDE if override else Action.RELEASE)
            _require_version(conn, model, version)
            gate = gates.latest_gate(conn, model, version)
            if not override:
                _check_releasable(conn, model, version, gate)
            move = self._move(conn, model, version, "override" if override else "release",
                              gate.id if gate else None, user.name, reason.strip() if override else None, expires_at)
            conn.execute("UPDATE versions SET status = 'released' WHERE model = ? AND version = ?", [model, version])
            return move

        return self._run(unit)

    def rollback(self, *, model: str, to: str | None = None) -> AliasMove:
        """Move production back: to `to` (a version that was in production before) or to the one before."""
        def unit(conn: duckdb.DuckDBPyConnection) -> AliasMove:
            user = self._authorize(conn, Action.ROLLBACK)
            _require_model(conn, model)
            current = gates.get_alias(conn, model, ALIAS)
            moves = reviews.history(conn, model)
            if current is None:
                raise Conflict(f"model {model!r} has no production version to roll back.")
            released = [m.version for m in moves]
            if to is not None:
                if to not in released or to == current:
                    raise InvalidInput(f"version {to!r} of {model!r} was never in production before "
                                       f"(production has held: {', '.join(dict.fromkeys(released))}).")
                target = to
            else:
                target = moves[-1].previous_version
                if target is None:
                    raise Conflict(f"{model} version {current} is the first production version; there is nothing "
                                   "to roll back to.")
            return self._move(conn, model, target, "rollback", None, user.name, None, None)

        return self._run(unit)

    def history(self, *, model: str) -> list[AliasMove]:
        def unit(conn: duckdb.DuckDBPyConnection) -> list[AliasMove]:
            self._authorize(conn, Action.VIEW)
            _require_model(conn, model)
            return reviews.history(conn, model)

        return self._run(unit)

    def production_version(self, *, model: str) -> str | None:
        def unit(conn: duckdb.DuckDBPyConnection) -> str | None:
            self._authorize(conn, Action.VIEW)
            return gates.get_alias(conn, model, ALIAS)

        return self._run(unit)

    def _move(self, conn, model: str, version: str, action: str, gate_id: str | None, actor: str,
              reason: str | None, expires_at: datetime | None) -> AliasMove:
        previous = gates.get_alias(conn, model, ALIAS)
        move = AliasMove(model, reviews.next_move_seq(conn, model), ALIAS, version, previous, action, gate_id,
                         reason, expires_at, actor, _now())
        gates.set_alias(conn, model=model, alias=ALIAS, version=version, actor=actor)
        reviews.insert_move(conn, move)
        self._log(conn, f"alias.{action}", f"model:{model}", {
            "version": version, "previous": previous, "gate": gate_id, "override": action == "override",
            "reason": reason, "expires": expires_at.isoformat() if expires_at else None})
        return move


def _check_releasable(conn, model: str, version: str, gate) -> None:
    if gate is None:
        raise NotAllowed(f"{model} version {version} has no gate decision; run `govern gate` first (or an admin "
                         "overrides with a reason).")
    results = gate.decision["results"]
    blocking = [r["rule_id"] for r in results if r["blocking"] and r["kind"] != "approvals"]
    if blocking:
        raise NotAllowed(f"the latest gate of {model} version {version} is blocked by {', '.join(blocking)}; "
                         "fix and gate again (or an admin overrides with a reason).")
    needed = max([int(r["threshold"]) for r in results if r["kind"] == "approvals"] or [0])
    current = reviews.current_signoffs(conn, model, version)
    rejections = [s.reviewer for s in current if s.decision == "reject"]
    if rejections:
        raise NotAllowed(f"{model} version {version} is rejected by {', '.join(rejections)}; a rejection blocks "
                         "release until it is withdrawn.")
    approvals = sum(1 for s in current if s.decision == "approve")
    if approvals < needed:
        raise NotAllowed(f"{model} version {version} has {approvals} of the {needed} approvals its policy requires.")


def _future(value: str | datetime | None) -> datetime:
    if value is None:
        raise InvalidInput("an override needs an expiry (--expires ISO8601), after which it no longer holds.")
    when = parse_time(value, what="expiry")
    if when <= datetime.now(timezone.utc).replace(tzinfo=None):
        raise InvalidInput(f"the override's expiry {value} is not in the future.")
    return when

