"""What a store backend is: where the store lives and how one unit of work runs on it.

Two implement it: the embedded DuckDB file (governance.store.file.FileBackend) and DuckLake with a
PostgreSQL catalog (governance.store.ducklake.DuckLakeBackend). The service sees only this protocol.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Protocol, TypeVar

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
        result = unit(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
