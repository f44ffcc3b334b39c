"""The permission matrix of docs/design.md, enforced by the service for every role and action."""

from __future__ import annotations

import pytest

from governance.errors import Conflict, NotAllowed
from governance.ingest import ColumnRoles
from governance.roles import PERMISSIONS, Action, Role, authorize
from governance.service import Service
from tests.support.frames import predictions_frame
from tests.support.stores import USERS, run_sql, snapshot

# The matrix exactly as docs/design.md draws it, written out independently of governance.roles.
MATRIX = {
    "view": {"viewer", "reviewer", "engineer", "auditor", "admin"},
    "register": {"engineer", "admin"},
    "ingest": {"engineer", "admin"},
    "evaluate": {"engineer", "admin"},
    "gate": {"engineer", "admin"},
    "judge": {"reviewer", "admin"},
    "sign_off": {"reviewer", "admin"},
    "release": {"engineer", "admin"},
    "rollback": {"engineer", "admin"},
    "audit": {"auditor", "admin"},
    "override": {"admin"},
    "manage_users": {"admin"},
    "manage_policies": {"admin"},
    "set_release_rules": {"admin"},
    "resolve_escalation": {"engineer", "admin"},
    "rewitness": {"auditor"},
}


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.name.lower())
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_matrix_allows_and_refuses_each_role_and_action(role, action):
    allowed = role.value in MATRIX[action.name.lower()]
    assert (role in PERMISSIONS[action]) == allowed
    if allowed:
        authorize(user="u", role=role, action=action)
    else:
        with pytest.raises(NotAllowed, match="that needs the role"):
            authorize(user="u", role=role, action=action)


def test_refusal_names_the_user_their_role_and_the_roles_needed():
    with pytest.raises(NotAllowed) as caught:
        authorize(user="vic", role=Role.VIEWER, action=Action.REGISTER)
    assert str(caught.value) == (
        "user 'vic' is a viewer and may not register models, versions and feedback datasets: that needs the role "
        "engineer or admin."
    )
    with pytest.raises(NotAllowed) as caught:
        authorize(user="eng", role=Role.ENGINEER, action=Action.OVERRIDE)
    assert str(caught.value) == "user 'eng' is an engineer and may not override a gate: that needs the role admin."


def _actions(store, tmp_path):
    """One real service call per implemented action, each on fresh names so they can repeat."""
    csv = tmp_path / "preds.csv"
    predictions_frame(20).to_csv(csv, index=False)
    counter = iter(range(1000))

    def register(s):
        n = next(counter)
        s.register_model(name=f"m{n}")
        s.register_version(model=f"m{n}", version="1", artifact=store.artifact)

    engineer = Service.open(home=store.home, actor="eng")
    engineer.ingest(model="credit", version="1", file=csv, split="eval", roles=ColumnRoles(id="id", sensitive=("sex",)))
    engineer.evaluate(model="credit", version="1", resamples=0)
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: p\nversion: 1\nrules:\n  - {id: auc, metric: performance.roc_auc, min: 0.0}\n")
    Service.open(home=store.home, actor="ada").register_policy(file=policy)
    Service.open(home=store.home, actor="ada").assign_policy(policy="p", model="credit")
    exported = tmp_path / "exported"
    Service.open(home=store.home, actor="ada").export_audit(out=exported)
    return {
        "view": lambda s: (s.status(), s.show_version(model="credit", version="1"), s.list_models()),
        "register": register,
        "ingest": lambda s: s.ingest(model="credit", version="1", file=csv, split="eval",
                                     roles=ColumnRoles(id="id", sensitive=("sex",))),
        "evaluate": lambda s: s.evaluate(model="credit", version="1", resamples=0),
        "gate": lambda s: s.gate(model="credit", version="1", policy=policy),
        "audit": lambda s: (s.verify_audit(), s.export_audit(out=tmp_path / f"export{next(counter)}")),
        "manage_users": lambda s: (s.add_user(name=f"u{next(counter)}", role="viewer"), s.list_users()),
        "rewitness": lambda s: s.rewitness(reason="checked against the export", against=exported),
    }


@pytest.mark.parametrize("user", list(USERS))
def test_service_enforces_the_matrix_for_every_implemented_action(store, tmp_path, user):
    role = USERS[user]
    for action, call in _actions(store, tmp_path).items():
        if role in MATRIX[action]:
            call(store.as_(user))
        else:
            with pytest.raises(NotAllowed, match=f"^user '{user}' is an? {role} and may not"):
                call(store.as_(user))


def test_unknown_user_is_refused_with_exit_2_naming_the_role_needed(unchanged_store, run_cli):
    store = unchanged_store
    before = snapshot(store.home)
    result = run_cli(store.home, "model", "register", "m9", as_="nobody")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: you are not logged in as 'nobody' on this store: run `govern login nobody`, or set GOVERN_TOKEN to "
        "an API token an admin created (to register models, versions and feedback datasets you need the role "
        "engineer or admin).\n"
    )
    with pytest.raises(NotAllowed, match="^unknown user 'nobody': an admin adds users"):
        store.as_("nobody").register_model(name="m9")
    assert snapshot(store.home) == before


def test_missing_acting_user_is_refused_with_exit_2(unchanged_store, run_cli):
    store = unchanged_store
    before = snapshot(store.home)
    result = run_cli(store.home, "audit", "verify")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no acting user: log in with `govern login USER` or set GOVERN_TOKEN "
        "(to export and verify the audit log you need the role auditor or admin).\n"
    )
    assert snapshot(store.home) == before


def test_refused_cli_call_exits_2_and_changes_nothing(unchanged_store, run_cli):
    store = unchanged_store
    run_cli(store.home, "whoami", as_="eng")  # eng's credential exists before the snapshot
    before = snapshot(store.home)
    result = run_cli(store.home, "user", "add", "mallory", "--role", "admin", as_="eng")
    assert result.exit_code == 2
    assert "may not manage users: that needs the role admin." in result.stderr
    assert snapshot(store.home) == before


def test_passwords_are_stored_only_as_argon2_hashes(store, run_cli):
    result = run_cli(store.home, "user", "add", "pam", "--role", "reviewer", "--password-stdin", as_="ada",
                     input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    stored = run_sql(store.home, lambda conn: conn.execute(
        "SELECT password_hash FROM users WHERE name = 'pam'").fetchone()[0])
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    session = store.as_(None).sign_in(name="pam", password="correct horse battery", client="test")
    assert session.role == "reviewer" and session.kind == "dashboard"
    with pytest.raises(NotAllowed, match="^unknown user or wrong password.$"):
        store.as_(None).sign_in(name="pam", password="wrong password!", client="test")


def test_an_external_identity_gets_only_the_role_the_store_gives(store, monkeypatch):
    with pytest.raises(NotAllowed, match="needs GOVERN_OIDC_DOMAIN"):
        store.as_(None).sign_in_external(email="rey@example.com", email_verified=True)
    monkeypatch.setenv("GOVERN_OIDC_DOMAIN", "Example.com")
    session = store.as_(None).sign_in_external(email="rey@example.com", email_verified=True)
    assert (session.user, session.role, session.kind) == ("rey", "reviewer", "oidc")
    with pytest.raises(NotAllowed, match="^mallory@example.com signed in, but 'mallory' is not an active user"):
        store.as_(None).sign_in_external(email="mallory@example.com")
    # A display name is no identity (providers let people edit it), nor is an unverified address or another
    # domain's: the dashboard had signed in whoever called themselves "ada".
    for email, verified, why in (("ada", None, "vouched for no email address"),
                                 ("ada@example.com", False, "has not verified ada@example.com"),
                                 ("ada@evil.example", True, "is not an address at example.com")):
        with pytest.raises(NotAllowed, match=why):
            store.as_(None).sign_in_external(email=email, email_verified=verified)
    # Mailbox names ignore case: Rey@ is rey, and no second user "Rey" can be made for it (one person had
    # signed in as ravi and as Ravi and given two approvals no admin issued).
    assert store.as_(None).sign_in_external(email="Rey@example.com", email_verified=True).user == "rey"
    before = snapshot(store.home)
    with pytest.raises(Conflict, match="^user 'rey' already exists; names must differ by more than case"):
        store.as_("ada").add_user(name="Rey", role="reviewer", password="another passphrase")
    assert snapshot(store.home) == before
    run_sql(store.home, lambda conn: conn.execute(  # a store from before the rule may hold both
        "INSERT INTO users (name, role, password_hash, created_at, created_by) SELECT 'REY', role, password_hash, "
        "created_at, created_by FROM users WHERE name = 'rey'"))
    with pytest.raises(NotAllowed, match=r"names more than one govern user \(REY, rey\)"):
        store.as_(None).sign_in_external(email="rey@example.com", email_verified=True)
    # a mailbox name no govern user can have: the database's lower() had mapped U+0130 (İ) to i, so vİc@ was vic
    with pytest.raises(NotAllowed, match="its mailbox name is not one a govern user can have"):
        store.as_(None).sign_in_external(email="v\u0130c@example.com", email_verified=True)
