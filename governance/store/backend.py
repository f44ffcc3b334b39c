"""What a store backend is: where the store lives and how one unit of work runs on it.

Two implement it: the embedded DuckDB file (governance.store.file.FileBackend) and DuckLake with a
PostgreSQL catalog (governance.store.ducklake.DuckLakeBackend). The service sees only this protocol.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from typing import Any, Callable, Protocol, TypeVar, cast

import duckdb

T = TypeVar("T")


class Backend(Protocol):
    lock_timeout_s: float
    enforces_keys: bool  # PRIMARY KEY / UNIQUE exist (the file); else the service keeps uniqueness (DuckLake)

    @property
    def identity(self) -> str:
        """What names this store, fit to print: a path, or a catalog with its password redacted."""

    def exists(self) -> bool:
        """Whether the store was created (`govern init`)."""

    def run(self, unit: Callable[[duckdb.DuckDBPyConnection], T], *, create: bool = False) -> T:
        """`unit(connection)` in one transaction, run again on a conflict with bounded backoff."""


def with_backoff(attempt: Callable[[], T], retryable: Callable[[Exception], bool], timeout_s: float,
                 exhausted: Callable[[Exception], Exception]) -> T:
    """`attempt()` until it returns, again after each retryable failure with jittered exponential
    backoff; `exhausted(last failure)` is raised once another wait would pass `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not retryable(exc):
                raise
            last = exc
        if time.monotonic() + delay > deadline:
            raise exhausted(last) from last
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)


def in_transaction(connection: duckdb.DuckDBPyConnection, unit: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """`unit(connection)` in one transaction: committed if it returns, rolled back if it raises."""
    connection.execute("BEGIN TRANSACTION")
    try:
        result = unit(cast(duckdb.DuckDBPyConnection, _WithoutPandasProbe(connection)))
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


class _WithoutPandasProbe:
    """A connection whose statements do not import pandas to bind their parameters.

    DuckDB 1.5's client imports pandas (0.3 s, most of a CLI command's start) on the first bound
    parameter of a process, to ask whether the value is a pandas object. No value can be one before
    pandas is imported, so until then `execute` runs with that import refused: DuckDB then binds as it
    does where pandas is not installed. Only while the process has one thread, so that no other thread's
    `import pandas` can fall in the window. DuckDB 2 checks sys.modules itself; drop this with the pin.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection = connection

    def execute(self, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        return _pandas_refused(self._connection.execute, *args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        return _pandas_refused(self._connection.executemany, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _pandas_refused(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # threading counts the threads it started; _current_frames also sees those started by _thread or C code
    if "pandas" in sys.modules or threading.active_count() != 1 or len(sys._current_frames()) != 1:
        return call(*args, **kwargs)
    sys.modules["pandas"] = None  # type: ignore[assignment]  # the import system's "refuse this import"
    try:
        return call(*args, **kwargs)
    finally:
        if sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def disk_full(exc: Exception) -> bool:
    """The system's words for a full disk (the store's file, its WAL, a DuckLake data file or its catalog)."""
    return "no space left on device" in str(exc).lower()
