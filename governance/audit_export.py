"""Audit exports: event files plus a signed manifest, verifiable offline from the files alone."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from governance import __version__
from governance.artifacts import sha256_file
from governance.audit_chain import AuditEvent, canonical_json, verify_chain
from governance.errors import InvalidInput, NotFound
from governance.keys import signature_valid

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


def read_events_file(path: Path, fmt: str) -> list[AuditEvent]:
    """Parse an export's event file; raises InvalidInput when it is not a readable event file."""
    try:
        if fmt == "csv":
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                rows = [dict(row) for row in reader]
            for row in rows:
                row["actor"] = row["actor"] or None
        elif fmt == "jsonl":
            with open(path, encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
        elif fmt == "parquet":
            rows = pq.read_table(path).to_pylist()
        else:
            raise InvalidInput(f"unknown export format {fmt!r} in the manifest.")
        return [AuditEvent(**{name: row[name] for name in _FIELDS} | {"seq": int(row["seq"])}) for row in rows]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise InvalidInput(f"{path.name} is not a readable audit event file ({exc}).") from exc


def manifest_message(manifest: dict[str, Any]) -> bytes:
    """What the signature covers: the whole manifest except the signature itself."""
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"}).encode("utf-8")


def build_manifest(
    *, events: list[AuditEvent], fmt: str, files: dict[str, str], exported_at: str, exported_by: str,
    public_key: str,
) -> dict[str, Any]:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_export(directory: Path, *, expected_public_key: str | None = None) -> ExportVerification:
    """Check file hashes, the chain, row count and head, and the manifest's signature.

    Raises NotFound when the folder or its manifest is missing and InvalidInput when the manifest
    cannot be read; a readable export that fails a check is a negative verdict, not an error.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise NotFound(f"{directory} holds no {MANIFEST}; is it a govern audit export?")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        fmt, files = manifest["format"], manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{manifest_path} is not a readable manifest ({exc}).") from exc

    problems: list[str] = []
    for name, expected in sorted(files.items()):
        path = directory / name
        if Path(name).name != name or not path.is_file():
            problems.append(f"{name} is listed in the manifest but missing.")
        elif sha256_file(path) != expected:
            problems.append(f"{name} does not match its sha256 in the manifest: the file was changed.")

    broken_seq = None
    events_path = directory / events_file_name(fmt)
    if events_path.is_file():
        events = read_events_file(events_path, fmt)
        chain = verify_chain(events)
        if not chain.ok:
            broken_seq = chain.broken_seq
            problems.append(f"chain broken: {chain.problem}")
        if len(events) != manifest.get("row_count"):
            problems.append(f"the file holds {len(events)} events but the manifest says {manifest.get('row_count')}.")
        if chain.ok and events and events[-1].hash != manifest.get("head_hash"):
            problems.append("the chain's head does not match the manifest's head_hash: events were added or removed at the end.")
    else:
        problems.append(f"{events_path.name} is missing.")

    public_key = manifest.get("public_key")
    if not public_key or not signature_valid(public_key, manifest_message(manifest), manifest.get("signature", "")):
        problems.append("the manifest's signature does not verify with its public key: the manifest was changed.")
    if expected_public_key and public_key != expected_public_key.strip().lower():
        problems.append(
            "the export was signed by a different key than the one given: it does not come from that installation."
        )
    return ExportVerification(
        ok=not problems, directory=str(directory), row_count=manifest.get("row_count"),
        head_hash=manifest.get("head_hash"), public_key=public_key, broken_seq=broken_seq, problems=problems,
    )
