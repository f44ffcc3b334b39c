"""Who acts: signing in and out, users and their roles, API tokens."""

from __future__ import annotations

import click

from governance.cli import render
from governance.cli.common import GovernGroup, read_password, service_command, without
from governance.errors import InvalidInput
from governance.roles import Action, Role, authorize, parse_role


@click.command()
@click.argument("name", metavar="USER")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of prompting.")
@click.option("--expires", default="12h", show_default=True, metavar="DURATION",
              help="How long the session lasts: 30m, 12h, 7d (at most 366d).")
@service_command(render.session, as_plain=lambda session: without(session, "secret"), anonymous=True)
def login(service, *, name: str, password_stdin: bool, expires: str):
    """Prove who you are with your password; the session is saved (0600) in your config folder for this
    store, and later commands act as USER until it expires or you log out."""
    from governance import sessions
    from governance.identity import os_user, parse_duration

    lifetime = parse_duration(expires)
    password = read_password(True) if password_stdin else click.prompt(f"password for {name}", hide_input=True,
                                                                       err=True)
    session = service.sign_in(name=name, password=password or "", client=f"cli:{os_user()}", kind="session",
                              lifetime=lifetime)
    sessions.save(service.settings.store_id, session.user, session.secret, session.expires_at)
    return session


@click.command()
@service_command(render.logout, json_output=False)
def logout(service):
    """End your session on this store (revoked in the store, removed from your config folder).

    Logging out the user commands act as by default leaves no default: later commands name a user still
    logged in here with --as, or someone logs in again."""
    from governance import sessions

    revoked = service.logout()
    if service.actor:
        sessions.forget(service.settings.store_id, service.actor)
    return service.actor, revoked


@click.command()
@service_command(render.whoami)
def whoami(service):
    """Who this command would act as, and how it is authenticated."""
    return service.whoami()


@click.group(cls=GovernGroup)
def user() -> None:
    """Manage users and their roles (admins)."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="The user's role.")
@click.option("--password-stdin", is_flag=True, help="Read a dashboard password from stdin (stored as argon2).")
@service_command(lambda added: f"added user {added.name!r} as {added.role.value}")
def user_add(service, *, name: str, role: str, password_stdin: bool):
    """Add a user with a role."""
    return service.add_user(name=name, role=role, password=read_password(password_stdin))


@user.command("list")
@service_command(render.users)
def user_list(service):
    """List users and their roles."""
    return service.list_users()


@user.command("disable")
@click.argument("name")
@service_command(lambda changed: f"disabled {changed.name}")
def user_disable(service, *, name: str):
    """Disable a user: their sessions and API tokens stop working at once (admins)."""
    return service.set_user_enabled(name=name, enabled=False)


@user.command("enable")
@click.argument("name")
@service_command(lambda changed: f"enabled {changed.name}")
def user_enable(service, *, name: str):
    """Enable a disabled user again (admins)."""
    return service.set_user_enabled(name=name, enabled=True)


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the passwords from stdin instead of prompting: for your own, your current password on the "
                   "first line and the new one on the second; for someone else's (admins), the new one.")
@service_command(lambda changed: f"password of {changed.name} changed")
def user_passwd(service, *, name: str, password_stdin: bool):
    """Set a user's password: your own (you give your current one: a session alone cannot change it), or anyone's
    for admins. A user with no password yet gets the first one from an admin. Sessions opened with the old
    password end; API tokens stay."""
    me = service.whoami()
    own = me["user"] == name
    if not own:  # refused before the prompts, not after them
        authorize(user=me["user"], role=parse_role(me["role"]), action=Action.MANAGE_USERS)
    if password_stdin:
        current = read_password(own)
        password = read_password(True)
        if not password:
            raise InvalidInput("the new password is missing: " + (
                "give your current password on the first line of stdin and the new one on the second." if own
                else "give it on the first line of stdin."))
    else:
        current = click.prompt(f"current password for {name} (empty if you have none)", hide_input=True, default="",
                               show_default=False, err=True) if own else None
        password = click.prompt(f"new password for {name}", hide_input=True, confirmation_prompt=True, err=True)
    return service.set_password(name=name, password=password, current=current or None)


@click.group(cls=GovernGroup)
def token() -> None:
    """API tokens for CI and workers (admins create them; GOVERN_TOKEN uses one)."""


@token.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--name", metavar="NAME", help="What the token is for (ci, worker-1).")
@click.option("--expires", default="90d", show_default=True, metavar="DURATION",
              help="How long it lasts: 30m, 12h, 90d (at most 366d).")
@service_command(lambda issued: issued.secret, note=render.issued_token_note)
def token_create(service, *, user_name: str, name: str | None, expires: str):
    """Create an API token for USER and print it once (it is stored hashed)."""
    from governance.identity import parse_duration

    return service.create_token(user=user_name, name=name, lifetime=parse_duration(expires))


@token.command("list")
@click.option("--user", "user_name", metavar="USER", help="Only this user's (admins see everyone's).")
@click.option("--sessions", is_flag=True, help="Include login and dashboard sessions.")
@service_command(render.tokens, as_plain=lambda found: [without(t, "secret_sha256") for t in found])
def token_list(service, *, user_name: str | None, sessions: bool):
    """List tokens (never their secrets): id, user, kind, name, expiry, revoked."""
    return service.list_tokens(user=user_name, include_sessions=sessions)


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@service_command(lambda revoked: f"revoked {revoked.id} ({revoked.kind} of {revoked.user})", json_output=False)
def token_revoke(service, *, token_id: str):
    """Revoke a token or session at once (admins any, others their own)."""
    return service.revoke_token(token_id=token_id)


COMMANDS = [login, logout, whoami, user, token]
