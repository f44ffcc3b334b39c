"""The challenger: the logistic regression `govern train` fits beside the torch model, `--split challenger`
for models trained elsewhere, `baseline: challenger` rules, and `govern gate show`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from governance.errors import InvalidInput
from governance.service import Service
from tests.support.frames import biased
from tests.support.stores import ACS_ROLES
from training.trainer import TrainConfig

RULE = ("name: c\nversion: 1\nrules:\n"
        "  - {id: challenger-auc, metric: performance.roc_auc, max_regression: 0.02, baseline: challenger, "
        "insufficient: warn}\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Model m version 1 trained (and evaluated) on 1,200 rows; returns (home, the training table)."""
    folder = tmp_path_factory.mktemp("challenger")
    home = folder / "home"
    Service.open(home=home).init(admin="ada")
    Service.open(home=home, actor="ada").add_user(name="eng", role="engineer")
    frame = biased(1200, seed=3)
    frame.to_csv(folder / "biased.csv", index=False)
    engineer = Service.open(home=home, actor="eng")
    engineer.train_version(model="m", data=folder / "biased.csv", label="y", sensitive=["sex"],
                           config=TrainConfig(epochs=3, sensitive=("sex",)))
    engineer.evaluate(model="m", version="1", resamples=20)
    return home, frame


def _sets(service: Service, model: str, version: str) -> dict:
    return {p.split: p for p in service.show_version(model=model, version=version).prediction_sets}


def test_train_scores_the_eval_rows_with_a_logistic_regression_fitted_on_the_training_rows(trained):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from governance.service.training import split_rows

    home, frame = trained
    engineer = Service.open(home=home, actor="eng")
    sets = _sets(engineer, "m", "1")
    assert set(sets) == {"eval", "reference", "challenger"}
    evaluation_rows = pd.read_parquet(engineer.prediction_set_path(sets["eval"]))
    challenger_rows = pd.read_parquet(engineer.prediction_set_path(sets["challenger"]))
    assert list(challenger_rows.columns) == list(evaluation_rows.columns)
    others = [c for c in evaluation_rows.columns if c != "govern_score"]
    pd.testing.assert_frame_equal(challenger_rows[others], evaluation_rows[others])
    assert (sets["challenger"].score_column, sets["challenger"].id_column) == ("govern_score", "row_id")

    # The same regression, fitted independently on the rows the torch model trained on.
    train_rows, eval_rows = split_rows(len(frame), 0.25, 0)
    assert list(challenger_rows["row_id"]) == list(eval_rows)
    features = ["x", "z", "sex", "c"]
    reference = make_pipeline(ColumnTransformer([("n", StandardScaler(), ["x", "z"]),
                                                 ("c", OneHotEncoder(handle_unknown="ignore"), ["sex", "c"])]),
                              LogisticRegression(max_iter=1000, random_state=0))
    reference.fit(frame.iloc[train_rows][features], frame.iloc[train_rows]["y"])
    expected = reference.predict_proba(frame.iloc[eval_rows][features])[:, 1]
    assert challenger_rows["govern_score"].to_numpy() == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_the_challenger_evaluation_is_scikit_learns_and_never_the_versions_own(trained):
    home, _ = trained
    viewer = Service.open(home=home, actor="eng")
    sets = _sets(viewer, "m", "1")
    label, evaluation, records = viewer.challenger_evaluation(model="m", version="1")
    assert label == "challenger (logistic regression)" and evaluation.prediction_set_id == sets["challenger"].id
    stored = pd.read_parquet(viewer.prediction_set_path(sets["challenger"]))
    assert records.find("performance", "roc_auc").value == pytest.approx(roc_auc_score(stored["y"],
                                                                                       stored["govern_score"]))
    assert records.find("performance", "accuracy").value == pytest.approx(
        accuracy_score(stored["y"], stored["govern_score"] >= 0.5))
    assert records.find("performance", "roc_auc").ci_low is not None  # the same 20 resamples as the eval set
    assert not records.select("drift", "drift_score")  # no drift: the eval evaluation has that
    own, own_records = viewer.latest_evaluation(model="m", version="1")
    assert own.prediction_set_id == sets["eval"].id and own_records.select("drift", "drift_score")
    assert {p.evaluation_id for p in viewer.metric_trend(model="m")} == {own.id}


def _acs_challenger(path, acs_files, scores) -> None:
    frame = pd.read_parquet(acs_files[0])
    frame["predicted_probability"] = scores(frame)
    frame.to_parquet(path)


def _auc(path) -> float:
    frame = pd.read_parquet(path)
    return roc_auc_score(frame["employed"], frame["predicted_probability"])


def test_baseline_challenger_blocks_a_model_more_than_the_allowed_regression_below_it(evaluated_store, acs_files,
                                                                                      tmp_path):
    engineer = evaluated_store.as_("eng")
    policy = tmp_path / "c.yaml"
    policy.write_text(RULE)
    rng = np.random.default_rng(0)
    strong, weak = tmp_path / "strong.parquet", tmp_path / "weak.parquet"
    _acs_challenger(strong, acs_files, lambda f: (0.6 * f["employed"] + 0.4 * rng.random(len(f))).round(6))
    _acs_challenger(weak, acs_files, lambda f: f["predicted_probability"].where(f.index % 3 != 0, 0.5))
    model_auc = _auc(acs_files[0])
    assert _auc(strong) - model_auc > 0.02 and model_auc > _auc(weak)

    engineer.ingest(model="credit", version="1", file=strong, split="challenger", roles=ACS_ROLES)
    engineer.evaluate(model="credit", version="1", resamples=0)
    decision = engineer.gate(model="credit", version="1", policy=policy, dry_run=True).decision
    [result] = decision.results
    assert (decision.verdict, result.status, result.blocking) == ("blocked", "failed", True)
    assert (result.judged, result.baseline_value) == (pytest.approx(model_auc), pytest.approx(_auc(strong)))
    assert decision.baseline == "challenger (strong.parquet)"
    assert result.reason.endswith("(challenger (strong.parquet)); at most 0.02 worse is allowed.")

    engineer.ingest(model="credit", version="1", file=weak, split="challenger", roles=ACS_ROLES)
    waiting = engineer.gate(model="credit", version="1", policy=policy, dry_run=True).decision.results[0]
    assert waiting.status == "insufficient"  # the latest challenger is not evaluated yet: no stale baseline
    engineer.evaluate(model="credit", version="1", resamples=0)
    passed = engineer.gate(model="credit", version="1", policy=policy, dry_run=True).decision
    assert (passed.verdict, passed.results[0].status) == ("passed", "passed")
    assert passed.results[0].baseline_value == pytest.approx(_auc(weak))
    # the challenger sets never stand in for the version's own evaluation
    evaluation, _ = engineer.latest_evaluation(model="credit", version="1")
    assert evaluation.prediction_set_id == _sets(engineer, "credit", "1")["eval"].id


def test_a_challenger_scores_the_eval_rows_and_no_others(evaluated_store, acs_files, tmp_path, run_cli):
    # 100 unrelated rows scored 0.5 were accepted as a challenger (ROC AUC 0.5), disarming challenger-auc.
    from dataclasses import replace

    from tests.support.stores import snapshot
    engineer = evaluated_store.as_("eng")
    eval_rows = pd.read_parquet(acs_files[0]).assign(rid=lambda f: [f"r{i}" for i in range(len(f))])
    fewer, ids, other_ids = (tmp_path / f"{name}.parquet" for name in ("fewer", "ids", "other"))
    eval_rows.head(100).assign(predicted_probability=0.5).to_parquet(fewer, index=False)
    eval_rows.to_parquet(ids, index=False)
    eval_rows.assign(rid=lambda f: f["rid"].where(f.index >= 100, "x" + f["rid"])).to_parquet(other_ids, index=False)
    engineer.register_version(model="credit", version="2", artifact=evaluated_store.artifact)
    with pytest.raises(InvalidInput, match="credit version 2 has no eval set yet; a challenger scores the eval rows"):
        engineer.ingest(model="credit", version="2", file=ids, split="challenger", roles=replace(ACS_ROLES, id="rid"))
    engineer.ingest(model="credit", version="2", file=ids, split="eval", roles=replace(ACS_ROLES, id="rid"))
    before = snapshot(evaluated_store.home)
    base = ["--split", "challenger", "--label", "employed", "--score", "predicted_probability"]
    refused = run_cli(evaluated_store.home, "ingest", "credit", "1", fewer, *base, as_="eng")
    assert refused.exit_code == 2
    assert "fewer.parquet has 100 rows and the eval set" in refused.stderr and "same eval rows" in refused.stderr
    moved = run_cli(evaluated_store.home, "ingest", "credit", "2", other_ids, *base, "--id", "rid", as_="eng")
    assert moved.exit_code == 2 and ("other.parquet does not score the eval rows of" in moved.stderr
                                     and "100 of its ids are not eval rows and 100 eval rows have no score" in
                                     moved.stderr), moved.stderr
    no_ids = run_cli(evaluated_store.home, "ingest", "credit", "2", ids, *base, as_="eng")
    assert no_ids.exit_code == 2 and "names its rows by 'rid': give the challenger's id column with --id" in \
        no_ids.stderr
    flipped = tmp_path / "flipped.parquet"
    eval_rows.assign(employed=1 - eval_rows["employed"]).to_parquet(flipped, index=False)
    relabelled = run_cli(evaluated_store.home, "ingest", "credit", "2", flipped, *base, "--id", "rid", as_="eng")
    assert relabelled.exit_code == 2 and (f"flipped.parquet gives {len(eval_rows):,} eval row(s) another label "
                                          "than the eval set") in relabelled.stderr, relabelled.stderr
    assert snapshot(evaluated_store.home) == before  # nothing stored, not even the file
    engineer.ingest(model="credit", version="2", file=ids, split="challenger", roles=replace(ACS_ROLES, id="rid"))


def test_without_a_challenger_the_default_pack_warns_and_says_how_to_register_one(evaluated_store):
    from policies import shipped_packs

    engineer = evaluated_store.as_("eng")
    engineer.evaluate(model="credit", version="1", resamples=0)
    decision = engineer.gate(model="credit", version="1", policy=shipped_packs()["default"], dry_run=True).decision
    [result] = [r for r in decision.results if r.rule_id == "challenger-auc"]
    assert (result.status, result.blocking, result.comparison) == ("insufficient", False, None)
    assert result.reason == (
        "there is no evaluated baseline (challenger) to compare roc auc with; insufficient evidence. The policy says "
        "this counts as a warning. `govern train` fits a challenger itself; for a model trained elsewhere, ingest a "
        "challenger's scores on the same eval rows with `govern ingest credit 1 FILE --split challenger`, then "
        "`govern evaluate credit 1`.")
    assert "accuracy-floor" not in {r.rule_id for r in decision.results}
    strict = engineer.gate(model="credit", version="1", policy=shipped_packs()["strict"], dry_run=True).decision
    [result] = [r for r in strict.results if r.rule_id == "challenger-auc"]
    assert (result.status, result.blocking) == ("insufficient", True)  # high risk: no benchmark, no release


@pytest.fixture
def gated(evaluated_store, acs_files, tmp_path, run_cli):
    """credit version 1 evaluated with a challenger and gated (binding) under RULE plus an ECE bound."""
    engineer = evaluated_store.as_("eng")
    challenger = tmp_path / "strong.parquet"
    _acs_challenger(challenger, acs_files, lambda f: (0.7 * f["employed"] + 0.3 * f["predicted_probability"]))
    engineer.ingest(model="credit", version="1", file=challenger, split="challenger", roles=ACS_ROLES)
    engineer.evaluate(model="credit", version="1", resamples=20)
    policy = tmp_path / "c.yaml"
    policy.write_text(RULE + "  - {id: ece, metric: calibration.ece, max: 0.5, judge: ci_upper}\n"
                             "  - {id: parity, metric: fairness.demographic_parity_difference, feature: every, "
                             "max: 0.0001}\n")
    evaluated_store.assign_policy(policy)
    assert run_cli(evaluated_store.home, "gate", "credit", "1", as_="eng").exit_code == 1  # the plain form still runs
    return evaluated_store


def test_gate_show_prints_the_stored_decision_for_any_role(gated, run_cli):
    stored = gated.as_("vic").latest_gate(model="credit", version="1")
    shown = run_cli(gated.home, "gate", "show", "credit", "1", "--json", as_="vic")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == json.loads(json.dumps(stored.to_dict()))

    text = run_cli(gated.home, "gate", "show", "credit", "1", as_="aud")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    decision = stored.decision
    judged = gated.as_("vic").latest_evaluation(model="credit", version="1")[0].params  # the gate judged the latest
    assert (decision.decision_threshold, decision.rows) == (judged["threshold"], judged["rows"]) == (0.5, 3456)
    assert lines[:7] == [
        f"credit version 1: gate BLOCKED [{stored.id}]",
        "  mode:           enforce",
        f"  decided:        {stored.created_at:%Y-%m-%d %H:%M:%S} by eng",
        f"  policy:         c v1 (sha256 {stored.policy_sha256})",
        f"  evaluation:     {stored.evaluation_id} (metrics sha256 {stored.metrics_sha256}), at decision threshold "
        "0.5, 3,456 eval rows",
        "  baseline:       challenger (strong.parquet)",
        "  rules:          3"]
    challenger, ece, parity = [r.to_dict() for r in decision.results]
    assert lines[7:10] == [
        "  FAIL         challenger-auc (metric, severity block, blocking)",
        f"      performance.roc_auc: {challenger['judged']:.4f}; limit at most 0.0200 worse than the "
        f"baseline's {challenger['baseline_value']:.4f}; n {challenger['n']}",
        f"      {challenger['reason']}"]
    assert lines[10:13] == [
        "  PASS         ece (metric, severity block)",
        f"      calibration.ece: {ece['judged']:.4f} (judged at ci_upper); limit <= 0.5000; n {ece['n']}",
        f"      {ece['reason']}"]
    assert lines[13].startswith("  FAIL         parity (metric, severity block, blocking)")
    assert lines[15] == f"      failing groups: {', '.join(parity['failing_groups'])}" and parity["failing_groups"]
    assert lines[16] == f"      {parity['reason']}" and len(lines) == 17

    by_id = run_cli(gated.home, "gate", "show", "credit", "1", "--id", stored.id, "--json", as_="vic")
    assert json.loads(by_id.stdout)["id"] == stored.id


def test_gate_show_without_a_decision_exits_2_naming_the_command(evaluated_store, run_cli):
    result = run_cli(evaluated_store.home, "gate", "show", "credit", "1", as_="vic")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: credit version 1 has no gate decision yet; run `govern gate credit 1`.\n"
    result = run_cli(evaluated_store.home, "gate", "show", "credit", "9", as_="vic")
    assert result.exit_code == 2 and result.stderr == "error: version '9' of model 'credit' is not registered.\n"
    result = run_cli(evaluated_store.home, "gate", "show", "credit", "1", "--id", "gd-nope", as_="vic")
    assert result.exit_code == 2 and result.stderr == (
        "error: credit version 1 has no gate decision 'gd-nope'; `govern gate show credit 1` shows its latest.\n")


def test_a_model_named_show_is_gated_with_gate_run(evaluated_store, run_cli):
    engineer = evaluated_store.as_("eng")
    engineer.register_model(name="show", description="an awkward name")
    engineer.register_version(model="show", version="1", artifact=evaluated_store.artifact)
    result = run_cli(evaluated_store.home, "gate", "run", "show", "1", as_="eng")
    assert result.exit_code == 2 and result.stderr == ("error: show version 1 has not been evaluated; run "
                                                       "`govern evaluate show 1`.\n")
    result = run_cli(evaluated_store.home, "gate", "show", "show", "1", as_="eng")
    assert result.exit_code == 2 and "show version 1 has no gate decision yet" in result.stderr
