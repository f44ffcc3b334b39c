"""Open the store per unit of work; retry lock conflicts and commit conflicts with bounded backoff.

DuckDB lets one process hold a database file at a time (readers included), so no process keeps a
connection: each unit of work opens, runs one transaction, commits and closes. Inside one process,
threads share the file and their transactions may conflict at commit (a duplicate key appended
concurrently): the whole unit is run again, which is why a unit is a function, not a block.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Callable, TypeVar

import duckdb

from governance.errors import Conflict, GovernError, NotFound, StoreBusy
from governance.private import private_file
from governance.store.backend import disk_full, first_line, in_transaction, with_backoff

T = TypeVar("T")

_LOCK_PID = re.compile(r"\(PID (\d+)\)")


class FileBackend:
    """The embedded store: a DuckDB file opened only for the length of one transaction at a time."""

    enforces_keys = True  # PRIMARY KEY and UNIQUE refuse duplicates

    def __init__(self, path: Path, *, lock_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s

    @property
    def identity(self) -> str:
        return str(self.path.resolve())

    def exists(self) -> bool:
        return self.path.exists()

    def run(self, unit: Callable[[duckdb.DuckDBPyConnection], T], *, create: bool = False) -> T:
        """Run `unit(connection)` inside one transaction and return its result.

        Lock conflicts (another process holds the file) and commit conflicts (another transaction
        of this process appended the same key) are retried with jittered exponential backoff up
        to the lock timeout. Raises StoreBusy when it runs out, NotFound when the store does not
        exist (unless `create`), and whatever domain error `unit` raises (after rolling back).
        """
        if not create and not self.exists():
            raise NotFound(f"no govern store at {self.path.parent}; run `govern init` first.")
        try:
            return with_backoff(lambda: self._run_once(unit), _retryable, self.lock_timeout_s, self._exhausted)
        except duckdb.Error as exc:
            if _damaged(exc):  # read while the unit ran, not when the file opened
                raise StoreUnreadable(f"the store {self.path} is damaged ({first_line(exc)}); nothing was changed: "
                                      "restore it from a backup.") from exc
            if not disk_full(exc):
                raise
            raise GovernError(f"the store {self.path} could not be written ({first_line(exc)}); nothing was changed: "
                              "free some space and run it again.") from exc

    def _run_once(self, unit: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One unit at a time per file within this process: DuckDB's per-process instance cache
        # races when one thread closes the last connection while another opens the file, and
        # across processes the file lock serialises units anyway.
        with _process_lock(self.path):
            return self._run_locked(unit)

    def _run_locked(self, unit: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        try:
            connection = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.IOException) and _lock_conflict(exc):
                raise  # retried by run()
            raise StoreUnreadable(f"cannot open the store {self.path}: {first_line(exc)}") from exc
        try:
            return in_transaction(connection, unit)
        finally:
            connection.close()
            # Private to its owner (password hashes live here), whatever the umask was when DuckDB created it.
            private_file(self.path)
            private_file(self.path.with_name(self.path.name + ".wal"))

    def _exhausted(self, exc: Exception) -> Exception:
        if isinstance(exc, (duckdb.TransactionException, duckdb.ConstraintException)):
            return Conflict(
                f"the change kept colliding with concurrent changes for {self.lock_timeout_s:g} s "
                f"and was not applied ({first_line(exc)}); run it again."
            )
        holder = _LOCK_PID.search(str(exc))
        who = f"process {holder.group(1)}" if holder else "another process"
        return StoreBusy(
            f"the store {self.path} stayed locked by {who} for {self.lock_timeout_s:g} s; "
            "try again when it finishes, or wait longer with --lock-timeout / GOVERN_LOCK_TIMEOUT."
        )


def _retryable(exc: Exception) -> bool:
    # Another process holds the file, or a concurrent transaction committed the same key first (the
    # audit head, say): run the unit again on fresh state. A real duplicate is then caught by the
    # unit's own check and reported in words; one it does not check ends as Conflict.
    if disk_full(exc):
        return False  # no retry frees space
    if isinstance(exc, duckdb.IOException):
        return _lock_conflict(exc)
    return isinstance(exc, (duckdb.TransactionException, duckdb.ConstraintException))


def _lock_conflict(exc: Exception) -> bool:
    """Another process holds the file's lock ("Could not set lock …", "Conflicting lock …"), not a failed
    read "in block at location …" (a damaged file, which waiting does not mend)."""
    return re.search(r"\block\b", str(exc), re.IGNORECASE) is not None


def _damaged(exc: Exception) -> bool:
    """A failed checksum or a corrupt block: DuckDB's words for a damaged file."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and not _lock_conflict(exc) and ("checksum" in text
                                                                          or "corrupt database" in text)


class StoreUnreadable(GovernError):
    """The database file exists but is not a DuckDB store this version can open."""


_process_locks: dict[Path, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(path.resolve(), threading.Lock())
