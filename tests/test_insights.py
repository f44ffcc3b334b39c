"""Reads behind the dashboard's charts: metric trends across versions, comparing two versions with a
significance test, drift over production batches in time, and the filtered audit log."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from statistics import NormalDist

import numpy as np
import pytest

from evaluation import MetricRecord, MetricSet
from evaluation.compare import compare
from governance.errors import InvalidInput, NotAllowed, NotFound
from tests.support import datasets
from tests.support.stores import ACS_ROLES, ingest_acs, snapshot


@pytest.fixture
def two_versions(evaluated_store, acs_files, tmp_path):
    """credit v1 with the shipped ACS scores; v2 scores the same rows with noise (a worse model)."""
    return _two_versions(evaluated_store, acs_files, tmp_path)


@pytest.fixture(scope="module")
def shared_two_versions(make_shared_store, acs_files, tmp_path_factory):
    """two_versions' store, once per module and store kind, for the tests that only read it."""
    store = make_shared_store()
    with store.kind.active():
        return _two_versions(ingest_acs(store, acs_files), acs_files, tmp_path_factory.mktemp("two"))


@pytest.fixture
def read_two_versions(shared_two_versions, monkeypatch):
    shared_two_versions[0].enter(monkeypatch)
    return shared_two_versions


def _two_versions(store, acs_files, folder):
    import pandas as pd

    current, reference = acs_files
    engineer = store.as_("eng")
    engineer.register_version(model="credit", version="2", artifact=store.artifact)
    noisy = pd.read_parquet(current)
    rng = np.random.default_rng(7)
    noisy["predicted_probability"] = np.clip(noisy["predicted_probability"] + rng.normal(0, 0.35, len(noisy)), 0, 1)
    noisy_path = folder / "noisy.parquet"
    noisy.to_parquet(noisy_path, index=False)
    engineer.ingest(model="credit", version="2", file=noisy_path, split="eval", roles=ACS_ROLES)
    engineer.ingest(model="credit", version="2", file=reference, split="reference", roles=ACS_ROLES)
    first = engineer.evaluate(model="credit", version="1", resamples=40)[1]
    second = engineer.evaluate(model="credit", version="2", resamples=40)[1]
    return store, first, second


def test_trend_has_each_versions_latest_headline_records(read_two_versions):
    store, first, second = read_two_versions
    trend = store.as_("vic").metric_trend(model="credit")
    assert [p.version for p in trend if p.metric == "roc_auc"] == ["1", "2"]
    for point in trend:
        source = first if point.version == "1" else second
        record = next(r for r in source.records
                      if r.metric == point.metric and r.feature == point.feature and r.group is None)
        assert (point.value, point.ci_low, point.ci_high, point.n) == (record.value, record.ci_low, record.ci_high,
                                                                       record.n)
    metrics = {p.metric for p in trend}
    assert metrics == {"roc_auc", "accuracy", "ece", "demographic_parity_difference", "equalized_odds_difference"}
    # one parity record per sensitive feature and version
    assert sorted(p.feature for p in trend if p.metric == "demographic_parity_difference" and p.version == "1") \
        == ["RAC1P", "SEX"]


def test_trend_uses_the_latest_evaluation_only(two_versions):
    store, _, _ = two_versions
    again = store.as_("eng").evaluate(model="credit", version="1", resamples=10, seed=3)[0]
    trend = store.as_("vic").metric_trend(model="credit", metrics=("roc_auc",))
    assert [(p.version, p.evaluation_id == again.id) for p in trend] == [("1", True), ("2", False)]


def test_trend_of_an_unknown_model_is_not_found(unchanged_store):
    store = unchanged_store
    with pytest.raises(NotFound, match="not registered"):
        store.as_("vic").metric_trend(model="nope")


def test_compare_finds_the_worse_model_significantly_worse(read_two_versions):
    store, first, second = read_two_versions
    differences = store.as_("vic").compare_versions(model="credit", a="1", b="2").differences
    auc = next(d for d in differences if d.metric == "roc_auc")
    assert auc.b < auc.a and auc.significant is True
    # the test, by hand from the stored intervals
    a = next(r for r in first.records if r.metric == "roc_auc")
    b = next(r for r in second.records if r.metric == "roc_auc")
    z = NormalDist().inv_cdf(0.975)
    spread = math.hypot((a.ci_high - a.ci_low) / (2 * z), (b.ci_high - b.ci_low) / (2 * z))
    assert auc.p_value == pytest.approx(2 * (1 - NormalDist().cdf(abs(b.value - a.value) / spread)))
    assert auc.difference == pytest.approx(b.value - a.value)
    # reliability bins are charts, not comparable records; drift records have no interval → no verdict
    assert not any(d.metric == "reliability_bin" for d in differences)
    drift = [d for d in differences if d.family == "drift"]
    assert drift and all(d.significant is None and d.p_value is None for d in drift)


def test_a_version_compared_with_itself_differs_nowhere(read_two_versions):
    store, _, _ = read_two_versions
    comparison = store.as_("vic").compare_versions(model="credit", a="1", b="1")
    differences = comparison.differences
    assert comparison.rows_a == comparison.rows_b > 0 and comparison.rows_note("`x`") is None  # the same rows
    assert differences and all(d.difference in (0, None) and d.significant in (False, None) for d in differences)


def test_compare_edge_cases():
    def one(value, low, high, metric="accuracy", n=100):
        record = MetricRecord("performance", metric, None, None, value, n, low, high)
        return MetricSet((record,), {"confidence": 0.95})

    [same] = compare(one(0.8, 0.8, 0.8), one(0.8, 0.8, 0.8))
    [moved] = compare(one(0.8, 0.8, 0.8), one(0.9, 0.9, 0.9))
    [undefined] = compare(one(None, None, None), one(0.9, 0.8, 1.0))
    [no_interval] = compare(one(0.8, None, None), one(0.9, 0.8, 1.0))
    assert (same.p_value, same.significant) == (1.0, False)
    assert (moved.p_value, moved.significant) == (0.0, True)
    assert undefined.difference is None and undefined.significant is None
    assert no_interval.difference == pytest.approx(0.1) and no_interval.significant is None
    assert compare(one(0.8, 0.7, 0.9), one(0.8, 0.7, 0.9, metric="roc_auc")) == []
    # a group of one row resamples to a point: 0 -> 1 there is no evidence of anything
    [one_row] = compare(one(0.0, 0.0, 0.0, n=1), one(1.0, 1.0, 1.0, n=1))
    assert one_row.difference == 1.0 and (one_row.p_value, one_row.significant) == (None, None)
    [small] = compare(one(0.2, 0.1, 0.3, n=29), one(0.9, 0.8, 1.0, n=500))
    assert small.significant is None

    def gap(value, low, high, groups):  # a parity gap with its column's group counts
        counts = [MetricRecord("fairness", "count", "branch", g, n, n) for g, n in groups.items()]
        record = MetricRecord("fairness", "demographic_parity_difference", "branch", None, value,
                              sum(groups.values()), low, high)
        return MetricSet((record, *counts), {"confidence": 0.95})

    big = {"north": 2500, "south": 2500}
    [real] = [d for d in compare(gap(0.01, 0.0, 0.02, big), gap(0.3, 0.28, 0.32, big)) if d.group is None]
    assert real.significant is True
    tiny = {"north": 4997, "east": 3}  # the gap over a 3-row group is noise, whatever its interval says
    [noise] = [d for d in compare(gap(0.01, 0.0, 0.02, {"north": 4997, "east": 30}), gap(0.36, 0.3, 0.4, tiny))
               if d.group is None]
    assert noise.difference == pytest.approx(0.35) and noise.significant is None
    other = {"north": 2500, "east": 2500}  # other groups: not the same gap
    [moved] = [d for d in compare(gap(0.01, 0.0, 0.02, big), gap(0.3, 0.28, 0.32, other)) if d.group is None]
    assert moved.significant is None
    with pytest.raises(ValueError):
        compare(one(0.8, 0.7, 0.9), one(0.8, 0.7, 0.9), alpha=1.5)


def test_compare_needs_both_evaluations(evaluated_store):
    store = evaluated_store
    store.as_("eng").register_version(model="credit", version="2", artifact=store.artifact)
    store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    with pytest.raises(NotFound, match="version 2 has not been evaluated"):
        store.as_("vic").compare_versions(model="credit", a="1", b="2")
    with pytest.raises(InvalidInput, match="alpha"):
        store.as_("vic").compare_versions(model="credit", a="1", b="1", alpha=0)


def test_drift_timeline_follows_batch_time(evaluated_store, tmp_path):
    import pandas as pd

    store = evaluated_store
    engineer = store.as_("eng")
    frame = pd.read_csv(datasets.PACKAGE_DATA / "acs_employment_ma_every20th.csv.gz")
    expected = {}
    # ingested out of order: the timeline orders by batch time, not by arrival
    for year in (2018, 2016, 2017):
        path = tmp_path / f"batch-{year}.parquet"
        frame[frame["year"] == year].to_parquet(path, index=False)
        batch = engineer.ingest(model="credit", version="1", file=path, split="production", roles=ACS_ROLES,
                                batch_time=f"{year}-07-01")
        expected[year] = engineer.monitor(model="credit", version="1", batch=batch.id)[1]
    timeline = store.as_("vic").drift_timeline(model="credit", version="1")
    years = [p.batch_time.year for p in timeline if p.metric == "share_of_drifted_columns"]
    assert years == [2016, 2017, 2018]
    for point in timeline:
        record = next(r for r in expected[point.batch_time.year].records
                      if r.metric == point.metric and r.feature == point.feature)
        assert point.value == record.value
        if point.metric == "drift_score":
            assert point.method == record.detail["method_name"]
    assert {p.feature for p in timeline if p.metric == "drift_score"} >= {"AGEP", "SCHL", "predicted_probability"}


def test_drift_timeline_is_empty_without_monitoring(shared_evaluated_store, monkeypatch):
    evaluated_store = shared_evaluated_store.enter(monkeypatch)
    assert evaluated_store.as_("vic").drift_timeline(model="credit", version="1") == []


def test_audit_filters(make_store, tmp_path):
    store = make_store()
    store.as_("eng").register_model(name="churn", description="", risk_tier="low")
    store.as_("eng").register_version(model="churn", version="1", artifact=store.artifact)
    auditor = store.as_("aud")
    total, events = auditor.audit_events()
    assert total == len(events) and [e.seq for e in events] == sorted((e.seq for e in events), reverse=True)
    _, credit = auditor.audit_events(model="credit")
    assert {e.entity for e in credit} == {"model:credit", "version:credit/1"}
    _, churn = auditor.audit_events(model="churn")
    assert {e.entity for e in churn} == {"model:churn", "version:churn/1"}
    _, registrations = auditor.audit_events(action="version")
    assert {e.action for e in registrations} == {"version.register"}
    _, by_ada = auditor.audit_events(actor="ada")
    assert by_ada and all(e.actor == "ada" for e in by_ada)
    count, last_two = auditor.audit_events(limit=2)
    assert count == total and len(last_two) == 2
    future = datetime.now(timezone.utc) + timedelta(days=1)
    assert auditor.audit_events(since=future) == (0, [])
    assert auditor.audit_events(until=future)[0] == total
    # the time filter compares instants: a time zone offset is honoured
    newest = datetime.strptime(events[0].ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    east = newest.astimezone(timezone(timedelta(hours=5)))
    assert auditor.audit_events(since=east)[1][0].seq == events[0].seq
    with pytest.raises(InvalidInput, match="after until"):
        auditor.audit_events(since=future, until=newest)
    with pytest.raises(NotAllowed):
        store.as_("vic").audit_events()


def test_audit_list_cli(unchanged_store, run_cli):
    store = unchanged_store
    before = snapshot(store.home)
    result = run_cli(store.home, "audit", "list", "--model", "credit", "--json", as_="aud")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["matched"] == 2 and {e["action"] for e in body["events"]} == {"model.register", "version.register"}
    text = run_cli(store.home, "audit", "list", "--action", "user", as_="aud")
    assert text.exit_code == 0 and "user.add" in text.output
    bad = run_cli(store.home, "audit", "list", "--since", "yesterday", as_="aud")
    assert bad.exit_code == 2 and "yesterday" in bad.output
    # --until: a date alone (as click reads dates, 2-digit day or not) is the whole day; a time is as given.
    events = json.loads(result.output)["events"]
    day = min(e["ts"][:10] for e in events)
    y, m, d = (int(part) for part in day.split("-"))
    for whole_day in (day, f"{y}-{m}-{d}"):
        listed = run_cli(store.home, "audit", "list", "--model", "credit", "--until", whole_day, "--json", as_="aud")
        assert listed.exit_code == 0 and json.loads(listed.output)["matched"] == len(events), listed.output
    midnight = run_cli(store.home, "audit", "list", "--model", "credit", "--until", f"{day}T00:00:00", "--json",
                       as_="aud")
    assert midnight.exit_code == 0 and json.loads(midnight.output)["matched"] == 0  # all later that day
    last = run_cli(store.home, "audit", "list", "--until", "9999-12-31", as_="aud")
    assert last.exit_code == 2 and "'9999-12-31T23:59:59.999999' is outside" in last.output
    assert snapshot(store.home) == before


def test_version_metrics_prints_a_stored_evaluation_without_making_one(read_two_versions, run_cli):
    # A new user evaluated again only to read the numbers; that new evaluation, gated, was other evidence.
    store, first, _ = read_two_versions
    before = snapshot(store.home)
    latest, records = store.as_("vic").latest_evaluation(model="credit", version="1")
    shown = run_cli(store.home, "version", "metrics", "credit", "1", "--json", as_="vic")
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.stdout)
    assert body["evaluation"]["id"] == latest.id and body["records"] == json.loads(json.dumps(records.to_list()))
    text = run_cli(store.home, "version", "metrics", "credit", "1", "--evaluation", latest.id, as_="vic").stdout
    assert text.splitlines()[0].startswith(f"credit version 1: evaluation {latest.id} of {latest.prediction_set_id}, ")
    assert text.splitlines()[1].startswith(f"  threshold 0.5, {latest.params['rows']:,} rows, 40 resamples")
    assert "roc_auc" in text
    missing = run_cli(store.home, "version", "metrics", "credit", "1", "--evaluation", "ev-nope", as_="vic")
    assert missing.exit_code == 2 and "has no evaluation 'ev-nope'" in missing.stderr
    assert snapshot(store.home) == before  # read, nothing made


def test_compare_cli(read_two_versions, run_cli):
    store, _, _ = read_two_versions
    result = run_cli(store.home, "compare", "credit", "1", "2", "--json", as_="vic")
    assert result.exit_code == 0, result.output
    auc = next(d for d in json.loads(result.output) if d["metric"] == "roc_auc")
    assert auc["significant"] is True
    text = run_cli(store.home, "compare", "credit", "1", "2", as_="vic")
    assert "roc_auc" in text.output and "significant" in text.output
    # a gap between groups here is over every group, which the gate does not judge: the output says so
    every = run_cli(store.home, "compare", "credit", "1", "2", "--all", as_="vic").stdout
    assert "demographic_parity_difference" in every
    assert every.splitlines()[-1] == ("note: a fairness gap here is over every group; the gate judges the groups its "
                                      "rule's min_samples admits (`govern gate show credit 2` shows the gap it "
                                      "judged).")
