"""The dashboard in Streamlit's AppTest: each page renders for the roles that see it, and its actions
change the store as the CLI would."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.app import PAGES
from tests.support.apptest import signed_in
from tests.support.paths import APP
from tests.support.policies import QUEUE_POLICY, RELEASE_POLICY
from tests.support.stores import ACS_ROLES, run_sql, snapshot

ROLES = {"vic": "viewer", "rey": "reviewer", "eng": "engineer", "aud": "auditor", "ada": "admin"}


@pytest.fixture
def seeded(evaluated_store, tmp_path, monkeypatch):
    """Version 1 evaluated and blocked by QUEUE_POLICY (review items, a job); the app's GOVERN_HOME."""
    monkeypatch.setenv("GOVERN_HOME", str(evaluated_store.home))
    return _seed(evaluated_store, tmp_path)


def _seed(store, folder: Path):
    store.as_("eng").evaluate(model="credit", version="1", resamples=20)
    for name, text in (("q.yaml", QUEUE_POLICY), ("r.yaml", RELEASE_POLICY)):
        (folder / name).write_text(text)
    store.assign_policy(folder / "q.yaml")
    store.as_("eng").gate(model="credit", version="1", policy=folder / "q.yaml")
    store.as_("ada").add_user(name="rev2", role="reviewer")
    return store, folder


@pytest.fixture(scope="module")
def shared_seeded(shared_evaluated_store, tmp_path_factory):
    """seeded's store, once per module and store kind, for the tests that only render it."""
    with shared_evaluated_store.kind.active():
        return _seed(shared_evaluated_store, tmp_path_factory.mktemp("seeded"))


@pytest.fixture
def viewed(shared_seeded, monkeypatch):
    """shared_seeded, in this test's environment."""
    store, folder = shared_seeded
    return _enter(store, folder, monkeypatch)


def app(user: str | None) -> AppTest:
    """The app as `user` would see it after signing in (a session of theirs in the store)."""
    if user:
        return signed_in(Path(os.environ["GOVERN_HOME"]), user, ROLES.get(user, "reviewer"))
    return AppTest.from_file(APP, default_timeout=60)


def open_tab(at: AppTest, name: str) -> AppTest:
    """Open one of the version page's tabs, as clicking it does (only the open tab runs)."""
    at.session_state["version.tab"] = name
    return at.run()


def test_signed_out_users_see_only_the_sign_in(viewed):
    at = app(None)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["govern"] and at.button[0].label == "Sign in"


def test_password_sign_in(seeded):
    store, _ = seeded
    store.as_("ada").add_user(name="pat", role="reviewer", password="correct horse")
    at = app(None)
    at.run()
    at.text_input[0].input("pat")
    at.text_input[1].input("wrong horse!")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["unknown user or wrong password."]
    at.text_input[1].input("correct horse")
    at.button[0].click().run()
    assert at.session_state["govern.user"] == "pat" and at.session_state["govern.role"] == "reviewer"
    assert at.session_state["govern.token"].startswith("gvn_")
    _, events = store.as_("aud").audit_events(action="auth")
    assert [(e.action, e.actor) for e in reversed(events)][-2:] == [("auth.failed", None), ("auth.login", "pat")]
    assert json.loads(events[0].payload)["kind"] == "dashboard"


def test_sign_in_backs_off_after_repeated_failures(seeded):
    store, _ = seeded
    store.as_("ada").add_user(name="pat", role="reviewer", password="correct horse")
    at = app(None)
    at.run()
    for attempt in range(4):
        at.text_input[0].input("pat")
        at.text_input[1].input(f"guess {attempt}")
        at.button[0].click().run()
    assert at.error[0].value.startswith("too many failed sign-ins for this user or from this client; try again in")
    assert at.session_state["govern.user"] is None


def test_a_revoked_dashboard_session_stops_working(seeded):
    store, _ = seeded
    store.as_("ada").add_user(name="pat", role="viewer", password="correct horse")
    session = store.as_(None).sign_in(name="pat", password="correct horse", client="test")
    store.as_("ada").revoke_token(token_id=session.id)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["govern.user"], at.session_state["govern.role"] = "pat", "viewer"
    at.session_state["govern.token"] = session.secret
    at.run()
    assert not at.exception
    assert any(w.value.startswith(f"You were signed out: your session {session.id} was revoked") for w in at.warning)
    assert at.session_state["govern.user"] is None and at.button[0].label == "Sign in"


def test_the_overview_marks_an_override_and_its_expiry(seeded):
    store, _ = seeded
    store.as_("ada").release(model="credit", version="1", override=True, reason="incident 42 ![x](http://x/y)",
                             expires="2099-01-01T00:00:00Z")
    at = app("vic")
    at.run()
    assert any("OVERRIDE until 2099-01-01 00:00 UTC" in m.value and "orange" in m.value for m in at.markdown)
    [badge] = [m for m in at.markdown if "OVERRIDE until" in m.value]
    from dashboard.state import plain
    assert badge.help == plain("admin ada's override: incident 42 ![x](http://x/y)")  # text, never markdown
    assert badge.help != "admin ada's override: incident 42 ![x](http://x/y)"
    assert any(e.value.startswith("v1 BLOCKED under q v1: ece") for e in at.error)  # why, in words
    run_sql(store.home, lambda conn: conn.execute("UPDATE alias_history SET override_expires = TIMESTAMP '2001-01-01'"))
    import streamlit

    streamlit.cache_data.clear()  # behind the service's back: the page's cache would hide it
    at = app("vic")
    at.run()
    assert any("OVERRIDE EXPIRED 2001-01-01 00:00 UTC" in m.value and "red" in m.value for m in at.markdown)
    assert any("EXPIRED 2001-01-01 00:00 UTC (reason: incident 42 " in e.value for e in at.error)


def test_the_overview_says_what_waits_for_each_role(seeded):
    at = app("rey")
    at.run()
    assert any(m.value == "- 5 items of credit v1 open for review" for m in at.markdown)
    at = app("vic")
    at.run()
    assert "Nothing waits for you (viewer)." in [c.value for c in at.caption]


@pytest.mark.parametrize("user", list(ROLES))
def test_every_page_renders_for_the_roles_that_see_it(viewed, user):
    role = ROLES[user]
    for file, title, _, roles in PAGES:
        if role not in roles:
            continue
        at = app(user)
        at.run()
        at.switch_page(f"views/{file}").run()
        assert not at.exception, (user, file, at.exception)
        assert at.title[0].value == title
        if file == "version.py":
            tabs = [t.label for t in at.tabs]
            assert tabs[0] == "Performance" and len(tabs) == 6
            for tab in tabs[1:]:
                assert not open_tab(at, tab).exception, (user, tab, at.exception)


def test_navigation_offers_only_what_the_role_may_use():
    from dashboard.app import pages_for

    assert pages_for("viewer") == ["Overview", "Model version", "Production monitoring", "Retraining jobs",
                                   "Policies"]
    assert "Audit log" in pages_for("auditor") and "Review queue" not in pages_for("auditor")
    assert "Review queue" in pages_for("engineer")  # the retraining loop's escalations are theirs
    assert pages_for("admin") == [page.title for page in PAGES]
    assert all(page.icon.startswith(":material/") for page in PAGES)


def test_judging_an_item_in_the_dashboard_changes_the_store(seeded):
    store, _ = seeded
    at = app("rey")
    at.run()
    at.switch_page("views/review.py").run()
    item_id = at.selectbox(key="review.item").value
    at.button(key="review.claim").click().run()
    assert store.as_("vic").show_review_item(item_id=item_id).item.assignee == "rey"
    assert at.selectbox(key="review.item").value == item_id  # "to do" keeps the claimed item in view
    form = at.get("form")[0]
    at.selectbox(key="review.verdict").set_value("label_wrong")
    other = 1 - store.as_("vic").show_review_item(item_id=item_id).item.evidence["label"]  # a correction changes it
    at.selectbox(key="review.label").set_value(str(other))
    at.text_area(key="review.comment").input("the other label after all")
    next(b for b in at.button if b.label == "Judge").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [], ([b.label for b in at.button], [x.label for x in at.selectbox])
    judged = store.as_("vic").show_review_item(item_id=item_id)
    assert judged.item.status == "resolved" and judged.judgments[0].corrected_label == other
    assert form is not None
    alpha = "Krippendorff's alpha: n/a (no item has two judgments yet)"
    assert alpha not in [m.value for m in at.markdown]  # computed only once its expander is opened
    at.session_state["review.agreement"] = True
    at.run()
    assert alpha in [m.value for m in at.markdown] and "0 items judged by several reviewers." in [
        c.value for c in at.caption]


def test_the_judgment_that_queues_a_job_says_so_in_the_dashboard(seeded):
    # The CLI said that the last judgment of a gate's items queued its retraining job; the dashboard's flash only
    # said "now resolved".
    from governance.review_guidance import guidance_for

    store, _ = seeded
    reviewer = store.as_("rey")
    *first, last = reviewer.list_review_items(status="open")
    waiting = [job for job in store.as_("vic").list_jobs() if job.status != "queued"]
    assert len(waiting) == 1  # the gate's job waits for its review
    for item in first:
        reviewer.claim_review_item(item_id=item.id)
        reviewer.judge_review_item(item_id=item.id, verdict=next(iter(guidance_for(item.kind).verdicts)),
                                   comment="checked")
    reviewer.claim_review_item(item_id=last.id)
    at = app("rey")
    at.run()
    at.switch_page("views/review.py").run()
    assert at.selectbox(key="review.item").value == last.id
    at.selectbox(key="review.verdict").set_value(next(iter(guidance_for(last.kind).verdicts)))
    at.text_area(key="review.comment").input("checked")
    next(b for b in at.button if b.label == "Judge").click().run()
    assert not at.exception and [e.value for e in at.error] == []
    assert [s.value for s in at.success] == [
        f"Judged {last.id}: now resolved. Retraining job {waiting[0].id} of credit v1 is queued, its review done: "
        "`govern worker --once` runs it."]


def test_an_engineer_works_an_escalation_in_the_dashboard_and_no_reviewers_item(seeded):
    store, _ = seeded
    escalation = store.as_("ada").add_review_item(model="credit", version="1", kind="escalation",
                                                  evidence={"reason": "no candidate passed parity-gap"})
    others = [i.id for i in store.as_("vic").list_review_items(status="open") if i.kind != "escalation"]
    assert others  # the reviewers' items, which an engineer must not be offered
    at = app("eng")
    at.run()
    at.switch_page("views/review.py").run()
    assert not at.exception
    shown = [option.split(" · ")[0] for option in at.selectbox(key="review.item").options]
    assert shown == [escalation.id]  # to do: only what an engineer works
    at.selectbox(key="review.status").set_value("open").run()
    at.selectbox(key="review.item").set_value(others[0]).run()
    assert not [b for b in at.button if b.key == "review.claim"]  # visible, but not theirs to claim
    at.selectbox(key="review.status").set_value("to do").run()
    at.selectbox(key="review.item").set_value(escalation.id).run()
    at.button(key="review.claim").click().run()
    assert sorted(at.selectbox(key="review.verdict").options) == ["ambiguous", "model_wrong"]
    at.text_area(key="review.comment").input("the search needs a stronger penalty range")
    next(b for b in at.button if b.label == "Judge").click().run()
    assert not at.exception and not at.error
    judged = store.as_("vic").show_review_item(item_id=escalation.id)
    assert judged.item.status == "resolved" and [(j.reviewer, j.verdict) for j in judged.judgments] == [
        ("eng", "model_wrong")]


def test_approve_and_release_in_the_dashboard(seeded):
    store, tmp_path = seeded
    warned = tmp_path / "r.yaml"  # passes, with a warning the approvers are shown
    warned.write_text(RELEASE_POLICY
                      + "  - {id: auc-stretch, metric: performance.roc_auc, min: 0.999, severity: warn}\n")
    store.assign_policy(warned)
    store.as_("eng").gate(model="credit", version="1", policy=warned)
    for reviewer in ("rey", "rev2"):
        at = app(reviewer)
        at.run()
        at.switch_page("views/release.py").run()
        assert any("flags without blocking" in i.value and "**auc-stretch** (warned)" in i.value for i in at.info)
        at.button(key="release.approve").click().run()
        assert not at.exception
    at = app("eng")
    at.run()
    at.switch_page("views/release.py").run()
    at.button(key="release.release").click().run()
    assert not at.exception
    assert store.as_("vic").production_version(model="credit") == "1"


def test_export_in_the_dashboard_is_verified_and_logged(seeded):
    store, _ = seeded
    at = app("aud")
    at.run()
    at.switch_page("views/audit.py").run()
    assert at.success[0].value.startswith("Chain intact")
    at.button(key="audit.export").click().run()
    assert not at.exception
    assert at.session_state["govern.audit_verified"] is True
    assert any(m.value == "Export verified offline: yes" for m in at.markdown)
    assert store.as_("aud").verify_audit().ok


def test_policy_dry_run_in_the_dashboard_stores_nothing(seeded):
    store, _ = seeded
    before = snapshot(store.home)
    at = app("eng")
    at.run()
    at.switch_page("views/policies.py").run()
    assert at.success[0].value.startswith("Valid: default v7")
    at.button(key="policies.dry_run").click().run()
    assert not at.exception
    assert any(m.value.startswith("Verdict: **") for m in at.markdown)
    assert snapshot(store.home) == before


def test_cancel_a_job_in_the_dashboard(seeded):
    store, _ = seeded
    [job] = store.as_("vic").list_jobs()
    at = app("eng")
    at.run()
    at.switch_page("views/jobs.py").run()
    at.button(key="jobs.cancel").click().run()
    assert not at.exception
    assert store.as_("vic").show_job(job_id=job.id).job.status == "cancelled"


def charts(at: AppTest) -> list[dict]:
    """The Vega-Lite specs of the page's Altair charts."""
    import json

    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


@pytest.fixture
def two_versions(seeded, acs_files):
    """seeded plus version 2: the same rows with noisier scores (significantly worse), monitored batches."""
    return _add_version_2(*seeded, acs_files)


@pytest.fixture(scope="module")
def shared_two_versions(shared_seeded, acs_files):
    """two_versions' store, once per module and store kind, for the tests that only read it (it builds on
    shared_seeded: the tests on that one only render)."""
    with shared_seeded[0].kind.active():
        return _add_version_2(*shared_seeded, acs_files)


@pytest.fixture
def viewed_two_versions(shared_two_versions, monkeypatch):
    """shared_two_versions, in this test's environment."""
    store, folder = shared_two_versions
    return _enter(store, folder, monkeypatch)


def _enter(store, folder: Path, monkeypatch):
    """A shared store in this test's environment, with none of the pages' cached reads of earlier tests."""
    import streamlit

    store.enter(monkeypatch)
    monkeypatch.setenv("GOVERN_HOME", str(store.home))
    streamlit.cache_data.clear()
    return store, folder


def _add_version_2(store, folder: Path, acs_files):
    import numpy as np
    import pandas as pd

    current, reference = acs_files
    engineer = store.as_("eng")
    engineer.register_version(model="credit", version="2", artifact=store.artifact)
    noisy = pd.read_parquet(current)
    noisy["predicted_probability"] = np.clip(
        noisy["predicted_probability"] + np.random.default_rng(1).normal(0, 0.35, len(noisy)), 0, 1)
    noisy.to_parquet(folder / "noisy.parquet", index=False)
    engineer.ingest(model="credit", version="2", file=folder / "noisy.parquet", split="eval", roles=ACS_ROLES)
    engineer.ingest(model="credit", version="2", file=reference, split="reference", roles=ACS_ROLES)
    engineer.evaluate(model="credit", version="2", resamples=20)
    for year, path in (("2016", current), ("2017", folder / "noisy.parquet")):
        batch = engineer.ingest(model="credit", version="2", file=path, split="production", roles=ACS_ROLES,
                                batch_time=f"{year}-06-30")
        engineer.monitor(model="credit", version="2", batch=batch.id)
    return store, folder


def test_overview_charts_headline_metrics_across_versions(viewed_two_versions):
    at = app("vic")
    at.run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "overview.metric"]  # drawn only once its expander is opened
    at.session_state["overview.headline"] = True  # as opening the expander does
    at.run()
    assert "roc_auc" in at.selectbox(key="overview.metric").options
    gated, headline = charts(at)
    assert headline["layer"][0]["mark"]["type"] == "area"  # the confidence band under the line
    assert headline["layer"][0]["encoding"]["x"]["sort"] == ["1", "2"]
    # what the policy gates, per rule, against its bound (a dashed rule); v2 has no gate yet
    assert gated["facet"]["field"] == "rule" and gated["spec"]["layer"][3]["mark"]["type"] == "rule"
    assert gated["spec"]["layer"][3]["encoding"]["y"]["field"] == "bound"
    [verdict] = [e.value.replace("\\", "") for e in at.error]  # markdown escapes aside
    assert re.fullmatch(r"v1 BLOCKED under q v1: ece: calibration\.ece 0\.\d+ \(must be at most 0\.0001\) "
                        r"\(v2 not gated yet\)",
                        verdict), verdict


def test_version_page_compares_versions_with_significance(viewed_two_versions):
    store, _ = viewed_two_versions
    at = app("vic")
    at.run()
    at.switch_page("views/version.py").run()
    assert at.selectbox(key="version.version").value == "2"
    assert not [s for s in at.selectbox if s.key == "version.compare"]  # only the open tab runs
    open_tab(at, "Compare")
    assert at.selectbox(key="version.compare").value == "1"
    compared = next(d.value for d in at.dataframe if "significant" in d.value.columns)
    families = compared["family"].tolist()
    assert families[0] == "fairness" and "fairness" not in families[families.index("performance"):]  # fairness first
    groups = compared[compared["family"] == "fairness"]["group"].tolist()
    first_group = next(i for i, group in enumerate(groups) if group)
    assert first_group > 0 and all(groups[first_group:])  # the gaps between groups (no group) before the groups
    auc = compared[compared["metric"] == "roc_auc"].iloc[0]
    assert auc["significant"] == "yes" and auc["difference"] < 0 and auc["change"] == "worse"  # higher is better
    loss = compared[compared["metric"] == "log_loss"].iloc[0]
    assert loss["difference"] > 0 and loss["change"] == "worse"  # noisier scores: more log loss, lower is better
    assert set(compared[compared["metric"] == "count"]["change"]) == {""}  # no direction is better
    p_values = {(d.family, d.metric, d.feature or "", d.group or ""): d.p_value
                for d in store.as_("vic").compare_versions(model="credit", a="1", b="2").differences}
    for row in compared.to_dict("records"):
        p, shown = p_values[(row["family"], row["metric"], row["feature"], row["group"])], row["p-value"]
        if p is None or p < 0.001:
            assert shown == ("" if p is None else "<0.001")
        else:  # three significant digits, never a raw 0.000000002
            assert float(shown) == pytest.approx(p, rel=5e-3) and len(shown.lstrip("0.").replace(".", "")) <= 3
    at.checkbox(key="version.significant").check().run()
    compared = next(d.value for d in at.dataframe if "significant" in d.value.columns)
    assert set(compared["significant"]) == {"yes"}


def test_the_comparison_says_when_the_versions_were_evaluated_on_different_rows(two_versions, acs_files, run_cli):
    # as a retrain's are: the rows reviewers corrected move into training, so its eval set is smaller; and at
    # another threshold (a new user's trial: 11 "significant" differences, nearly all the threshold's)
    store, folder = two_versions
    engineer = store.as_("eng")
    engineer.register_version(model="credit", version="3", artifact=store.artifact)
    fewer = pd.read_parquet(acs_files[0]).iloc[:700]
    fewer.to_parquet(folder / "fewer.parquet", index=False)
    engineer.ingest(model="credit", version="3", file=folder / "fewer.parquet", split="eval", roles=ACS_ROLES)
    engineer.evaluate(model="credit", version="3", resamples=0, threshold=0.3)
    rows_2 = len(pd.read_parquet(folder / "noisy.parquet"))
    comparison = engineer.compare_versions(model="credit", a="2", b="3")
    assert (comparison.rows_a, comparison.rows_b) == (rows_2, 700) and rows_2 != 700
    assert (comparison.threshold_a, comparison.threshold_b) == (0.5, 0.3)
    told = run_cli(store.home, "compare", "credit", "2", "3", as_="vic").stderr.splitlines()
    assert told == [f"note: {comparison.threshold_note()}",
                    f"note: {comparison.rows_note('`govern gate show credit 3`')}"]
    assert told[0].startswith("note: version 2 was evaluated at threshold 0.5 and version 3 at 0.3: differences in")
    at = app("vic")
    at.run()
    at.switch_page("views/version.py").run()
    assert at.selectbox(key="version.version").value == "3"
    open_tab(at, "Compare")
    assert at.selectbox(key="version.compare").value == "2"
    [note] = [i.value for i in at.info if "rows" in i.value]
    assert note.startswith(f"Version 2 was evaluated on {rows_2:,} rows and version 3 on 700: ")
    assert "**Gate and lineage**" in note
    assert [i.value for i in at.info if "threshold 0.5" in i.value] == ["V" + comparison.threshold_note()[1:]]
    at.selectbox(key="version.version").set_value("2").run()
    open_tab(at, "Compare")
    at.selectbox(key="version.compare").set_value("1").run()  # v1 was scored on v2's rows: no note
    assert at.selectbox(key="version.compare").value == "1" and any("significant" in d.value for d in at.dataframe)
    assert not at.exception and not [i for i in at.info if "evaluated on" in i.value], [i.value for i in at.info]


def test_the_version_page_opens_on_the_version_a_link_names(viewed_two_versions):
    at = app("vic")
    at.run()
    at.query_params["model"], at.query_params["version"] = "credit", "1"
    at.switch_page("views/version.py").run()
    assert not at.exception
    assert at.selectbox(key="version.version").value == "1"  # not the newest: the one the link names
    assert at.error[0].value.startswith("**credit v1 is blocked from release** by ece")
    at.selectbox(key="version.version").set_value("2").run()  # choosing another is not undone by the link
    assert at.selectbox(key="version.version").value == "2"
    assert (at.query_params["model"], at.query_params["version"]) == ("credit", "2")  # the address follows
    at = app("vic")
    at.run()
    at.query_params["model"], at.query_params["version"] = "credit", "9"
    at.switch_page("views/version.py").run()
    assert at.selectbox(key="version.version").value == "2"
    assert [w.value for w in at.warning] == ["credit has no version 9; showing its newest."]


def test_version_page_charts_groups_against_thresholds_and_drift_in_time(viewed_two_versions):
    at = app("vic")
    at.run()
    at.switch_page("views/version.py").run()
    assert not at.exception
    specs = charts(open_tab(at, "Fairness"))
    marks = [[layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
              for layer in spec.get("layer", spec.get("spec", {}).get("layer", []))] for spec in specs]
    assert ["bar", "rule"] in marks  # per-group bars with intervals (no policy bounds a fairness metric here)
    specs = charts(open_tab(at, "Drift"))
    time_axes = [s for s in specs if s.get("encoding", {}).get("x", {}).get("type") == "temporal"]
    assert len(time_axes) == 2  # share of drifted columns and scores per feature, over batch time
    assert at.selectbox(key="version.drift_feature").options  # reference vs current distributions


def drawn(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """Each chart's Vega-Lite spec with its data (Streamlit sends a chart's data beside its spec, as Arrow)."""
    import json

    import pyarrow as pa

    found = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        tables = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets}
        found.append((spec, tables.get(spec.get("data", {}).get("name"), pd.DataFrame())))
    return found


def test_fairness_tab_draws_the_policy_threshold_on_every_sensitive_column(two_versions):
    from policies import shipped_packs

    store, _ = two_versions
    store.assign_policy("default")
    store.as_("eng").gate(model="credit", version="2", policy=shipped_packs()["default"])
    decision = store.as_("vic").latest_gate(model="credit", version="2").decision
    results = {r.rule_id: r for r in decision.results}
    at = app("vic")
    at.run()
    at.switch_page("views/version.py").run()
    open_tab(at, "Fairness")
    assert not at.exception
    assert at.selectbox(key="version.gap").value == "demographic_parity_difference"  # the gap the policy judges
    assert at.selectbox(key="version.group_metric").value == "impact_ratio"  # the per-group metric it judges
    bars = [(spec, data) for spec, data in drawn(at) if spec.get("layer", [{}])[0].get("mark", {}).get("type") == "bar"]
    gap, *per_column = bars
    [threshold] = [layer for layer in gap[0]["layer"] if layer["mark"]["type"] == "tick"]
    assert threshold["encoding"]["description"]["field"] == "policy"
    failing = {f["feature"]: f["value"] for f in results["parity-gap"].failing}
    assert failing  # the noisy version 2 fails parity somewhere, or this test shows nothing
    for row in gap[1].to_dict("records"):  # every sensitive column: its bound, and the gap the gate judged
        assert row["threshold"] == 0.1 and row["policy"] == f"parity-gap: at most 0.1 on {row['column']}"
        if row["column"] in failing:
            assert row["standing"] == "fails, blocks release" and row["value"] == pytest.approx(failing[row["column"]])
        else:
            assert row["standing"] in ("passes", "set aside")
    assert set(gap[1]["column"]) == {"SEX", "RAC1P"}
    four_fifths = {(f["feature"], f["group"]) for f in results["four-fifths"].failing}
    assert [set(data["policy"]) for _, data in per_column] == [{"four-fifths: at least 0.8 on SEX"},
                                                               {"four-fifths: at least 0.8 on RAC1P"}]
    for (spec, data), feature in zip(per_column, ["SEX", "RAC1P"]):
        assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "rule", "rule"]  # the last: the bound
        assert spec["layer"][0]["encoding"]["y"]["axis"]["labelLimit"] == 0  # group names in full
        for row in data.to_dict("records"):
            if (feature, row["group"]) in four_fifths:
                assert row["standing"] == "fails, warning"  # four-fifths warns; parity-gap blocks
        assert any(c.value.startswith(f"Red line: rule four-fifths, impact ratio at least 0.8, drawn on {feature}.")
                   for c in at.caption)
    summary = at.error[0].value if decision.verdict == "blocked" else at.success[0].value
    blocking = [r.rule_id for r in decision.results if r.blocking]
    assert summary.startswith(f"**credit v2 is blocked from release** by {', '.join(blocking)}")
    assert any(m.value.startswith(":red-badge[failed] **parity-gap** (blocks release): demographic parity difference "
                                  "must be at most 0.1; it is not in") for m in at.markdown)
    [rules] = [t.value for t in open_tab(at, "Gate and lineage").table]
    assert "bound" not in rules.columns and rules["judged on"].tolist()[0] == "point estimate"
    assert rules["reason"].tolist() == [r.reason for r in decision.results]  # in full


def test_engineers_evaluate_from_the_version_page_viewers_cannot(two_versions):
    store, _ = two_versions
    before = len(store.as_("vic").list_evaluations(model="credit", version="2"))
    viewer = app("vic")
    viewer.run()
    viewer.switch_page("views/version.py").run()
    assert not [b for b in viewer.button if b.key == "version.evaluate"]
    at = app("eng")
    at.run()
    at.switch_page("views/version.py").run()
    at.button(key="version.evaluate").click().run()
    assert not at.exception
    assert len(store.as_("vic").list_evaluations(model="credit", version="2")) == before + 1


def test_audit_page_filters_events(viewed_two_versions):
    store, _ = viewed_two_versions
    at = app("aud")
    at.run()
    at.switch_page("views/audit.py").run()
    everything = at.dataframe[0].value
    assert len(everything) == store.as_("aud").verify_audit().event_count
    at.text_input(key="audit.action").input("predictions")
    at.text_input(key="audit.actor").input("eng")
    next(b for b in at.button if b.label == "Filter").click().run()
    filtered = at.dataframe[0].value
    expected, _ = store.as_("aud").audit_events(action="predictions", actor="eng")
    assert len(filtered) == expected > 0 and set(filtered["action"]) == {"predictions.ingest"}
