"""Audit exports: event files plus a signed manifest, verifiable offline from the files alone."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from governance import __version__
from governance.artifacts import sha256_file
from governance.audit_chain import AuditEvent, ChainReport, canonical_json, verify_chain
from governance.errors import InvalidInput, NotFound
from governance.keys import is_public_key, signature_valid

ExportFormat = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
MANIFEST = "manifest.json"
_FIELDS = ("seq", "ts", "actor", "action", "entity", "payload", "prev_hash", "hash")
_ARROW_SCHEMA = pa.schema(
    [("seq", pa.int64())] + [(name, pa.string()) for name in _FIELDS[1:]]
)


def events_file_name(fmt: str) -> str:
    return f"audit_events.{fmt}"


def write_events(events: list[AuditEvent], path: Path, fmt: str) -> None:
    if fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(_FIELDS)
            for event in events:
                writer.writerow(["" if v is None else v for v in (getattr(event, f) for f in _FIELDS)])
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as handle:
            for event in events:
                handle.write(canonical_json(event.to_dict()) + "\n")
    elif fmt == "parquet":
        columns = {name: [getattr(e, name) for e in events] for name in _FIELDS}
        pq.write_table(pa.table(columns, schema=_ARROW_SCHEMA), path)
    else:
        raise InvalidInput(f"unknown export format {fmt!r}; choose csv, jsonl or parquet.")


def read_events_file(path: Path, fmt: str, *, largest: int | None = None) -> list[AuditEvent]:
    """Parse an export's event file; raises InvalidInput when it is not a readable event file, or (with `largest`)
    when a Parquet file unpacks to more than `largest` bytes (read a few rows at a time until then)."""
    try:
        if fmt == "csv":
            csv.field_size_limit(LONGEST_LINE)
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(_bounded_lines(handle))
                rows = [dict(row) for row in reader]
            for row in rows:
                row["actor"] = row["actor"] or None
        elif fmt == "jsonl":
            with open(path, encoding="utf-8") as handle:
                rows = [json.loads(line, parse_constant=_no_constant) for line in _bounded_lines(handle)
                        if line.strip()]
        elif fmt == "parquet" and largest is None:
            rows = pq.read_table(path).to_pylist()
        elif fmt == "parquet":  # a few KB of Parquet can unpack to gigabytes: counted as it unpacks
            rows, unpacked = [], 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=64):
                unpacked += batch.nbytes
                if unpacked > largest:
                    raise InvalidInput(f"{path.name} unpacks to more than {largest:,} bytes, too large to search for "
                                       "the first changed event.")
                rows += batch.to_pylist()
        else:
            raise InvalidInput(f"unknown export format {fmt!r} in the manifest.")
        if fmt in ("csv", "jsonl") and _ends_mid_line(path):  # every record the export writes ends in a newline
            raise ValueError("its last record does not end in a newline: the file ends in the middle of one")
        return [_event(row, number) for number, row in enumerate(rows, 1)]
    except (KeyError, TypeError, ValueError, OverflowError, UnicodeDecodeError, RecursionError, OSError, csv.Error,
            pa.ArrowException) as exc:
        raise InvalidInput(f"{path.name} is not a readable audit event file ({str(exc)[:200]}).") from exc


LONGEST_LINE = 64 << 20  # characters: far more than any event holds (a payload is bounded long before)
LARGEST_MANIFEST = 16 << 20  # bytes: a manifest lists a few files and a log check


def _ends_mid_line(path: Path) -> bool:
    """Whether a non-empty text file's last byte is not a newline (a copy cut short mid-record: the CSV reader
    had taken the half record as a whole one)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return False
        handle.seek(-1, 2)
        return handle.read(1) != b"\n"


def _bounded_lines(handle: Any) -> Iterator[str]:
    """The lines of a text file, refusing one longer than any event: a 1 GB file without a newline had been
    read whole into memory (twice its size) before its first line could be judged."""
    number = 0
    while True:
        line = handle.readline(LONGEST_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > LONGEST_LINE:
            raise ValueError(f"line {number:,} is longer than any event ({LONGEST_LINE >> 20} MiB characters)")
        yield line


def _event(row: dict[str, Any], number: int) -> AuditEvent:
    """One exported event with the types the chain needs: a whole-number seq and text everywhere else."""
    seq = row["seq"]
    if isinstance(seq, str) and seq.strip().lstrip("-").isdigit():
        seq = int(seq)
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq < 2**63:
        raise ValueError(f"event {number} has no whole-number seq")
    values = {name: row[name] for name in _FIELDS[1:]}
    for name, value in values.items():
        if not (isinstance(value, str) or (name == "actor" and value is None)):
            raise ValueError(f"event {number}: {name} is {type(value).__name__}, not text")
    return AuditEvent(seq=seq, **values)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a value an audit event holds")


def manifest_message(manifest: dict[str, Any]) -> bytes:
    """What the signature covers: the whole manifest except the signature itself."""
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"}).encode("utf-8")


def build_manifest(
    *, events: list[AuditEvent], fmt: str, files: dict[str, str], exported_at: str, exported_by: str,
    public_key: str, log_check: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest (before its signature). `log_check`: the live log against its witness and itself when
    exported ({"ok", "problems"}), so a log rewritten before the export does not verify as intact."""
    return {
        "format": fmt,
        "files": files,
        "row_count": len(events),
        "first_seq": events[0].seq if events else None,
        "head_seq": events[-1].seq if events else None,
        "head_hash": events[-1].hash if events else None,
        "exported_at": exported_at,
        "exported_by": exported_by,
        "govern_version": __version__,
        "public_key": public_key,
        **({"log_check": log_check} if log_check is not None else {}),
    }


@dataclass(frozen=True)
class ExportVerification:
    """The verdict on an export folder; `problems` is empty exactly when `ok`."""

    ok: bool
    directory: str
    row_count: int | None
    head_hash: str | None
    public_key: str | None
    broken_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    since: str | None = None  # the earlier export this one was proven to extend
    report: str | None = None  # the dossier (govern report) checked against this export

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_export(directory: Path, *, expected_public_key: str | None) -> ExportVerification:
    """Check file hashes, the chain, row count and head, and the manifest's signature by the given key.

    Fails closed: InvalidInput when the key is missing, empty or not a key (64 hex digits), NotFound
    when the folder or its manifest is missing, InvalidInput when the manifest cannot be read. A
    readable export that fails a check is a negative verdict, not an error.
    """
    verdict, _ = _verify(Path(directory), _require_key(expected_public_key))
    return verdict


def verified_events(directory: Path, *, expected_public_key: str | None) -> tuple[ExportVerification, list[AuditEvent]]:
    """`verify_export`'s verdict and, where it holds, the export's events (else none)."""
    verdict, events = _verify(Path(directory), _require_key(expected_public_key))
    return verdict, (events or []) if verdict.ok else []


def verify_report_against_export(directory: Path, *, report: Path, expected_public_key: str | None,
                                 since: Path | None = None) -> ExportVerification:
    """Verify the export (and with `since`, its consistency with an earlier one), then the report's evidence
    against the export's events: every cited event present and unaltered, every figure what its event says."""
    from dataclasses import replace

    from governance.dossier.verify import check_report, read_evidence

    key = _require_key(expected_public_key)
    read_evidence(Path(report))  # a missing or unreadable report is an error, before any verdict
    verdict, events = _verify(Path(directory), key)
    if since is not None:
        verdict = verify_consistency(Path(directory), since=Path(since), expected_public_key=key)
    problems = list(verdict.problems) + [f"report {report}: {p}" for p in check_report(Path(report), events, key)]
    return replace(verdict, ok=not problems, problems=problems, report=str(report))


def verify_consistency(directory: Path, *, since: Path, expected_public_key: str | None) -> ExportVerification:
    """Verify the export in `directory`, the earlier export in `since`, and that the earlier one's events
    are a prefix of the later one's (as Certificate Transparency proves a log only grew): a chain
    rebuilt between the two exports is named by its first diverging event."""
    key = _require_key(expected_public_key)
    newer, new_events = _verify(Path(directory), key)
    older, old_events = _verify(Path(since), key)
    problems = list(newer.problems) + [f"the earlier export {since}: {p}" for p in older.problems]
    broken_seq = newer.broken_seq
    if new_events is not None and old_events is not None:
        for old, new in zip(old_events, new_events):
            if old.hash != new.hash or old.seq != new.seq:
                problems.append(f"event seq {old.seq} differs between the exports ({old.action} {old.entity} in the "
                                f"earlier one): the log was rewritten from seq {old.seq} on after {since} was taken.")
                broken_seq = old.seq if broken_seq is None else min(broken_seq, old.seq)
                break
        else:
            if len(new_events) < len(old_events):
                first_missing = old_events[len(new_events)].seq
                problems.append("the later export ends at seq "
                                f"{new_events[-1].seq if new_events else 0} but the earlier "
                                f"one holds up to seq {old_events[-1].seq}: events from seq {first_missing} on were "
                                "removed.")
                broken_seq = first_missing if broken_seq is None else min(broken_seq, first_missing)
    return ExportVerification(ok=not problems, directory=str(directory), row_count=newer.row_count,
                              head_hash=newer.head_hash, public_key=newer.public_key, broken_seq=broken_seq,
                              problems=problems, since=str(since))


def log_check_problems(log_check: Any, when: str) -> list[str]:
    """The problem a recorded live-log check names (none for an intact log, or one recorded before checks)."""
    if log_check is None:
        return []
    if not isinstance(log_check, dict) or not isinstance(log_check.get("problems", []), list):
        return ["its record of the live log's check is malformed."]
    if log_check.get("ok") is True:
        return []
    found = " ".join(str(p) for p in log_check.get("problems") or []) or "(no detail)"
    return [f"when it was {when}, the live log did not match its witness or itself, so it holds a log that was "
            f"already altered: {found[:2000]}"]


def _require_key(expected_public_key: str | None) -> str:
    key = (expected_public_key or "").strip().lower()
    if not key:
        raise InvalidInput("verifying an export needs the installation's public key (--key, printed by "
                           "`govern audit key`); without it anyone could have signed the export.")
    if not is_public_key(key):
        given = expected_public_key or ""
        shown = repr(given) if len(given) <= 80 else f"{given[:40]!r}… ({len(given):,} characters)"
        raise InvalidInput(f"--key {shown} is not an Ed25519 public key (64 hex digits, as "
                           "`govern audit key` prints it).")
    return key


def _read_manifest(directory: Path) -> dict[str, Any]:
    manifest_path = directory / MANIFEST
    if not directory.is_dir():
        raise NotFound(f"{directory} is not a folder; is it a govern audit export?")
    if not manifest_path.exists() and not manifest_path.is_symlink():
        raise NotFound(f"{directory} holds no {MANIFEST}; is it a govern audit export?")
    if manifest_path.is_symlink() or not manifest_path.is_file():  # a FIFO, a folder, /dev/zero: read as forged
        kind = "a symbolic link" if manifest_path.is_symlink() else "not a plain file"
        raise InvalidInput(f"{manifest_path} is {kind}, not the manifest the export wrote.")
    if manifest_path.stat().st_size > LARGEST_MANIFEST:
        raise InvalidInput(f"{manifest_path} is not a readable manifest ({manifest_path.stat().st_size:,} bytes, "
                           f"more than any manifest holds).")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"{manifest_path} is not a readable manifest ({str(exc)[:200]}).") from exc
    if not isinstance(manifest, dict):
        raise InvalidInput(f"{manifest_path} is not a readable manifest (not a JSON object).")
    files = manifest.get("files")
    if manifest.get("format") not in FORMATS:
        raise InvalidInput(f"{manifest_path} names no known event format (csv, jsonl or parquet).")
    if not isinstance(files, dict) or not files or not all(isinstance(k, str) and isinstance(v, str)
                                                             for k, v in files.items()):
        raise InvalidInput(f"{manifest_path}: 'files' must map each file name to its sha256.")
    if not isinstance(manifest.get("row_count"), int) or isinstance(manifest.get("row_count"), bool):
        raise InvalidInput(f"{manifest_path}: 'row_count' must be a whole number.")
    return manifest


def _verify(directory: Path, key: str) -> tuple[ExportVerification, list[AuditEvent] | None]:
    try:
        manifest = _read_manifest(directory)
    except InvalidInput as unreadable:  # there, but not a manifest: a failed check of the export, not an error
        return ExportVerification(ok=False, directory=str(directory), row_count=None, head_hash=None, public_key=None,
                                  problems=[f"{unreadable} It was changed, or the folder is not a govern audit "
                                            "export."]), None
    fmt, files = manifest["format"], manifest["files"]
    problems: list[str] = []
    public_key = manifest.get("public_key")
    try:
        signed = isinstance(public_key, str) and signature_valid(public_key, manifest_message(manifest),
                                                                 manifest.get("signature"))
    except (ValueError, TypeError, UnicodeEncodeError):  # NaN or a lone surrogate in it: nothing anyone signed
        signed = False
    plain = set()  # the listed files that are the export's own regular files
    changed = set()  # of those, the ones whose bytes are not those the manifest lists
    for name, expected in sorted(files.items()):
        path = directory / name
        if Path(name).name != name or not (path.exists() or path.is_symlink()):
            problems.append(f"{name} is listed in the manifest but missing.")
        elif path.is_symlink() or not path.is_file():
            problems.append(f"{name} is {'a symbolic link' if path.is_symlink() else 'not a plain file'}, not the "
                            "file the export wrote.")
        elif sha256_file(path) != expected:
            plain.add(name)
            changed.add(name)
            problems.append(f"{name} does not match its sha256 in the manifest: the file was changed.")
        else:
            plain.add(name)
    unlisted = sorted(entry.name for entry in directory.iterdir()
                      if entry.name not in files and entry.name != MANIFEST and not entry.name.startswith("."))
    if unlisted:
        problems.append(f"the folder holds {_named(unlisted)}, which the manifest does not list: not part of the "
                        "signed export (whatever it says is unverified; remove it or take the export again).")

    broken_seq, events = None, None
    events_path = directory / events_file_name(fmt)
    if events_file_name(fmt) not in files:
        problems.append(f"the manifest does not list {events_path.name}, so its hash is not covered.")
    # The bytes this key signed are read whatever their size; any others (a changed file, or any file under a
    # manifest the key did not sign) only where they are small enough to search for the first changed event: a
    # forged 116 KB Parquet file had taken 6.7 GB to read, a 2.5 GB one 2.7 GB.
    trusted = signed and public_key == key and events_path.name not in changed
    too_large = events_path.name in plain and not trusted and _too_large(events_path, fmt)
    if too_large:
        problems.append(f"{events_path.name} is {too_large}, too large to search for the first changed event.")
    try:
        events = read_events_file(events_path, fmt, largest=None if trusted else LARGEST_CHANGED) \
            if events_path.name in plain and not too_large else None
    except InvalidInput as unreadable:  # truncated or overwritten: a failed check of the export, not an error
        problems.append(f"{unreadable} The file was changed or cut short after the export was signed.")
    if events is not None:
        try:
            chain = verify_chain(events)
        except (ValueError, TypeError, UnicodeEncodeError):  # a forged line: text that is not Unicode, say
            chain = ChainReport(False, len(events), None, "", None,
                                "an event cannot be hashed (it holds text that is not valid Unicode): the file was "
                                "changed.")
        if not chain.ok:
            broken_seq = chain.broken_seq
            problems.append(f"chain broken: {chain.problem}")
        if len(events) != manifest["row_count"]:
            problems.append(f"the file holds {len(events)} events but the manifest says {manifest['row_count']}.")
        if chain.ok and events and events[-1].hash != manifest.get("head_hash"):
            problems.append("the chain's head does not match the manifest's head_hash: events were added or removed "
                            "at the end.")
    elif events_file_name(fmt) not in files and not events_path.is_file():
        problems.append(f"{events_path.name} is missing.")

    problems.extend(log_check_problems(manifest.get("log_check"), "exported"))
    if not signed:
        problems.append("the manifest's signature does not verify with its public key: the manifest was changed.")
    if public_key != key:
        problems.append(
            "the export was signed by a different key than the one given: it does not come from that installation."
        )
    verdict = ExportVerification(
        ok=not problems, directory=str(directory), row_count=manifest["row_count"],
        head_hash=manifest.get("head_hash") if isinstance(manifest.get("head_hash"), str) else None,
        public_key=public_key if isinstance(public_key, str) else None, broken_seq=broken_seq, problems=problems,
    )
    return verdict, events


LARGEST_CHANGED = 512 << 20  # bytes of a changed events file (or of its Parquet data, uncompressed) still searched


def _too_large(path: Path, fmt: str) -> str | None:
    """Why a changed events file is not read, or None: its size, or for Parquet the size its metadata says it
    unpacks to (a small file can hold gigabytes)."""
    size = path.stat().st_size
    if size > LARGEST_CHANGED:
        return f"{size:,} bytes"
    if fmt == "parquet":
        try:
            meta = pq.ParquetFile(path).metadata
            unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        except (pa.ArrowException, OSError):
            return None  # not readable as Parquet: reading it says so
        if unpacked > LARGEST_CHANGED:
            return f"{unpacked:,} bytes once unpacked"
    return None


def _named(names: list[str], shown: int = 5) -> str:
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown:,} more" if len(names) > shown else "")
    return listed
