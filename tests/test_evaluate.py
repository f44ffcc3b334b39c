"""`govern evaluate` on the store and `govern metrics` on files: the engine behind the CLI."""

from __future__ import annotations

import json

import pytest

from evaluation import evaluate
from governance.errors import NotAllowed, NotFound
from governance.ingest import ColumnRoles
from tests.support.stores import ACS_ROLES as ROLES
from tests.support.stores import file_only


def test_evaluation_is_stored_whole_and_equals_the_engine_on_the_same_files(evaluated_store, acs_files):
    evaluation, metric_set = evaluated_store.as_("eng").evaluate(model="credit", version="1", resamples=50)
    current, reference = acs_files
    direct = evaluate(current=current, reference=reference, label="employed", score="predicted_probability",
                      sensitive=["SEX", "RAC1P"], features=["AGEP", "SCHL", "MAR", "DIS"], resamples=50,
                      probe=["AGEP", "SCHL", "MAR", "DIS"])  # the service probes the set's features for leakage
    # The store holds the reference as Parquet while this reads the CSV: sums may differ in the last bit.
    assert [r.key() for r in metric_set.records] == [r.key() for r in direct.records]
    assert [r.value is None for r in metric_set.records] == [r.value is None for r in direct.records]
    assert [r.value for r in metric_set.records if r.value is not None] == \
        pytest.approx([r.value for r in direct.records if r.value is not None], rel=1e-12)

    stored_evaluation, stored = evaluated_store.as_("vic").latest_evaluation(model="credit", version="1")
    assert stored_evaluation == evaluation
    assert stored.records == metric_set.records and stored.sha256() == evaluation.records_sha256
    assert {r.family for r in stored.records} == {"performance", "calibration", "fairness", "drift", "sanity"}


def test_re_evaluating_adds_a_new_evaluation_and_logs_each(evaluated_store):
    engineer = evaluated_store.as_("eng")
    first, _ = engineer.evaluate(model="credit", version="1", resamples=0)
    second, _ = engineer.evaluate(model="credit", version="1", resamples=0, threshold=0.6)
    listed = engineer.list_evaluations(model="credit", version="1")
    assert [e.id for e in listed] == [first.id, second.id]
    assert engineer.latest_evaluation(model="credit", version="1")[0].id == second.id
    assert first.records_sha256 != second.records_sha256
    report = evaluated_store.as_("aud").verify_audit()
    assert report.ok


def test_without_a_reference_set_there_is_no_drift_and_the_params_say_so(store, acs_files):
    store.as_("eng").ingest(model="credit", version="1", file=acs_files[0], split="eval", roles=ROLES)
    _, metric_set = store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    assert not metric_set.select(family="drift")
    assert metric_set.params["drift"] == "no reference set: drift not computed"


def test_reference_version_is_used_for_drift(evaluated_store, acs_files):
    engineer = evaluated_store.as_("eng")
    engineer.register_version(model="credit", version="2", artifact=evaluated_store.artifact, parent="1")
    engineer.ingest(model="credit", version="2", file=acs_files[0], split="eval", roles=ROLES)
    evaluation, metric_set = engineer.evaluate(model="credit", version="2", reference_version="1", resamples=0)
    reference_set = [p for p in engineer.show_version(model="credit", version="1").prediction_sets
                     if p.split == "reference"][0]
    assert evaluation.reference_set_id == reference_set.id
    assert metric_set.find("drift", "share_of_drifted_columns") is not None


def test_evaluate_needs_eval_predictions_and_the_engineer_role(store):
    with pytest.raises(NotFound) as caught:
        store.as_("eng").evaluate(model="credit", version="1")
    assert str(caught.value) == ("credit version 1 has no eval predictions; ingest them with "
                                 "`govern ingest credit 1 FILE --split eval`.")
    with pytest.raises(NotAllowed, match="may not evaluate versions: that needs the role engineer or admin"):
        store.as_("rey").evaluate(model="credit", version="1")


def test_cli_evaluate_json_and_table(evaluated_store, run_cli):
    result = run_cli(evaluated_store.home, "evaluate", "credit", "1", "--resamples", "20", "--json", as_="eng")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["evaluation"]["record_count"] == len(body["records"])
    table = run_cli(evaluated_store.home, "evaluate", "credit", "1", "--resamples", "0", as_="eng").stdout
    assert "demographic_parity_difference" in table and "Wasserstein distance (normed)" in table


def test_cli_metrics_json_is_only_the_records(acs_files, run_cli, tmp_path):
    current, reference = acs_files
    result = run_cli(tmp_path, "metrics", current, "--reference", reference, "--label", "employed", "--score",
                     "predicted_probability", "--sensitive", "SEX", "--features", "AGEP,SCHL", "--format", "json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    direct = evaluate(current=current, reference=reference, label="employed", score="predicted_probability",
                      sensitive=["SEX"], features=["AGEP", "SCHL"])
    assert records == direct.to_list()
    assert set(records[0]) == {"family", "metric", "feature", "group", "value", "n", "ci_low", "ci_high", "detail"}


@pytest.mark.parametrize("args, message", [
    (["--label", "nope", "--score", "predicted_probability"],
     "cannot measure current.parquet: 1 problem.\n  - column 'nope': the label column is missing (the file has "),
    (["--label", "employed", "--score", "predicted_probability", "--features", "AGEP"],
     "drift over features needs reference data"),
    (["--label", "employed", "--score", "predicted_probability", "--sensitive", "year"],
     "the sensitive column 'year' has a single group ('2016')"),
    (["--label", "employed", "--score", "AGEP"],
     "cannot measure current.parquet: 1 problem.\n  - column 'AGEP': outside [0, 1] in "),
])
def test_cli_metrics_bad_input_exits_2(acs_files, run_cli, tmp_path, args, message):
    result = run_cli(tmp_path, "metrics", acs_files[0], *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {message}")


@pytest.mark.parametrize("content, message", [
    ("y,p\n0,low\n1,high\n", "cannot measure f.csv: 1 problem.\n  - column 'p': not a number in 2 rows (rows 1, 2; "
                              "e.g. 'low')"),
    # it fell to the crash handler (DuckDB has no isfinite for BOOLEAN); ingest refused the same file
    ("y,p\n0,False\n1,True\n", "cannot measure f.csv: 1 problem.\n  - column 'p': not a number in 2 rows (rows 1, 2; "
                                "e.g. 'False')"),
    # read as ingest reads it: yes/no labels were taken as 1/0, and a repeated label column's first was used
    ("y,p\nno,0.2\nyes,0.8\n", "cannot measure f.csv: 1 problem.\n  - column 'y': not 0 or 1 in 2 rows (rows 1, 2; "
                                "e.g. 'no')"),
    ("y;p\n0;0.2\n1;0.8\n", "cannot measure f.csv: it has a single column 'y;p'; it looks separated by ';', not ',': "
                          "pass --delimiter ';'."),  # every message names what was attempted, not "ingest"
    ("y,p,y\n0,0.2,1\n1,0.8,0\n", "cannot measure f.csv: 1 problem.\n  - column 'y': the name appears more than once "
                                  "in the header (names are compared ignoring case and surrounding spaces)"),
    # 'p ' beside 'p' had been two columns no reader tells apart
    ("y,p,P \n0,0.2,1\n1,0.8,0\n", "cannot measure f.csv: 1 problem.\n  - column 'P ': the name appears more than "
                                   "once in the header (names are compared ignoring case and surrounding spaces)"),
    # checked on the header, before DuckDB loads the file (a million columns never finished)
    ("y,p,a,b,c\n0,0.2,1,2,3\n", "cannot measure f.csv: it has 5 columns, more than the 4 a file may have "
                                 "(GOVERN_MAX_COLUMNS raises the limit)."),
])
def test_cli_metrics_refuses_a_file_it_cannot_measure(tmp_path, run_cli, monkeypatch, content, message):
    monkeypatch.setenv("GOVERN_MAX_COLUMNS", "4")
    path = tmp_path / "f.csv"
    path.write_text(content)
    result = run_cli(tmp_path, "metrics", path, "--label", "y", "--score", "p")
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"


def _small_sets(tmp_path):
    """An eval file of integer ages and a reference whose ages are 'old' on every other row (text)."""
    rows = [(i % 2, round((i % 10) / 10 + 0.05, 2), 20 + i % 7, "fm"[i % 2]) for i in range(200)]
    current, reference = tmp_path / "current.csv", tmp_path / "reference.csv"
    current.write_text("y,p,age,sex\n" + "".join(f"{y},{p},{a},{s}\n" for y, p, a, s in rows))
    reference.write_text("y,p,age,sex\n" + "".join(f"{y},{p},{'old' if i % 2 else a},{s}\n"
                                                   for i, (y, p, a, s) in enumerate(rows)))
    return current, reference


@file_only  # files whatever the store: the DuckLake run tests nothing more
def test_a_feature_of_text_in_one_set_and_numbers_in_the_other_is_compared_as_categories(store, tmp_path):
    # From a hostile trial: "unexpected failure (ConversionException: Could not convert string 'old' to DOUBLE)".
    current, reference = _small_sets(tmp_path)
    engineer = store.as_("eng")
    roles = ColumnRoles(label="y", score="p", sensitive=("sex",))
    engineer.ingest(model="credit", version="1", file=current, split="eval", roles=roles)
    engineer.ingest(model="credit", version="1", file=reference, split="reference", roles=roles)
    _, metric_set = engineer.evaluate(model="credit", version="1", resamples=0)
    age = metric_set.find("drift", "drift_score", "age")
    assert (age.detail["column_type"], age.detail["method"]) == ("cat", "chisquare")
    assert age.detail["types"] == ("the reference holds VARCHAR and the current data BIGINT: compared as "
                                   "categories of text")
    psi = metric_set.find("drift", "psi", "age").detail["distribution"]
    assert psi["bins"] == ["20", "21", "22", "23", "24", "25", "26", "old"]
    assert psi["reference_share"][-1] == 0.5 and psi["current_share"][-1] == 0


@pytest.mark.parametrize("column, expected", [
    ("age", "the column has no values in the reference data, so drift is undefined"),  # inf on every row
    (None, "error: cannot measure reference.csv: the file is empty.\n"),
])
def test_cli_metrics_reads_the_reference_as_it_reads_the_current_file(tmp_path, run_cli, column, expected):
    # The reference was sniffed: 'inf' on every row was typed DATE (a crash), an empty file had a column0.
    current, reference = _small_sets(tmp_path)
    if column:
        reference.write_text("y,p,age\n" + "0,0.2,inf\n1,0.7,inf\n" * 20)
    else:
        reference.write_text("")
    result = run_cli(tmp_path, "metrics", current, "--reference", reference, "--label", "y", "--score", "p",
                     "--features", "age", "--resamples", "0", "--format", "json")
    if column is None:
        assert result.exit_code == 2 and result.stderr == expected
        return
    assert result.exit_code == 0, result.output
    [age] = [r for r in json.loads(result.stdout) if r["feature"] == "age"]
    assert age["value"] is None and age["detail"]["reason"] == expected


def test_cli_metrics_compares_a_reference_column_of_text_as_categories(tmp_path, run_cli):
    current, reference = _small_sets(tmp_path)
    result = run_cli(tmp_path, "metrics", current, "--reference", reference, "--label", "y", "--score", "p",
                     "--features", "age", "--resamples", "0", "--format", "json")
    assert result.exit_code == 0, result.output
    [detected] = [r for r in json.loads(result.stdout) if r["feature"] == "age" and r["metric"] == "drift_detected"]
    assert detected["value"] == 1.0 and detected["detail"]["column_type"] == "cat"
