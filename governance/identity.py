"""Credentials: how an actor proves who they are.

A credential is `gvn_<id>_<secret>`: the id names its row in the store, which keeps only the sha256
of the secret. Sessions (`govern login`, a dashboard or OIDC sign-in) and admins' API tokens
(`govern token create`, used through GOVERN_TOKEN) are the same kind of object with different kinds
and lifetimes. Every audit event records the kind, the credential's id and the OS user.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pwd
import re
import secrets
from datetime import timedelta

from governance.errors import InvalidInput, NotAllowed

KINDS = ("session", "dashboard", "oidc", "api")
SESSION_LIFETIME = timedelta(hours=12)
API_TOKEN_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=366)
_TOKEN = re.compile(r"gvn_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_DURATION = re.compile(r"([0-9]+)([mhd])")


def new_secret() -> tuple[str, str, str]:
    """(id, the credential to hand out once, the sha256 of its secret to store)."""
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return token_id, f"gvn_{token_id}_{secret}", secret_digest(secret)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_credential(text: str) -> tuple[str, str]:
    """(id, secret) of a credential; NotAllowed, saying nothing of the secret, when it is malformed."""
    found = _TOKEN.fullmatch((text or "").strip())
    if not found:
        raise NotAllowed("the credential given (GOVERN_TOKEN or a stored session) is not a govern token; "
                         "log in with `govern login USER` or ask an admin for an API token.")
    return found.group(1), found.group(2)


def digest_matches(stored: str, secret: str) -> bool:
    return hmac.compare_digest(stored, secret_digest(secret))


def os_user() -> str:
    """The OS account running this process, from the process's uid (not $USER, which anyone can set)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid:{os.getuid()}"


def parse_duration(text: str, *, what: str = "--expires") -> timedelta:
    """`90d`, `12h` or `30m`, at most a year."""
    found = _DURATION.fullmatch((text or "").strip())
    if not found:
        raise InvalidInput(f"{what} {text!r} is not a duration such as 30m, 12h or 90d.")
    digits, unit = found.group(1).lstrip("0"), found.group(2)
    amount = int(digits[:7] or "0")  # more digits than a year of minutes has: past the limit, said as such
    duration = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
    if duration <= timedelta(0) or duration > MAX_LIFETIME or len(digits) > 7:
        raise InvalidInput(f"{what} {text!r} must be more than zero and at most 366 days.")
    return duration
