"""Fixtures: a fresh store per test, a factory for seeded stores, and a CLI runner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from governance.cli import cli
from governance.ingest import ColumnRoles
from governance.service import Service
from tests.credentials import TOKENS, credential_for  # noqa: F401 (credential_for: for the tests)

DATA = Path(__file__).parent / "data"
# The stores every store test runs on (GOVERN_TEST_STORES=file runs the file alone, e.g. without PostgreSQL).
STORES = [kind for kind in os.environ.get("GOVERN_TEST_STORES", "file,ducklake").split(",") if kind]
# Long-running or process-replacing commands the generated-argument test leaves to their own tests.
COMMANDS_SKIPPED_BY_FUZZ = {"demo", "dashboard", "worker", "train"}
# One user per role; the admin bootstraps the store.
USERS = {"ada": "admin", "vic": "viewer", "rey": "reviewer", "eng": "engineer", "aud": "auditor"}


@dataclass
class Seeded:
    home: Path
    artifact: Path

    def as_(self, user: str) -> Service:
        return Service.open(home=self.home, actor=user, lock_timeout_s=30)

    def assign_policy(self, policy: Path | str, *, model: str = "credit") -> None:
        """As the admin: register a policy file (or take a shipped pack's name) and assign it to `model`, so
        binding gates run it."""
        admin = self.as_("ada")
        name = str(policy) if str(policy) in ("default", "strict") else admin.register_policy(file=Path(policy)).name
        admin.assign_policy(policy=name, model=model)


def predictions_frame(n: int = 200, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "label": rng.integers(0, 2, n),
        "score": rng.random(n).round(6),
        "sex": rng.choice(["female", "male"], n),
        "age": rng.integers(18, 90, n),
        "income": rng.normal(50_000, 9_000, n).round(2),
    })


def german_frame() -> pd.DataFrame:
    """UCI German credit (real data): 20 coded attributes and `label` (1 = bad credit)."""
    frame = pd.read_csv(DATA / "german.data", sep=" ", header=None)
    frame.columns = [f"a{i:02d}" for i in range(1, 21)] + ["label"]
    frame["label"] = (frame["label"] == 2).astype(int)
    return frame


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster for the DuckLake stores, started on first use, stopped at the end."""
    from tests.postgres import Cluster

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


file_only = pytest.mark.parametrize("store_kind", ["file"], indirect=True)


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


def run_sql(home: Path, unit: Callable):
    """Run `unit(connection)` in one transaction on the store of `home` (whichever kind it is): for
    tests that read or tamper with tables behind the service's back."""
    from governance.config import resolve_settings

    return resolve_settings(home=home).database().run(unit)


def snapshot(home: Path) -> dict:
    """Every row of every table plus the artifact files: equal snapshots mean an unchanged store."""
    def unit(conn) -> dict:
        tables = [row[0] for row in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY table_name").fetchall()]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}

    state = run_sql(home, unit)
    state["_artifacts"] = sorted(str(p.relative_to(home)) for p in (home / "artifacts" / "sha256").rglob("*")
                                 if p.is_file()) if (home / "artifacts" / "sha256").exists() else []
    return state


ACS_ROLES = ColumnRoles(label="employed", score="predicted_probability", sensitive=("SEX", "RAC1P"),
                    features=("AGEP", "SCHL", "MAR", "DIS"))


@pytest.fixture(scope="module")
def acs_files(tmp_path_factory):
    from tests import datasets

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
