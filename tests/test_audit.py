"""The audit log: every change is recorded, and any edit, deletion, insertion or reordering is caught,
in the live store and in every export format, by the service and by `govern audit verify`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from governance.artifacts import sha256_file
from governance.audit_chain import AuditEvent, seal, verify_chain
from governance.errors import Conflict, InvalidInput
from governance.service import verify_audit_export
from tests.support.exports import read_rows, write_rows
from tests.support.stores import file_only, run_sql

COLUMNS = "seq, ts, actor, action, entity, payload, prev_hash, hash"


def _events(home: Path) -> list[AuditEvent]:
    rows = run_sql(home, lambda conn: conn.execute(f"SELECT {COLUMNS} FROM audit_events ORDER BY seq").fetchall())
    return [AuditEvent(*row) for row in rows]


def _rewrite(home: Path, events: list[AuditEvent]) -> None:
    """What an attacker with write access to the store does: replace the table's rows."""
    def unit(conn) -> None:
        # The constraints would refuse some of these edits; a determined attacker drops them first.
        conn.execute("DROP TABLE audit_events")
        conn.execute("CREATE TABLE audit_events (seq BIGINT, ts VARCHAR, actor VARCHAR, action VARCHAR, "
                     "entity VARCHAR, payload VARCHAR, prev_hash VARCHAR, hash VARCHAR)")
        for e in events:
            conn.execute("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [e.seq, e.ts, e.actor, e.action, e.entity, e.payload, e.prev_hash, e.hash])

    run_sql(home, unit)


def _forged_after(previous: AuditEvent, seq: int) -> AuditEvent:
    # A well-formed event, correctly hashed onto its predecessor: only its successors can expose it.
    return seal(prev_hash=previous.hash, seq=seq, ts=previous.ts, actor="mallory", action="user.add",
                entity="user:mallory", payload={"name": "mallory", "role": "admin"})



def edit(events):
    e = events[3]
    payload = json.loads(e.payload) | {"role": "admin"}  # grant rey admin after the fact
    events[3] = AuditEvent(e.seq, e.ts, e.actor, e.action, e.entity, json.dumps(payload), e.prev_hash, e.hash)
    return events, 4


def delete(events):
    del events[3]
    return events, 5


def insert(events):
    forged = _forged_after(events[2], 4)
    shifted = [AuditEvent(e.seq + 1, e.ts, e.actor, e.action, e.entity, e.payload, e.prev_hash, e.hash)
               for e in events[3:]]
    return events[:3] + [forged] + shifted, 5


def reorder(events):
    events[3], events[4] = events[4], events[3]
    a, b = events[3], events[4]
    # Keep seq in order, as a careful attacker would: the links must still break.
    events[3] = AuditEvent(4, a.ts, a.actor, a.action, a.entity, a.payload, a.prev_hash, a.hash)
    events[4] = AuditEvent(5, b.ts, b.actor, b.action, b.entity, b.payload, b.prev_hash, b.hash)
    return events, 4


TAMPERING = {"edit": edit, "delete": delete, "insert": insert, "reorder": reorder}


def test_every_change_is_logged_in_order(store):
    actions = [(e.actor, e.action, e.entity) for e in _events(store.home)]
    assert actions == [
        (None, "store.init", "store"),
        ("ada", "user.add", "user:ada"),
        ("ada", "user.add", "user:vic"),
        ("ada", "user.add", "user:rey"),
        ("ada", "user.add", "user:eng"),
        ("ada", "user.add", "user:aud"),
        ("eng", "model.register", "model:credit"),
        ("eng", "version.register", "version:credit/1"),
    ] + [("ada", "token.create", f"user:{name}") for name in ("ada", "vic", "rey", "eng", "aud")]
    report = store.as_("aud").verify_audit()
    assert report.ok and report.event_count == 13 and report.head_hash == _events(store.home)[-1].hash


def test_a_failed_change_logs_nothing(store):
    before = _events(store.home)
    with pytest.raises(Conflict):
        store.as_("eng").register_model(name="credit")
    assert _events(store.home) == before


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampering_in_the_store_is_detected_and_named(store, run_cli, kind):
    events, broken_seq = TAMPERING[kind](_events(store.home))
    _rewrite(store.home, events)

    report = store.as_("aud").verify_audit()
    assert not report.ok and report.broken_seq == broken_seq

    result = run_cli(store.home, "audit", "verify", as_="aud")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"audit chain BROKEN at seq {broken_seq}: ")


@file_only  # DuckLake has no UNIQUE: there the head row serialises appends (tests/test_ducklake.py)
def test_the_store_itself_refuses_a_second_successor(store):
    events = _events(store.home)
    forged = _forged_after(events[2], 99)
    conn = duckdb.connect(str(store.home / "govern.duckdb"))
    with pytest.raises(duckdb.ConstraintException, match="prev_hash"):
        conn.execute("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(vars(forged).values()))
    conn.close()


def test_live_verify_cli_exit_0_and_json(store, run_cli):
    result = run_cli(store.home, "audit", "verify", "--json", as_="aud")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["ok"] is True


def _export(store, run_cli, tmp_path, fmt) -> Path:
    out = tmp_path / f"export-{fmt}"
    result = run_cli(store.home, "audit", "export", "--out", out, "--format", fmt, as_="aud")
    assert result.exit_code == 0, result.output
    assert f"verify it offline with `govern audit verify {out} --key KEY`" in result.stdout  # the command that runs
    return out


def _as_events(rows: list[dict]) -> list[AuditEvent]:
    return [AuditEvent(**{**r, "seq": int(r["seq"]), "actor": r["actor"] or None}) for r in rows]


def _as_rows(events: list[AuditEvent], like: list[dict]) -> list[dict]:
    as_str = isinstance(like[0]["seq"], str)
    return [{**e.to_dict(), "seq": str(e.seq) if as_str else e.seq,
             "actor": (e.actor or "") if as_str else e.actor} for e in events]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_verifies_offline_and_is_itself_logged(store, run_cli, tmp_path, fmt):
    out = _export(store, run_cli, tmp_path, fmt)
    assert sorted(p.name for p in out.iterdir()) == sorted([f"audit_events.{fmt}", "manifest.json"])
    manifest = json.loads((out / "manifest.json").read_text())
    count = len(_events(store.home))
    assert manifest["row_count"] == count and manifest["format"] == fmt
    assert manifest["files"][f"audit_events.{fmt}"] == sha256_file(out / f"audit_events.{fmt}")
    exported = _as_events(read_rows(out / f"audit_events.{fmt}", fmt))
    assert exported[-1].action == "audit.export" and exported[-1].actor == "aud"
    assert exported == _events(store.home)

    key = run_cli(store.home, "audit", "key", as_="aud").stdout.strip()
    assert key == manifest["public_key"]
    # Offline: no store, no user, only the folder (and optionally the expected key).
    result = run_cli(tmp_path / "no-store-here", "audit", "verify", out, "--key", key)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"export intact: {count} events")


@pytest.mark.parametrize("kind", list(TAMPERING))
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_tampering_in_each_export_format_is_detected_and_named(unchanged_store, copy_export, run_cli, tmp_path, fmt,
                                                               kind):
    store, out = unchanged_store, copy_export(fmt)
    data = out / f"audit_events.{fmt}"
    rows = read_rows(data, fmt)
    events, broken_seq = TAMPERING[kind](_as_events(rows))
    write_rows(data, fmt, _as_rows(events, rows))
    # Hide the file change from the file-hash check, so the chain itself must catch it.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"][data.name] = sha256_file(data)
    (out / "manifest.json").write_text(json.dumps(manifest))

    key = store.as_("aud").public_key()
    report = verify_audit_export(out, expected_public_key=key)
    assert not report.ok and report.broken_seq == broken_seq
    assert any(p.startswith("chain broken: event") and f"seq {broken_seq}" in p for p in report.problems)
    result = run_cli(tmp_path, "audit", "verify", out, "--key", key)
    assert result.exit_code == 1 and "chain broken" in result.stdout


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_truncation_and_rebuilt_chains_are_caught_by_the_signed_manifest(unchanged_store, copy_export, fmt):
    store, out = unchanged_store, copy_export(fmt)
    data = out / f"audit_events.{fmt}"
    rows = read_rows(data, fmt)
    write_rows(data, fmt, rows[:-1])  # drop the last event: the chain alone still links
    key = store.as_("aud").public_key()
    report = verify_audit_export(out, expected_public_key=key)
    assert not report.ok
    assert f"the file holds {len(rows) - 1} events but the manifest says {len(rows)}." in report.problems

    # An attacker who also rewrites the manifest cannot re-sign it with this installation's key.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.update(row_count=len(rows) - 1, head_hash=rows[-2]["hash"], head_seq=len(rows) - 1)
    manifest["files"][data.name] = sha256_file(data)
    (out / "manifest.json").write_text(json.dumps(manifest))
    report = verify_audit_export(out, expected_public_key=key)
    assert report.problems == [
        "the manifest's signature does not verify with its public key: the manifest was changed."]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_files_beside_or_instead_of_the_exports_own_fail_verification(unchanged_store, copy_export, run_cli,
                                                                      tmp_path, monkeypatch, fmt):
    # A hostile trial: a hand-edited audit_events.csv beside a jsonl export, a symbolic link for the events file,
    # a 1 GB file without a newline (read whole, at twice its size) and a garbage manifest (exit 2, an "error")
    key = unchanged_store.as_("aud").public_key()
    events = f"audit_events.{fmt}"

    def verdict(out: Path) -> str:
        result = run_cli(tmp_path, "audit", "verify", out, "--key", key)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        return result.stdout

    out = copy_export(fmt)
    (out / "audit_events.parquet").write_bytes(b"forged")
    (out / ".DS_Store").write_bytes(b"a file browser's")  # hidden files are nobody's reading
    assert ("the folder holds audit_events.parquet, which the manifest does not list: not part of the signed "
            "export") in verdict(out)
    (out / "audit_events.parquet").unlink()
    assert run_cli(tmp_path, "audit", "verify", out, "--key", key).exit_code == 0
    real = tmp_path / "the real events"
    (out / events).rename(real)
    (out / events).symlink_to(real)  # the same bytes, through a link
    shown = verdict(out)
    assert f"{events} is a symbolic link, not the file the export wrote." in shown
    (out / events).unlink()
    (out / events).mkdir()
    shown = verdict(out)
    assert f"{events} is not a plain file" in shown and "missing" not in shown
    (out / events).rmdir()
    monkeypatch.setattr("governance.audit_export.LONGEST_LINE", 10_000)
    (out / events).write_text("x" * 50_000)  # no newline: one line longer than any event
    assert "line 1 is longer than any event" in verdict(out)
    real.rename(out / events)
    assert run_cli(tmp_path, "audit", "verify", out, "--key", key).exit_code == 0
    manifest = (out / "manifest.json").read_text()
    for forged in ("{not json", "[]", "x" * 2_000):
        monkeypatch.setattr("governance.audit_export.LARGEST_MANIFEST", 1_000)
        (out / "manifest.json").write_text(forged)
        assert "is not a readable manifest" in verdict(out)
    (out / "manifest.json").write_text(manifest)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_changed_events_file_too_large_to_search_is_not_read(unchanged_store, copy_export, monkeypatch, fmt):
    # A hostile trial: a forged 116 KB Parquet file unpacked to gigabytes (6.7 GB of memory), and a 2.5 GB jsonl file
    # was read whole, though its hash had already failed.
    out = copy_export(fmt)
    data = out / f"audit_events.{fmt}"
    rows = read_rows(data, fmt)
    rows[0]["actor"] = "mallory"
    write_rows(data, fmt, rows)
    monkeypatch.setattr("governance.audit_export.LARGEST_CHANGED", 1_000)
    monkeypatch.setattr("governance.audit_export.read_events_file",
                        lambda *args: pytest.fail("a changed file over the bound was read"))
    report = verify_audit_export(out, expected_public_key=unchanged_store.as_("aud").public_key())
    assert not report.ok and any(p.startswith(f"{data.name} is ") and p.endswith(
        "too large to search for the first changed event.") for p in report.problems)
    assert f"{data.name} does not match its sha256 in the manifest: the file was changed." in report.problems


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_an_events_file_cut_short_mid_record_is_a_failed_verdict_not_an_error(unchanged_store, copy_export, run_cli,
                                                                             tmp_path, fmt):
    # A copy interrupted mid-file (half a parquet footer, half a JSON line) is what an auditor is handed
    # most often: it had been an error (exit 2) that said nothing about the export's integrity.
    store, out = unchanged_store, copy_export(fmt)
    data = out / f"audit_events.{fmt}"
    whole = data.read_bytes()
    data.write_bytes(whole[: len(whole) // 2 + 7])
    key = store.as_("aud").public_key()
    report = verify_audit_export(out, expected_public_key=key)
    assert not report.ok
    assert f"{data.name} does not match its sha256 in the manifest: the file was changed." in report.problems
    assert any("is not a readable audit event file" in p and "cut short" in p for p in report.problems), report.problems
    result = run_cli(tmp_path, "audit", "verify", out, "--key", key)
    assert result.exit_code == 1 and "cut short" in result.stdout, result.output


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_text_export_cut_inside_its_last_record_is_named_cut_short(unchanged_store, copy_export, fmt):
    # A CSV cut in the middle of its last record's payload parsed as a whole record: "altered", not "cut short".
    store, out = unchanged_store, copy_export(fmt)
    data = out / f"audit_events.{fmt}"
    whole = data.read_bytes()
    data.write_bytes(whole[:whole.rindex(b"\n", 0, len(whole) - 1) + 1] + whole[whole.rindex(b"\n", 0, len(whole) - 1)
                                                                            + 1:-20])
    report = verify_audit_export(out, expected_public_key=store.as_("aud").public_key())
    named = [p for p in report.problems if "cut short" in p]
    assert not report.ok and named and (fmt == "jsonl" or "does not end in a newline" in named[0]), report.problems


@file_only  # two stores at once: GOVERN_STORE names one DuckLake per process
def test_an_export_signed_by_another_key_is_refused_when_the_key_is_given(make_store, run_cli, tmp_path):
    first, second = make_store(name="first"), make_store(name="second")
    out = _export(second, run_cli, tmp_path, "jsonl")
    key_of_first = run_cli(first.home, "audit", "key", as_="aud").stdout.strip()
    result = run_cli(tmp_path, "audit", "verify", out, "--key", key_of_first)
    assert result.exit_code == 1
    assert "signed by a different key" in result.stdout


def test_export_into_a_non_empty_folder_is_refused_and_writes_nothing(store, run_cli, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    before = _events(store.home)
    result = run_cli(store.home, "audit", "export", "--out", out, as_="aud")
    assert result.exit_code == 2
    assert result.stderr == f"error: {out} already exists and is not an empty folder; choose a new one.\n"
    assert _events(store.home) == before and [p.name for p in out.iterdir()] == ["keep.txt"]


@file_only  # the output folder, whatever the store
@pytest.mark.parametrize("link", ["loop", "dangling"])
def test_export_onto_a_symbolic_link_is_refused_before_it_is_recorded(store, run_cli, tmp_path, link):
    # A hostile trial: the export was recorded, then could not be moved onto the link (exit 2, the store changed,
    # a scratch folder left behind).
    out = tmp_path / "out"
    if link == "loop":
        (tmp_path / "other").symlink_to(out)
        out.symlink_to(tmp_path / "other")
    else:
        out.symlink_to(tmp_path / "nowhere")
    before, files = _events(store.home), sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(store.home, "audit", "export", "--out", out, as_="aud")
    assert result.exit_code == 2
    assert result.stderr == f"error: {out} is a symbolic link; give the path of a new folder.\n"
    assert _events(store.home) == before and sorted(p.name for p in tmp_path.iterdir()) == files


def test_verify_of_a_folder_that_is_not_an_export(tmp_path, run_cli):
    result = run_cli(tmp_path, "audit", "verify", tmp_path, "--key", "ab" * 32)
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path} holds no manifest.json; is it a govern audit export?\n"


def test_chain_of_nothing_is_intact_and_genesis_is_checked():
    assert verify_chain([]).ok
    first = seal(prev_hash="f" * 64, seq=1, ts="t", actor=None, action="a", entity="e", payload={})
    report = verify_chain([first])
    assert not report.ok and report.broken_seq == 1


def test_unknown_export_format_is_refused(store):
    with pytest.raises(InvalidInput, match="^export format 'xml' is not one of csv, jsonl, parquet.$"):
        store.as_("aud").export_audit(out=Path("x"), fmt="xml")
