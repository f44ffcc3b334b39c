"""Fixtures: a fresh store per test, a factory for seeded stores, and a CLI runner."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner, Result

from governance.cli import cli
from governance.service import Service
from tests.support.credentials import TOKENS, credential_for
from tests.support.stores import ACS_ROLES, STORES, USERS, Seeded


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster for the DuckLake stores, started on first use, stopped at the end."""
    from governance.local_postgres import Cluster

    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=STORES)
def store_kind(request, tmp_path: Path, monkeypatch) -> str:
    """Every test that makes a store runs on the embedded file and on DuckLake (its own PostgreSQL
    database and data folder); tests about the file itself pin `file` with indirect parametrisation."""
    if request.param == "ducklake":
        cluster = request.getfixturevalue("postgres")
        monkeypatch.setenv("GOVERN_STORE", f"ducklake:postgres:{cluster.new_database()}")
        monkeypatch.setenv("GOVERN_DATA_PATH", str(tmp_path / "lake"))
    else:
        monkeypatch.delenv("GOVERN_STORE", raising=False)
        monkeypatch.delenv("GOVERN_DATA_PATH", raising=False)
    return request.param


@pytest.fixture
def home(tmp_path: Path, store_kind: str) -> Path:
    return tmp_path / "home"


@pytest.fixture
def make_store(tmp_path: Path, store_kind: str) -> Callable[..., Seeded]:
    """make_store(versions=("1",)) → a store with one user per role and model 'credit'."""

    def make(*, versions: tuple[str, ...] = ("1",), with_model: bool = True, name: str = "home") -> Seeded:
        store_home = tmp_path / name
        artifact = tmp_path / f"{name}-model.bin"
        artifact.write_bytes(b"weights for " + name.encode())
        Service.open(home=store_home).init(admin="ada")
        admin = Service.open(home=store_home, actor="ada")
        for user, role in USERS.items():
            if role != "admin":
                admin.add_user(name=user, role=role)
        if with_model:
            engineer = Service.open(home=store_home, actor="eng")
            engineer.register_model(name="credit", description="credit default", risk_tier="high")
            for version in versions:
                engineer.register_version(model="credit", version=version, artifact=artifact)
        for user in USERS:  # each seeded user's CLI credential, made now so a test's snapshot already holds it
            TOKENS[(str(store_home), user)] = admin.create_token(user=user, name="tests").secret
        return Seeded(store_home, artifact)

    return make


@pytest.fixture
def store(make_store: Callable[..., Seeded]) -> Seeded:
    return make_store()


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch) -> Path:
    """Saved CLI sessions go to a folder of the test's own; no credential leaks in from the environment."""
    folder = tmp_path / "config"
    monkeypatch.setenv("GOVERN_CONFIG_DIR", str(folder))
    for name in ("GOVERN_TOKEN", "GOVERN_USER", "GOVERN_AUDIT_KEY", "GOVERN_KEY_FILE", "GOVERN_WITNESS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """run_cli(home, *args, as_=USER, input=TEXT): the real CLI in-process, as a user would call it, proving
    USER with an API token (GOVERN_TOKEN) an admin created for them."""
    def run(home: Path, *args: str, as_: str | None = None, input: str | None = None,
            env: dict[str, str] | None = None) -> Result:
        prefix = ["--home", str(home)] + (["--as", as_] if as_ else [])
        environment = dict(env or {})
        if as_ and "GOVERN_TOKEN" not in environment:
            token = credential_for(home, as_)
            if token:
                environment["GOVERN_TOKEN"] = token
        return CliRunner().invoke(cli, prefix + [str(a) for a in args], input=input, env=environment,
                                  catch_exceptions=False)

    return run


@pytest.fixture(scope="module")
def acs_files(tmp_path_factory):
    from tests.support import datasets

    case = datasets.acs()
    folder = tmp_path_factory.mktemp("acs")
    current, reference = folder / "current.parquet", folder / "reference.csv"
    case["current"].to_parquet(current, index=False)
    case["reference"].to_csv(reference, index=False)
    return current, reference


@pytest.fixture
def evaluated_store(store, acs_files):
    current, reference = acs_files
    engineer = store.as_("eng")
    engineer.ingest(model="credit", version="1", file=current, split="eval", roles=ACS_ROLES)
    engineer.ingest(model="credit", version="1", file=reference, split="reference", roles=ACS_ROLES)
    return store
