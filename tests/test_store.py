"""The store: migrations, init, units of work and the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from governance.errors import NotAllowed, NotFound, StoreBusy
from governance.service import Service
from governance.store import FileBackend
from governance.store.migrations import MIGRATIONS, applied_migrations, apply_pending
from tests.support.credentials import credential_for
from tests.support.paths import ROOT
from tests.support.stores import file_only, snapshot


@file_only  # about the embedded file itself
def test_fresh_store_records_every_migration_in_order(home):
    status = Service.open(home=home).init(admin="ada")
    assert status.migrations == [m.__name__ for m in MIGRATIONS]
    assert (home / "govern.duckdb").is_file() and (home / "artifacts").is_dir()
    assert (home / "keys" / "installation_ed25519.pem").stat().st_mode & 0o777 == 0o600


@file_only  # about the embedded file itself
def test_existing_store_gets_only_the_pending_migrations_and_keeps_its_data(home):
    from governance.keys import load_or_create_key

    load_or_create_key(home / "keys" / "installation_ed25519.pem")  # every store ever made had its key
    db = FileBackend(home / "govern.duckdb")
    db.run(lambda conn: apply_pending(conn, MIGRATIONS[:1]), create=True)
    db.run(lambda conn: conn.execute(
        "INSERT INTO users VALUES ('ada', 'admin', NULL, now()::TIMESTAMP, NULL)"))

    status = Service.open(home=home, actor="ada").status()

    assert status.migrations == [m.__name__ for m in MIGRATIONS]
    assert status.users == 1
    events = db.run(lambda conn: conn.execute("SELECT action, payload FROM audit_events").fetchall())
    import json

    assert [action for action, _ in events] == ["store.migrate"]
    payload = json.loads(events[0][1])
    assert payload["applied"] == [m.__name__ for m in MIGRATIONS[1:]] and payload["govern_version"] == "0.1.0"
    assert payload["auth"]["method"] == "library" and payload["auth"]["os_user"]


@file_only  # about the embedded file itself
def test_migrations_already_applied_are_not_run_again(home):
    Service.open(home=home).init()
    db = FileBackend(home / "govern.duckdb")
    assert db.run(apply_pending) == []
    assert db.run(applied_migrations) == [m.__name__ for m in MIGRATIONS]


def test_init_is_idempotent(home):
    Service.open(home=home).init(admin="ada")
    before = snapshot(home)
    Service.open(home=home).init(admin="ada")
    assert snapshot(home) == before


def test_init_cannot_add_an_admin_to_a_store_that_has_users(home):
    Service.open(home=home).init(admin="ada")
    with pytest.raises(NotAllowed, match="already has users"):
        Service.open(home=home).init(admin="mallory")


def test_commands_on_a_missing_store_say_how_to_create_it(tmp_path):
    with pytest.raises(NotFound, match=r"no govern store at .*; run `govern init` first\."):
        Service.open(home=tmp_path / "nowhere", actor="ada").status()


HOLD_LOCK = textwrap.dedent("""
    import sys, time, duckdb
    conn = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def _hold_lock(path, seconds):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


@file_only  # about the embedded file itself
def test_a_store_held_too_long_by_another_process_is_reported_in_one_sentence(store):
    holder = _hold_lock(store.home / "govern.duckdb", 10)
    try:
        with pytest.raises(StoreBusy) as caught:
            Service.open(home=store.home, actor="ada", lock_timeout_s=0.5).status()
        assert str(caught.value) == (
            f"the store {store.home / 'govern.duckdb'} stayed locked by process {holder.pid} for 0.5 s; "
            "try again when it finishes, or wait longer with --lock-timeout / GOVERN_LOCK_TIMEOUT."
        )
    finally:
        holder.kill()
        holder.wait()


@file_only  # about the embedded file itself
def test_a_lock_released_within_the_timeout_is_waited_for(store):
    holder = _hold_lock(store.home / "govern.duckdb", 1.0)
    try:
        started = time.monotonic()
        status = Service.open(home=store.home, actor="ada", lock_timeout_s=30).status()
        assert status.users == 5
        assert time.monotonic() - started >= 0.5  # it really waited for the holder
    finally:
        holder.wait()


def test_a_failing_unit_of_work_rolls_back_everything(store):
    db = FileBackend(store.home / "govern.duckdb")
    before = snapshot(store.home)

    def unit(conn):
        conn.execute("INSERT INTO users (name, role, password_hash, created_at, created_by) "
                     "VALUES ('zed', 'viewer', NULL, now()::TIMESTAMP, NULL)")
        raise NotFound("something later in the unit failed")

    with pytest.raises(NotFound):
        db.run(unit)
    assert snapshot(store.home) == before


def test_values_are_parameters_even_when_they_look_like_sql(store):
    text = "x'); DROP TABLE models; --"
    store.as_("eng").register_model(name="m2", description=text)
    assert [m.description for m in store.as_("vic").list_models() if m.name == "m2"] == [text]
    assert len(store.as_("vic").list_models()) == 2


@file_only  # about the embedded file itself
def test_commit_conflicts_are_retried_then_reported(store):
    db = FileBackend(store.home / "govern.duckdb", lock_timeout_s=0.3)
    attempts = []

    def flaky(conn):
        attempts.append(1)
        if len(attempts) < 3:
            raise duckdb.TransactionException("Failed to commit: PRIMARY KEY or UNIQUE constraint violation")
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]

    assert db.run(flaky) == 5 and len(attempts) == 3

    def always(conn):
        raise duckdb.ConstraintException('Duplicate key "seq: 9" violates primary key constraint.')

    from governance.errors import Conflict

    with pytest.raises(Conflict, match=r"^the change kept colliding with concurrent changes for 0.3 s"):
        db.run(always)


def test_a_file_that_is_not_a_store_is_reported_not_crashed(tmp_path, run_cli):
    home = tmp_path / "home"
    home.mkdir()
    (home / "govern.duckdb").write_bytes(b"this is not a database" * 100)
    result = run_cli(home, "status", as_="ada")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot open the store {home / 'govern.duckdb'}: ")


_BIND_EVERY_TYPE = textwrap.dedent("""
    import datetime, decimal, json, sys, uuid
    import duckdb
    from governance.store.backend import in_transaction
    values = [1, -2**62, 2.5, float("nan"), "text", "", True, False, None, b"\\x00bytes",
              datetime.date(2026, 11, 29), datetime.datetime(2026, 11, 29, 2, 30, 1, 5),
              decimal.Decimal("1.25"), [1, 2, 3], ["a", None], {"k": 1}, uuid.UUID(int=7)]
    def unit(conn):
        out = [repr(conn.execute("SELECT ?", [v]).fetchone()[0]) for v in values]
        conn.execute("CREATE TEMP TABLE t (i BIGINT, s VARCHAR)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [[1, "a"], [2, None]])
        out.append(repr(conn.execute("SELECT * FROM t ORDER BY i").fetchall()))
        return out
    if sys.argv[1] == "with-pandas":
        import pandas
    bound = in_transaction(duckdb.connect(), unit)
    print(json.dumps({"bound": bound, "pandas_imported": "pandas" in sys.modules}))
""")


def _bind_every_type(pandas_first: bool) -> dict:
    mode = "with-pandas" if pandas_first else "without"
    out = subprocess.run([sys.executable, "-c", _BIND_EVERY_TYPE, mode], capture_output=True, text=True,
                         check=True, cwd=str(ROOT))
    return json.loads(out.stdout)


def test_store_statements_bind_every_value_type_alike_without_importing_pandas():
    # DuckDB 1.5 imports pandas (0.3 s) on a process's first bound parameter; the store refuses that
    # import while pandas is not loaded, and every value must bind exactly as it does with pandas there.
    without = _bind_every_type(pandas_first=False)
    assert without["pandas_imported"] is False
    with_pandas = _bind_every_type(pandas_first=True)
    assert with_pandas["pandas_imported"] is True
    assert without["bound"] == with_pandas["bound"]


def test_pandas_imports_and_duckdb_reads_frames_after_a_store_statement_refused_it():
    script = textwrap.dedent("""
        import duckdb
        from governance.store.backend import in_transaction
        conn = duckdb.connect()
        in_transaction(conn, lambda c: c.execute("SELECT ?", [1]).fetchone())
        import pandas as pd
        frame = pd.DataFrame({"a": [1, 2, 3]})
        print(conn.execute("SELECT sum(a) FROM frame WHERE a > ?", [1]).fetchone()[0],
              type(conn.execute("SELECT 1 AS x").df()).__name__)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.split() == ["5", "DataFrame"]


@pytest.mark.parametrize("start", ["threading.Thread(target=other).start()", "_thread.start_new_thread(other, ())"])
def test_another_thread_can_import_pandas_while_a_store_statement_runs(start):
    # The refusal applies only while the process runs one thread: a second thread's import never fails,
    # whether the threading module started it or _thread (which threading does not count).
    script = textwrap.dedent(f"""
        import _thread, sys, threading
        import duckdb
        from governance.store.backend import in_transaction
        started, release, done = threading.Event(), threading.Event(), threading.Event()
        def other():
            started.set(); release.wait()
            import pandas
            done.set()
        {start}
        started.wait()
        in_transaction(duckdb.connect(), lambda c: c.execute("SELECT ?", [1]).fetchone())
        print("pandas" in sys.modules)
        release.set(); done.wait(30)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.strip() == "True"  # DuckDB imported it for real, as it would without the store's guard


@file_only
def test_listing_the_review_queue_does_not_import_pandas_numpy_or_torch(store):
    # What keeps `govern review list` well under 0.3 s (benchmarks/cli_start.py measures it).
    home = store.home
    script = textwrap.dedent("""
        import sys
        from governance.cli import main
        sys.argv = ["govern", "review", "list"]
        try:
            main()
        except SystemExit as exit:
            code = exit.code
        print(code, sorted(m for m in ("pandas", "torch", "numpy") if m in sys.modules))
    """)
    env = os.environ | {"GOVERN_HOME": str(home), "GOVERN_TOKEN": credential_for(home, "rey")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=str(ROOT))
    assert out.stdout.splitlines()[-1] == "0 []", out.stderr


def test_a_damaged_block_or_a_full_disk_is_not_waited_on_as_a_lock(tmp_path):
    # "…in block at location…" matched "lock": a damaged file waited out the whole lock timeout and was called
    # "locked by another process"; a full disk at commit was retried as a collision, then "run it again".
    import duckdb

    from governance.store.backend import disk_full
    from governance.store.file import _lock_conflict, _retryable

    held = duckdb.IOException('IO Error: Could not set lock on file "/x/govern.duckdb": Conflicting lock is held '
                              "in /usr/bin/python3 (PID 42)")
    damaged = duckdb.IOException("IO Error: Corrupt database file: computed checksum 1 does not match stored "
                                 "checksum 2 in block at location 12000000")
    full = duckdb.TransactionException("TransactionContext Error: Failed to commit: could not write file "
                                       '"/x/govern.duckdb.wal": No space left on device')
    assert _lock_conflict(held) and _retryable(held)
    assert not _lock_conflict(damaged) and not _retryable(damaged)
    assert disk_full(full) and not _retryable(full)

    from governance.errors import GovernError
    from governance.store.file import FileBackend

    def unit(conn):
        raise full

    with pytest.raises(GovernError, match="could not be written .*No space left on device.*nothing was changed"):
        FileBackend(tmp_path / "govern.duckdb", lock_timeout_s=30).run(unit, create=True)

    def read_damage(conn):
        raise damaged

    from governance.store.file import StoreUnreadable

    with pytest.raises(StoreUnreadable, match="is damaged .*checksum.*nothing was changed: restore it from a backup"):
        FileBackend(tmp_path / "govern.duckdb", lock_timeout_s=30).run(read_damage)
