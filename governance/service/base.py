"""Units of work, authorisation and audit logging shared by every service action."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Self, TypeVar

import duckdb

from governance import __version__
from governance.artifacts import ArtifactStore
from governance.config import Settings, resolve_settings
from governance.errors import GovernError, InvalidInput, NotAllowed, NotFound
from governance.identity import digest_matches, os_user, parse_credential
from governance.records import ItemKind, Job, Model, User, Version
from governance.roles import Action, Role, authorize, needed_roles_text
from governance.store import audit_log, auth, jobs, judgments, migrations, registry, review_items, users

if TYPE_CHECKING:  # cryptography loads with the first change, not with the service
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_migrated: set[str] = set()  # the stores (by identity) this process brought up to date


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def check_name(kind: str, value: str) -> str:
    """`value` if it is a valid name in full: no trailing newline, no control characters, no look-alikes
    (a name must be its own NFKC normal form and plain ASCII letters, digits, '.', '_', '-')."""
    if not isinstance(value, str) or unicodedata.normalize("NFKC", value) != value or not _NAME.fullmatch(value):
        raise InvalidInput(
            f"{kind} {shown(value)} is not a valid name: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return value


def shown(value: object) -> str:
    """`value` quoted for a message, cut after 40 characters where it is long (a 5,000-character name had
    been echoed whole)."""
    if not isinstance(value, str) or len(value) <= 60:
        return repr(value)
    return f"{value[:40]!r}… ({len(value):,} characters)"


MAX_TEXT = 4_000  # characters of a comment or reason: a paragraph, not a document
_HIDDEN = {*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def check_text(what: str, text: str) -> str:
    """`text` (a comment, a reason) if people can read it as written: at most MAX_TEXT characters, and no
    control character or bidirectional override (U+202E can make a terminal show the text backwards);
    newlines and tabs are fine."""
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{what} is {len(text):,} characters; keep it to {MAX_TEXT:,} (link to a document for "
                           "more).")
    hidden = hidden_characters(text)
    if hidden:
        raise InvalidInput(f"{what} holds characters that do not show as written ({', '.join(hidden[:5])}); "
                           "remove them.")
    return text


# What shows a reader nothing: format characters (zero-width ones, direction marks, the word joiner, tags),
# combining marks with nothing to combine with (and variation selectors), unassigned code points, controls and
# whitespace, and the fillers that are letters or symbols only by category (Hangul fillers, the blank Braille
# pattern). A reason made of them reads as empty ("--reason $'\u200b'" had released on an override).
_SHOWS_NOTHING = frozenset({"Cf", "Mn", "Me", "Cn", "Cc", "Zs", "Zl", "Zp"})
_FILLERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


def is_blank(text: str | None) -> bool:
    """Whether `text` shows a reader nothing: empty, or only characters that show nothing."""
    import unicodedata

    return text is None or all(c in _FILLERS or unicodedata.category(c) in _SHOWS_NOTHING for c in text)


def hidden_characters(text: str) -> list[str]:
    """The code points in `text` that do not show as written (controls other than newline and tab,
    bidirectional overrides, lone surrogates, which no file can hold as UTF-8), as "U+202E"."""
    return sorted({f"U+{ord(c):04X}" for c in text if ord(c) in _HIDDEN or 0xD800 <= ord(c) <= 0xDFFF})


class ServiceBase:
    """One installation seen by one acting user.

    The user proves who they are with a credential (`token`: a session from `govern login` or the
    dashboard, or an admin's API token): the CLI and the dashboard always pass one (`require_proof`).
    An in-process caller of the Python API may name `actor` alone; it can open the store file anyway,
    which is the trust boundary the README states. `actor` is None only for store-level commands.
    """

    def __init__(self, settings: Settings, actor: str | None = None, *, token: str | None = None,
                 require_proof: bool = False) -> None:
        self.settings = settings
        self.actor = actor
        self.token = token
        self.require_proof = require_proof or token is not None
        self.backend = settings.database()
        self.artifacts = ArtifactStore(settings.artifacts_dir)
        self._auth: dict[str, Any] | None = None  # how the actor was authenticated, logged with each event
        self._appended: list[tuple[int, str, str]] = []  # (seq, hash, ts) of each event this unit appended
        self._witness_from: int | None = None
        self.committed_changes = 0  # units of work this service committed that appended to the log

    @classmethod
    def open(cls, *, home: str | Path | None = None, actor: str | None = None, token: str | None = None,
             require_proof: bool = False, lock_timeout_s: float | None = None,
             settings: Settings | None = None) -> Self:
        return cls(settings or resolve_settings(home=home, lock_timeout_s=lock_timeout_s), actor, token=token,
                   require_proof=require_proof)

    # -- units of work -------------------------------------------------------------------------------------

    def _run(self, unit: Callable[[duckdb.DuckDBPyConnection], T], *, create: bool = False) -> T:
        """Run a unit of work, applying pending migrations first (once per process and store); once it
        committed, the audit head it appended goes to the witness."""
        store = self.backend.identity
        if store not in _migrated and not create:
            self._commit(self._migrate)
            _migrated.add(store)
        return self._commit(unit, create=create)

    def _read(self, action: Action, read: Callable[[duckdb.DuckDBPyConnection], T], *,
              require: str | tuple[str, str] | None = None) -> T:
        """`read(conn)` in a unit of work the actor is authorised for (`action`), after checking that
        `require` exists: a model's name, or (model, version)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> T:
            self._authorize(conn, action)
            if isinstance(require, tuple):
                _require_version(conn, *require)
            elif require is not None:
                _require_model(conn, require)
            return read(conn)

        return self._run(unit)

    def _commit(self, unit: Callable[[duckdb.DuckDBPyConnection], T], *, create: bool = False) -> T:
        heads: list[tuple[Ed25519PrivateKey, tuple[int, int, str, str, bool]]] = []

        def attempt(conn: duckdb.DuckDBPyConnection) -> T:
            self._appended = []  # a retried unit appends afresh
            result = unit(conn)
            if self._appended:
                # Inside the transaction: a missing or broken key, or a witness that cannot be written,
                # refuses the change instead of leaving it committed and unwitnessed.
                heads.append((self._signing_key(create=create), self._head()))
                self._record_head(*heads[-1], intent=True)
            return result

        result = self.backend.run(attempt, create=create)
        if self._appended:
            self.committed_changes += 1
            self._witness_from = None
            try:
                self._record_head(*heads[-1], intent=False)
            except GovernError as exc:  # committed and witnessed by its intent already: the confirmation is extra
                logging.getLogger("govern").warning(str(exc))
            self._appended = []
        return result

    def _head(self) -> tuple[int, int, str, str, bool]:
        """(first seq, last seq, head hash, ts, re-witness) of what this unit appended; a re-witness (`audit
        witness`) stretches the range back over the gap it closes, and says so in its lines."""
        first, (seq, head_hash, ts) = self._appended[0][0], self._appended[-1]
        if self._witness_from is not None:
            first = min(first, self._witness_from)
        return first, seq, head_hash, ts, self._witness_from is not None

    def _signing_key(self, *, create: bool = False) -> Ed25519PrivateKey:
        from governance.keys import load_key, load_or_create_key

        path = self.settings.key_path
        return load_or_create_key(path) if create or not path.exists() and not self.backend.exists() \
            else load_key(path)

    def _record_head(self, key: Ed25519PrivateKey, head: tuple[int, int, str, str, bool], *, intent: bool) -> None:
        """One signed line in the witness: the head this unit is about to commit (`intent`), or committed."""
        from governance import witness

        first, seq, head_hash, ts, rewitness = head
        path = self.settings.witness_path
        if intent and first > 1 and not rewitness and not witness.has_lines(path):
            # a new witness begun here would vouch for nothing before it (GOVERN_WITNESS_FILE set to a new path)
            raise GovernError(f"the witness {path} is missing or empty (or not a readable file) although the log "
                              f"holds {first - 1} events: restore it from a backup (or GOVERN_WITNESS_FILE points "
                              "elsewhere); nothing was changed. An auditor who has checked the log begins a new one "
                              "with `govern audit witness --against EXPORT`.")
        try:
            witness.record(self.settings.witness_path, key, first=first, seq=seq, head_hash=head_hash, ts=ts,
                           intent=intent, rewitness=rewitness)
        except OSError as exc:
            if intent:
                raise GovernError(f"the witness {self.settings.witness_path} cannot be written "
                                  f"({exc.strerror or exc}), so nothing was changed: every change is witnessed "
                                  "before it is committed.") from exc
            raise GovernError(f"the change was committed and witnessed, but its confirmation (seq {seq}) could not "
                              f"be written to the witness {self.settings.witness_path} ({exc.strerror or exc}).") \
                from exc

    def _mark_migrated(self) -> None:
        _migrated.add(self.backend.identity)

    def _migrate(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        applied = migrations.apply_pending(conn, enforces_keys=self.backend.enforces_keys)
        if applied:
            self._log(conn, "store.migrate", "store", {"applied": applied, "govern_version": __version__})
        return applied

    def _authorize(self, conn: duckdb.DuckDBPyConnection, action: Action) -> User:
        user = self._identify(conn, action)
        authorize(user=user.name, role=user.role, action=action)
        return user

    def _identify(self, conn: duckdb.DuckDBPyConnection, action: Action) -> User:
        """The acting user, proven by the credential when there is one; NotAllowed otherwise."""
        needs = f"to {action.value} you need the role {needed_roles_text(action)}"
        if self.token is not None:
            token_id, secret = parse_credential(self.token)
            row = auth.get_token(conn, token_id)
            if row is None or not digest_matches(row.secret_sha256, secret):
                raise NotAllowed("the credential is not valid for this store; log in with `govern login USER` "
                                 "or ask an admin for an API token.")
            what = "API token" if row.kind == "api" else "session"
            if row.revoked_at is not None:
                owner = users.get_user(conn, row.user)
                if owner is not None and not owner.enabled:  # disabling revoked it: say the cause
                    raise NotAllowed(f"user {row.user!r} is disabled; an admin enables it with `govern user enable "
                                     f"{row.user}`.")
                raise NotAllowed(f"your {what} {row.id} was revoked; log in again with `govern login {row.user}`.")
            if row.expires_at <= _now():
                raise NotAllowed(f"your {what} {row.id} expired at {row.expires_at:%Y-%m-%d %H:%M} UTC; log in "
                                 f"again with `govern login {row.user}`.")
            if self.actor and self.actor != row.user:
                raise NotAllowed(f"you are signed in as {row.user!r}, not {shown(self.actor)}: to act as "
                                 f"{self.actor[:60]}, run `govern login {self.actor[:60]}`.")
            name, method, token_id = row.user, row.kind, row.id
        elif self.require_proof:
            if not self.actor:
                raise NotAllowed(f"no acting user: log in with `govern login USER` or set GOVERN_TOKEN ({needs}).")
            raise NotAllowed(f"you are not logged in as {shown(self.actor)} on this store: run `govern login "
                             f"{self.actor[:60]}`, or set GOVERN_TOKEN to an API token an admin created ({needs}).")
        else:
            if not self.actor:
                raise NotAllowed(f"no acting user: pass --as USER or set GOVERN_USER ({needs}).")
            name, method, token_id = self.actor, "library", None
        user = users.get_user(conn, name)
        if user is None:
            raise NotAllowed(f"unknown user {shown(name)}: an admin adds users with `govern user add` ({needs}).")
        if not user.enabled:
            raise NotAllowed(f"user {name!r} is disabled; an admin enables it with `govern user enable {name}`.")
        self.actor = user.name
        self._auth = {"method": method, "token": token_id, "os_user": os_user()}
        return user

    def _log(self, conn: duckdb.DuckDBPyConnection, action: str, entity: str, payload: dict[str, Any],
             *, actor: str | None = None, auth_method: str | None = None) -> None:
        """Append an audit event recording who acted and how they were authenticated."""
        how = self._auth or {"method": auth_method or ("library" if self.actor else "none"), "token": None,
                             "os_user": os_user()}
        event = audit_log.append_event(conn, actor=actor or self.actor, action=action, entity=entity,
                                       payload={**payload, "auth": how})
        self._appended.append((event.seq, event.hash, event.ts))

    def _queue_ready_jobs(self, conn: duckdb.DuckDBPyConnection, now: datetime) -> list[str]:
        """Settle the jobs whose review items are all done, each logged: queued where reviewers confirmed
        the failure that filed them (a `model_wrong` judgment of a rule, drift or monitoring item), else
        cancelled, saying so: a retrain its reviewers judged unsettled (`ambiguous`) or dismissed had run
        anyway. Called when an item's last judgment or dismissal lands (so `jobs list` says it at once,
        not waiting_review until a worker looks), and when a worker claims. Returns the jobs queued."""
        queued = []
        for job_id, items in jobs.waiting_jobs_worked(conn):
            unconfirmed = _unconfirmed(conn, items)
            if unconfirmed:
                why = (f"its reviewers did not confirm the failure ({', '.join(unconfirmed)} judged ambiguous or "
                       "dismissed), so nothing was retrained; the gate stays blocked for an engineer to decide: "
                       "new evidence (its own review), a policy change, or an admin's override")
                jobs.finish_job(conn, job_id, "cancelled", now, error=why)
                self._log(conn, "job.cancel", f"job:{job_id}", {"was": "waiting_review", "reason": why})
            else:
                jobs.queue_job(conn, job_id, now)
                self._log(conn, "job.queue", f"job:{job_id}", {"reason": "its review items are done"})
                queued.append(job_id)
        return queued


def _unconfirmed(conn: duckdb.DuckDBPyConnection, item_ids: list[str]) -> list[str]:
    """Of the items asking whether a failure is real (rule, drift and monitoring items) that `item_ids`
    include, those no reviewer judged `model_wrong`; none when no such item is among them, or when one of
    them was confirmed (one confirmed failure is reason enough to retrain)."""
    kinds = (ItemKind.RULE_FAILURE, ItemKind.DRIFT_ALERT, ItemKind.MONITOR_ALERT)
    asking = [item for item in (review_items.get_item(conn, i) for i in item_ids)
              if item is not None and item.kind in kinds]
    if any(j.verdict == "model_wrong" for item in asking for j in judgments.judgments_of(conn, item.id)):
        return []
    return [item.id for item in asking]


def after(newest: datetime | None, now: datetime) -> datetime:
    """`now`, or a microsecond after `newest` when a clock behind the store's last writer would put a new
    record before it: "latest" means the last one recorded, whatever the writing machine's clock says."""
    return max(now, newest + timedelta(microseconds=1)) if newest is not None else now


def job_as_seen_by(job: Job, user: User) -> Job:
    """A job as `user` may see it: to reviewers without the review items it waits for, which would name the
    gold items apart (a gate's job waits for the gold items filed on its gate too, which its list names)."""
    return replace(job, depends_on=[]) if user.role is Role.REVIEWER else job


def _present(found: T | None, what: str) -> T:
    """`found`, which this package guarantees is there (a row the unit just wrote, a pack an assignment names,
    a record the engine always emits with another): None is a bug here, not a user's mistake, so it is
    reported as one instead of surfacing later as an AttributeError on None."""
    if found is None:
        raise RuntimeError(f"{what} is missing where govern guarantees it; this is a bug in govern")
    return found


def _require_model(conn: duckdb.DuckDBPyConnection, model: str) -> Model:
    record = registry.get_model(conn, model)
    if record is None:
        import difflib

        names = [m.name for m in registry.list_models(conn)]
        near = [n for n in names if n.casefold() == model.casefold()] or difflib.get_close_matches(model, names, n=1)
        if near:  # a slip of the case or a letter: registering it would make a second model beside the first
            raise NotFound(f"model {shown(model)} is not registered; did you mean {near[0]!r}? (`govern model list` "
                           "lists the models.)")
        if len(model) > 60:
            raise NotFound(f"model {shown(model)} is not registered.")
        raise NotFound(f"model {model!r} is not registered; register it with `govern model register {model}`.")
    return record


def _require_version(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> Version:
    _require_model(conn, model)
    record = registry.get_version(conn, model, version)
    if record is None:
        raise NotFound(f"version {shown(version)} of model {shown(model)} is not registered.")
    return record


EARLIEST, LATEST = datetime(1900, 1, 1), datetime(9999, 1, 1)


def parse_time(value: str | datetime | None, *, what: str = "time") -> datetime | None:
    """A naive UTC datetime from ISO 8601 text (or a datetime), in the years 1900 to 9998 (9999 is refused, and
    the message says so: a time near its end has no room left for arithmetic)."""
    if value is None or isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{what} {value!r} is not an ISO 8601 time such as 2024-05-01T00:00:00Z.") from exc
    shown = repr(value.isoformat() if isinstance(value, datetime) else value)
    if parsed is not None and parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError as exc:
            raise InvalidInput(f"{what} {shown} is outside the years 1900 to 9998.") from exc
    if parsed is not None and not EARLIEST <= parsed < LATEST:
        raise InvalidInput(f"{what} {shown} is outside the years 1900 to 9998.")
    return parsed
