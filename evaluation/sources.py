"""Turn what the caller has (a Parquet or CSV path, a DataFrame, an Arrow table) into a DuckDB view
with checked columns, so every metric query runs in place and out of core."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar, Union

import duckdb

from evaluation.errors import MetricInputError

Source = Union[str, Path, Any]  # a path, a pandas DataFrame or a pyarrow Table
T = TypeVar("T")
# A batch of columns copied out of a source (`narrowed`) holds at most this many values (rows × columns) and
# this many columns: 32 MB of doubles, a second or less to copy at a million rows. Each copy reads the source's
# metadata (0.2 s at 10,000 columns) and each query on a copy costs more the wider it is: of 128, 256 and 1,024,
# 256 was the compromise (benchmarks/evaluate_width.py).
BATCH_VALUES = 4_000_000
BATCH_COLUMNS = 256
WIDE = 64  # columns past which a source's per-column queries read batches copied out of it (`narrowed`)


def quote(identifier: str) -> str:
    """Quote a column name that was checked against the source's real columns."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class Columns:
    """Column roles. Drift columns are `features` plus `sensitive`."""

    label: str
    score: str
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

    @property
    def drift_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.features + self.sensitive))


def register(conn: duckdb.DuckDBPyConnection, name: str, source: Source, what: str) -> dict[str, str]:
    """Make `source` queryable as view `name`; return its column types."""
    try:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise MetricInputError(f"the {what} file {path} does not exist.")
            relation = conn.read_parquet(str(path)) if _is_parquet(path) else conn.read_csv(str(path), header=True)
            relation.create_view(name)
        else:
            conn.register(name, source)  # a DataFrame or an Arrow table, scanned in place
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise MetricInputError(f"the {what} data cannot be read ({first}).") from exc
    return {row[0]: row[1] for row in conn.execute(f"DESCRIBE {name}").fetchall()}


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def rescanned_slowly(source: Source, types: dict[str, str]) -> bool:
    """Whether per-column queries should read batches copied out of `source` (`narrowed`) rather than the source:
    every query parses a CSV file whole, and reads a wide source's metadata, which grows with its width. A
    narrow Parquet file or frame is read faster in place (copying its columns cost 7 % at a million rows)."""
    return len(types) > WIDE or (isinstance(source, (str, Path)) and not _is_parquet(Path(source)))


def column_batches(columns: Sequence[T], rows: int, *, at_least: int = 1) -> list[list[T]]:
    """`columns` in consecutive batches for `narrowed`: each at most BATCH_COLUMNS columns and BATCH_VALUES
    values of `rows` rows, and `at_least` batches where there are that many columns (one per worker)."""
    if not columns:
        return []
    size = min(BATCH_COLUMNS, max(1, BATCH_VALUES // max(rows, 1)), max(1, math.ceil(len(columns) / at_least)))
    return [list(columns[start:start + size]) for start in range(0, len(columns), size)]


@contextmanager
def narrowed(conn: duckdb.DuckDBPyConnection, view: str, columns: Sequence[str], name: str, *,
             copy: bool = True) -> Iterator[str]:
    """With `copy` (`rescanned_slowly`), `columns` of `view` copied into the temporary table `name` for the `with`
    block, in the view's row order; without, `view` itself. A query on a view of a file reads the file's metadata,
    which grows with its width (a CSV it parses whole): one query per column of a file of thousands of columns
    took time growing with the width squared; on the copy, each costs what its batch holds."""
    if not copy:
        yield view
        return
    conn.execute(f"CREATE TEMP TABLE {name} AS SELECT {', '.join(map(quote, columns))} FROM {view}")
    try:
        yield name
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def check_columns(types: dict[str, str], columns: Columns, what: str, *, need_label_score: bool = True) -> None:
    wanted: list[tuple[str, str]] = []
    if need_label_score:
        wanted += [("label", columns.label), ("score", columns.score)]
    wanted += [("sensitive", c) for c in columns.sensitive] + [("feature", c) for c in columns.features]
    missing = [f"{role} column {name!r}" for role, name in wanted if name not in types]
    if missing:
        shown = ", ".join(repr(c) for c in list(types)[:12])
        raise MetricInputError(f"the {what} data has no {', no '.join(missing)} (its columns: {shown}).")
    if need_label_score:
        for role, name in (("label", columns.label), ("score", columns.score)):
            if not _numeric(types[name]):
                raise MetricInputError(f"the {role} column {name!r} of the {what} data is {types[name]}, not numeric.")
        if types[columns.score].upper() == "BOOLEAN":  # true/false are decisions, not scores
            raise MetricInputError(f"the score column {columns.score!r} of the {what} data holds true/false, not "
                                   "scores between 0 and 1.")


def check_values(conn: duckdb.DuckDBPyConnection, view: str, columns: Columns, what: str) -> int:
    """One pass over label and score: the same rules as ingest. Returns the row count."""
    y, p = quote(columns.label), quote(columns.score)
    n, bad_label, null_score, bad_score = conn.execute(
        f"SELECT count(*), count(*) FILTER ({y} IS NULL OR {y} NOT IN (0, 1)), count(*) FILTER ({p} IS NULL), "
        f"count(*) FILTER (NOT isfinite(CAST({p} AS DOUBLE)) OR {p} < 0 OR {p} > 1) FROM {view}"
    ).fetchone()
    problems = []
    if bad_label:
        problems.append(f"{bad_label} labels in {columns.label!r} are empty or not 0/1")
    if null_score:
        problems.append(f"{null_score} scores in {columns.score!r} are empty")
    if bad_score:
        problems.append(f"{bad_score} scores in {columns.score!r} are not finite numbers in [0, 1]")
    if problems:
        raise MetricInputError(f"the {what} data cannot be evaluated: " + "; ".join(problems) + ".")
    if n == 0:
        raise MetricInputError(f"the {what} data has no rows.")
    return n


def check_groups(conn: duckdb.DuckDBPyConnection, view: str, columns: Columns, limit: int) -> None:
    """Refuse a sensitive column with more than `limit` groups (an id by mistake would make every
    per-group query enormous)."""
    if not columns.sensitive:
        return
    counts = conn.execute("SELECT " + ", ".join(f"count(DISTINCT {quote(c)})" for c in columns.sensitive)
                          + f" FROM {view}").fetchone()
    over = [f"{c!r} has {n:,}" for c, n in zip(columns.sensitive, counts) if n > limit]
    if over:
        raise MetricInputError(f"too many groups for fairness metrics: {'; '.join(over)} distinct values (at most "
                               f"{limit:,} per sensitive column; GOVERN_MAX_GROUPS raises the limit).")


def single_groups(path: Path, columns: Sequence[str]) -> dict[str, str]:
    """The columns of the Parquet file at `path` that hold one value in every row, each with that value as
    text: fairness compares two groups or more, so a production batch of one group has none to compare."""
    if not columns:
        return {}
    conn = duckdb.connect()
    try:
        found = conn.execute("SELECT " + ", ".join(f"count(DISTINCT {quote(c)}), CAST(min({quote(c)}) AS VARCHAR)"
                                                   for c in columns) + " FROM read_parquet(?)",
                             [str(path)]).fetchone() or ()
    finally:
        conn.close()
    return {c: str(found[2 * i + 1]) for i, c in enumerate(columns) if found[2 * i] == 1}


def _numeric(sql_type: str) -> bool:
    return sql_type.upper().split("(")[0] in {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
        "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN", "REAL",
    }


def is_float_type(sql_type: str) -> bool:
    return sql_type.upper().split("(")[0] in {"FLOAT", "DOUBLE", "REAL", "DECIMAL"}


def is_integer_type(sql_type: str) -> bool:
    return _numeric(sql_type) and not is_float_type(sql_type) and sql_type.upper() != "BOOLEAN"


def group_labels(values: Sequence[Any]) -> list[str]:
    return [str(v) for v in values]


def labelled_rows(batch_path: Path, id_column: str, label_files: Sequence[Path]) -> tuple[Any, str]:
    """The rows of the Parquet batch that have labels in `label_files` (Parquet of row_id, label), joined on
    the batch's `id_column`, with the label as a column (named `label` unless the batch has a column of that
    name): (a pyarrow Table, the label column's name)."""
    conn = duckdb.connect()
    try:
        columns = [row[0] for row in conn.execute("DESCRIBE SELECT * FROM read_parquet(?)",
                                                  [str(batch_path)]).fetchall()]
        name = "label" if "label" not in columns else "__govern_label"
        result = conn.execute(
            f"SELECT b.*, l.label AS {quote(name)} FROM read_parquet(?) b "
            f"JOIN read_parquet(?) l ON CAST(b.{quote(id_column)} AS VARCHAR) = l.row_id",
            [str(batch_path), [str(p) for p in label_files]]).arrow()
    finally:
        conn.close()
    table = result.read_all() if hasattr(result, "read_all") else result
    return table, name
