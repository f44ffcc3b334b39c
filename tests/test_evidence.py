"""A gate that judges what matters (issue 15): parity over the groups that have evidence, intersections,
NYC LL144 impact ratios, leakage and degenerate-decision rules, and column names with any characters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fm

from evaluation import evaluate
from evaluation import reference as oracles
from governance.ingest import ColumnRoles
from policies import parse_policy, run_gate
from tests.support.stores import file_only, snapshot


def small_groups(seed: int = 0) -> pd.DataFrame:
    """The repro: two large groups with a 0.3 selection-rate gap, and two tiny ones (6 and 7 rows)."""
    rng = np.random.default_rng(seed)
    race = np.array(["white"] * 700 + ["black"] * 600 + ["native american"] * 6 + ["asian"] * 7)
    rng.shuffle(race)
    n = len(race)
    label = rng.integers(0, 2, n)
    base = np.where(race == "white", 0.65, np.where(race == "black", 0.35, 0.5))
    score = np.clip(base + rng.normal(0, 0.15, n), 0, 1).round(6)
    return pd.DataFrame({"y": label, "p": score, "race": race, "sex": rng.choice(["f", "m"], n),
                         "age": rng.integers(18, 90, n)})


def test_parity_over_the_groups_with_evidence_equals_fairlearn_on_those_groups():
    frame = small_groups()
    ours = evaluate(current=frame, label="y", score="p", sensitive=["race"], resamples=100)
    record = ours.find("fairness", "demographic_parity_difference", "race")
    pred = (frame["p"] >= 0.5).astype(int)
    # the record's value stays fairlearn's, over every group
    assert record.value == pytest.approx(fm.demographic_parity_difference(frame["y"], pred,
                                                                          sensitive_features=frame["race"]))
    big = frame["race"].isin(["white", "black"])
    levels = {level["min_rows"]: level for level in record.detail["evidence"]}
    assert sorted(levels) == [6, 7, 600]  # every group; all but the 6-row one; only the two large ones
    assert levels[600]["groups"] == 2
    assert levels[600]["value"] == pytest.approx(fm.demographic_parity_difference(
        frame["y"][big], pred[big], sensitive_features=frame["race"][big]))
    assert levels[600]["ci_low"] < levels[600]["value"] < levels[600]["ci_high"]


def test_a_large_gap_between_large_groups_blocks_though_tiny_groups_exist():
    frame = small_groups()
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["race", "sex"], resamples=100)
    policy = parse_policy("""name: t
version: 1
rules:
  - id: parity-gap
    metric: fairness.demographic_parity_difference
    feature: every
    max: 0.10
    min_samples: 50
    insufficient: warn
""", source="t.yaml")
    result = run_gate(policy=policy, metrics=metrics).results[0]
    assert (result.status, result.blocking, result.feature) == ("failed", True, "race")
    assert result.judged > 0.3
    assert "over the 2 groups with at least 50 rows" in result.reason
    assert {(e["group"], e["n"]) for e in result.excluded} == {("native american", 6), ("asian", 7)}
    assert "race=native american (6 rows, under 50)" in result.reason
    assert result.failing == [{"feature": "race", "group": None, "value": result.judged}]


def test_min_share_sets_aside_groups_under_a_share_of_the_rows():
    frame = small_groups()
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["race"], resamples=0)
    policy = parse_policy("name: t\nversion: 1\nrules:\n  - {id: p, metric: fairness.demographic_parity_difference,"
                          " feature: race, max: 0.9, min_share: 0.02}\n", source="t.yaml")
    result = run_gate(policy=policy, metrics=metrics).results[0]
    assert result.status == "insufficient" and not result.blocking  # passes on the large groups, warns on the rest
    assert [e["group"] for e in result.excluded] == ["native american", "asian"]
    assert all("under 27" in e["why"] for e in result.excluded)  # 2 % of 1,313 rows


def test_impact_ratios_equal_a_hand_computation_with_the_two_percent_exclusion():
    # 100 rows: group a 50 (selected 30), b 48 (selected 12), c 2 (selected 2: a rate of 1, but under 2 %... of
    # 100 rows is exactly 2 %, so c counts). Make c one row of 101 to fall under.
    rows = ([("a", 1)] * 30 + [("a", 0)] * 20 + [("b", 1)] * 12 + [("b", 0)] * 36 + [("c", 1)] * 1)
    frame = pd.DataFrame(rows, columns=["g", "selected"])
    frame["p"] = np.where(frame["selected"] == 1, 0.9, 0.1)
    frame["y"] = 0
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["g"], resamples=0)
    ratio = {r.group: r.value for r in metrics.select("fairness", "impact_ratio", "g")}
    assert ratio["a"] == pytest.approx(1.0) and ratio["b"] == pytest.approx((12 / 48) / (30 / 50))
    assert ratio["c"] is None  # 1 of 99 rows, under 2 %: left out, and not the highest though its rate is 1
    left_out = metrics.find("fairness", "impact_ratio", "g", "c")
    assert "under the 2% a bias audit may leave out" in left_out.detail["reason"]
    # scores: the median is 0.1, so the scoring rate is the share scoring 0.9
    scoring = {r.group: r.value for r in metrics.select("fairness", "scoring_impact_ratio", "g")}
    assert scoring["b"] == pytest.approx((12 / 48) / (30 / 50))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_impact_ratios_equal_an_independent_implementation_on_generated_data(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    groups = rng.choice(["a", "b", "c", "d", "tiny"], n, p=[0.4, 0.3, 0.2, 0.09, 0.01])
    score = np.clip(rng.beta(2, 3, n) + (groups == "b") * 0.1, 0, 1).round(4)  # ties at the median, too
    frame = pd.DataFrame({"y": rng.integers(0, 2, n), "p": score, "g": groups})
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["g"], resamples=50, threshold=0.4)
    expected = oracles.ll144_oracle((score >= 0.4).astype(int), score, groups, "g")
    for metric in ("scoring_rate", "impact_ratio", "scoring_impact_ratio"):
        for record in metrics.select("fairness", metric, "g"):
            want = expected[("fairness", metric, "g", record.group)]
            assert (record.value is None and want is None) or record.value == pytest.approx(want, rel=1e-9), \
                (metric, record.group)
            if record.value is not None:
                assert record.ci_low <= record.value <= record.ci_high
    assert metrics.find("fairness", "impact_ratio", "g", "tiny").value is None


def test_intersections_match_fairlearn_with_a_combined_sensitive_feature():
    rng = np.random.default_rng(5)
    n = 4000
    frame = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.random(n).round(5),
                          "sex": rng.choice(["f", "m"], n), "race": rng.choice(["w", "b", "o"], n, p=[.6, .3, .1])})
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["sex", "race"],
                       intersections=[("sex", "race")], resamples=0)
    combined = frame["sex"] + " & " + frame["race"]
    expected = oracles.fairness_oracle(frame["y"].to_numpy(), frame["p"].to_numpy(), combined, "sex*race", 0.5)
    ours = {r.key(): r.value for r in metrics.records if r.feature == "sex*race" and r.metric != "reliability_bin"}
    assert len(ours) > 50
    for key, value in ours.items():
        want = expected[key]
        assert (value is None and want is None) or value == pytest.approx(want, rel=1e-9, abs=1e-12), key
    assert {r.group for r in metrics.select("fairness", "count", "sex*race")} == set(combined)
    policy = parse_policy("name: t\nversion: 1\nrules:\n  - {id: x, metric: fairness.selection_rate, "
                          "feature: sex*race, group: every, min: 0.0}\n", source="t.yaml")
    assert run_gate(policy=policy, metrics=metrics).results[0].status == "passed"


def test_an_intersection_needs_real_columns_and_a_free_name():
    frame = pd.DataFrame({"y": [0, 1] * 50, "p": [0.2, 0.8] * 50, "sex": ["f", "m"] * 50, "sex*race": ["x"] * 100})
    from evaluation import MetricInputError
    with pytest.raises(MetricInputError, match="does not have"):
        evaluate(current=frame, label="y", score="p", intersections=[("sex", "race")], resamples=0)
    with pytest.raises(MetricInputError, match="would hide it"):
        evaluate(current=frame.assign(race="w"), label="y", score="p", intersections=[("sex", "race")], resamples=0)


LEAKY_AND_DEGENERATE = """name: t
version: 1
rules:
  - {id: leak, kind: leakage}
  - {id: flat, kind: degenerate}
"""


def test_a_leaky_feature_is_named_and_a_degenerate_model_flagged():
    rng = np.random.default_rng(7)
    n = 2000
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({"y": y, "p": np.clip(0.5 + rng.normal(0, 0.2, n), 0.01, 0.99),
                          "days_in_collections": np.where(y == 1, rng.integers(30, 400, n), 0),  # after the outcome
                          "status": np.where(y == 1, "charged off", rng.choice(["current", "paid"], n)),
                          "age": rng.integers(18, 90, n), "customer_id": [f"c{i}" for i in range(n)],
                          "sex": rng.choice(["f", "m"], n)})
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["sex"], resamples=0,
                       probe=["days_in_collections", "status", "age", "customer_id", "y", "p"])
    separation = {r.feature: r for r in metrics.select("sanity", "feature_auc")}
    assert set(separation) == {"days_in_collections", "status", "age", "customer_id"}  # never the label or score
    assert separation["days_in_collections"].value == pytest.approx(1.0)
    assert separation["age"].value < 0.6
    assert separation["customer_id"].value is None and "identifier" in separation["customer_id"].detail["reason"]
    from sklearn.metrics import roc_auc_score
    age_auc = roc_auc_score(y, frame["age"])
    assert separation["age"].value == pytest.approx(max(age_auc, 1 - age_auc))
    leak, flat = run_gate(policy=parse_policy(LEAKY_AND_DEGENERATE, source="t.yaml"), metrics=metrics).results
    assert leak.status == "failed" and "'days_in_collections' separates the label" in leak.reason
    assert "'status'" in leak.reason and "'age'" not in leak.reason
    assert flat.status == "passed"

    degenerate = frame.assign(p=np.where(np.arange(n) < 6, 0.9, 0.1))  # selects 0.3 % of people
    metrics = evaluate(current=degenerate, label="y", score="p", sensitive=["sex"], resamples=0)
    leak, flat = run_gate(policy=parse_policy(LEAKY_AND_DEGENERATE, source="t.yaml"), metrics=metrics).results
    assert flat.status == "failed" and "overall 0.30%" in flat.reason
    assert leak.status == "passed" and "no feature column could be probed" in leak.reason


def test_the_shipped_packs_hold_the_sanity_rules():
    from policies import load_policy, shipped_packs
    default, strict = (load_policy(shipped_packs()[name]) for name in ("default", "strict"))
    kinds = {pack: {r.kind: r.severity for r in loaded.policy.rules} for pack, loaded in
             (("default", default), ("strict", strict))}
    assert kinds["default"]["leakage"] == kinds["default"]["degenerate"] == "warn"
    assert kinds["strict"]["leakage"] == kinds["strict"]["degenerate"] == "block"


WEIRD = ["age>=65", 'say "hi"; drop', "été x", "it's", "a b", 'x";DROP TABLE models;--']


def test_column_names_with_any_characters_go_through_ingest_evaluation_gate_and_review(make_store, tmp_path):
    """The repro: a sensitive column named age>=65 crashed the enforced gate when its group failed."""
    store = make_store()
    rng = np.random.default_rng(3)
    n = 1500
    frame = pd.DataFrame({"lab el": rng.integers(0, 2, n), "sc'ore": rng.random(n).round(5)})
    for name in WEIRD:
        frame[name] = rng.choice(["yes", "no"], n)
    frame["sc'ore"] = np.where(frame["age>=65"] == "yes", frame["sc'ore"] * 0.4, frame["sc'ore"])
    path = tmp_path / "weird.csv"
    frame.to_csv(path, index=False)
    roles = ColumnRoles(label="lab el", score="sc'ore", sensitive=tuple(WEIRD), features=(),
                        intersections=((WEIRD[0], WEIRD[1]),))
    engineer = store.as_("eng")
    for split in ("eval", "reference"):
        engineer.ingest(model="credit", version="1", file=path, split=split, roles=roles)
    _, metrics = engineer.evaluate(model="credit", version="1", resamples=20)
    assert {r.feature for r in metrics.select("fairness", "count")} == set(WEIRD) | {f"{WEIRD[0]}*{WEIRD[1]}"}
    policy = tmp_path / "p.yaml"
    policy.write_text("""name: weird
version: 1
rules:
  - id: parity
    metric: fairness.demographic_parity_difference
    feature: every
    max: 0.1
    on_fail:
      review: {sample: 4, strategy: worst_group}
""")
    store.assign_policy(policy)
    outcome = engineer.gate(model="credit", version="1")
    result = outcome.decision.results[0]
    assert result.status == "failed" and result.feature in ("age>=65", 'age>=65*say "hi"; drop')
    items = [store.as_("rey").show_review_item(item_id=i).item for i in outcome.review_items]
    examples = [item for item in items if item.kind != "rule_failure"]
    assert len(examples) == 4
    assert [m.name for m in engineer.list_models()] == ["credit"]  # the SQL-looking name stayed a name


@file_only
def test_ingest_takes_intersections_from_the_cli_and_refuses_bad_ones(make_store, run_cli, tmp_path):
    store = make_store()
    frame = small_groups()
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    base = [store.home, "ingest", "credit", "1", path, "--split", "eval", "--label", "y", "--score", "p"]
    bad = run_cli(*base, "--sensitive", "race", "--intersections", "race*sex", as_="eng")
    assert bad.exit_code == 2 and "add 'sex' to --sensitive" in bad.output
    ok = run_cli(*base, "--sensitive", "race,sex", "--intersections", "race*sex", "--json", as_="eng")
    assert ok.exit_code == 0, ok.output
    import json
    assert json.loads(ok.output)["intersections"] == [["race", "sex"]]
    _, metrics = store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    assert metrics.find("fairness", "demographic_parity_difference", "race*sex") is not None


def test_the_retraining_search_judges_intersections_as_the_gate_will():
    from governance.aim import Aim
    frame = small_groups()
    policy = parse_policy("name: t\nversion: 1\nrules:\n  - {id: p, metric: fairness.demographic_parity_difference,"
                          " feature: every, max: 0.1, min_samples: 50}\n", source="t.yaml")
    aim = Aim.of(policy, {}, label="y", sensitive=["race", "sex"], threshold=0.5, flagged=["p"],
                 failing_columns=["race*sex"], intersections=[("race", "sex")], eval_rows=2 * len(frame))
    assert aim.offsets_for == ("race", "sex")  # a failing intersection points at both of its columns
    # a column that did not fail still gets offsets (closing one gap moves the others), the failing one last
    assert Aim.of(policy, {}, label="y", sensitive=["sex", "race"], threshold=0.5, flagged=["p"],
                  failing_columns=["sex"]).offsets_for == ("race", "sex")
    # A round queued by the calibration rule must still meet parity: round 1 had met it with offsets, round 2
    # (flagged for ECE only) was allowed none, failed parity and escalated a version worse than its parent.
    both = parse_policy("name: t\nversion: 1\nrules:\n  - {id: p, metric: fairness.demographic_parity_difference,"
                        " feature: race, max: 0.1, min_samples: 50}\n  - {id: e, metric: calibration.ece, max: 0.05}\n"
                        "  - {id: w, metric: fairness.demographic_parity_difference, feature: sex, max: 0.1,"
                        " severity: warn}\n", source="t.yaml")
    assert Aim.of(both, {}, label="y", sensitive=["race", "sex"], threshold=0.5, flagged=["e"]).offsets_for == ("race",)
    verdict = aim.judge(frame, frame["p"].to_numpy())
    assert not verdict.passes and any("race*sex" in reason for reason in verdict.failing)
    # min_samples scale with the rows judged: half the eval split's rows, so 25 here where the gate asks 50
    assert aim._scaled(len(frame)).policy.rules[0].min_samples == 25


def test_a_gap_between_large_groups_is_judged_however_many_small_groups_there_are():
    """Hostile repro: 70 groups of 20-89 rows beside two of 3,000 with selection rates 0.2 and 0.7."""
    rng = np.random.default_rng(11)
    parts = [("A", 3000, 0.2), ("B", 3000, 0.7)] + [(f"s{i}", 20 + i, 0.5) for i in range(70)]
    frame = pd.concat([pd.DataFrame({"g": name, "p": np.where(rng.random(n) < rate, 0.9, 0.1),
                                     "y": rng.integers(0, 2, n)}) for name, n, rate in parts], ignore_index=True)
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["g"], resamples=20)
    policy = parse_policy("name: t\nversion: 1\nrules:\n  - {id: p, metric: fairness.demographic_parity_difference,"
                          " feature: g, max: 0.1, min_share: 0.02, judge: ci_upper}\n", source="t.yaml")
    result = run_gate(policy=policy, metrics=metrics).results[0]
    assert result.status == "failed" and result.judged > 0.4 and len(result.excluded) == 70
    big = frame["g"].isin(["A", "B"])
    level = next(lv for lv in metrics.find("fairness", "demographic_parity_difference", "g").detail["evidence"]
                 if lv["groups"] == 2)
    assert level["value"] == pytest.approx(fm.demographic_parity_difference(
        frame["y"][big], (frame["p"][big] >= 0.5).astype(int), sensitive_features=frame["g"][big]))


def test_a_group_exactly_at_min_share_is_kept():
    frame = pd.DataFrame({"g": ["a"] * 93 + ["b"] * 7, "y": [0, 1] * 50, "p": [0.9] * 93 + [0.1] * 7})
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["g"], resamples=0)
    policy = parse_policy("name: t\nversion: 1\nrules:\n  - {id: p, metric: fairness.demographic_parity_difference,"
                          " feature: g, max: 0.1, min_share: 0.07, insufficient: pass}\n", source="t.yaml")
    result = run_gate(policy=policy, metrics=metrics).results[0]
    assert result.status == "failed" and result.excluded == []


def test_leaks_through_gaps_text_and_dates_are_found_and_noise_categories_are_not():
    rng = np.random.default_rng(12)
    n = 600
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "y": y, "p": rng.random(n),
        "chargeoff_amount": np.where(y == 1, rng.random(n) * 1000, np.nan),  # filled only for positives
        "amount_as_text": np.where(y == 1, rng.integers(500, 900, n), rng.integers(0, 400, n)).astype(str),
        "closed_at": pd.to_datetime("2024-01-01")
        + pd.to_timedelta(np.where(y == 1, 200, 0) + rng.integers(0, 150, n), "D"),
        "noise": rng.choice([f"c{i}" for i in range(100)], n),
    })
    frame.loc[:5, "amount_as_text"] = "n/a"
    metrics = evaluate(current=frame, label="y", score="p", resamples=0, probe=list(frame.columns[2:]))
    separation = {r.feature: r.value for r in metrics.select("sanity", "feature_auc")}
    assert separation["chargeoff_amount"] == pytest.approx(1.0)
    assert separation["amount_as_text"] > 0.98 and separation["closed_at"] == pytest.approx(1.0)
    assert separation["noise"] < 0.6  # rates cross-fitted: 100 categories of 6 rows do not "separate" the label
    result = run_gate(policy=parse_policy(LEAKY_AND_DEGENERATE, source="t.yaml"), metrics=metrics).results[0]
    assert result.status == "failed" and "'chargeoff_amount'" in result.reason and "'noise'" not in result.reason


def test_leakage_is_insufficient_on_one_class_and_flags_inverted_scores():
    one_class = pd.DataFrame({"y": [1] * 50, "p": np.linspace(0, 1, 50), "s": ["a", "b"] * 25})
    metrics = evaluate(current=one_class, label="y", score="p", resamples=0)
    leak = run_gate(policy=parse_policy(LEAKY_AND_DEGENERATE, source="t.yaml"), metrics=metrics).results[0]
    assert leak.status == "insufficient" and "undefined" in leak.reason
    inverted = pd.DataFrame({"y": [0, 1] * 50, "p": [0.9, 0.1] * 50})
    metrics = evaluate(current=inverted, label="y", score="p", resamples=0)
    leak = run_gate(policy=parse_policy(LEAKY_AND_DEGENERATE, source="t.yaml"), metrics=metrics).results[0]
    assert leak.status == "failed" and "invert the label" in leak.reason


def test_intersections_refuse_values_holding_the_separator_and_duplicates():
    from evaluation import MetricInputError
    frame = pd.DataFrame({"y": [0, 1] * 50, "p": [0.2, 0.8] * 50, "a": ["x & y", "x"] * 50, "b": ["z", "y & z"] * 50})
    with pytest.raises(MetricInputError, match="contain ' & '"):
        evaluate(current=frame, label="y", score="p", sensitive=["a", "b"], intersections=[("a", "b")], resamples=0)
    clean = frame.assign(a=["x", "w"] * 50, b=["z", "v"] * 50)
    metrics = evaluate(current=clean, label="y", score="p", sensitive=["a", "b"], resamples=0,
                       intersections=[("a", "b"), ("a", "b")])
    keys = [r.key() for r in metrics.records if r.metric != "reliability_bin"]
    assert len(keys) == len(set(keys)) and metrics.params["intersections"] == [["a", "b"]]


@file_only
def test_ingest_refuses_group_names_that_would_forge_output_or_merge_intersections(make_store, run_cli, tmp_path):
    store = make_store()
    base = [store.home, "ingest", "credit", "1", None, "--split", "eval", "--label", "y", "--score", "p",
            "--sensitive", "a,b"]
    cases = {
        "ctrl.parquet": (pd.DataFrame({"y": [0, 1], "p": [0.1, 0.9], "a": ["ok", "bad\n  PASS fake\x1b[32m"],
                                       "b": ["u", "v"]}), [], "control characters"),
        "blank.parquet": (pd.DataFrame({"y": [0, 1], "p": [0.1, 0.9], "a": ["ok", "  "], "b": ["u", "v"]}), [],
                          "blank"),
        "amp.parquet": (pd.DataFrame({"y": [0, 1], "p": [0.1, 0.9], "a": ["x & y", "x"], "b": ["u", "v"]}),
                        ["--intersections", "a*b"], "containing ' & '"),
        "twice.parquet": (pd.DataFrame({"y": [0, 1], "p": [0.1, 0.9], "a": ["x", "w"], "b": ["u", "v"]}),
                          ["--intersections", "a*b,a*b"], "given more than once"),
    }
    before = snapshot(store.home)
    for name, (frame, extra, message) in cases.items():
        path = tmp_path / name
        frame.to_parquet(path, index=False)
        args = list(base)
        args[4] = path
        result = run_cli(*args, *extra, as_="eng")
        assert result.exit_code == 2 and message in result.output, (name, result.output)
    assert snapshot(store.home) == before


def test_undefined_impact_ratios_say_why():
    frame = pd.DataFrame({"g": ["a", "b"] * 50, "y": [0, 1] * 50, "p": [0.1] * 100})
    metrics = evaluate(current=frame, label="y", score="p", sensitive=["g"], resamples=0)
    record = metrics.find("fairness", "impact_ratio", "g", "a")
    assert record.value is None and "selection rate is 0" in record.detail["reason"]


def test_the_search_never_takes_a_model_that_stopped_deciding_for_a_fair_one():
    from governance.aim import Aim
    frame = small_groups()
    policy = parse_policy("name: t\nversion: 1\nrules:\n  - {id: p, metric: fairness.demographic_parity_difference,"
                          " feature: race, max: 0.1, min_samples: 50}\n", source="t.yaml")
    aim = Aim.of(policy, {}, label="y", sensitive=["race"], threshold=0.5, flagged=["p"])
    everyone_out = aim.judge(frame, np.full(len(frame), 0.1))  # every gap 0: the parity rule alone would pass it
    assert not everyone_out.passes and not everyone_out.robust
    assert any(reason.startswith("search-guard-degenerate:") for reason in everyone_out.failing)


def test_the_search_guard_scales_with_a_rare_class():
    # A new user's 3.3 % default rate: candidates selecting 0.9 % were thrown out as selecting nobody.
    from governance.aim import Aim
    rng = np.random.default_rng(5)
    n = 6000
    frame = pd.DataFrame({"y": (rng.random(n) < 0.033).astype(int), "g": rng.choice(["a", "b"], n)})
    policy = parse_policy("name: t\nversion: 1\nrules:\n  - {id: auc, metric: performance.roc_auc, min: 0.0}\n",
                          source="t.yaml")
    aim = Aim.of(policy, {}, label="y", sensitive=["g"], threshold=0.5, flagged=["auc"])
    scores = np.where(np.arange(n) < int(n * 0.009), 0.9, 0.1)  # selects 0.9 %: a cautious model, not none
    assert aim.judge(frame, scores).passes
    nobody = aim.judge(frame, np.where(np.arange(n) < 6, 0.9, 0.1))  # 0.1 %: under a tenth of 3.3 %
    assert not nobody.passes and any(r.startswith("search-guard-degenerate:") for r in nobody.failing)
    common = frame.assign(y=(rng.random(n) < 0.3).astype(int))  # a common class keeps the 1 % floor
    assert not aim.judge(common, scores).passes


def test_the_search_judges_a_regression_rule_on_the_same_rows_as_the_reference_and_with_a_margin():
    # OJ: the plain model's held-out ROC AUC was 0.917 against the origin's 0.875 on eval; a candidate at 0.79
    # was judged 0.085 below the origin (within 0.10) and the gate found it 0.12 below and blocked it, 4 times in 4.
    from governance.aim import Aim

    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({"y": y, "sex": rng.choice(["f", "m"], n)})
    reference = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.25, n), 0.01, 0.99)  # separates well
    candidate = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.45, n), 0.01, 0.99)  # less so
    measured = {name: evaluate(current=frame.assign(p=scores), label="y", score="p", sensitive=["sex"], resamples=0)
                for name, scores in (("reference", reference), ("candidate", candidate))}
    auc = {name: m.find("performance", "roc_auc").value for name, m in measured.items()}
    cost = auc["reference"] - auc["candidate"]
    assert 0.05 < cost < 0.2
    origin_eval = evaluate(current=frame.assign(p=np.clip(candidate + (y - 0.5) * 0.05, 0, 1)), label="y", score="p",
                           sensitive=["sex"], resamples=0)  # the origin on its own (eval) rows: a harder sample
    bound = round(cost - 0.02, 3)
    assert auc["candidate"] > origin_eval.find("performance", "roc_auc").value - bound  # unpaired: it would pass
    policy = parse_policy("name: t\nversion: 1\nrules:\n  - {id: cost, metric: performance.roc_auc, "
                          f"max_regression: {bound}, baseline: origin}}\n", source="t.yaml")
    aim = Aim.of(policy, {"origin": ("version 1", origin_eval)}, label="y", sensitive=["sex"], threshold=0.5,
                 flagged=[])
    assert aim.judge(frame, candidate).passes  # against the eval value, as before
    paired = aim.judge(frame, candidate, reference)
    assert not paired.passes and paired.failing[0].startswith("cost:") and "estimated on the held-out rows" in \
        paired.failing[0]
    # a candidate within the bound on the same rows passes, but not with two standard errors of margin to spare
    close = np.clip(reference - (y - 0.5) * 0.02, 0.01, 0.99)
    generous = parse_policy(policy.text.replace(f"max_regression: {bound}", "max_regression: 0.03"), source="g")
    verdict = Aim.of(generous, {"origin": ("version 1", origin_eval)}, label="y", sensitive=["sex"], threshold=0.5,
                     flagged=[]).judge(frame, close, reference)
    assert verdict.passes and not verdict.robust


@file_only
def test_train_refuses_a_bad_intersection_before_training_and_others_cannot_ingest(make_store, run_cli, tmp_path):
    store = make_store()
    frame = small_groups()
    path = tmp_path / "train.csv"
    frame.drop(columns=["p"]).to_csv(path, index=False)
    before = snapshot(store.home)
    for bad, message in (("race*nope", "add 'nope' to --sensitive"), ("race*sex,race*sex", "given more than once"),
                         ("race*race", "two or more different"), ("race*", "names a blank column")):
        result = run_cli(store.home, "train", "credit", "--data", path, "--label", "y", "--sensitive", "race,sex",
                         "--intersections", bad, as_="eng")
        assert result.exit_code == 2 and message in result.output and "epoch" not in result.output, result.output
    frame.to_csv(tmp_path / "eval.csv", index=False)
    viewer = run_cli(store.home, "ingest", "credit", "1", tmp_path / "eval.csv", "--split", "eval", "--label", "y",
                     "--score", "p", "--sensitive", "race,sex", "--intersections", "race*sex", as_="vic")
    assert viewer.exit_code == 2
    nobody = run_cli(store.home, "gate", "show", "credit", "1")
    assert nobody.exit_code == 2 and "Traceback" not in nobody.output
    assert snapshot(store.home) == before


@pytest.mark.parametrize("pack", ["default", "strict"])
def test_an_eval_set_of_one_label_class_blocks_both_shipped_packs(pack):
    # A hostile trial: 1,200 rows, every label 0, scores near 0, passed the default gate (better-than-chance only
    # warned of too little evidence) and was released with one approval.
    from policies import load_policy, shipped_packs
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"y": np.zeros(1200, dtype=int), "p": rng.random(1200) * 0.02,
                          "sex": rng.choice(["f", "m"], 1200)})
    metrics = evaluate(current=frame, reference=frame, label="y", score="p", sensitive=["sex"], resamples=50)
    decision = run_gate(policy=load_policy(shipped_packs()[pack]), metrics=metrics)
    [chance] = [r for r in decision.results if r.rule_id == "better-than-chance"]
    assert chance.status == "insufficient" and chance.blocking and "only one class is present" in chance.reason
    assert decision.verdict == "blocked"
