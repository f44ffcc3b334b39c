"""Hostile and careless input: every CLI command answers 0, 1 or 2, never with a traceback, and an
answer of 2 leaves the store exactly as it was. A table of the cases found by hand, then generated
arguments (hypothesis) for every command."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.cli import cli
from governance.ingest import ColumnRoles
from tests.support.commands import COMMANDS, COMMANDS_SKIPPED_BY_FUZZ
from tests.support.credentials import credential_for
from tests.support.frames import predictions_frame
from tests.support.stores import ducklake_only, file_only, run_sql, snapshot


def _store_state(home: Path) -> tuple:
    """The audit head and every table's row count: what an exit 2 must leave unchanged."""
    def unit(conn):
        tables = [row[0] for row in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1").fetchall()]
        counts = tuple(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
        head = conn.execute("SELECT max(seq), arg_max(hash, seq) FROM audit_events").fetchone()
        return tuple(tables), counts, head

    return run_sql(home, unit)


@pytest.fixture
def hostile(store, tmp_path, monkeypatch):
    """A store with an evaluated version, and a folder of awkward paths (folder, FIFO, symlink, empty)."""
    monkeypatch.chdir(tmp_path)  # anything a command writes lands here
    return _hostile(store, tmp_path)


@pytest.fixture(scope="module")
def shared_hostile(make_shared_store, tmp_path_factory):
    """hostile's store and paths, once per module and store kind, for the cases that must change nothing."""
    store = make_shared_store()
    with store.kind.active():
        return _hostile(store, tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def unchanged_hostile(shared_hostile, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a command writes lands here
    shared_hostile[0].enter(monkeypatch)
    return shared_hostile


def _hostile(store, folder: Path):
    csv = folder / "eval.csv"
    predictions_frame(120).to_csv(csv, index=False)
    store.as_("eng").ingest(model="credit", version="1", file=csv, split="eval", roles=ColumnRoles(sensitive=("sex",)))
    store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    paths = folder / "paths"
    paths.mkdir()
    (paths / "folder").mkdir()
    os.mkfifo(paths / "fifo")
    (paths / "empty").write_bytes(b"")
    os.symlink("/dev/zero", paths / "link")
    (paths / "weights.bin").write_bytes(b"weights")
    os.symlink(paths / "weights.bin", paths / "filelink")
    return store, paths


def _cli(home: Path, args: list[str], user: str = "ada", input: str | None = ""):
    from click.testing import CliRunner

    env = {"GOVERN_TOKEN": credential_for(home, user) or ""}
    return CliRunner().invoke(cli, ["--home", str(home), "--lock-timeout", "5", *args], env=env, input=input)


def _assert_clean(result, before, home: Path) -> None:
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        assert _store_state(home) == before, result.output


# -- the cases found by hand, one row each ----------------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000
CASES = {
    "junit into a missing folder": (["gate", "credit", "1", "--dry-run", "--junit", "/nonexistent/x.xml"],
                                    "the folder /nonexistent does not exist"),
    # opening it to check it could be written waited for a reader forever (the generated cases hung a suite on it)
    "junit into a FIFO nobody reads": (["gate", "credit", "1", "--dry-run", "--junit", "{fifo}"],
                                       "cannot be written (a named pipe nobody reads)"),
    "expiry before year 1": (["release", "credit", "1", "--override", "--reason", "r", "--expires",
                              "0001-01-01T00:00:00+01:00"], "outside the years 1900 to 9998"),
    "batch time before year 1": (["ingest", "credit", "1", "{csv}", "--split", "production", "--batch-time",
                                  "0001-01-01T00:00:00+01:00"], "outside the years 1900 to 9998"),
    "due before year 1": (["review", "add", "credit", "1", "--evidence", "x", "--due", "0001-01-01T00:00:00+01:00"],
                          "outside the years 1900 to 9998"),
    "negative seed": (["evaluate", "credit", "1", "--seed", "-1"], "-1 is not in the range"),
    "huge limit": (["audit", "list", "--limit", "99999999999999999999"], "is not in the range"),
    "claim for centuries": (["review", "claim", "ri-x", "--minutes", "99999999999999"], "is not in the range"),
    "claim until 2977": (["review", "claim", "ri-x", "--minutes", "500000000"], "is not in the range"),
    "NaN lock timeout": (["--lock-timeout", "nan", "status"], "is not a number"),
    "NaN threshold": (["evaluate", "credit", "1", "--threshold", "nan"], "is not a number"),
    "invalid UTF-8 comment": (["review", "add", "credit", "1", "--evidence", "\udcff"], "is not valid UTF-8 text"),
    "deep JSON evidence": (["review", "add", "credit", "1", "--evidence", DEEP], "nested too deeply"),
    "deep YAML policy": (["policy", "validate", "{deep_yaml}"], "nested too deeply"),
    # 532 bytes of nested aliases held a billion values: naming the rule's id took minutes and gigabytes
    "billion laughs policy": (["policy", "validate", "{laughs_yaml}"],
                              "its aliases (*name) expand it to 2,345,679,032 values, more than the 200,000"),
    # eight digits had been "not a duration"; it is one, past the limit
    "token for centuries": (["token", "create", "ada", "--expires", "99999999d"],
                            "--expires '99999999d' must be more than zero and at most 366 days."),
    # 'x@' was assigned as plain x; 'x@²' passed the digit check and failed to convert
    "pack version left out": (["policy", "assign", "default-x@", "--model", "credit"],
                              "policy version '' is not a version number: give name@3"),
    "pack version in superscript": (["gate", "credit", "1", "--dry-run", "--policy", "mine@\u00b2"],
                                    "policy version '\u00b2' is not a version number"),
    "pack version 0": (["policy", "assign", "mine@0", "--model", "credit"], "(versions start at 1)"),
    "pack version of 5,000 digits": (["gate", "credit", "1", "--dry-run", "--policy", "mine@" + "9" * 5000],
                                     "is not a version number: give name@3"),
    "pack version past a BIGINT": (["policy", "assign", "mine@" + "9" * 19, "--model", "credit"],
                                   "is not a version number: give name@3"),
    "policy containing itself": (["gate", "credit", "1", "--dry-run", "--policy", "{cycle_yaml}"],
                                 "its aliases (*name) expand it to a value that contains itself"),
    "policy from a FIFO": (["policy", "validate", "{fifo}"], "is not a regular file"),
    "artifact through a symlink": (["version", "register", "credit", "9", "--artifact", "{filelink}"],
                                   "is a symbolic link"),
    # evidence strict JSON would not hold, or a reviewer would not read as written: had been stored ({{ }}: the
    # arguments go through str.format)
    "NaN evidence": (["review", "add", "credit", "1", "--evidence", '{{"a": NaN}}'], "NaN is no number JSON can carry"),
    "infinite evidence": (["review", "add", "credit", "1", "--evidence", '{{"a": 1e999}}'],
                          "holds inf, which is no number JSON can carry"),
    "surrogate evidence": (["review", "add", "credit", "1", "--evidence", '{{"a": "\\ud800"}}'],
                           "do not show as written (U+D800)"),
    "repeated evidence key": (["review", "add", "credit", "1", "--evidence", '{{"a": 1, "a": 2}}'],
                              "the key 'a' is given twice in one object"),
    "reversed evidence": (["review", "add", "credit", "1", "--evidence", "{{\"note\": \"a\u202eb\"}}"],
                          "do not show as written (U+202E)"),
    "audit list since year 1": (["audit", "list", "--since", "0001-01-01"], "outside the years 1900 to 9998"),
    "agreement of no model": (["agreement", "--model", "nosuch"], "model 'nosuch' is not registered"),
    # a script's `--sensitive "$COLUMNS"` with the variable unset, or `--evidence "$NOTE"`: both had been taken
    "empty sensitive name": (["ingest", "credit", "1", "{csv}", "--split", "eval", "--sensitive", ","],
                             "the list ',' holds an empty name"),
    "empty feature list": (["ingest", "credit", "1", "{csv}", "--split", "eval", "--features", ""],
                           "the list '' holds an empty name"),
    "empty evidence": (["review", "add", "credit", "1", "--evidence", " "], "the evidence is empty"),
    "empty JSON evidence": (["review", "add", "credit", "1", "--evidence", '{{"note": ""}}'], "the evidence is empty"),
    "nested empty evidence": (["review", "add", "credit", "1", "--evidence", '{{"a": [""], "b": {{"c": " "}}}}'],
                              "the evidence is empty"),
    "invisible evidence": (["review", "add", "credit", "1", "--evidence", "\u200b"], "the evidence is empty"),
    "reversed description": (["model", "register", "m9", "--description", "a\u202eb"],
                             "the description holds characters that do not show as written (U+202E)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_hostile_argument_gets_one_sentence_and_exit_2(unchanged_hostile, tmp_path, case):
    store, paths = unchanged_hostile
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("rules: " + "[" * 3000 + "]" * 3000 + "\n")
    laughs_yaml, cycle_yaml = tmp_path / "laughs.yaml", tmp_path / "cycle.yaml"
    laughs_yaml.write_text("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
        + "name: x\nversion: 1\nrules: [{id: *i, metric: calibration.ece, max: 0.1}]\n")
    cycle_yaml.write_text("name: x\nversion: 1\nrules: &r [{id: a, metric: calibration.ece, max: 0.1, x: *r}]\n")
    args, expected = CASES[case]
    args = [a.format(csv=paths.parent / "eval.csv", deep_yaml=deep_yaml, fifo=paths / "fifo",
                     filelink=paths / "filelink", laughs_yaml=laughs_yaml, cycle_yaml=cycle_yaml) for a in args]
    if args[0] == "--lock-timeout":  # a global option: in front of the --home the helper adds
        args = args[2:]
        args = ["--lock-timeout", "nan", *args]
    before = _store_state(store.home)
    from click.testing import CliRunner

    env = {"GOVERN_TOKEN": credential_for(store.home, "ada")}
    result = CliRunner().invoke(cli, ["--home", str(store.home), *args], env=env)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert _store_state(store.home) == before


def test_a_junit_write_that_fails_after_the_gate_names_the_stored_decision(hostile, tmp_path, monkeypatch):
    store, paths = hostile
    lax = tmp_path / "lax.yaml"
    lax.write_text("name: lax\nversion: 1\nrules:\n  - {id: auc, metric: performance.roc_auc, min: 0.0}\n")
    store.assign_policy(lax)
    real = Path.write_text

    def full_disk(self, *args, **kwargs):
        if self.name == "gate.xml":
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    result = _cli(store.home, ["gate", "credit", "1", "--junit", str(tmp_path / "gate.xml")])
    # stored, so not 2 ("nothing was changed"): 1, which stops a CI job as a blocked gate would
    assert result.exit_code == 1 and "(passed) is stored, but --junit" in result.output
    assert "No space left" in result.output
    stored = store.as_("vic").latest_gate(model="credit", version="1")
    assert stored is not None and stored.id in result.output
    # a path that cannot be written at all is refused before the gate decides anything
    refused = _cli(store.home, ["gate", "credit", "1", "--junit", "/proc/version"])
    assert refused.exit_code == 2 and "--junit /proc/version cannot be written" in refused.output
    assert store.as_("vic").latest_gate(model="credit", version="1").id == stored.id


def test_json_output_never_holds_nan(hostile):
    store, _ = hostile
    result = _cli(store.home, ["evaluate", "credit", "1", "--resamples", "0", "--json"])
    assert result.exit_code == 0
    assert "NaN" not in result.output and "Infinity" not in result.output
    json.loads(result.output)  # strict JSON


def test_a_rowid_column_keeps_the_file_order(store, tmp_path):
    frame = predictions_frame(50)
    frame.insert(0, "rowid", list(range(50, 0, -1)))  # integers that sort the other way round
    path = tmp_path / "rowid.csv"
    frame.to_csv(path, index=False)
    ingested = store.as_("eng").ingest(model="credit", version="1", file=path, split="eval",
                                       roles=ColumnRoles(id="rowid", sensitive=("sex",)))
    stored = pd.read_parquet(store.as_("vic").prediction_set_path(ingested))
    assert list(stored["rowid"]) == list(range(50, 0, -1)) and list(stored["score"]) == list(frame["score"])


def test_gzip_csv_is_read_and_a_bomb_is_refused_without_filling_the_disk(store, tmp_path, monkeypatch):
    frame = predictions_frame(40)
    packed = tmp_path / "eval.csv.gz"
    packed.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    ingested = store.as_("eng").ingest(model="credit", version="1", file=packed, split="eval")
    assert ingested.row_count == 40
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"label,score\n" + b"0" * 5_000_000))
    monkeypatch.setenv("GOVERN_MAX_DECOMPRESSED_BYTES", "1000000")
    from governance.errors import InvalidInput

    with pytest.raises(InvalidInput, match="decompresses to more than 1,000,000 bytes"):
        store.as_("eng").ingest(model="credit", version="1", file=bomb, split="eval")
    assert not list((store.home / "artifacts" / "tmp").glob("*.csv"))


@pytest.mark.parametrize("text, expected", [
    ("label,score,sex\n1,0.5,f\n0,0.4\n", "row 2 has 2 fields where the header has 3"),
    ("label,score,sex\n1,0.5,f,extra\n", "row 1 has more than the header's 3 fields"),
    # a hostile trial: a 10 MB cell read "(Invalid Input Error: CSV Error on Line: 2)"
    ("label,score,sex\n1,0.5," + "f" * 3_000_000 + "\n", "line 2 is 3,000,006 bytes, longer than the 2,000,000 a "
                                                          "CSV line may be; shorten its values or save the file as"),
])
def test_ragged_rows_are_named(store, tmp_path, text, expected):
    from governance.errors import InvalidInput

    path = tmp_path / "ragged.csv"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=expected):
        store.as_("eng").ingest(model="credit", version="1", file=path, split="eval")


def test_a_duplicate_parquet_column_is_refused(store, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from governance.errors import InvalidInput

    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1, 0]), pa.array([0.2, 0.3]), pa.array([1, 1])],
                            names=["label", "score", "label"]), path)
    with pytest.raises(InvalidInput, match="'label': the name appears more than once"):
        store.as_("eng").ingest(model="credit", version="1", file=path, split="eval")


def test_too_many_groups_in_a_sensitive_column_is_refused(store, tmp_path, monkeypatch):
    from evaluation import MetricInputError, evaluate
    from governance.errors import InvalidInput

    frame = predictions_frame(300)
    frame["uid"] = [f"u{i}" for i in range(300)]
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setenv("GOVERN_MAX_GROUPS", "100")
    with pytest.raises(InvalidInput, match="'uid': 300 distinct values, more than the 100 groups"):
        store.as_("eng").ingest(model="credit", version="1", file=path, split="eval",
                                roles=ColumnRoles(sensitive=("uid",)))
    with pytest.raises(MetricInputError, match="'uid' has 300 distinct values"):
        evaluate(current=frame, label="label", score="score", sensitive=["uid"], resamples=0, max_groups=100)


def test_comments_and_reasons_are_text_people_can_read_as_written(store, run_cli):
    # A 5,000-character comment was stored whole, and U+202E (which turns a terminal's text backwards)
    # printed as it was by `review show`.
    item = store.as_("ada").add_review_item(model="credit", version="1", evidence={"note": "look"})
    assert run_cli(store.home, "review", "claim", item.id, as_="rey").exit_code == 0
    before = snapshot(store.home)
    for comment, message in (("fine \u202etxet", "holds characters that do not show as written (U+202E)"),
                             ("x" * 4001, "the comment is 4,001 characters; keep it to 4,000"),
                             ("bell \x07", "(U+0007)")):
        refused = run_cli(store.home, "review", "judge", item.id, "--verdict", "ambiguous", "--comment", comment,
                          as_="rey")
        assert refused.exit_code == 2 and message in refused.stderr, refused.stderr
    reason = run_cli(store.home, "release", "credit", "1", "--override", "--reason", "hotfix \u2066", "--expires",
                     "2099-01-01", as_="ada")
    assert reason.exit_code == 2 and "the reason holds characters that do not show as written" in reason.stderr
    assert snapshot(store.home) == before
    ok = run_cli(store.home, "review", "judge", item.id, "--verdict", "ambiguous", "--comment",
                 "line one\n\tline two — ünïcode ok", as_="rey")
    assert ok.exit_code == 0, ok.stderr


def test_a_sensitive_column_of_one_group_is_refused_where_fairness_is_judged(store, tmp_path):
    # An eval split whose sensitive column holds one group could never be evaluated; a reference sample
    # (drift only) and a production batch (one region's traffic) may hold one.
    from governance.errors import InvalidInput

    frame = predictions_frame(300).assign(country="US")
    path = tmp_path / "one.csv"
    frame.to_csv(path, index=False)
    engineer, roles = store.as_("eng"), ColumnRoles(sensitive=("country",))
    before = snapshot(store.home)
    for split in ("eval", "challenger"):
        with pytest.raises(InvalidInput, match="'country': one group in every row: fairness compares at least two"):
            engineer.ingest(model="credit", version="1", file=path, split=split, roles=roles)
    assert snapshot(store.home) == before
    assert engineer.ingest(model="credit", version="1", file=path, split="reference", roles=roles).row_count == 300


def test_artifact_size_limit_and_stale_scratch_files(store, tmp_path, monkeypatch):
    import time

    from governance.errors import InvalidInput

    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:  # sparse: large on paper, nothing on disk
        handle.truncate(5_000_000)
    monkeypatch.setenv("GOVERN_MAX_ARTIFACT_BYTES", "1000000")
    with pytest.raises(InvalidInput, match="more than the 1,000,000 an artifact may have"):
        store.as_("eng").register_version(model="credit", version="big", artifact=big)
    leftover = store.home / "artifacts" / "tmp" / "dead.part"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half an ingest")
    old = time.time() - 2 * 3600
    os.utime(leftover, (old, old))
    from governance import artifacts

    artifacts._swept.clear()  # a new process
    frame = predictions_frame(20)
    frame.to_csv(tmp_path / "ok.csv", index=False)
    store.as_("eng").ingest(model="credit", version="1", file=tmp_path / "ok.csv", split="eval")
    assert not leftover.exists()


def test_a_reference_with_other_column_names_still_measures_score_and_label_drift(store, tmp_path):
    current, reference = predictions_frame(300, seed=1), predictions_frame(300, seed=2)
    reference = reference.rename(columns={"label": "outcome", "score": "p"})
    current.to_csv(tmp_path / "cur.csv", index=False)
    reference.to_csv(tmp_path / "ref.csv", index=False)
    engineer = store.as_("eng")
    engineer.ingest(model="credit", version="1", file=tmp_path / "cur.csv", split="eval",
                    roles=ColumnRoles(sensitive=("sex",)))
    engineer.ingest(model="credit", version="1", file=tmp_path / "ref.csv", split="reference",
                    roles=ColumnRoles(label="outcome", score="p", sensitive=("sex",)))
    _, records = engineer.evaluate(model="credit", version="1", resamples=0)
    drifted = {r.feature for r in records.select("drift", "drift_score")}
    assert {"score", "label"} <= drifted


# -- generated hostile arguments for every command --------------------------------------------------------

def _commands():
    return [(path, command) for path, command in COMMANDS
            if not hasattr(command, "commands") and " ".join(path) not in COMMANDS_SKIPPED_BY_FUZZ]


NUMBERS = ["-1", "0", "1", "99999999999999999999", "nan", "inf", "-inf", "1e309", "0.5", "-0"]
TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-02-30", "yesterday", "1970-01-01"]
TEXTS = ["\udcff", "a\x00b", "rosa\n", "x" * 3000, "", " ", "../../x", "credit", "1", "ｒosa",
         "'; DROP TABLE models; --", "![img](http://example.invalid/x.png)", DEEP, '{"a": ' * 300 + "1" + "}" * 300]


def _value(draw, param, paths: Path) -> str:
    import click

    kind = param.type
    pool = list(TEXTS)
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        pool = NUMBERS
    elif isinstance(kind, click.Path) or param.name in ("file", "current", "reference", "artifact", "data",
                                                         "training_data", "config_file", "directory", "since"):
        pool = [str(paths / name) for name in ("folder", "fifo", "empty", "link", "filelink", "missing")] + TEXTS[:3]
    elif isinstance(kind, click.Choice):
        pool = list(kind.choices) + TEXTS[:2]
    elif param.name in ("expires", "batch_time", "due", "since", "until"):
        pool = TIMES + NUMBERS[:2]
    return draw(st.sampled_from(pool))


_HOSTILE_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow]}


@file_only
@settings(max_examples=250, **_HOSTILE_SETTINGS)
@given(data=st.data())
def test_every_command_survives_generated_hostile_arguments(hostile, data):
    _survives(hostile, data)


# The arguments are the CLI's to survive, whatever the store: on DuckLake (each command attaches the PostgreSQL
# catalogue, six times slower) fewer cases check that its refusals leave it as unchanged.
@ducklake_only
@settings(max_examples=60, **_HOSTILE_SETTINGS)
@given(data=st.data())
def test_every_command_survives_generated_hostile_arguments_on_ducklake(hostile, data):
    _survives(hostile, data)


def _survives(hostile, data) -> None:
    import click

    store, paths = hostile
    path, command = data.draw(st.sampled_from(_commands()), label="command")
    args = list(path)
    for param in command.params:
        if isinstance(param, click.Argument):
            args.append(_value(data.draw, param, paths))
        elif isinstance(param, click.Option) and param.name not in ("as_json",) and data.draw(st.booleans()):
            args.append(param.opts[0])
            if not param.is_flag:
                args.append(_value(data.draw, param, paths))
    user = data.draw(st.sampled_from(["ada", "eng", "rey", "aud", "vic"]), label="user")
    before = _store_state(store.home)
    result = _cli(store.home, args, user=user)
    if path == ("login",):  # a refused sign-in is recorded on purpose (throttle and audit log), exit 2 or not
        before = _store_state(store.home) if result.exit_code == 2 else before
    _assert_clean(result, before, store.home)


@file_only  # `govern dashboard` on an existing store replaces the process with the server: never here
def test_dashboard_and_demo_take_the_global_home(tmp_path, monkeypatch, run_cli, store):
    from click.testing import CliRunner

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVERN_HOME", raising=False)
    result = CliRunner().invoke(cli, ["dashboard", "--port", "8599"])
    assert result.exit_code == 2 and f"no govern store at {tmp_path / 'govern-data'}" in result.output
    result = CliRunner().invoke(cli, ["--home", str(store.home), "demo", "--quick"])
    assert result.exit_code == 2 and "already holds a govern store" in result.output


def test_the_sign_off_message_is_spelled_right(hostile):
    store, _ = hostile
    result = _cli(store.home, ["signoff", "credit", "1", "--reject", "--comment", "not yet"], user="rey")
    assert result.exit_code == 0 and "rey rejected credit version 1 (decision 1)" in result.output
    # A second decision by the same reviewer is a new revision of her one decision, and says so.
    result = _cli(store.home, ["signoff", "credit", "1", "--reject", "--comment", "still not"], user="rey")
    assert result.exit_code == 0
    assert "rey rejected credit version 1 (decision 2; it supersedes their earlier one)" in result.output
    withdrawn = _cli(store.home, ["signoff", "credit", "1", "--withdraw"], user="rey")
    assert withdrawn.exit_code == 0 and "rey withdrew their decision on credit version 1" in withdrawn.output


def test_withdrawing_a_decision_never_made_is_refused_and_changes_nothing(hostile):
    store, _ = hostile
    before = _store_state(store.home)
    result = _cli(store.home, ["signoff", "credit", "1", "--withdraw"], user="rey")
    assert result.exit_code == 2
    assert result.output.strip() == "error: rey has no decision on credit version 1 to withdraw."
    assert _store_state(store.home) == before
    assert _cli(store.home, ["signoff", "credit", "1", "--reject", "--comment", "no"], user="rey").exit_code == 0
    assert _cli(store.home, ["signoff", "credit", "1", "--withdraw"], user="rey").exit_code == 0
    again = _cli(store.home, ["signoff", "credit", "1", "--withdraw"], user="rey")  # withdrawn already
    assert again.exit_code == 2 and "has no decision on credit version 1 to withdraw" in again.output


def test_a_busy_store_is_a_message_and_a_retry_in_the_dashboard(hostile, monkeypatch):

    from dashboard import data
    from governance.errors import StoreBusy

    store, _ = hostile
    monkeypatch.setenv("GOVERN_HOME", str(store.home))
    monkeypatch.setattr("dashboard.app.BUSY_RETRY_S", 0)
    calls = []
    real = data.readiness  # the Overview's first read of the store

    def busy_once(home, actor):
        calls.append(1)
        if len(calls) == 1:
            raise StoreBusy("the store stayed locked by process 42 for 30 s")
        return real(home, actor)

    monkeypatch.setattr(data, "readiness", busy_once)
    from tests.support.apptest import signed_in

    at = signed_in(store.home, "vic", "viewer")
    at.run()
    assert not at.exception and len(calls) >= 2 and at.title[0].value == "Overview"


def test_a_pasted_policy_renders_as_text_not_markdown(hostile, monkeypatch):

    store, _ = hostile
    monkeypatch.setenv("GOVERN_HOME", str(store.home))
    from tests.support.apptest import signed_in

    at = signed_in(store.home, "eng", "engineer")
    at.run()
    at.switch_page("views/policies.py").run()
    at.selectbox(key="policies.pack").set_value("paste your own").run()
    at.text_area(key="policies.text").input("name: x\nversion: 1\nrules:\n  - ![y](http://example.invalid/t.png)\n").run()
    assert not at.exception
    assert any("![y](http://example.invalid/t.png)" in c.value for c in at.code)
    assert not any("example.invalid" in e.value for e in at.error)


def test_the_ducklake_extension_loads_from_a_private_folder(tmp_path, monkeypatch):
    import stat as stat_module

    from governance.errors import GovernError
    from governance.store.ducklake import extension_files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    files = extension_files()
    folder = files["postgres"].parent
    assert files["postgres"].is_symlink() and files["postgres"].resolve().is_file()
    assert stat_module.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.getuid()
    files["postgres"].unlink()
    files["postgres"].symlink_to(tmp_path / "evil.so")  # swapped: it is put right on the next load
    relinked = extension_files()["postgres"]
    assert relinked.resolve().name == "postgres.duckdb_extension" and relinked.resolve().is_file()
    os.chmod(folder, 0o755)
    monkeypatch.setattr("governance.store.ducklake.private_dir", lambda path: path)  # as if someone else's
    with pytest.raises(GovernError, match="must belong to you and be private"):
        extension_files()


def test_a_very_long_name_is_not_echoed_whole(unchanged_hostile):
    store, _ = unchanged_hostile
    result = _cli(store.home, ["gate", "credit", "v" * 10_000])
    assert result.exit_code == 2 and "(10,000 characters)" in result.output and len(result.output) < 400
    result = _cli(store.home, ["evaluate", "m" * 10_000, "1"])
    assert result.exit_code == 2 and "(10,000 characters)" in result.output and len(result.output) < 400


def test_a_review_filter_naming_no_model_is_refused_not_an_empty_queue(unchanged_hostile):
    # `review list --model nosuch` and `review claim --next 5 --model nosuch` said "no review items" and
    # "nothing to claim", exit 0: a typo read as an empty queue.
    store, _ = unchanged_hostile
    for args, user in ((["review", "list", "--model", "nosuch"], "ada"),
                       (["review", "claim", "--next", "5", "--model", "nosuch"], "rey")):
        result = _cli(store.home, args, user=user)
        assert result.exit_code == 2 and "model 'nosuch' is not registered" in result.output, \
            result.output
    result = _cli(store.home, ["monitor", "credit", "1", "--max-ece", "0"])
    assert result.exit_code == 2 and "0<x<=1" in result.output  # the range --help shows, not [0<=x<=1]
