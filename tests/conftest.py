"""Fixtures: a fresh store per test, a factory for seeded stores, and a CLI runner."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner, Result

from governance.cli import cli
from tests.support.credentials import credential_for
from tests.support.stores import QUICK_DEMO, STORES, Seeded, ingest_acs, seed_store, store_kind_for


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
    postgres = request.getfixturevalue("postgres") if request.param == "ducklake" else None
    store_kind_for(request.param, tmp_path, postgres).apply(monkeypatch)
    return request.param


@pytest.fixture
def home(tmp_path: Path, store_kind: str) -> Path:
    return tmp_path / "home"


@pytest.fixture
def make_store(tmp_path: Path, store_kind: str) -> Callable[..., Seeded]:
    """make_store(versions=("1",)) → a store with one user per role and model 'credit'."""

    def make(*, versions: tuple[str, ...] = ("1",), with_model: bool = True, name: str = "home") -> Seeded:
        return seed_store(tmp_path, versions=versions, with_model=with_model, name=name)

    return make


@pytest.fixture
def store(make_store: Callable[..., Seeded]) -> Seeded:
    return make_store()


@pytest.fixture(scope="module", params=STORES)
def make_shared_store(request, tmp_path_factory) -> Callable[..., Seeded]:
    """make_shared_store(**make_store's arguments) → a store built once per module and store kind (file, then
    DuckLake), for tests that leave it as they found it: they only read, or assert that what they tried
    changed nothing. A test takes it with `store.enter(monkeypatch)`, which points its environment at it;
    seeding more into it happens inside `store.kind.active()`."""
    postgres = request.getfixturevalue("postgres") if request.param == "ducklake" else None

    def make(**kwargs) -> Seeded:
        folder = tmp_path_factory.mktemp(f"shared-{request.param}")
        kind = store_kind_for(request.param, folder, postgres)
        with kind.active():
            return seed_store(folder, kind=kind, **kwargs)

    return make


@pytest.fixture(scope="module")
def shared_store(make_shared_store) -> Seeded:
    """make_store()'s store, shared by a module's tests that leave it unchanged (see make_shared_store)."""
    return make_shared_store()


@pytest.fixture
def unchanged_store(shared_store: Seeded, monkeypatch) -> Seeded:
    """The module's shared store, for a test that reads it or asserts it changed nothing."""
    return shared_store.enter(monkeypatch)


@pytest.fixture(scope="module")
def shared_exports(shared_store: Seeded, tmp_path_factory) -> dict[str, Path]:
    """An audit export of the module's shared store in each format (csv, jsonl, parquet), made once."""
    folder = tmp_path_factory.mktemp("exports")
    with shared_store.kind.active():
        for fmt in ("csv", "jsonl", "parquet"):
            shared_store.as_("aud").export_audit(out=folder / fmt, fmt=fmt)
    return {fmt: folder / fmt for fmt in ("csv", "jsonl", "parquet")}


@pytest.fixture
def copy_export(shared_exports: dict[str, Path], unchanged_store: Seeded, tmp_path: Path) -> Callable[[str], Path]:
    """copy_export(fmt) → this test's own copy of the shared store's export in `fmt` (tmp_path/export), for
    tests of offline verification that edit the files; the shared store is `unchanged_store`."""
    def copy(fmt: str = "jsonl") -> Path:
        out = tmp_path / "export"
        shutil.copytree(shared_exports[fmt], out)
        return out

    return copy


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
            env: dict[str, str | None] | None = None) -> Result:
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
    """store with the ACS rows as version 1's eval and reference sets."""
    return ingest_acs(store, acs_files)


@pytest.fixture(scope="module")
def shared_evaluated_store(make_shared_store, acs_files) -> Seeded:
    """evaluated_store's store, shared by a module's tests that leave it unchanged (see make_shared_store)."""
    store = make_shared_store()
    with store.kind.active():
        return ingest_acs(store, acs_files)


# The modules whose tests use the demo store (about 45 s to build): xdist runs them in one test process, so
# that it is built once per run, not once per process. (pytest-xdist's own --dist loadgroup cannot do this
# under pytest 9: the group suffix it writes into a test's id no longer takes.)
DEMO_STORE_MODULES = frozenset({
    "tests/test_demo.py", "tests/test_dossier.py", "tests/test_recompute.py", "tests/test_dashboard_dossier.py",
    "tests/e2e/test_overview.py", "tests/e2e/test_review_workflow.py", "tests/e2e/test_version_page.py"})


def pytest_collection_modifyitems(items):
    strays = sorted({item.nodeid.split("::")[0] for item in items if "demo_store" in getattr(item, "fixturenames", ())}
                    - DEMO_STORE_MODULES)
    if strays:
        raise pytest.UsageError(f"{', '.join(strays)} use the demo store: add them to DEMO_STORE_MODULES in "
                                "tests/conftest.py")


def pytest_xdist_make_scheduler(config, log):
    """Like --dist load (the default under -n), except that the demo store's modules are one unit of work."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class DemoStoreTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "demo store" if nodeid.split("::")[0] in DEMO_STORE_MODULES else nodeid

    return DemoStoreTogether(config, log)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """(home, summary, printed lines) of the reduced demo (QUICK_DEMO), built once per test process: income v1
    blocked, v2 released; employment blocked, in production on an admin override, its review items open.
    Tests that change a store work on a copy (the browser tests' demo_dashboard does)."""
    from governance.demo import run_demo

    home = tmp_path_factory.mktemp("demo") / "home"
    lines: list[str] = []
    return home, run_demo(home, QUICK_DEMO, report=lines.append), lines
