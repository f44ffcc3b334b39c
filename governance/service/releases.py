"""Four-eyes sign-off, release of the production alias (or an admin's marked override), rollback."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import duckdb

from governance.errors import Conflict, InvalidInput, NotAllowed
from governance.records import (
    AliasMove,
    GateRecord,
    ItemStatus,
    Model,
    Priority,
    ReviewItem,
    SignOff,
    SignOffDecision,
    User,
    Version,
)
from governance.roles import Action, Role
from governance.service.base import (
    ServiceBase,
    _now,
    _present,
    _require_model,
    _require_version,
    check_text,
    is_blank,
    parse_time,
)
from governance.service.evaluations import newer_eval_set
from governance.service.policies import assigned_pack
from governance.service.registry import approval_floor
from governance.store import aliases, audit_log, evaluations, gates, registry, review_items, signoffs, users

if TYPE_CHECKING:
    from policies.loader import LoadedPolicy

ALIAS = "production"


class ReleaseActions(ServiceBase):
    def sign_off(self, *, model: str, version: str, decision: str, comment: str = "",
                 acknowledge_blocked: bool = False) -> SignOff:
        """Record a reviewer's approve / reject / withdraw; a later decision supersedes their earlier one
        (both stay on the record). The version's creator cannot sign it off.

        A decision binds to the evidence: the version's artifact sha256 and the evaluation its latest
        binding gate judged. An approval needs such a gate (and, when that gate is blocked, an explicit
        `acknowledge_blocked`, recorded); it counts only while the gate judges that same evaluation. A
        rejection blocks every version with the same artifact until its reviewer withdraws it.
        """
        if decision not in tuple(SignOffDecision):
            raise InvalidInput(f"decision {decision!r} is not one of {', '.join(SignOffDecision)}.")
        if decision == "reject" and is_blank(comment):
            raise InvalidInput("a rejection needs a comment saying what must change.")
        check_text("the comment", comment)

        def unit(conn: duckdb.DuckDBPyConnection) -> SignOff:
            user = self._authorize(conn, Action.SIGN_OFF)
            record = _require_version(conn, model, version)
            if record.created_by == user.name:
                raise NotAllowed(f"user {user.name!r} created {model} version {version}; four eyes: its creator "
                                 "cannot sign it off.")
            gate = gates.latest_gate(conn, model, version)
            if decision == "withdraw":
                standing = next((s for s in signoffs.current_signoffs(conn, model, version)
                                 if s.reviewer == user.name), None)
                if standing is None or standing.decision == SignOffDecision.WITHDRAW:
                    raise Conflict(f"{user.name} has no decision on {model} version {version} to withdraw.")
            if decision == "approve":
                gate = _gate_of_latest_evidence(conn, model, version, "to approve: an approval binds to the "
                                                "evidence a binding gate judged; an engineer runs `govern gate` first")
                blocked_by = _blocking_rules(gate)
                if blocked_by and not acknowledge_blocked:
                    raise NotAllowed(f"the latest gate of {model} version {version} is blocked by "
                                     f"{', '.join(blocked_by)}; to approve it anyway, acknowledge that "
                                     "(--acknowledge-blocked), and it is recorded with your sign-off.")
            revision = signoffs.next_signoff_revision(conn, model, version, user.name)
            signoff = SignOff(model, version, user.name, revision,
                              SignOffDecision(decision), comment.strip(), _now(), record.artifact_sha256,
                              gate.evaluation_id if gate else None, gate.id if gate else None,
                              bool(acknowledge_blocked and gate and _blocking_rules(gate)))
            signoffs.insert_signoff(conn, signoff)
            self._log(conn, f"signoff.{decision}", f"version:{model}/{version}",
                      {"revision": signoff.revision, "comment": signoff.comment,
                       "artifact_sha256": signoff.artifact_sha256, "evaluation": signoff.evaluation_id,
                       "gate": signoff.gate_id, "acknowledged_blocked": signoff.acknowledged_blocked})
            return signoff

        return self._run(unit)

    def signoffs(self, *, model: str, version: str) -> list[SignOff]:
        return self._read(Action.VIEW, lambda conn: signoffs.current_signoffs(conn, model, version),
                          require=(model, version))

    def release(self, *, model: str, version: str, override: bool = False, reason: str | None = None,
                expires: str | datetime | None = None) -> AliasMove:
        """Point the model's production alias at `version`.

        Needs the latest binding gate passed (its approvals rules aside), no standing rejection of the
        artifact under any version name, and independent approvals bound to that gate's evidence, from
        reviewers who are neither the version's creator nor the releaser: at least the model's floor
        (risk tier low/medium 1, high 2, or more if an admin raised it), more if the policy asks. Or,
        with `override`, an admin, a reason and a future expiry, which the history marks.
        """
        expires_at = _future(expires) if override else None
        if override and is_blank(reason):
            raise InvalidInput("an override needs a reason saying why the gate is set aside.")
        check_text("the reason", reason or "")
        override_reason = reason.strip() if override and reason else None  # checked above: an override has one

        def unit(conn: duckdb.DuckDBPyConnection) -> AliasMove:
            user = self._authorize(conn, Action.OVERRIDE if override else Action.RELEASE)
            record = _require_version(conn, model, version)
            gate = gates.latest_gate(conn, model, version)
            if not override:
                basis = _basis(aliases.history(conn, model), version)
                if aliases.get_alias(conn, model, ALIAS) == version and basis is not None and basis.action == "release":
                    raise Conflict(f"{model} version {version} is already in production, released by {basis.actor} "
                                   f"(move {basis.seq}); there is nothing to release.")
                _check_releasable(conn, _require_model(conn, model), record, user.name,
                                  assigned_pack(conn, model).loaded, (self._auth or {}).get("token"))
            move = self._move(conn, model, version, "override" if override else "release",
                              gate.id if gate else None, user.name, override_reason, expires_at)
            registry.mark_released(conn, model, version)
            return move

        return self._run(unit)

    def rollback(self, *, model: str, to: str | None = None) -> AliasMove:
        """Move production back: to `to` (a version that was in production before) or to the one before."""
        def unit(conn: duckdb.DuckDBPyConnection) -> AliasMove:
            user = self._authorize(conn, Action.ROLLBACK)
            _require_model(conn, model)
            current = aliases.get_alias(conn, model, ALIAS)
            moves = aliases.history(conn, model)
            if current is None:
                raise Conflict(f"model {model!r} has no production version to roll back.")
            released = [m.version for m in moves]
            target: str | None
            if to is not None:
                if to == current:
                    raise InvalidInput(f"version {to!r} of {model!r} is in production now; roll back to a version "
                                       "that was before it.")
                if to not in released:
                    raise InvalidInput(f"version {to!r} of {model!r} was never in production before "
                                       f"(production has held: {', '.join(dict.fromkeys(released))}).")
                target = to
            else:
                target = _previous_tenure(moves)
                if target is None and moves[-1].action == "rollback":
                    raise Conflict(f"{model} has nothing to roll back to before version {current} but version "
                                   f"{moves[-1].previous_version}, which the last rollback came from: a rollback does "
                                   "not roll forward (name a version with --to).")
                if target is None:
                    raise Conflict(f"{model} version {current} is the first production version; there is nothing "
                                   "to roll back to.")
            _check_rollback_target(conn, model, target, moves, user)
            return self._move(conn, model, target, "rollback", None, user.name, None, None)

        return self._run(unit)

    def history(self, *, model: str) -> list[AliasMove]:
        return self._read(Action.VIEW, lambda conn: aliases.history(conn, model), require=model)

    def current_releases(self) -> list[AliasMove]:
        """Per model, what its production version rests on: the release or override that put it there (a
        rollback rests on the earlier move of that version; `expired` says whether an override has lapsed)."""
        return self._read(Action.VIEW, lambda conn: self._production_bases(conn))

    def _production_bases(self, conn: duckdb.DuckDBPyConnection) -> list[AliasMove]:
        """Per model, the move production rests on: the release or override that first put today's version
        there (a rollback to it rests on that move, and so does its expiry)."""
        bases = []
        for current in aliases.current_moves(conn):
            basis = _basis(aliases.history(conn, current.model), current.version) if current.action == "rollback" \
                else current
            bases.append(basis or current)
        return bases

    def expired_overrides(self, *, file_items: bool = False) -> list[AliasMove]:
        """Production aliases that rest on an admin override past its expiry. An expired override moves
        nothing by itself; it is shown as expired everywhere and, with `file_items`, raises one
        `override_expired` review item for admins per override (never twice)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> list[AliasMove]:
            self._authorize(conn, Action.VIEW)
            now = _now()
            expired = [m for m in self._production_bases(conn) if m.action == "override" and m.override_expires
                       and m.override_expires <= now]
            if file_items and expired:
                batch = [(ReviewItem(f"ri-{_key('override_expired', m.model, m.seq)[:12]}", m.model, m.version,
                                     "override_expired", None, None, Priority.BLOCKING, ItemStatus.OPEN, 1,
                                     {"model": m.model, "version": m.version, "override_seq": m.seq,
                                      "reason": m.override_reason,
                                      # `expired` holds only overrides with an expiry
                                      "expired_at": _present(m.override_expires, "the override's expiry").isoformat(),
                                      "by": m.actor,
                                      "todo": "release a version through the gate and sign-off, roll back, or "
                                              "override again with a new reason and expiry"}, now, "govern"),
                          _key("override_expired", m.model, m.seq)) for m in expired]
                known = {row for row in review_items.existing_keys(conn, [key for _, key in batch])}
                fresh = [(item, key) for item, key in batch if key not in known]
                if fresh:
                    review_items.insert_items(conn, fresh)
                    for item, _ in fresh:  # govern files it; whoever's command noticed the expiry is named
                        self._log(conn, "review.add", f"review_item:{item.id}", {
                            "kind": item.kind, "model": item.model, "version": item.version,
                            "expired_at": item.evidence["expired_at"], "noticed_by": self.actor}, actor="govern")
            return expired

        return self._run(unit)

    def production_version(self, *, model: str) -> str | None:
        return self._read(Action.VIEW, lambda conn: aliases.get_alias(conn, model, ALIAS))

    def _move(self, conn: duckdb.DuckDBPyConnection, model: str, version: str, action: str, gate_id: str | None,
              actor: str, reason: str | None, expires_at: datetime | None) -> AliasMove:
        previous = aliases.get_alias(conn, model, ALIAS)
        move = AliasMove(model, aliases.next_move_seq(conn, model), ALIAS, version, previous, action, gate_id,
                         reason, expires_at, actor, _now())
        aliases.set_alias(conn, model=model, alias=ALIAS, version=version, actor=actor)
        aliases.insert_move(conn, move)
        self._log(conn, f"alias.{action}", f"model:{model}", {
            "version": version, "previous": previous, "gate": gate_id, "override": action == "override",
            "reason": reason, "expires": expires_at.isoformat() if expires_at else None})
        return move


def _key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def _blocking_rules(gate: GateRecord) -> list[str]:
    return [r.rule_id for r in gate.decision.results if r.blocking and r.kind != "approvals"]


def _check_rollback_target(conn: duckdb.DuckDBPyConnection, model: str, target: str, moves: list[AliasMove],
                           user: User) -> None:
    """A rollback puts back what four eyes released before: never a rejected artifact; and only by an admin
    a version that reached production only by an admin's override, or whose latest gate is blocked, judged
    older evidence than its latest, or ran a pack that no longer binds the model."""
    # it was in production, so it is registered
    record = _present(registry.get_version(conn, model, target), f"version {model}/{target}")
    rejections = signoffs.rejections_of_artifact(conn, record.artifact_sha256)
    if rejections:
        where = "; ".join(f"{r.reviewer} on {r.model} version {r.version}" for r in rejections)
        raise NotAllowed(f"cannot roll back to {model} version {target}: its artifact is rejected ({where}) since it "
                         "was released.")
    basis = _basis(moves, target)
    if basis is not None and basis.action == "override" and user.role is not Role.ADMIN:
        raise NotAllowed(f"{model} version {target} was in production only by an admin's override; only an admin "
                         "puts it back.")
    if user.role is Role.ADMIN:
        return
    # what release demands of today's evidence, a rollback demands too: an engineer had put back a version
    # whose new eval predictions a dry run found blocked, and one gated only under a pack no longer binding
    gate = _gate_of_latest_evidence(conn, model, target, "to roll back to; only an admin puts it back")
    blocking = _blocking_rules(gate)
    if blocking:
        raise NotAllowed(f"cannot roll back to {model} version {target}: its latest gate is blocked by "
                         f"{', '.join(blocking)}; only an admin puts it back.")
    binding = assigned_pack(conn, model).loaded
    if gate.policy_sha256 != binding.sha256:
        raise NotAllowed(f"cannot roll back to {model} version {target}: its latest gate ran {gate.policy_name} "
                         f"v{gate.policy_version}, and the pack binding {model} now is {binding.policy.name} "
                         f"v{binding.policy.version}: gate it again under that pack (`govern gate {model} {target}`), "
                         "or an admin puts it back.")


def _previous_tenure(moves: list[AliasMove]) -> str | None:
    """Where a rollback without --to goes: the version production held before today's version's tenure,
    replaying the history as a stack (a release or override pushes a new version, a renewal keeps it, a
    rollback pops back to its version); never the version the last rollback came from, which would roll
    forward (two rollbacks alternated 2 -> 1 -> 2)."""
    held: list[str] = []
    for move in moves:
        if move.action == "rollback":
            while held and held[-1] != move.version:
                held.pop()
            held = held or [move.version]
        elif not held or held[-1] != move.version:
            held.append(move.version)
    came_from = moves[-1].previous_version if moves and moves[-1].action == "rollback" else None
    return next((v for v in reversed(held[:-1]) if v != came_from and v != held[-1]), None)


def _basis(moves: list[AliasMove], version: str) -> AliasMove | None:
    """The move that put `version` in production on its own merits: its latest release or override."""
    return next((m for m in reversed(moves) if m.version == version and m.action in ("release", "override")), None)


def _gate_of_latest_evidence(conn: duckdb.DuckDBPyConnection, model: str, version: str, purpose: str) -> GateRecord:
    """The version's latest gate, if it judged the version's latest evaluation; NotAllowed otherwise."""
    gate = gates.latest_gate(conn, model, version)
    if gate is None:
        raise NotAllowed(f"{model} version {version} has no gate decision {purpose}.")
    latest = evaluations.latest_evaluation(conn, model, version)
    if latest is not None and latest.id != gate.evaluation_id:
        raise NotAllowed(f"{model} version {version} was evaluated again ({latest.id}) after its latest gate: that "
                         "evidence is gated (and approved) before anyone approves or releases it.")
    stale = newer_eval_set(conn, latest) if latest is not None else None
    if stale is not None:
        raise NotAllowed(f"{model} version {version} has eval predictions ({stale}) newer than those its latest gate "
                         "judged: they are evaluated and gated (and approved) before anyone approves or releases it.")
    return gate


def _check_releasable(conn: duckdb.DuckDBPyConnection, model: Model, version: Version, releaser: str,
                      binding: LoadedPolicy, releaser_token: str | None = None) -> None:
    """Refuses (NotAllowed) unless `version` may be released by `releaser` (acting with the credential
    `releaser_token`, if known) now; `binding` is the pack the model's binding gates run now."""
    name, number = model.name, version.version
    gate = _gate_of_latest_evidence(conn, name, number, "to release on; run `govern gate` first (or an admin "
                                                        "overrides with a reason)")
    if gate.policy_sha256 != binding.sha256:  # an admin assigned another pack, or changed the risk tier, since
        raise NotAllowed(f"the latest gate of {name} version {number} ran {gate.policy_name} v{gate.policy_version}, "
                         f"and the pack binding {name} now is {binding.policy.name} v{binding.policy.version}: "
                         f"gate it again under that pack (`govern gate {name} {number}`).")
    blocking = _blocking_rules(gate)
    if blocking:
        raise NotAllowed(f"the latest gate of {name} version {number} is blocked by {', '.join(blocking)}; "
                         "fix and gate again (or an admin overrides with a reason).")
    open_now = review_items.count_open_items(conn, name, number)
    for rule in gate.decision.results:  # items opened since the gate judged them (a complaint, a reviewer's flag)
        if rule.kind == "open_reviews" and rule.severity == "block" and open_now > int(rule.threshold or 0):
            raise NotAllowed(f"{open_now} review item(s) of {name} version {number} are open now, more than the "
                             f"{int(rule.threshold or 0)} its gate's rule {rule.rule_id} allows (opened after the "
                             f"gate ran): work them (`govern review list --model {name}`) and gate again.")
    rejections = signoffs.rejections_of_artifact(conn, version.artifact_sha256)
    if rejections:
        where = "; ".join(f"{r.reviewer} on {r.model} version {r.version}" for r in rejections)
        first = rejections[0]
        raise NotAllowed(f"the artifact of {name} version {number} is rejected ({where}); a rejection blocks that "
                         f"artifact under any version name until its reviewer withdraws it (`govern signoff "
                         f"{first.model} {first.version} --withdraw`).")
    floor, why = approval_floor(model)
    policy_needs = max([int(r.threshold or 0) for r in gate.decision.results if r.kind == "approvals"] or [0])
    needed = max(floor, policy_needs)
    if policy_needs > floor:
        why = f"its policy {gate.policy_name} asks for {policy_needs}"
    approvals = [s for s in signoffs.current_signoffs(conn, name, number) if s.decision == "approve"]
    makers, direct = _makers(conn, model, version, gate, releaser, releaser_token, binding.policy.name)
    counted, stale, excluded = [], [], []
    for signoff in approvals:
        reviewer = users.get_user(conn, signoff.reviewer)
        holders = credential_holders(conn, signoff.reviewer, f"version:{name}/{number}", signoff.revision)
        issuer = next((person for person in direct if person in holders), None)  # (dict order: releaser first)
        if signoff.reviewer in (version.created_by, releaser):
            excluded.append(f"{signoff.reviewer} (creator or releaser)")
        elif signoff.reviewer in makers:  # they made the evidence, or could have acted as whoever did
            excluded.append(f"{signoff.reviewer} ({makers[signoff.reviewer]})")
        elif issuer is not None:  # they could have given it themselves
            excluded.append(f"{signoff.reviewer} (approved with a credential {issuer} issued or could have used: an "
                            f"API token {issuer} created, or a password {issuer} set or that was changed with one, "
                            f"or one issued by someone whose credential {issuer} could have used; {issuer} "
                            f"{direct[issuer]}: {_remedy(direct[issuer], signoff.reviewer, issuer)}, or "
                            f"{signoff.reviewer} approves after signing in through the identity provider)")
        elif reviewer is None or not reviewer.enabled or reviewer.role not in (Role.REVIEWER, Role.ADMIN):
            excluded.append(f"{signoff.reviewer} (no longer an active reviewer)")
        elif signoff.evaluation_id != gate.evaluation_id or signoff.artifact_sha256 != version.artifact_sha256:
            stale.append(signoff.reviewer)
        else:
            counted.append(signoff.reviewer)
    if len(counted) < needed:
        notes = []
        if stale:
            notes.append(f"approvals by {', '.join(stale)} were given on other evidence (an earlier evaluation) and "
                         "must be given again")
        if excluded:
            notes.append(f"not counted: {', '.join(excluded)}")
        raise NotAllowed(f"{name} version {number} has {len(counted)} of the {needed} independent approvals it needs "
                         f"({why})" + (f"; {'; '.join(notes)}" if notes else "") + ".")


def _remedy(what: str, reviewer: str, issuer: str) -> str:
    """What lets an approval excluded for its issuer count: the issuer's step done by someone else."""
    if what == "releases it":
        return f"someone who issued none of {reviewer}'s credentials releases it"
    if what.startswith(("ingested", "ran the evaluation")):
        return (f"someone who issued none of {reviewer}'s credentials redoes that step (ingest or evaluate, then "
                "gate), and the approvals are given again")
    return f"a reviewer none of whose credentials {issuer} issued approves"


def _future(value: str | datetime | None) -> datetime:
    if value is None:
        raise InvalidInput("an override needs an expiry (--expires ISO8601), after which it no longer holds.")
    when = _present(parse_time(value, what="expiry"), "the expiry")  # parse_time gives None only for None
    if when <= datetime.now(timezone.utc).replace(tzinfo=None):
        raise InvalidInput(f"the override's expiry {value} is not in the future.")
    return when


def _makers(conn: duckdb.DuckDBPyConnection, model: Model, version: Version, gate: GateRecord, releaser: str,
            releaser_token: str | None, binding: str) -> tuple[dict[str, str], dict[str, str]]:
    """Who may not approve `version`'s release beyond its creator and releaser, each with why, and who acted
    (the creator, the makers and the releaser: an approval given with a credential any of them issued does
    not count either).

    The makers shaped what the gate judged: whoever ingested its eval, reference or challenger predictions,
    ran its evaluation, dismissed the version's review items, or since the version was registered assigned or
    registered the pack binding it or changed the model's risk tier (an admin who swapped in flattering
    evidence, or a lax pack, and approved it had released alone). Whoever could have used the credential any
    of them acted with, or the releaser releases with, counts as them (an admin who minted the engineer's
    token, or set their password). The second: the releaser, the creator and the evidence makers, each with
    the first thing they did, whose issued credentials approve nothing."""
    name, number = version.model, version.version
    evaluation = next((e for e in evaluations.list_evaluations(conn, name, number) if e.id == gate.evaluation_id), None)
    made: list[tuple[str, str, str, dict[str, str], str]] = [
        (version.created_by, "version.register", f"version:{name}/{number}", {}, "created the version")]
    if evaluation is not None:
        for set_id, which in ((evaluation.prediction_set_id, "eval"), (evaluation.reference_set_id, "reference")):
            found_set = registry.get_prediction_set(conn, set_id) if set_id else None
            if found_set is not None:
                made.append((found_set.created_by, "predictions.ingest", f"prediction_set:{found_set.id}", {},
                             f"ingested the {which} predictions its gate judged"))
        made.append((evaluation.created_by, "version.evaluate", f"version:{name}/{number}",
                     {"evaluation": evaluation.id}, "ran the evaluation its gate judged"))
    # A challenger's scores set a `baseline: challenger` rule's bound (the strict pack blocks on it): a weak
    # challenger ingested by hand lowers the bar as flattering eval predictions raise the score.
    for found_set in registry.list_prediction_sets(conn, name, number):
        if found_set.split == "challenger":
            made.append((found_set.created_by, "predictions.ingest", f"prediction_set:{found_set.id}", {},
                         "ingested challenger predictions its gate compared with"))
    registered = min((seq for seq, _, action, _ in audit_log.entity_history(conn, f"version:{name}/{number}")
                      if action == "version.register"), default=0)
    shaped = len(made)  # the evidence's makers above; the queue's and the policy's below (their own approval only)
    for item in review_items.list_items(conn, model=name, version=number, status=ItemStatus.DISMISSED):
        made += [(actor, "review.dismiss", f"review_item:{item.id}", {}, "dismissed review items of the version")
                 for actor in audit_log.actors(conn, action="review.dismiss", entity=f"review_item:{item.id}")]
    assigned = "assigned the pack binding the model"
    for entity, wanted, what in ((f"model:{name}", "policy.assign", assigned),
                                 (f"tier:{model.risk_tier}", "policy.assign", assigned),
                                 (f"policy:{binding}", "policy.register", "registered the pack binding the model"),
                                 (f"model:{name}", "model.edit", "changed the model's risk tier")):
        for seq, actor, action, data in audit_log.entity_history(conn, entity):
            if seq > registered and actor and action == wanted and (
                    action != "model.edit" or (data.get("before") or {}).get("risk_tier")
                    != (data.get("after") or {}).get("risk_tier")):
                made.append((actor, action, entity, {}, what + " after the version was registered"))
    acts: list[tuple[str, str | None, str]] = [(releaser, releaser_token, "releases it")]
    for actor, action, entity, match, what in made:
        found = [data for data in audit_log.payloads(conn, action=action, entity=entity, actor=actor)
                 if all(data.get(k) == v for k, v in match.items())]
        acts.append((actor, _auth_token(found[0]) if found else None, what))
    history = _user_histories(conn)
    makers = {actor: what for actor, _, what in reversed(acts) if what != "releases it"}  # the earliest step named
    for actor, token, what in acts:
        for holder in _holders(history, actor, token, set()) - {actor}:
            makers.setdefault(holder, f"could have used the credential {actor} {what.replace('its gate', 'the gate')} "
                                      f"with: a token they created for {actor}, or a password they set")
    # An approval given with a credential the creator, an evidence maker or the releaser issued does not count
    # either. One whose issuer dismissed an item or changed the policy does: an admin sets most passwords,
    # dismisses duplicates and assigns packs as the rules change, and every approval of the version would stop
    # counting for good (a dismissal cannot be undone).
    direct: dict[str, str] = {}
    for actor, _, what in acts[:shaped + 1]:
        direct.setdefault(actor, what)
    return makers, direct


def _user_histories(conn: duckdb.DuckDBPyConnection) -> Callable[[str], list[tuple[int, str | None, str,
                                                                               dict[str, Any]]]]:
    """A reader of each user's audit history (`user:NAME` events, oldest first), each read once."""
    histories: dict[str, list[tuple[int, str | None, str, dict[str, Any]]]] = {}

    def history(name: str) -> list[tuple[int, str | None, str, dict[str, Any]]]:
        if name not in histories:
            histories[name] = audit_log.entity_history(conn, f"user:{name}")
        return histories[name]

    return history


def credential_holders(conn: duckdb.DuckDBPyConnection, user: str, approval_entity: str, revision: int) -> set[str]:
    """Who, other than `user`, could have given `user`'s approval (the `signoff.approve` event of `revision`
    on `approval_entity`); empty where `user` alone held the credential, or the approval carried none (an
    in-process library call). See `_holders`."""
    approvals = audit_log.payloads(conn, action="signoff.approve", entity=approval_entity, actor=user)
    auth = next((data.get("auth") or {} for data in approvals if data.get("revision") == revision), {})
    return _holders(_user_histories(conn), user, auth.get("token"), set()) - {user}


def _holders(history: Callable[[str], list[tuple[int, str | None, str, dict[str, Any]]]], user: str,
             token: str | None, seen: set[tuple[str, str]]) -> set[str]:
    """Everyone who could have used `token`, one of `user`'s credentials: the admin who created it (an API
    token), or, for a session signed in with a password, whoever set that password; and, for each of them,
    whoever could have used the credential they did it with, and so on back (an admin who set another
    admin's password could have acted as them). A password someone once knew stays theirs through every
    change made with a session it opened. Nobody for a credential only `user` held (OIDC, a library call)."""
    if not token or (user, token) in seen:  # (a forged history cannot make it go round)
        return set()
    seen.add((user, token))
    events = history(user)
    issued = next(((seq, actor, data) for seq, actor, action, data in events
                   if data.get("token") == token and action != "signoff.approve"), None)
    if issued is None or issued[1] is None:
        return set()
    seq, actor, data = issued
    if actor != user:  # an API token someone else created for them, with a credential of theirs
        return {str(actor)} | _holders(history, str(actor), _auth_token(data), seen)
    if data.get("kind") == "api":  # a token they minted themselves: whoever could use what they minted it with
        return _holders(history, user, _auth_token(data), seen)
    if data.get("kind") not in ("session", "dashboard"):  # signed in without a password (OIDC)
        return set()
    setting = next(((actor, data) for at, actor, action, data in reversed(events) if at < seq
                    and action in ("user.add", "user.passwd") and data.get("password_set")), None)
    if setting is None or setting[0] is None:
        return set()
    setter, data = setting
    found = {str(setter)} if setter != user else set()
    return found | _holders(history, str(setter), _auth_token(data), seen)


def _auth_token(payload: dict[str, Any]) -> str | None:
    """The credential an event was done with (its `auth` record's token), if any."""
    token = (payload.get("auth") or {}).get("token")
    return str(token) if token else None
