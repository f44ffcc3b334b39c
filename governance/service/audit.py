"""The decision log: verify, export, key."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import duckdb

from governance.artifacts import sha256_file
from governance.audit_chain import AuditEvent, ChainReport, verify_chain
from governance.errors import Conflict, InvalidInput, NotAllowed
from governance.roles import Action
from governance.service.base import ServiceBase, is_blank, parse_time
from governance.service.folders import new_folder
from governance.store import aliases, audit_log, auth, signoffs
from governance.store.audit_log import utc_timestamp
from governance.store.users import password_digest

if TYPE_CHECKING:
    from governance.witness import WitnessReport

if TYPE_CHECKING:
    from governance.audit_export import ExportVerification


MAX_LISTED = 100_000


class AuditActions(ServiceBase):

    def verify_audit(self) -> ChainReport:
        """Walk the live chain and compare it with the witness of signed heads: an edit, deletion,
        insertion or reordering breaks the chain; a rebuilt chain (every later hash recomputed) or a
        removed tail no longer matches the heads witnessed before; a production move, sign-off, credential or
        user changed around the service matches no event (`unlogged`)."""
        events, moves, approvals, credentials, accounts = self._read(Action.AUDIT, _logged_state)
        report = verify_chain(events)
        seen = self._check_witness({e.seq: e.hash for e in events})
        if report.ok and not seen.ok:
            return replace(report, ok=False, broken_seq=seen.first_bad_seq, problem=" ".join(seen.problems),
                           witnessed=seen.witnessed)
        # the store's moves, sign-offs, credentials and users against the events that record them, as status holds
        # them: a row changed around the service leaves the chain intact
        around = unlogged(events, moves, approvals, credentials, accounts) if report.ok else []
        if around:
            return replace(report, ok=False, problem=" ".join(around), witnessed=seen.witnessed)
        return replace(report, witnessed=seen.witnessed)

    def rewitness(self, *, reason: str, against: Path, dry_run: bool = False) -> WitnessReport:
        """Record the current head for events no witness line covers (lines removed, events written around
        govern, or a store from a govern that witnessed only after committing), after checking the chain and
        the live log against `against`, an export the auditor holds (verified with this installation's key;
        its events must be the live log's first ones, unchanged). Auditors only (an admin's role could have
        written the gap); audited with the reason and with whoever else could have used the auditor's
        credential. A head that no longer matches what was witnessed stays flagged: this closes gaps, it never
        absolves a rewrite. The report lists the gap's events with what they record: no signed head vouches for
        them, only the auditor who read them (`dry_run`: list them and check, witness nothing). The credential must
        be the auditor's own: not an API token someone else created, nor a session opened with a password someone
        else set last (set your own, or sign in through the identity provider)."""
        from governance.audit_export import verified_events
        from governance.keys import public_key_hex
        from governance.service.releases import _holders, _user_histories

        if is_blank(reason):
            raise InvalidInput("say why the head is witnessed again (--reason), e.g. which export it was checked "
                               "against.")
        self._run(lambda conn: self._authorize(conn, Action.REWITNESS))
        export, exported = verified_events(Path(against), expected_public_key=public_key_hex(self._signing_key()))
        if not export.ok:
            raise InvalidInput(f"the export {against} does not verify with this installation's key, so it checks "
                               f"nothing: {' '.join(export.problems)}")
        gap: list[str] = []
        holders: list[str] = []

        def unit(conn: duckdb.DuckDBPyConnection) -> None:
            user = self._authorize(conn, Action.REWITNESS)
            # someone else plainly holding this credential could have re-witnessed as the auditor: refused
            token_id = (self._auth or {}).get("token")
            issuer = _issued_by(conn, user.name, token_id)
            if issuer is not None:
                raise NotAllowed(f"a re-witness vouches for events no signed head covers, so it takes a credential "
                                 f"of yours alone, and {issuer}: set your own password with `govern user passwd "
                                 f"{user.name}` (it needs the current one) and log in again, or sign in through the "
                                 "identity provider.")
            # whoever ever knew one of its passwords (the admin who set the first): said and recorded, not refused
            holders.extend(sorted(_holders(_user_histories(conn), user.name, token_id, set()) - {user.name}))
            events = audit_log.read_events(conn)
            chain = verify_chain(events)
            if not chain.ok:
                raise Conflict(f"the chain is broken at seq {chain.broken_seq}; it cannot be witnessed again: "
                               f"{chain.problem}")
            seen = self._check_witness({e.seq: e.hash for e in events})
            altered = [p for p in seen.problems if "altered" in p or "removed from the end" in p or "edited" in p]
            if altered:
                raise Conflict("the witness shows a rewritten log, which re-witnessing cannot absolve: " + altered[0])
            live = {e.seq: e for e in events}
            for old in exported:  # the export is the live log's beginning, unchanged: else it was rewritten since
                if old.seq not in live or live[old.seq].hash != old.hash:
                    what = "is gone from" if old.seq not in live else "differs in"
                    raise Conflict(f"event seq {old.seq} ({old.action} {old.entity}) of the export {against} {what} "
                                   "the live log: it was rewritten after that export was taken, which re-witnessing "
                                   "cannot absolve.")
            gap.extend(_vouched_line(e) for e in events if any(first <= e.seq <= last for first, last in seen.gaps))
            if dry_run:
                return
            self._witness_from = seen.covered + 1
            self._log(conn, "audit.witness", "audit", {
                "from": seen.covered + 1, "to": chain.head_seq, "reason": reason.strip(),
                "checked_against": {"row_count": export.row_count, "head_hash": export.head_hash},
                "credential_holders": holders})

        self._run(unit)
        return replace(self.witness_status(), checked_against=str(against), vouched=gap, credential_holders=holders)

    def witness_status(self) -> WitnessReport:
        """The live chain against the witness, and each event against its own hash: any role may see whether
        the log still matches (not what it holds). An event edited without recomputing its hash matches the
        witness (its stored hash is unchanged), so `status` and the Overview said all was well."""
        return self._log_check(*self._read(Action.VIEW, _logged_state))

    def _log_check(self, events: list[AuditEvent], moves: list[tuple[Any, ...]], approvals: list[tuple[Any, ...]],
                   credentials: list[tuple[str, str]],
                   accounts: list[tuple[str, str, bool, str | None]]) -> WitnessReport:
        """`witness_status` of what a unit of work read."""
        seen = self._check_witness({e.seq: e.hash for e in events})
        chain = verify_chain(events)
        problems = unlogged(events, moves, approvals, credentials, accounts)
        if not chain.ok:
            problems.insert(0, f"the log no longer verifies at seq {chain.broken_seq}: {chain.problem} "
                               "(`govern audit verify`)")
        if not problems:
            return seen
        bad = [seq for seq in (chain.broken_seq, seen.first_bad_seq) if seq is not None]
        return replace(seen, ok=False, problems=[*problems, *seen.problems], first_bad_seq=min(bad) if bad else None)

    def _live_log_check(self, conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        """The live log against the witness and itself, as an export or report records it (signed with it):
        a log rewritten before it was exported must not come out looking intact."""
        seen = self._log_check(*_logged_state(conn))
        return {"ok": seen.ok, "problems": seen.problems}

    def _check_witness(self, live: dict[int, str]) -> WitnessReport:
        from governance import witness
        from governance.keys import public_key_hex
        return witness.check(self.settings.witness_path, public_key_hex(self._signing_key()), live)

    def audit_events(self, *, model: str | None = None, actor: str | None = None, action: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     limit: int = 500) -> tuple[int, list[AuditEvent]]:
        """Events matching every given filter, newest first (at most `limit`), and how many matched.

        `model` also matches its versions, prediction sets, review items and jobs; `action` matches
        exactly or as a prefix ("review" matches review.judge); times are inclusive (UTC when naive).
        """
        if not 1 <= limit <= MAX_LISTED:
            raise InvalidInput(f"limit must be between 1 and {MAX_LISTED:,}, not {limit}.")
        since, until = parse_time(since, what="since"), parse_time(until, what="until")  # 1900 to 9998, in UTC
        if since is not None and until is not None and since > until:
            raise InvalidInput(f"since ({since.isoformat()}) is after until ({until.isoformat()}).")

        return self._read(Action.AUDIT, lambda conn: audit_log.filter_events(
            conn, model=model or None, actor=actor or None, action=action or None, since=_stamp(since),
            until=_stamp(until), limit=limit))

    def export_audit(self, *, out: Path, fmt: str = "jsonl") -> dict[str, Any]:
        """Write the whole log plus a signed manifest into the new folder `out`; return the manifest.

        The export is itself an audit event, the last one in the export. Files are written to a
        scratch folder inside the transaction and moved into place only after it commits.
        """
        from governance.audit_export import (
            FORMATS,
            MANIFEST,
            build_manifest,
            events_file_name,
            manifest_message,
            write_events,
        )
        from governance.keys import public_key_hex, sign
        if fmt not in FORMATS:
            raise InvalidInput(f"export format {fmt!r} is not one of {', '.join(FORMATS)}.")
        # who may export, on a store that exists, before anything is written: a viewer's refused export had swept
        # the folder's scratch folders, and one aimed at no store had made it a signing key
        self._run(lambda conn: self._authorize(conn, Action.AUDIT))
        key = self._signing_key()

        def unit(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            user = self._authorize(conn, Action.AUDIT)
            log_check = self._live_log_check(conn)
            self._log(conn, "audit.export", "audit", {"format": fmt, "out": out.name})
            events = audit_log.read_events(conn)
            name = events_file_name(fmt)
            write_events(events, scratch / name, fmt)
            manifest = build_manifest(events=events, fmt=fmt, files={name: sha256_file(scratch / name)},
                                      exported_at=utc_timestamp(), exported_by=user.name,
                                      public_key=public_key_hex(key), log_check=log_check)
            manifest["signature"] = sign(key, manifest_message(manifest))
            (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            return manifest

        out = Path(out)
        with new_folder(out, what="export") as scratch:
            manifest = self._run(unit)
        return manifest

    def public_key(self) -> str:
        from governance.keys import public_key_hex
        self._run(lambda conn: self._authorize(conn, Action.VIEW))
        return public_key_hex(self._signing_key())



def _listed_names(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _vouched_line(event: AuditEvent, most: int = 400) -> str:
    """An event a re-witness vouches for, with what it records (its payload but how its actor was authenticated,
    which the parentheses name): a role or a verdict changed in a rewrite shows only there."""
    try:
        data = json.loads(event.payload)
    except ValueError:
        data = event.payload
    how = (data.pop("auth", None) or {}) if isinstance(data, dict) else {}
    method = how.get("method") if isinstance(how, dict) else None
    recorded = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    recorded = recorded if len(recorded) <= most else recorded[:most] + "…"
    return (f"seq {event.seq} {event.ts} {event.action} {event.entity} by {event.actor or 'nobody'} "
            f"(auth {method or 'unknown'}): {recorded}")


def _issued_by(conn: duckdb.DuckDBPyConnection, user: str, token_id: str | None) -> str | None:
    """Who other than `user` holds the credential `token_id` outright, in words, or None: the admin who created an
    API token, or whoever set the password last before the session was opened. (`_holders` follows every hand a
    credential passed through, for approvals; this refuses only what someone else plainly holds.)"""
    if token_id is None:
        return None  # an in-process library call: no credential
    row = auth.get_token(conn, token_id)
    if row is None:
        return None
    if row.kind == "api":
        return None if row.created_by == user else f"{row.created_by} created the API token you used"
    if row.kind not in ("session", "dashboard"):
        return None  # signed in through the identity provider: nobody issued it
    history = audit_log.entity_history(conn, f"user:{user}")
    opened = next((seq for seq, _, action, data in history
                   if action == "auth.login" and data.get("token") == token_id), None)
    if opened is None:
        return None
    setter = next((actor for seq, actor, action, data in reversed(history) if seq < opened
                   and action in ("user.add", "user.passwd") and data.get("password_set")), None)
    return None if setter in (None, user) else f"{setter} set the password this session was opened with"


def _stamp(moment: datetime | None) -> str | None:
    """The audit log's own timestamp format (UTC, microseconds), so text comparison orders correctly."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def verify_audit_export(directory: Path, *, expected_public_key: str | None,
                        since: Path | None = None, report: Path | None = None) -> ExportVerification:
    """Offline verification: needs only the export's files and the installation's public key, no store
    and no user. With `since`, also proves that earlier export is a prefix of this one; with `report`, that
    every event the report (`govern report`) cites is in the export unaltered and says what the report says."""
    from governance.audit_export import verify_consistency, verify_export, verify_report_against_export
    if report is not None:
        return verify_report_against_export(Path(directory), report=Path(report),
                                            expected_public_key=expected_public_key,
                                            since=Path(since) if since is not None else None)
    if since is not None:
        return verify_consistency(Path(directory), since=Path(since), expected_public_key=expected_public_key)
    return verify_export(Path(directory), expected_public_key=expected_public_key)


def _as_logged(signoff: tuple[Any, ...], logged: tuple[str, dict[str, Any]] | None) -> bool:
    """Whether a stored sign-off (as `signoffs.all_signoffs` gives it) is what its event recorded: the decision,
    and the artifact, evaluation and gate where the event names them."""
    if logged is None:
        return False
    decision, fields = logged
    stored = dict(zip(("artifact_sha256", "evaluation", "gate"), signoff[5:]))
    return signoff[4] == decision and all(stored.get(key) == value for key, value in fields.items())


def _instant(value: Any) -> datetime | None:
    """A time as stored or logged (naive UTC, aware, or ISO text) as naive UTC, to compare the two."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _logged_state(conn: duckdb.DuckDBPyConnection) -> tuple[list[AuditEvent], list[tuple[Any, ...]],
                                                             list[tuple[Any, ...]], list[tuple[str, str]],
                                                             list[tuple[str, str, bool, str | None]]]:
    """The log's events and what the store holds that they record: production moves, sign-offs, credentials and
    users (name, role, enabled, password hash), as `unlogged` holds them against each other."""
    from governance.store import users
    return (audit_log.read_events(conn), aliases.all_moves(conn), signoffs.all_signoffs(conn),
            auth.all_credentials(conn), users.accounts(conn))


def unlogged(events: list[AuditEvent], moves: list[tuple[Any, ...]], approvals: list[tuple[Any, ...]],
             credentials: Sequence[tuple[str, str]] = (),
             accounts: Sequence[tuple[str, str, bool, str | None]] | None = None) -> list[str]:
    """Production moves and sign-offs the store holds without the audit event that records each: the log's
    tail cut off after them (with the witness's last line, where the writer reaches it), or rows written
    around the service. Each model's moves must match its `alias.*` events in order; each sign-off
    revision its `signoff.*` event: decision, artifact, evaluation and gate too (a rejection rewritten as an
    approval in the table had passed, matched on the revision alone); each credential (`credentials`: token and
    session ids with their user) the `token.create` or `auth.login` event that issued it (a token row inserted
    into the table acted as its user, and its approval counted, with no event naming who issued it); each user
    (`accounts`: name, role, enabled) the role its `user.add` event gave it and the state its last `user.disable`
    or `user.enable` left (a viewer made admin in the table had added an admin, and status had stayed clean)."""
    problems = []
    users_logged: dict[str, tuple[str | None, bool]] = {}  # name → (role added with, enabled)
    passwords: dict[str, str | None] = {}  # name → the stored hash's sha256 its last password event logged
    for event in events:
        if event.action in ("user.add", "user.disable", "user.enable", "user.passwd") \
                and event.entity.startswith("user:"):
            name, data = event.entity[len("user:"):], json.loads(event.payload)
            if "password_sha256" in data:  # (events before it was logged say nothing of the hash)
                passwords[name] = data["password_sha256"]
            elif event.action in ("user.add", "user.passwd"):
                passwords.pop(name, None)
            if event.action == "user.passwd":
                continue
            role = data.get("role") if event.action == "user.add" else users_logged.get(name, (None, True))[0]
            users_logged[name] = (role, event.action != "user.disable")
    differing = [(name, role, enabled) for name, role, enabled, _ in accounts or ()
                 if users_logged.get(name) != (role, enabled)]
    swapped = sorted(name for name, _, _, stored_hash in accounts or ()
                     if name in passwords and passwords[name] != password_digest(stored_hash))
    if swapped:
        problems.append(f"{len(swapped)} user{'s' * (len(swapped) > 1)} whose stored password is not the one the "
                        f"log's last password event set ({_listed_names(swapped)}): changed around the service "
                        "(a password copied from another user signs in as this one); an admin sets a new one with "
                        "`govern user passwd`")
    stored = {name for name, _, _, _ in accounts or ()}
    gone = sorted(name for name in users_logged if name not in stored) if accounts is not None else []
    if gone:
        problems.append(f"{len(gone)} user{'s' * (len(gone) > 1)} the log added but the store no longer holds "
                        f"({_listed_names(gone)}): removed around the service (govern never deletes a user; "
                        "`govern audit list --action user` shows their events)")
    if differing:
        name, role, enabled = differing[0]
        recorded_as = users_logged.get(name)
        what = "no event added it" if recorded_as is None else \
            f"the log has it {recorded_as[0]}, {'enabled' if recorded_as[1] else 'disabled'}"
        more = f" and {len(differing) - 1} more" if len(differing) > 1 else ""
        problems.append(f"{len(differing)} user{'s' * (len(differing) > 1)} whose role or state the log's events do "
                        f"not record (user {name}: {role}, {'enabled' if enabled else 'disabled'}, but {what}{more}): "
                        "changed around the service, or the log lost events (`govern user list` and `govern audit "
                        "list --action user` show both)")
    logged_moves: dict[str, list[tuple[str, str, datetime | None]]] = {}
    logged_signoffs: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}  # (model, version, actor, revision)
    for event in events:
        if event.action.startswith("alias.") and event.entity.startswith("model:"):
            data = json.loads(event.payload)
            logged_moves.setdefault(event.entity[len("model:"):], []).append(
                (event.action[len("alias."):], str(data.get("version")), _instant(data.get("expires"))))
        elif event.action.startswith("signoff.") and event.entity.startswith("version:"):
            model, _, version = event.entity[len("version:"):].partition("/")
            data = json.loads(event.payload)
            logged_signoffs[(model, version, event.actor, data.get("revision"))] = (
                event.action[len("signoff."):], {key: data[key] for key in ("artifact_sha256", "evaluation", "gate")
                                                 if key in data})
    recorded: dict[str, list[tuple[str, str, datetime | None]]] = {}
    for model, action, version, expires in moves:
        recorded.setdefault(model, []).append((action, version, _instant(expires)))
    for model in sorted(recorded):
        logged = logged_moves.get(model, [])
        if len(recorded[model]) == len(logged) and recorded[model] != logged:
            problems.append(f"model {model}'s production history differs from the log's events for it (a move's "
                            "version or override expiry): changed around the service (`govern history` and "
                            "`govern audit list --action alias` show both)")
        elif recorded[model] != logged:
            problems.append(f"model {model}'s production history has {len(recorded[model])} moves and the log "
                            f"{len(logged_moves.get(model, []))} events for them: the log lost events, or moves were "
                            "written around it (`govern history` and `govern audit list --action alias` show both)")
    issued = {(json.loads(event.payload).get("token"), event.entity[len("user:"):]) for event in events
              if event.action in ("token.create", "auth.login") and event.entity.startswith("user:")}
    forged = [c for c in credentials if tuple(c) not in issued]
    if forged:
        token, user = forged[0]
        more = f" and {len(forged) - 1} more" if len(forged) > 1 else ""
        problems.append(f"{len(forged)} credential{'s' * (len(forged) > 1)} without the event that issued "
                        f"{'them' if len(forged) > 1 else 'it'} ({user}'s {token}{more}): written around the "
                        "service, or the log lost events; an admin revokes it with `govern token revoke`")
    missing = [a for a in approvals if not _as_logged(a, logged_signoffs.get(tuple(a[:4])))]
    if missing:
        model, version, reviewer, revision, decision, *_ = missing[0]
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        problems.append(f"{len(missing)} sign-off{'s' * (len(missing) > 1)} without the event that records "
                        f"{'them' if len(missing) > 1 else 'it'} as stored ({reviewer}'s {decision} of {model} version "
                        f"{version}{more}): written or changed around the service, or the log lost events")
    return problems
