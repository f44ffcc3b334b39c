"""Roles and the permission matrix of docs/design.md, enforced by the service layer."""

from __future__ import annotations

from enum import StrEnum

from governance.errors import InvalidInput, NotAllowed


class Role(StrEnum):
    VIEWER = "viewer"
    REVIEWER = "reviewer"
    ENGINEER = "engineer"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Action(StrEnum):
    """What a user may be allowed to do; the value reads inside a sentence."""

    VIEW = "view dashboards and records"
    REGISTER = "register models, versions and feedback datasets"
    INGEST = "ingest prediction sets"
    EVALUATE = "evaluate versions"
    GATE = "run the release gate"
    JUDGE = "judge review items"
    SIGN_OFF = "sign off releases"
    RELEASE = "release versions"
    ROLLBACK = "roll back releases"
    AUDIT = "export and verify the audit log"
    OVERRIDE = "override a gate"
    MANAGE_USERS = "manage users"
    MANAGE_POLICIES = "register and assign policy packs"
    SET_RELEASE_RULES = "change a model's risk tier or approval floor"
    RESOLVE_ESCALATION = "work the retraining loop's escalations"
    REWITNESS = "witness the decision log again over a gap"


_ALL = frozenset(Role)
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.VIEW: _ALL,
    Action.REGISTER: frozenset({Role.ENGINEER, Role.ADMIN}),
    Action.INGEST: frozenset({Role.ENGINEER, Role.ADMIN}),
    Action.EVALUATE: frozenset({Role.ENGINEER, Role.ADMIN}),
    Action.GATE: frozenset({Role.ENGINEER, Role.ADMIN}),
    Action.JUDGE: frozenset({Role.REVIEWER, Role.ADMIN}),
    Action.SIGN_OFF: frozenset({Role.REVIEWER, Role.ADMIN}),
    # Engineers release only after sign-off; that condition is checked by the release itself.
    Action.RELEASE: frozenset({Role.ENGINEER, Role.ADMIN}),
    Action.ROLLBACK: frozenset({Role.ENGINEER, Role.ADMIN}),
    Action.AUDIT: frozenset({Role.AUDITOR, Role.ADMIN}),
    Action.OVERRIDE: frozenset({Role.ADMIN}),
    Action.MANAGE_USERS: frozenset({Role.ADMIN}),
    Action.MANAGE_POLICIES: frozenset({Role.ADMIN}),
    Action.SET_RELEASE_RULES: frozenset({Role.ADMIN}),
    # The loop stopped without meeting the policy: what to try next is an engineering decision.
    Action.RESOLVE_ESCALATION: frozenset({Role.ENGINEER, Role.ADMIN}),
    # A re-witness vouches for events no signed head covers: only whoever checks the log, not an admin, whose
    # role could have written them (a hostile trial: a forged approval appended, re-witnessed, released alone).
    Action.REWITNESS: frozenset({Role.AUDITOR}),
}


def roles_allowed(action: Action) -> list[Role]:
    """The roles that may take `action`, in the matrix's column order."""
    return [role for role in Role if role in PERMISSIONS[action]]


def allowed(role: Role | str | None, action: Action) -> bool:
    """Whether `role` (a Role or its name; None or an unknown name: no one) may take `action`. What a
    front-end asks before offering a control; the service checks again when the action is taken."""
    try:
        return Role(role) in PERMISSIONS[action]
    except ValueError:
        return False


def needed_roles_text(action: Action) -> str:
    names = [role.value for role in roles_allowed(action)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def authorize(*, user: str, role: Role, action: Action) -> None:
    """Raise NotAllowed, naming the role needed, unless `role` may take `action`."""
    if role not in PERMISSIONS[action]:
        raise NotAllowed(
            f"user {user!r} is {_article(role)} {role.value} and may not {action.value}: "
            f"that needs the role {needed_roles_text(action)}."
        )


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"unknown role {text!r}; choose one of {', '.join(r.value for r in Role)}."
        ) from None


def _article(role: Role) -> str:
    return "an" if role.value[0] in "aeiou" else "a"
