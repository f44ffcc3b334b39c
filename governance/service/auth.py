"""Proving who acts: sign-in (CLI sessions, the dashboard, OIDC), API tokens, logout.

Sign-in is throttled per user and per client (exponential back-off after a few failures), takes the
same time whether or not the user exists or has a password, and every failure is in the audit log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from governance.errors import InvalidInput, NotAllowed, NotFound
from governance.identity import API_TOKEN_LIFETIME, SESSION_LIFETIME, new_secret, parse_credential
from governance.records import Record, User
from governance.roles import Action, Role
from governance.service.base import ServiceBase, _now, _present, check_name
from governance.store import audit_log, auth, users
from governance.store.auth import TokenRow

FAILURE_WINDOW = timedelta(minutes=15)
FREE_FAILURES = 3  # failures before back-off starts
MAX_PENDING_PER_CLIENT = 16  # sign-ins one client may have being checked at once (a CI runner's parallel logins)
PENDING_WINDOW = timedelta(minutes=1)  # a check takes about a second: older pending attempts were killed midway
BACKOFF_BASE_S = 5  # then 5 s, 10 s, 20 s, … (a CLI call alone takes about a second)
MAX_BACKOFF_S = 900
_dummy_hash: str | None = None


@dataclass(frozen=True)
class Credential(Record):
    """A credential just issued: `secret` is shown once and stored nowhere but with its holder."""

    id: str
    user: str
    role: str
    kind: str
    name: str | None
    expires_at: datetime
    secret: str


def backoff_seconds(failures: int, latest: datetime | None, now: datetime) -> float:
    """Seconds to wait before the next try: none for the first FREE_FAILURES failures, then 5, 10, 20, …
    up to MAX_BACKOFF_S after the latest failure."""
    if latest is None or failures < FREE_FAILURES:
        return 0.0
    delay = min(BACKOFF_BASE_S * 2.0 ** min(failures - FREE_FAILURES, 20), MAX_BACKOFF_S)
    return max(0.0, (latest + timedelta(seconds=delay) - now).total_seconds())


def check_password_text(password: str | None, what: str = "the password") -> None:
    """InvalidInput unless `password` is text argon2 can take: bytes read from a terminal or pipe that are not
    UTF-8 arrive as lone surrogates, which had failed inside the check after the attempt was counted."""
    if password is None:
        return
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not UTF-8 text.") from None


def password_matches(stored: str | None, password: str) -> bool:
    """argon2 verification that costs the same for a missing user or password (a dummy hash)."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = PasswordHasher().hash("no such user; equal time")
    try:
        ok = PasswordHasher().verify(stored or _dummy_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and stored is not None


class AuthActions(ServiceBase):
    def sign_in(self, *, name: str, password: str, client: str, kind: str = "dashboard",
                lifetime: timedelta = SESSION_LIFETIME) -> Credential:
        """Check `password` and open a session of `kind` (session for the CLI, dashboard) for `name`.

        NotAllowed, in one sentence that does not say which part was wrong, when the user is unknown,
        disabled, has no password or the password is wrong; NotAllowed naming the wait while the user
        or the client is backing off. Failures are recorded (throttle and audit log) before raising.
        """
        check_password_text(password)
        attempted = (name or "")[:128]
        client = (client or "unknown")[:128]
        now = _now()

        def attempt(conn: duckdb.DuckDBPyConnection) -> tuple[User | None, str | None, float]:
            user = users.get_user(conn, attempted)
            by_user, user_latest, by_client, client_latest, pending = auth.recent_failures(
                conn, user=attempted, client=client, since=now - FAILURE_WINDOW, pending_since=now - PENDING_WINDOW)
            wait = max(backoff_seconds(by_user, user_latest, now), backoff_seconds(by_client, client_latest, now))
            if pending >= MAX_PENDING_PER_CLIENT:  # a burst across many users (spraying) from one client
                wait = max(wait, BACKOFF_BASE_S)
            if wait > 0:
                self._log(conn, "auth.failed", f"user:{attempted}", {"user": attempted, "client": client, "via": kind,
                                                                     "reason": "throttled"},
                          actor=None, auth_method=kind)
                return None, None, wait
            # Counted as the user's failure until the password checks out, so parallel guesses see each other
            # (the head row makes concurrent attempts collide at commit on DuckLake too, where inserts never
            # do); as the client's once it failed, so one client's parallel correct sign-ins of several users
            # (a CI runner's) do not throttle each other.
            auth.record_failure(conn, user=attempted, client=auth.PENDING + client, when=now)
            audit_log.serialise(conn)
            return user, users.password_hash(conn, attempted), 0.0

        user, stored, wait = self._run(attempt)
        if wait > 0:
            raise NotAllowed(f"too many failed sign-ins for this user or from this client; try again in "
                             f"{math.ceil(wait)} s.")
        ok = password_matches(stored, password or "") and user is not None and user.enabled

        def record(conn: duckdb.DuckDBPyConnection) -> Credential | None:
            # The password was checked outside any unit (argon2 takes a while): a new password or a disable
            # meanwhile ends what the check proved, else the session outlived both (a hostile trial: 4 of 4 races)
            current = users.get_user(conn, attempted) if ok else None
            changed = ok and (current is None or not current.enabled or users.password_hash(conn, attempted) != stored)
            if current is None or changed:  # current is None where the password did not match
                auth.confirm_failure(conn, user=attempted, client=client, when=now)
                self._log(conn, "auth.failed", f"user:{attempted}", {
                    "user": attempted, "client": client, "via": kind,
                    "reason": "changed during sign-in" if changed else "password"}, actor=None, auth_method=kind)
                return None
            auth.clear_failures(conn, user=current.name)
            return self._issue(conn, current, kind=kind, name=None, lifetime=lifetime, created_by=current.name,
                               client=client)

        issued = self._run(record)
        if issued is None:
            raise NotAllowed("unknown user or wrong password.")
        return issued

    def sign_in_external(self, *, email: str | None, email_verified: bool | None = None,
                         provider: str = "oidc") -> Credential:
        """A session for the user an identity provider vouched for: the one named by the local part of the
        email it verified, at the domain GOVERN_OIDC_DOMAIN names (pat@example.com is user pat). Never a
        display name, which many providers let people edit; an address the provider says it has not
        verified is refused. The provider says who someone is, never what they may do: the role is the one
        this store gives that user."""
        domain = self.settings.oidc_domain
        if not domain:
            raise NotAllowed("signing in through the identity provider needs GOVERN_OIDC_DOMAIN, the email domain "
                             "whose verified addresses name govern users (pat@example.com is user pat).")
        address = (email or "").strip()
        local, at, host = address.rpartition("@")
        if not at or not local:
            raise NotAllowed("the identity provider vouched for no email address, and govern names users only by "
                             "their verified email.")
        if email_verified is False:
            raise NotAllowed(f"the identity provider has not verified {address[:200]}; verify it there first.")
        if host.lower() != domain:
            raise NotAllowed(f"{address[:200]} is not an address at {domain} (GOVERN_OIDC_DOMAIN), whose addresses "
                             "name govern users.")

        if not local.isascii() or not local.isprintable():  # user names are ASCII; a database's lower() maps İ to i
            raise NotAllowed(f"{address[:200]!r} signed in, but its mailbox name is not one a govern user can have "
                             "(ASCII letters, digits, '.', '_', '-').")

        def unit(conn: duckdb.DuckDBPyConnection) -> Credential:
            # mailbox names ignore case: Ravi@ and ravi@ are one person, and one govern user
            alike = users.users_named_alike(conn, local)
            if len(alike) > 1:
                raise NotAllowed(f"{address[:200]} names more than one govern user ({', '.join(u.name for u in alike)}"
                                 "), whose names differ only by case; an admin disables all but one.")
            user = alike[0] if alike else None
            if user is None or not user.enabled:
                raise NotAllowed(f"{address[:200]} signed in, but {local[:128]!r} is not an active user of govern; "
                                 "an admin adds them with `govern user add`.")
            return self._issue(conn, user, kind=provider, name=None, lifetime=SESSION_LIFETIME,
                               created_by=user.name, client=provider)

        return self._run(unit)

    def create_token(self, *, user: str, name: str | None = None,
                     lifetime: timedelta = API_TOKEN_LIFETIME) -> Credential:
        """An API token for `user` (admins), for CI and workers through GOVERN_TOKEN; shown once."""
        if name is not None:
            check_name("token name", name)

        def unit(conn: duckdb.DuckDBPyConnection) -> Credential:
            admin = self._authorize(conn, Action.MANAGE_USERS)
            holder = users.get_user(conn, user)
            if holder is None:
                raise NotFound(f"user {user!r} does not exist.")
            if not holder.enabled:
                raise InvalidInput(f"user {user!r} is disabled; enable it before giving it a token.")
            return self._issue(conn, holder, kind="api", name=name, lifetime=lifetime, created_by=admin.name,
                               client="api")

        return self._run(unit)

    def list_tokens(self, *, user: str | None = None, include_sessions: bool = False) -> list[TokenRow]:
        """Credentials (never their secrets): API tokens, and sessions too when asked. Admins see every
        user's; others only their own."""
        kinds = ("api", "session", "dashboard", "oidc") if include_sessions else ("api",)

        def unit(conn: duckdb.DuckDBPyConnection) -> list[TokenRow]:
            me = self._authorize(conn, Action.VIEW)
            if me.role is not Role.ADMIN:
                if user not in (None, me.name):
                    self._authorize(conn, Action.MANAGE_USERS)  # raises, naming the role needed
                return auth.list_tokens(conn, user=me.name, kinds=kinds)
            return auth.list_tokens(conn, user=user, kinds=kinds)

        return [_hide(row) for row in self._run(unit)]

    def revoke_token(self, *, token_id: str) -> TokenRow:
        """Revoke a credential: admins any, others their own."""
        def unit(conn: duckdb.DuckDBPyConnection) -> TokenRow:
            me = self._authorize(conn, Action.VIEW)
            row = auth.get_token(conn, token_id)
            if row is None:
                raise NotFound(f"no token {token_id!r}; `govern token list` shows them.")
            if row.user != me.name:
                self._authorize(conn, Action.MANAGE_USERS)
            if row.revoked_at is None:
                auth.revoke_token(conn, row.id, _now())
                self._log(conn, "token.revoke", f"user:{row.user}", {"token": row.id, "kind": row.kind})
            return _present(auth.get_token(conn, row.id), f"token {row.id}")

        return _hide(self._run(unit))

    def logout(self) -> str | None:
        """Revoke the session this service acts with; the id revoked (None when it held none)."""
        if self.token is None:
            return None
        token_id, _ = parse_credential(self.token)

        def unit(conn: duckdb.DuckDBPyConnection) -> str:
            self._authorize(conn, Action.VIEW)
            auth.revoke_token(conn, token_id, _now())
            self._log(conn, "auth.logout", f"user:{self.actor}", {"token": token_id})
            return token_id

        return self._run(unit)

    def whoami(self) -> dict[str, str | None]:
        """Who this service acts as and how that was proven."""
        def unit(conn: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
            user = self._authorize(conn, Action.VIEW)
            proof = _present(self._auth, "how the acting user was authenticated")  # set by _authorize
            return {"user": user.name, "role": user.role.value, "method": proof["method"],
                    "token": proof["token"], "os_user": proof["os_user"]}

        return self._run(unit)

    def _issue(self, conn: duckdb.DuckDBPyConnection, user: User, *, kind: str, name: str | None,
               lifetime: timedelta, created_by: str, client: str) -> Credential:
        token_id, secret, digest = new_secret()
        now = _now()
        row = TokenRow(token_id, user.name, kind, name, digest, now, created_by, now + lifetime, None)
        auth.insert_token(conn, row)
        action = "token.create" if kind == "api" else "auth.login"
        self._log(conn, action, f"user:{user.name}", {"token": token_id, "kind": kind, "name": name,
                                                      "expires": row.expires_at.isoformat(), "client": client},
                  actor=created_by, auth_method=kind if kind != "api" else None)
        return Credential(token_id, user.name, user.role.value, kind, name, row.expires_at, secret)


def _hide(row: TokenRow) -> TokenRow:
    return TokenRow(row.id, row.user, row.kind, row.name, "", row.created_at, row.created_by, row.expires_at,
                    row.revoked_at)
