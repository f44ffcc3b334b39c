"""The store on DuckLake: a PostgreSQL catalog (metadata, transactions) and Parquet data files, so
several machines run the service against one store.

Selected with `GOVERN_STORE=ducklake:postgres:dbname=D host=H port=P user=U` and `GOVERN_DATA_PATH`
(where DuckLake writes its Parquet files: a shared folder, or object storage through the httpfs
extension). The extensions load offline from the `duckdb-extension-ducklake` and
`duckdb-extension-postgres` wheels, by file path.

Unlike the embedded file, DuckLake has no lock to wait for: many clients write at once with snapshot
isolation, and a transaction whose changes collide with one committed since it began fails at
commit and is run again. DuckLake has no PRIMARY KEY or UNIQUE constraints; the service keeps
uniqueness by serialising every audited write on the audit head (see audit_log.append_event): two
units that both append to the log collide at commit, so a check-then-insert inside a unit is safe.

Extension loading costs a quarter of a second, so each process keeps one in-memory DuckDB instance
with the lake attached (no file lock is involved) and runs each unit of work on a cursor of its own.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Callable, TypeVar

import duckdb

from governance.errors import Conflict, GovernError, InvalidInput, NotFound
from governance.private import private_dir
from governance.store.backend import disk_full, first_line, in_transaction, with_backoff
from governance.store.rows import one_int

T = TypeVar("T")
PREFIX = "ducklake:postgres:"
CATALOG = "govern"
_instances: dict[tuple[str, str, int], duckdb.DuckDBPyConnection] = {}
_guard = threading.Lock()


def extension_files() -> dict[str, Path]:
    """The two extension files, loaded from their installed wheels. The postgres one must be loaded
    under the name its entry point expects (postgres_scanner): a symbolic link with that name, in a
    folder private to this user (0700, owned by them), points at the wheel's file. Nothing is copied
    to a shared place where another user could swap it."""
    import duckdb_extension_ducklake
    import duckdb_extension_postgres

    found = {}
    for name, module in (("ducklake", duckdb_extension_ducklake), ("postgres", duckdb_extension_postgres)):
        files = sorted(Path(module.__file__).parent.rglob(f"v{duckdb.__version__}/*.duckdb_extension"))
        if not files:
            raise GovernError(f"the {name} extension wheel has no build for DuckDB {duckdb.__version__}; install "
                              f"duckdb-extension-{name}=={duckdb.__version__}.")
        found[name] = files[0].resolve()
    found["postgres"] = _linked(found["postgres"], "postgres_scanner.duckdb_extension")
    return found


def _linked(target: Path, link_name: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = private_dir(cache / "govern" / f"duckdb-extensions-{duckdb.__version__}")
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise GovernError(f"{folder} must belong to you and be private (0700) to load DuckDB extensions from it.")
    link = folder / link_name
    if not (link.is_symlink() and Path(os.readlink(link)) == target):
        scratch = folder / f".{link_name}.{os.getpid()}"
        scratch.unlink(missing_ok=True)
        scratch.symlink_to(target)
        scratch.replace(link)
    return link


def parse_store(value: str) -> str:
    """The libpq connection string of a `ducklake:postgres:...` store setting."""
    if not value.startswith(PREFIX) or not value[len(PREFIX):].strip():
        raise InvalidInput(f"GOVERN_STORE must be empty (the embedded file) or {PREFIX}dbname=D host=H port=P "
                           f"user=U, not {redact(value)!r}.")
    return value[len(PREFIX):].strip()


_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(conninfo: str) -> str:
    """A connection string fit to print: its password replaced by ***."""
    return _PASSWORD.sub(r"\1***", conninfo)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckLakeBackend:
    """Units of work on a DuckLake store (see governance.store.backend.Backend)."""

    enforces_keys = False  # DuckLake has no PRIMARY KEY / UNIQUE: the service keeps uniqueness (module doc)

    def __init__(self, conninfo: str, data_path: Path, *, lock_timeout_s: float = 30.0) -> None:
        self.conninfo = conninfo
        self.data_path = Path(data_path)
        self.lock_timeout_s = lock_timeout_s

    @property
    def identity(self) -> str:
        """The catalog and data path, never the password."""
        return f"{PREFIX}{redact(self.conninfo)} data={self.data_path}"

    def _instance(self) -> duckdb.DuckDBPyConnection:
        key = (self.conninfo, str(self.data_path), os.getpid())  # a forked child builds its own
        with _guard:
            found = _instances.get(key)
            if found is None:
                files = extension_files()
                found = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                           "autoload_known_extensions": False})
                found.execute(f"LOAD {_quote(str(files['postgres']))}")
                found.execute(f"LOAD {_quote(str(files['ducklake']))}")
                self.data_path.mkdir(parents=True, exist_ok=True)
                try:
                    found.execute(f"ATTACH {_quote('ducklake:postgres:' + self.conninfo)} AS {CATALOG} "
                                  f"(DATA_PATH {_quote(str(self.data_path) + '/')})")
                except duckdb.Error as exc:
                    found.close()
                    detail = redact(first_line(exc)).replace(self.conninfo, redact(self.conninfo))
                    raise GovernError(f"cannot attach the DuckLake store ({detail}); check GOVERN_STORE "
                                      "and that PostgreSQL is reachable.") from None
                _instances[key] = found
            return found

    def exists(self) -> bool:
        cursor = self._instance().cursor()
        try:
            found = one_int(cursor, "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = "
                            "'schema_migrations'", [CATALOG])
            return bool(found)
        finally:
            cursor.close()

    def run(self, unit: Callable[[duckdb.DuckDBPyConnection], T], *, create: bool = False) -> T:
        if not create and not self.exists():
            raise NotFound(f"no govern store in the DuckLake catalog {redact(self.conninfo)!r}; "
                           "run `govern init` first.")

        def attempt() -> T:
            cursor = self._instance().cursor()
            try:
                cursor.execute(f"USE {CATALOG}")
                return in_transaction(cursor, unit)
            finally:
                cursor.close()

        # A concurrent commit collided with this one: run the unit again on fresh state. A full disk (the data
        # path's or the catalog server's) is not retried: waiting frees no space.
        try:
            return with_backoff(attempt, lambda exc: isinstance(exc, (duckdb.TransactionException,
                                                                      duckdb.ConstraintException))
                                and not disk_full(exc), self.lock_timeout_s, self._exhausted)
        except duckdb.Error as exc:
            if not disk_full(exc):
                raise
            raise GovernError(f"the DuckLake store could not be written ({first_line(exc)}); nothing was changed: "
                              f"free some space under {self.data_path} or on the catalog's server and run it "
                              "again.") from exc

    def _exhausted(self, exc: Exception) -> Exception:
        return Conflict(f"the change kept colliding with concurrent changes for {self.lock_timeout_s:g} s and "
                        f"was not applied ({first_line(exc)}); run it again.")
