"""Validate a prediction file completely, then normalise it to Parquet, before the store is touched.

Every problem found (column, kind, first rows) is reported in one InvalidInput message. Nothing
here opens the store: the heavy work runs in a private in-memory DuckDB, so the store's lock is held
only for the short transaction that records the finished prediction set.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import duckdb

from evaluation.intersections import INTERSECTION_SEPARATOR, intersection_name
from evaluation.sources import quote as _quote
from governance.artifacts import sha256_file
from governance.errors import InvalidInput, NotFound
from governance.limits import max_columns, max_decompressed_bytes, max_groups

Split = Literal["reference", "eval", "production", "challenger"]
SPLITS: tuple[str, ...] = ("reference", "eval", "production", "challenger")
_SHOWN_ROWS = 5
# Quotes, semicolons and control characters have no business in a column name; refusing them
# keeps every identifier we quote unambiguous.
# names are always quoted in SQL; control characters only hide things, and zero-width or direction-changing ones
# (U+202E) make one name print as another ('cs\u202ev.lexe' shows as 'csexe.lv')
_BAD_NAME = re.compile('[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]')
# zero-width and bidirectional formatting characters (RE2 syntax, for DuckDB's regexp_matches)
_INVISIBLE = "[\\x{200B}-\\x{200F}\\x{202A}-\\x{202E}\\x{2066}-\\x{2069}\\x{FEFF}]"
_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_LINE_SIZE = re.compile(r"Maximum line size of (\d+) bytes exceeded\. Actual Size:\s*(\d+) bytes")
_CSV_WIDTH = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
ROW = "__govern_row"  # our own row number: a file's column may be called rowid, which hides DuckDB's


@dataclass(frozen=True)
class ColumnRoles:
    """Which columns of the file play which part; features default to every other column. A production
    batch may come without labels (label None): they arrive later, by row id (`govern labels`)."""

    label: str | None = "label"
    score: str = "score"
    id: str | None = None
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    # groups of sensitive columns judged together, e.g. (("sex", "race"),): the feature "sex*race"
    intersections: tuple[tuple[str, ...], ...] = ()

    def named(self) -> list[tuple[str, str]]:
        """(role, column) for every column the roles name explicitly."""
        pairs = [("label", self.label)] if self.label is not None else []
        pairs.append(("score", self.score))
        pairs += [("id", self.id)] if self.id else []
        pairs += [("sensitive", c) for c in self.sensitive]
        pairs += [("feature", c) for c in self.features or ()]
        return pairs


@dataclass(frozen=True)
class PreparedFile:
    """A validated file normalised to Parquet at `scratch`, not yet in the store."""

    scratch: Path
    sha256: str
    source_sha256: str
    source_name: str
    format: str
    row_count: int
    columns: dict[str, str]
    features: list[str]
    label: str | None = None  # the label column found (None: a batch whose labels come later)


@dataclass
class _Problems:
    items: list[str] = field(default_factory=list)

    def add(self, column: str | None, text: str, rows: list[int] | None = None, sample: object = None) -> None:
        where = f"column {column!r}: " if column is not None else ""
        detail = ""
        if rows:
            shown = ", ".join(str(r) for r in rows[:_SHOWN_ROWS])
            detail = f" (row{'s' if len(rows) > 1 else ''} {shown}{', …' if len(rows) > _SHOWN_ROWS else ''}"
            detail += f"; e.g. {sample!r})" if sample is not None else ")"
        self.items.append(where + text + detail)


def _existing_file(path: Path, empty_message: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"file {path} does not exist or is not a regular file.")
    if path.stat().st_size == 0:
        raise InvalidInput(empty_message)
    return path


def detect_format(path: Path) -> str:
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    with open(path, "rb") as handle:
        return "parquet" if handle.read(4) == b"PAR1" else "csv"


def prepare_prediction_file(path: Path, roles: ColumnRoles, scratch: Path, *, delimiter: str = ",",
                            label_optional: bool = False, judged_for_fairness: bool = False,
                            doing: str = "ingest") -> PreparedFile:
    """Validate `path` against `roles` and write the normalised Parquet to `scratch`. With
    `label_optional` (a production batch whose label column was not named), a file without the
    default label column is a batch without labels. With `judged_for_fairness` (the eval and challenger
    splits), each sensitive column must hold two groups or more.

    Raises NotFound for a missing file and InvalidInput naming every problem found.
    """
    with _loaded(path, scratch, delimiter, doing) as (conn, source, fmt, header, problems):
        columns = _column_types(conn)
        if label_optional and roles.label not in columns:
            roles = replace(roles, label=None)
        _check_roles(problems, roles, columns, delimiter)
        _check_nested(problems, columns)
        row_count = conn.execute("SELECT count(*) FROM src").fetchone()[0]
        if row_count == 0:
            problems.add(None, "the file has a header but no data rows")
        if row_count:
            _check_values(conn, problems, roles, present=set(columns), min_groups=2 if judged_for_fairness else 1)
        if problems.items:
            _raise(source, problems, doing)
        named = {r[1] for r in roles.named()}
        features = list(roles.features) if roles.features is not None else [c for c in columns if c not in named]
        wanted = named | set(features)  # built once: per column, 10,000 columns had taken 12 s here
        kept = [c for c in columns if c in wanted]
        out_types = _output_types(conn, roles, kept, columns, fmt)
        select = ", ".join(f"{_cast(c, out_types[c], roles)} AS {_quote(c)}" for c in kept)
        conn.execute(f"COPY (SELECT {select} FROM src ORDER BY {ROW}) TO {_literal(scratch)} (FORMAT parquet)")
    return PreparedFile(
        scratch=scratch, sha256=sha256_file(scratch), source_sha256=sha256_file(source), source_name=source.name,
        format=fmt, row_count=row_count, columns=out_types, features=features, label=roles.label,
    )



@contextmanager
def _loaded(path: Path, scratch: Path, delimiter: str, doing: str
            ) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path, str, list[str], _Problems]]:
    """A user's file (CSV, gzipped CSV or Parquet) checked for a usable header and loaded as table `src` of an
    in-memory connection: yields (conn, the file as given, its format, its header, the problems found so far);
    the connection and any unpacked copy are gone afterwards. Raises InvalidInput saying it cannot `doing`."""
    path = _existing_file(path, f"cannot {doing} {Path(path).name}: the file is empty.")
    source = path
    unpacked = _gunzipped(path, scratch.with_name(scratch.name + ".csv"), doing) if _is_gzip(path) else None
    if unpacked is not None:
        path = unpacked
    fmt = detect_format(path)
    conn = duckdb.connect()
    try:
        refuse_too_wide(path, doing, delimiter)
        header = _header(path, fmt, delimiter, source.name, doing)
        if not header:  # a file of a byte-order mark or blank lines: DuckDB's reader failed on zero columns
            raise InvalidInput(f"cannot {doing} {source.name}: it has no header row (its first line is empty); "
                               "the first line names the columns.")
        if _BAD_NAME.search(source.name):  # it is stored and printed as the set's source: a line break forges lines
            raise InvalidInput(f"cannot {doing} {source.name!r}: its file name has control characters (line breaks, "
                               "tabs); rename the file.")
        refuse_single_delimited_column(source, header, delimiter, doing)
        problems = _Problems()
        _check_names(problems, header)
        if problems.items:
            _raise(source, problems, doing)
        _load(conn, path, fmt, delimiter, header, source.name, doing)
        yield conn, source, fmt, header, problems
    finally:
        conn.close()
        if unpacked is not None:
            unpacked.unlink(missing_ok=True)

def refuse_too_wide(path: Path, doing: str, delimiter: str = ",") -> None:
    """Refuse a file with more columns than GOVERN_MAX_COLUMNS before anything loads it (DuckDB took past a
    quarter of an hour on a million-column header). A missing or gzipped file is left to its reader."""
    path = Path(path)
    if not path.is_file() or _is_gzip(path):
        return
    header = _header(path, detect_format(path), delimiter, path.name, doing)
    if len(header) > max_columns():
        raise InvalidInput(f"cannot {doing} {path.name}: it has {len(header):,} columns, more than the "
                           f"{max_columns():,} a file may have (GOVERN_MAX_COLUMNS raises the limit).")


def _raise(source: Path, problems: _Problems, doing: str = "ingest") -> None:
    count = len(problems.items)
    written = "" if doing == "measure" else ", nothing was written"  # `govern metrics` writes nothing anyway
    raise InvalidInput(f"cannot {doing} {source.name}: {count} problem{'s' if count > 1 else ''}{written}."
                       "\n  - " + "\n  - ".join(problems.items))


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _gunzipped(path: Path, target: Path, doing: str = "ingest") -> Path:
    """Decompress a gzip file to `target`, refusing (and removing it) past the decompressed-size limit, so a
    small bomb cannot fill the disk."""
    limit, written = max_decompressed_bytes(), 0
    try:
        with gzip.open(path, "rb") as packed, open(target, "wb") as out:
            while chunk := packed.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise InvalidInput(
                        f"cannot {doing} {path.name}: it decompresses to more than {limit:,} bytes (the limit; "
                        "GOVERN_MAX_DECOMPRESSED_BYTES raises it).")
                out.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        target.unlink(missing_ok=True)
        raise InvalidInput(f"cannot {doing} {path.name}: it is not a readable gzip file ({exc}).") from exc
    except InvalidInput:
        target.unlink(missing_ok=True)
        raise
    return target


def _header(path: Path, fmt: str, delimiter: str, shown: str, doing: str = "ingest") -> list[str]:
    """The column names exactly as the file has them (duplicates included)."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"cannot {doing} {shown}: it cannot be read as a Parquet file ({exc}).") from exc
    try:
        with open(path, "rb") as handle:
            first = handle.readline().decode("utf-8-sig")
        return next(csv.reader([first], delimiter=delimiter), [])
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"cannot {doing} {shown}: the file is not UTF-8 text (invalid bytes on line 1); save it "
                           "as UTF-8.") from exc
    except csv.Error as exc:
        raise InvalidInput(f"cannot {doing} {shown}: its header line cannot be read as CSV ({exc}).") from exc
    except TypeError as exc:  # a delimiter that is not one character
        raise InvalidInput(f"--delimiter must be a single character, not {delimiter!r}.") from exc


def _load(conn: duckdb.DuckDBPyConnection, path: Path, fmt: str, delimiter: str, header: list[str],
          shown: str, doing: str = "ingest") -> None:
    """Table `src`: the file's columns under their own names plus ROW, the row's position in the file."""
    try:
        if fmt == "parquet":
            lowered = {name.lower() for name in header}
            if "rowid" not in lowered:
                conn.execute("CREATE TABLE raw AS SELECT * FROM read_parquet(?)", [str(path)])
                conn.execute(f"CREATE TABLE src AS SELECT rowid AS {ROW}, * FROM raw")
            elif "file_row_number" not in lowered:
                conn.execute(f"CREATE TABLE src AS SELECT file_row_number AS {ROW}, * EXCLUDE (file_row_number) "
                             "FROM read_parquet(?, file_row_number = true)", [str(path)])
            else:
                raise InvalidInput(f"cannot {doing} {shown}: it has columns named both rowid and file_row_number; "
                                   "rename one of them.")
        else:
            # Everything as text, parsed strictly with the header's width: a stray string in a numeric
            # column becomes a reported problem with its row, a ragged row is named, and positional
            # column names keep DuckDB's rowid (the file's order) visible whatever the header says.
            positional = {f"c{i}": "VARCHAR" for i in range(len(header))}
            conn.execute(
                "CREATE TABLE raw AS SELECT * FROM read_csv(?, header = true, auto_detect = false, delim = ?, "
                "quote = '\"', escape = '\"', columns = ?, strict_mode = true, null_padding = false)",
                [str(path), delimiter, positional])
            renamed = ", ".join(f"c{i} AS {_quote(name)}" for i, name in enumerate(header))
            conn.execute(f"CREATE TABLE src AS SELECT rowid AS {ROW}, {renamed} FROM raw")
        conn.execute("DROP TABLE IF EXISTS raw")
    except duckdb.Error as exc:
        message = str(exc)
        line = _CSV_LINE.search(message)
        width = _CSV_WIDTH.search(message)
        if fmt == "csv" and line and width:
            expected, found = int(width.group(1)), int(width.group(2))  # past the header's width DuckDB stops counting
            has = f"more than the header's {expected} fields" if found > expected else \
                f"{found} field{'s' if found != 1 else ''} where the header has {expected}"
            raise InvalidInput(f"cannot {doing} {shown}: row {int(line.group(1)) - 1} has {has}; every row needs one "
                               "value per column.") from exc
        longest = _CSV_LINE_SIZE.search(message)
        if fmt == "csv" and line and longest:  # a 10 MB cell had read "(Invalid Input Error: CSV Error on Line: 2)"
            size, most = int(longest.group(2)), int(longest.group(1))
            raise InvalidInput(f"cannot {doing} {shown}: line {line.group(1)} is {size:,} bytes, longer than the "
                               f"{most:,} a CSV line may be; shorten its values or save the file as Parquet.") from exc
        if fmt == "csv" and "unicode" in message.lower():
            bad_line = _first_non_utf8_line(path)
            where = f" (invalid bytes on line {bad_line})" if bad_line else ""
            raise InvalidInput(f"cannot {doing} {shown}: the file is not UTF-8 text{where}; save it as UTF-8.") from exc
        what = "a Parquet file" if fmt == "parquet" else f"CSV separated by {delimiter!r}"
        first = message.strip().splitlines()[0]
        raise InvalidInput(f"cannot {doing} {shown}: it cannot be read as {what} ({first}).") from exc


def _first_non_utf8_line(path: Path) -> int | None:
    """The 1-based number of the first line that is not UTF-8 (only read when DuckDB said there is one)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _column_types(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {row[0]: row[1] for row in conn.execute("DESCRIBE src").fetchall() if row[0] != ROW}


NameFault = Literal["empty", "control", "reserved", "repeated"]


def name_fault(name: str, earlier: Collection[str] = ()) -> NameFault | None:
    """Why ingest refuses a column name, or None: empty, with control characters, starting with the reserved
    __govern, or in `earlier` (the names already taken, as `name_key` gives them: names are compared ignoring
    case and surrounding spaces, 'AGEP ' beside 'AGEP' was two features no reader tells apart).
    `govern predict` names its score column by the same rules, so that what it writes can be ingested."""
    if name.strip() == "":
        return "empty"
    if _BAD_NAME.search(name):
        return "control"
    if name.lower().startswith("__govern"):
        return "reserved"
    if name_key(name) in earlier:
        return "repeated"
    return None


def name_key(name: str) -> str:
    """What column names are compared by: lowercased, without surrounding spaces."""
    return name.strip().lower()


def _check_names(problems: _Problems, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        fault = name_fault(name, seen)
        seen.add(name_key(name))
        if fault == "empty":
            problems.add(None, "a column has an empty name")
        elif fault == "control":
            problems.add(None, f"column name {name!r} contains control, invisible or direction-changing characters "
                               "(tabs, line breaks, U+202E); rename it")
        elif fault == "reserved":
            problems.add(name, "names starting with __govern are reserved; rename it")
        elif fault == "repeated":
            problems.add(name, "the name appears more than once in the header (names are compared ignoring case "
                               "and surrounding spaces)")


def refuse_single_delimited_column(path: Path, names: list[str], delimiter: str, doing: str = "ingest",
                                   remedy: str = "pass --delimiter {found!r}") -> None:
    """A lone column whose name holds another separator means the wrong delimiter, not missing columns.
    `remedy` (with {found} for the separator it looks like) says what to do."""
    if len(names) != 1:
        return
    found = next((sep for sep in (";", "\t", "|", ",") if sep != delimiter and sep in names[0]), None)
    if found:
        raise InvalidInput(
            f"cannot {doing} {path.name}: it has a single column {names[0][:200]!r}; it looks separated by "
            f"{found!r}, not {delimiter!r}: {remedy.format(found=found)}."
        )


_NESTED = re.compile(r"^(STRUCT|MAP|UNION)\(|\[\d*\]$")  # DuckDB's names of nested types: STRUCT(a INTEGER), INTEGER[]


def _check_nested(problems: _Problems, columns: dict[str, str]) -> None:
    """Columns of nested values (a Parquet struct, map or list): no metric, group or drift test reads them (a
    struct sensitive column was stored, then evaluate failed comparing dicts)."""
    for column, kind in columns.items():
        if _NESTED.search(kind):
            shown = kind if len(kind) <= 60 else kind[:57] + "..."
            problems.add(column, f"nested values ({shown}): govern reads numbers and text; flatten the column or "
                                 "leave it out of the file")


def _check_roles(problems: _Problems, roles: ColumnRoles, columns: dict[str, str], delimiter: str) -> None:
    available = list(columns)
    for role, column in roles.named():
        if column not in columns:
            shown = ", ".join(repr(c) for c in available[:10]) + (", …" if len(available) > 10 else "")
            problems.add(column, f"the {role} column is missing (the file has {shown})")
    used = [column for _, column in roles.named()]
    for column in sorted({c for c in used if used.count(c) > 1}):
        problems.add(column, "the column is given more than one role")
    for name, message in intersection_problems(roles.intersections, roles.sensitive, columns):
        problems.add(name, message)


def intersection_problems(intersections: Sequence[Sequence[str]], sensitive: Sequence[str],
                          columns: Collection[str]) -> list[tuple[str, str]]:
    """(intersection, what is wrong) for each intersection that cannot be judged: repeated, not two or
    more different sensitive columns, or named like a column the data has."""
    names = [intersection_name(parts) for parts in intersections]
    found = [(name, "the intersection is given more than once")
             for name in sorted({n for n in names if names.count(n) > 1})]
    for parts, name in zip(intersections, names):
        if any(not part.strip() for part in parts):
            found.append((name, "an intersection names a blank column: join two or more sensitive columns with '*' "
                                "(e.g. sex*race)"))
        elif len(parts) < 2 or len(set(parts)) != len(parts):
            found.append((name, "an intersection joins two or more different sensitive columns (e.g. sex*race)"))
        elif any(p not in sensitive for p in parts):
            outside = ", ".join(repr(p) for p in parts if p not in sensitive)
            found.append((name, f"an intersection joins sensitive columns: add {outside} to --sensitive"))
        elif name in columns:
            found.append((name, "the data has a column of that name: the intersection would hide it; "
                                "rename the column"))
    return found


def _rows(conn: duckdb.DuckDBPyConnection, condition: str, column: str) -> tuple[list[int], object, int]:
    """Row numbers (1-based, header excluded) where `condition` holds, a sample value, the count."""
    count, rows, sample = conn.execute(
        f"SELECT count(*), list({ROW} + 1 ORDER BY {ROW})[1:{_SHOWN_ROWS + 1}], "
        f"first(CAST({_quote(column)} AS VARCHAR) ORDER BY {ROW}) FROM src WHERE {condition}"
    ).fetchone()
    return rows or [], sample, count


def _check_values(
    conn: duckdb.DuckDBPyConnection, problems: _Problems, roles: ColumnRoles, *, present: set[str],
    min_groups: int = 1,
) -> None:
    checks: list[tuple[str, str, str]] = []
    if roles.label is not None:  # what a label must hold, whatever it held (a Yes/No label read "not a number")
        q, label = _quote(roles.label), f"TRY_CAST({_quote(roles.label)} AS DOUBLE)"
        checks += [(roles.label, f"{q} IS NULL", "empty"),
                   (roles.label, f"{q} IS NOT NULL AND ({label} IS NULL OR {label} NOT IN (0, 1))", "not 0 or 1")]
    score = f"TRY_CAST({_quote(roles.score)} AS DOUBLE)"
    checks += [(roles.score, f"{_quote(roles.score)} IS NULL", "empty"),
               (roles.score, f"{_quote(roles.score)} IS NOT NULL AND {score} IS NULL", "not a number")]
    checks += [
        # a Parquet true/false column had been read as scores of 0 and 1 (a CSV's is refused as not a number):
        # decisions, not the probability every calibration metric and label-free estimate assumes
        (roles.score, f"{_quote(roles.score)} IS NOT NULL AND typeof({_quote(roles.score)}) = 'BOOLEAN'",
         "true/false, not a probability"),
        (roles.score, f"{score} IS NOT NULL AND NOT isfinite({score})", "NaN or infinite"),
        (roles.score, f"isfinite({score}) AND ({score} < 0 OR {score} > 1)", "outside [0, 1]"),
    ]
    crossed = {p for parts in roles.intersections for p in parts}
    for column in roles.sensitive:
        text = f"CAST({_quote(column)} AS VARCHAR)"
        checks += [
            (column, f"{_quote(column)} IS NULL", "empty (name missing groups, e.g. 'unknown')"),
            (column, f"{_quote(column)} IS NOT NULL AND trim({text}) = ''",
             "blank (name missing groups, e.g. 'unknown')"),
            (column, f"regexp_matches({text}, '[\\x00-\\x1f\\x7f]')", "a group name with control characters"),
            (column, f"regexp_matches({text}, '{_INVISIBLE}')",
             "a group name with invisible or direction-changing characters (they make one name look like another)"),
            (column, f"isnan(TRY_CAST({_quote(column)} AS DOUBLE))", "NaN (name missing groups, e.g. 'unknown')"),
        ]
        if column in crossed:  # an intersection's group joins its columns' values with ' & '
            checks.append((column, f"contains({text}, '{INTERSECTION_SEPARATOR}')",
                           f"a group name containing '{INTERSECTION_SEPARATOR}', which joins an intersection's values"))
    if roles.id:
        q = _quote(roles.id)
        checks += [
            (roles.id, f"{q} IS NULL", "empty"),
            (roles.id, f"regexp_matches(CAST({q} AS VARCHAR), '[\\x00-\\x1f\\x7f]')",
             "an id with control characters (no outcome file could name it)"),
            (roles.id, f"typeof({q}) IN ('DOUBLE', 'FLOAT') AND isnan(CAST({q} AS DOUBLE))",
             "NaN (no outcome file could name the row)"),
            (roles.id, f"{q} IS NOT NULL AND count(*) OVER (PARTITION BY {q}) > 1", "duplicated"),
        ]
    for column, condition, kind in checks:
        if column not in present:
            continue
        if "OVER" in condition:
            condition = f"{ROW} IN (SELECT {ROW} FROM (SELECT {ROW}, {condition} AS hit FROM src) WHERE hit)"
        rows, sample, count = _rows(conn, condition, column)
        if count:
            problems.add(column, f"{kind} in {count} row{'s' if count != 1 else ''}", rows, sample)
    limit = max_groups()
    present_sensitive = [c for c in roles.sensitive if c in present]
    if present_sensitive:
        counts = conn.execute("SELECT " + ", ".join(f"count(DISTINCT {_quote(c)})" for c in present_sensitive)
                              + " FROM src").fetchone()
        for column, distinct in zip(present_sensitive, counts):
            if distinct > limit:
                problems.add(column, f"{distinct:,} distinct values, more than the {limit:,} groups a sensitive column "
                                     "may have (is it an id? GOVERN_MAX_GROUPS raises the limit)")
            elif distinct < min_groups and not any(item.startswith(f"column {column!r}: ") for item in problems.items):
                problems.add(column, "one group in every row: fairness compares at least two groups (leave it out "
                                     "of --sensitive)")


def _check_label_values(conn: duckdb.DuckDBPyConnection, problems: _Problems, id_column: str, label: str) -> None:
    q, y = _quote(id_column), _quote(label)
    number = f"TRY_CAST({y} AS DOUBLE)"
    checks = [
        (id_column, f"{q} IS NULL", "empty"),
        (id_column, f"{ROW} IN (SELECT {ROW} FROM (SELECT {ROW}, count(*) OVER (PARTITION BY CAST({q} AS VARCHAR)) > 1 "
                    "AS hit FROM src) WHERE hit)", "duplicated"),
        (label, f"{y} IS NULL", "empty"),
        # what a label must hold, whatever it held instead (a Yes/No label had read only "not a number")
        (label, f"{y} IS NOT NULL AND ({number} IS NULL OR {number} NOT IN (0, 1))", "not 0 or 1"),
    ]
    for column, condition, kind in checks:
        rows, sample, count = _rows(conn, condition, column)
        if count:
            problems.add(column, f"{kind} in {count} row{'s' if count != 1 else ''}", rows, sample)


def _output_types(
    conn: duckdb.DuckDBPyConnection, roles: ColumnRoles, kept: list[str], columns: dict[str, str], fmt: str
) -> dict[str, str]:
    types = {c: columns[c] for c in kept}
    types[roles.score] = "DOUBLE"
    if roles.label is not None:
        types[roles.label] = "TINYINT"
    if fmt == "csv":
        types.update(_inferred_types(conn, [c for c in kept if c not in (roles.label, roles.score)]))
        if roles.id is not None and roles.id in types:
            types[roles.id] = _id_type(conn, roles.id)
    elif roles.id is not None and types.get(roles.id) in ("DOUBLE", "FLOAT") and _whole_numbers(conn, roles.id):
        types[roles.id] = "BIGINT"
    return types


def _whole_numbers(conn: duckdb.DuckDBPyConnection, column: str) -> bool:
    """Every value a whole number a double holds exactly (|x| < 2**53): ids pandas wrote as float64. Stored
    as doubles they printed as '1000.0', and a labels file naming row 1000 matched nothing."""
    q = _quote(column)
    return bool(conn.execute(f"SELECT bool_and(isfinite({q}) AND {q} = trunc({q}) AND abs({q}) < 9007199254740992) "
                             "FROM src").fetchone()[0])


def _inferred_types(conn: duckdb.DuckDBPyConnection, columns: list[str]) -> dict[str, str]:
    """Text columns become BIGINT or DOUBLE when every value converts, as a type sniffer would decide with
    the whole file as its sample."""
    types: dict[str, str] = {}
    for start in range(0, len(columns), PROBED_AT_ONCE):  # one statement of 40,000 aggregates took DuckDB minutes
        part = columns[start:start + PROBED_AT_ONCE]
        probes = ", ".join(
            f"count({_quote(c)}) = count(CASE WHEN regexp_full_match(trim({_quote(c)}), '[+-]?[0-9]+') "
            f"THEN TRY_CAST({_quote(c)} AS BIGINT) END), "
            f"count({_quote(c)}) = count(TRY_CAST({_quote(c)} AS DOUBLE))"
            for c in part
        )
        flags = conn.execute(f"SELECT {probes} FROM src").fetchone()
        types.update({column: "BIGINT" if flags[2 * i] else "DOUBLE" if flags[2 * i + 1] else "VARCHAR"
                      for i, column in enumerate(part)})
    return types


PROBED_AT_ONCE = 200  # columns typed per statement (`_inferred_types`)


def _id_type(conn: duckdb.DuckDBPyConnection, column: str) -> str:
    """BIGINT when every id is written as that integer is printed, else VARCHAR. Duplicates are found on the
    file's text and labels are matched on the stored id printed as text, so the stored id must print back as
    the text it was read from: '01000', ' 1000', '+1000' and '1000.0' had all become 1000, and 20-digit ids
    one DOUBLE, merging rows whose labels then went to the wrong predictions."""
    q = _quote(column)
    canonical = conn.execute(
        f"SELECT count({q}) = count(CASE WHEN regexp_full_match({q}, '0|-?[1-9][0-9]*') "
        f"THEN TRY_CAST({q} AS BIGINT) END) FROM src").fetchone()[0]
    return "BIGINT" if canonical else "VARCHAR"


def prepare_reference_file(path: Path, scratch: Path, *, delimiter: str = ",", doing: str = "measure") -> Path:
    """A reference file read as ingest reads files (its header checked, a CSV's columns typed from every
    value) and written as Parquet to `scratch`, which it returns. DuckDB's sniffer had typed a column of
    'inf' as DATE, and an empty file as one column named column0, so drift failed or named the wrong thing.

    Raises NotFound for a missing file and InvalidInput for one that cannot be read or has no rows.
    """
    with _loaded(path, scratch, delimiter, doing) as (conn, source, fmt, header, problems):
        columns = _column_types(conn)
        if not conn.execute("SELECT count(*) FROM src").fetchone()[0]:
            problems.add(None, "the file has a header but no data rows")
            _raise(source, problems, doing)
        types = {**columns, **_inferred_types(conn, list(columns))} if fmt == "csv" else columns
        select = ", ".join(f"CAST({_quote(c)} AS {types[c]}) AS {_quote(c)}" for c in columns)
        conn.execute(f"COPY (SELECT {select} FROM src ORDER BY {ROW}) TO {_literal(scratch)} (FORMAT parquet)")
    return scratch


def _cast(column: str, sql_type: str, roles: ColumnRoles) -> str:
    if column == roles.label:  # validated as a number equal to 0 or 1, maybe written "1.0"
        return f"CAST(CAST({_quote(column)} AS DOUBLE) AS TINYINT)"
    return f"CAST({_quote(column)} AS {sql_type})"


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def describe_table_file(path: Path) -> tuple[str, int, dict[str, str]]:
    """(format, row count, column types) of a CSV or Parquet file, such as a version's training data."""
    path = _existing_file(path, f"{Path(path).name} is empty; training data must be a CSV or Parquet file with rows.")
    fmt = detect_format(path)
    reader = "read_parquet(?)" if fmt == "parquet" else "read_csv(?, header = true, sample_size = -1)"
    conn = duckdb.connect()
    try:
        columns = {row[0]: row[1] for row in conn.execute(f"DESCRIBE SELECT * FROM {reader}", [str(path)]).fetchall()}
        row_count = conn.execute(f"SELECT count(*) FROM {reader}", [str(path)]).fetchone()[0]
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise InvalidInput(f"{path.name} cannot be read as {fmt.upper()} ({first}).") from exc
    finally:
        conn.close()
    return fmt, row_count, columns


@dataclass(frozen=True)
class PreparedLabels:
    """A validated labels file for one batch, its new (row id, label) pairs as Parquet at `scratch`."""

    scratch: Path
    sha256: str
    source_sha256: str
    source_name: str
    file_rows: int
    new_labels: int
    repeated: int  # ids labelled before with the same label: counted, not stored twice
    labelled_total: int  # the batch's labelled rows once this file is recorded
    batch_rows: int


def prepare_label_file(path: Path, *, id_column: str, label: str, batch: Path, batch_id_column: str,
                       earlier: Sequence[Path], scratch: Path, batch_name: str,
                       delimiter: str = ",") -> PreparedLabels:
    """Validate a file of outcomes for the production batch stored at `batch` (rows matched by
    `batch_id_column` = the file's `id_column`, compared as text) against the batch and its `earlier`
    label files, and write the labels new to the batch to `scratch`.

    Raises InvalidInput naming every problem: a missing column, empty or duplicated ids, labels other
    than 0/1, ids that are not rows of the batch, and ids labelled before with a different label.
    """
    with _loaded(path, scratch, delimiter, "record labels from") as (conn, source, fmt, header, problems):
        columns = _column_types(conn)
        for role, column in (("id", id_column), ("label", label)):
            if column not in columns:
                shown = ", ".join(repr(c) for c in list(columns)[:10]) + (", …" if len(columns) > 10 else "")
                problems.add(column, f"the {role} column is missing (the file has {shown})")
        if id_column == label:
            problems.add(label, "the column is given more than one role")
        file_rows = conn.execute("SELECT count(*) FROM src").fetchone()[0]
        if not problems.items and file_rows == 0:
            problems.add(None, "the file has a header but no data rows")
        if not problems.items:
            _check_label_values(conn, problems, id_column, label)
        if problems.items:
            _raise(source, problems, "record labels from")
        conn.execute(f"CREATE TABLE arrived AS SELECT CAST({_quote(id_column)} AS VARCHAR) AS row_id, "
                     f"CAST(CAST({_quote(label)} AS DOUBLE) AS TINYINT) AS label, {ROW} FROM src")
        conn.execute(f"CREATE TABLE batch AS SELECT CAST({_quote(batch_id_column)} AS VARCHAR) AS row_id "
                     f"FROM read_parquet({_literal(batch)})")
        batch_rows = conn.execute("SELECT count(*) FROM batch").fetchone()[0]
        if earlier:
            files = ", ".join(_literal(p) for p in earlier)
            conn.execute(f"CREATE TABLE known AS SELECT row_id, label FROM read_parquet([{files}])")
        else:
            conn.execute("CREATE TABLE known (row_id VARCHAR, label TINYINT)")
        unknown = conn.execute(f"SELECT count(*), list(row_id ORDER BY {ROW})[1:{_SHOWN_ROWS}] FROM arrived "
                               "WHERE row_id NOT IN (SELECT row_id FROM batch)").fetchone()
        if unknown[0]:
            shown = ", ".join(repr(v) for v in unknown[1]) + (", …" if unknown[0] > _SHOWN_ROWS else "")
            problems.add(id_column, f"{unknown[0]} id{'s are' if unknown[0] != 1 else ' is'} not a row of batch "
                                    f"{batch_name} ({shown})")
        changed = conn.execute(f"SELECT count(*), list(a.row_id ORDER BY a.{ROW})[1:{_SHOWN_ROWS}] FROM arrived a "
                               "JOIN known k USING (row_id) WHERE a.label <> k.label").fetchone()
        if changed[0]:
            shown = ", ".join(repr(v) for v in changed[1]) + (", …" if changed[0] > _SHOWN_ROWS else "")
            problems.add(label, f"{changed[0]} row{'s were' if changed[0] != 1 else ' was'} labelled before with a "
                                f"different label ({shown}); a label, once recorded, stands")
        if problems.items:
            _raise(source, problems, "record labels from")
        repeated = conn.execute("SELECT count(*) FROM arrived WHERE row_id IN (SELECT row_id FROM known)").fetchone()[0]
        conn.execute(f"COPY (SELECT row_id, label FROM arrived WHERE row_id NOT IN (SELECT row_id FROM known) "
                     f"ORDER BY {ROW}) TO {_literal(scratch)} (FORMAT parquet)")
        known = conn.execute("SELECT count(*) FROM known").fetchone()[0]
    return PreparedLabels(scratch=scratch, sha256=sha256_file(scratch), source_sha256=sha256_file(source),
                          source_name=source.name, file_rows=file_rows, new_labels=file_rows - repeated,
                          repeated=repeated, labelled_total=known + file_rows - repeated, batch_rows=batch_rows)
