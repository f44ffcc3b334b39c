"""Rows as the store reads them. DuckDB types every row as `tuple[Any, ...]` and `fetchone()` as possibly
None; these helpers say what a statement guarantees, so the entity modules need neither casts nor ignores."""

from __future__ import annotations

from typing import Any

import duckdb

Row = tuple[Any, ...]


def one_row(conn: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> Row:
    """The row of a statement that always yields exactly one (an aggregate without GROUP BY, the count an
    UPDATE reports); no row means the SQL is wrong, not the data, so that raises."""
    row = conn.execute(sql, parameters).fetchone()
    if row is None:
        raise RuntimeError(f"the store returned no row for a statement that always returns one: {sql}")
    return row


def one_int(conn: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> int:
    """The integer in the first column of `one_row`: a count(*), a next sequence number, rows changed."""
    return int(one_row(conn, sql, parameters)[0])
