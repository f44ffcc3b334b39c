"""The stores the suite runs on, the seeded users, and reading a store behind the service's back."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from governance.demo import DemoConfig
from governance.ingest import ColumnRoles
from governance.local_postgres import Cluster
from governance.service import Service
from governance.store import ducklake
from tests.support.credentials import TOKENS

# The stores every store test runs on (GOVERN_TEST_STORES=file runs the file alone, e.g. without PostgreSQL).
STORES = [kind for kind in os.environ.get("GOVERN_TEST_STORES", "file,ducklake").split(",") if kind]
# One user per role; the admin bootstraps the store.
USERS = {"ada": "admin", "vic": "viewer", "rey": "reviewer", "eng": "engineer", "aud": "auditor"}
# The roles of the ACS employment files (tests/support/datasets.acs) as the tests ingest them.
ACS_ROLES = ColumnRoles(label="employed", score="predicted_probability", sensitive=("SEX", "RAC1P"),
                        features=("AGEP", "SCHL", "MAR", "DIS"))

# Pins a test to the embedded file: for tests about the file itself (its lock, its WAL, its permissions).
file_only = pytest.mark.parametrize("store_kind", ["file"], indirect=True)
# Pins a test to DuckLake, whatever GOVERN_TEST_STORES says: tests of what only DuckLake must guarantee.
ducklake_only = pytest.mark.parametrize("store_kind", ["ducklake"], indirect=True)


@dataclass(frozen=True)
class StoreKind:
    """Which store a test runs on, as the settings the service reads: GOVERN_STORE and GOVERN_DATA_PATH
    (None: unset, the embedded file)."""

    name: str
    env: dict[str, str | None] = field(default_factory=dict)

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for key in ("GOVERN_STORE", "GOVERN_DATA_PATH"):
            if self.env.get(key):
                monkeypatch.setenv(key, self.env[key])
            else:
                monkeypatch.delenv(key, raising=False)

    @contextmanager
    def active(self) -> Iterator[None]:
        """These settings in the environment for the block (building a store shared by several tests)."""
        with pytest.MonkeyPatch.context() as monkeypatch:
            self.apply(monkeypatch)
            yield


def store_kind_for(name: str, folder: Path, postgres=None) -> StoreKind:
    """The settings of a new store of kind `name` whose DuckLake data (if any) goes under `folder`;
    `postgres`: the cluster a DuckLake store gets its own database from."""
    if name == "ducklake":
        conninfo = postgres.new_database()
        _CLUSTERS[conninfo] = postgres
        return StoreKind(name, {"GOVERN_STORE": f"ducklake:postgres:{conninfo}",
                                "GOVERN_DATA_PATH": str(folder / "lake")})
    return StoreKind(name, {})


_CLUSTERS: dict[str, Cluster] = {}  # each DuckLake test database's libpq string → its cluster (to copy into it)


@dataclass
class Seeded:
    """A store make_store built: its home and the artifact file its versions were registered with; `kind`
    for a store shared by several tests, whose settings each test puts in its environment with `enter`."""

    home: Path
    artifact: Path
    kind: StoreKind | None = None

    def enter(self, monkeypatch: pytest.MonkeyPatch) -> Seeded:
        """Point this test's environment (GOVERN_STORE, GOVERN_DATA_PATH) at this store; returns it."""
        if self.kind is not None:
            self.kind.apply(monkeypatch)
        return self

    def as_(self, user: str) -> Service:
        return Service.open(home=self.home, actor=user, lock_timeout_s=30)

    def assign_policy(self, policy: Path | str, *, model: str = "credit") -> None:
        """As the admin: register a policy file (or take a shipped pack's name) and assign it to `model`, so
        binding gates run it."""
        admin = self.as_("ada")
        name = str(policy) if str(policy) in ("default", "strict") else admin.register_policy(file=Path(policy)).name
        admin.assign_policy(policy=name, model=model)


def seed_store(folder: Path, *, versions: tuple[str, ...] = ("1",), with_model: bool = True,
               name: str = "home", kind: StoreKind | None = None) -> Seeded:
    """A store in folder/name on the store the environment names, with one user per role (ada the admin),
    model 'credit' (risk tier high) with `versions`, and each user's API token in TOKENS.

    Built once per process, store kind and arguments, then copied: building takes 0.5 s on the file and
    1.3 s on DuckLake (14 units of work), a copy 0.01 s and 0.2 s (PostgreSQL copies the catalog from
    the template database). Copies share the template's signing key and token secrets."""
    store_home = folder / name
    artifact = folder / f"{name}-model.bin"
    artifact.write_bytes(b"weights for " + name.encode())
    if os.environ.get("GOVERN_KEY_FILE") or os.environ.get("GOVERN_WITNESS_FILE"):  # not in the home: no copy
        return _build(store_home, artifact, versions=versions, with_model=with_model, kind=kind)
    template = _template(versions, with_model, name)
    shutil.copytree(template.home, store_home)
    conninfo = _ducklake_conninfo()
    if conninfo is not None and template.kind is not None:
        _copy_catalog(template.kind, conninfo, Path(os.environ["GOVERN_DATA_PATH"]))
    for user in USERS:
        TOKENS[(str(store_home), user)] = TOKENS[(str(template.home), user)]
    return Seeded(store_home, artifact, kind)


def _build(store_home: Path, artifact: Path, *, versions: tuple[str, ...], with_model: bool,
           kind: StoreKind | None) -> Seeded:
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
    return Seeded(store_home, artifact, kind)


_templates: dict[tuple, Seeded] = {}


def _template(versions: tuple[str, ...], with_model: bool, name: str) -> Seeded:
    """The seeded store copies are made from, for the store kind the environment names (DuckLake: on the
    same cluster as the test's database)."""
    conninfo = _ducklake_conninfo()
    cluster = _CLUSTERS[conninfo] if conninfo is not None else None
    key = (cluster.port if cluster else None, tuple(versions), with_model, name)
    if key not in _templates:
        folder = Path(tempfile.mkdtemp(prefix="govern-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        artifact = folder / f"{name}-model.bin"
        artifact.write_bytes(b"weights for " + name.encode())
        kind = store_kind_for("ducklake" if cluster else "file", folder, cluster)
        with kind.active():
            seeded = _build(folder / name, artifact, versions=versions, with_model=with_model, kind=kind)
        if cluster is not None:
            template_conninfo = _conninfo(kind)
            for instance_key in [k for k in ducklake._instances if k[0] == template_conninfo]:  # PostgreSQL copies
                ducklake._instances.pop(instance_key).close()  # only a database nobody is connected to
        _templates[key] = seeded
    return _templates[key]


def _ducklake_conninfo() -> str | None:
    setting = os.environ.get("GOVERN_STORE") or ""
    return setting.removeprefix("ducklake:postgres:") if setting.startswith("ducklake:postgres:") else None


def _conninfo(kind: StoreKind) -> str:
    return (kind.env["GOVERN_STORE"] or "").removeprefix("ducklake:postgres:")


def _copy_catalog(template: StoreKind, target: str, data_path: Path) -> None:
    """Make the (new, unused) database of `target` a copy of the template's, its DuckLake data path moved to
    `data_path`: DuckLake refuses to attach a catalog whose recorded data path differs."""
    cluster, name = _CLUSTERS[target], _dbname(target)
    cluster.run("dropdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", name)
    cluster.run("createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-T",
                _dbname(_conninfo(template)), name)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:  # the path goes in as a psql variable
        script.write("UPDATE ducklake_metadata SET value = :'path' WHERE key = 'data_path';\n")
        script.flush()
        os.chmod(script.name, 0o644)  # psql may run as the postgres user
        cluster.run("psql", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-d", name, "-v",
                    "ON_ERROR_STOP=1", "-v", f"path={data_path}/", "-qf", script.name)
    shutil.copytree(template.env["GOVERN_DATA_PATH"] or "", data_path, dirs_exist_ok=True)


def _dbname(conninfo: str) -> str:
    return dict(part.split("=", 1) for part in conninfo.split())["dbname"]


def ingest_acs(store: Seeded, files: tuple[Path, Path], *, version: str = "1") -> Seeded:
    """The ACS employment rows (conftest's acs_files) as `version`'s eval and reference sets."""
    current, reference = files
    engineer = store.as_("eng")
    engineer.ingest(model="credit", version=version, file=current, split="eval", roles=ACS_ROLES)
    engineer.ingest(model="credit", version=version, file=reference, split="reference", roles=ACS_ROLES)
    return store


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


# The reduced demo the tests run (a third of Adult's rows, few epochs, few resamples).
QUICK_DEMO = DemoConfig(sample=0.3, epochs=8, resamples=20, gold_items=6)
