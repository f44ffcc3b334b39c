"""The model inventory an auditor's documents state: intended use and limitations on `model register` and
`model edit`, audited before and after, checked as text."""

from __future__ import annotations

import json

from tests.support.stores import run_sql, snapshot


def _events(home, action):
    return [json.loads(row[0]) for row in run_sql(home, lambda conn: conn.execute(
        "SELECT payload FROM audit_events WHERE action = ? ORDER BY seq", [action]).fetchall())]


def test_intended_use_and_limitations_are_registered_edited_cleared_and_audited(store, run_cli):
    result = run_cli(store.home, "model", "register", "scoring", "--intended-use", "rank loan applications for review",
                     "--limitations", "  not for automated denial  ", as_="eng")
    assert result.exit_code == 0, result.output
    [model] = [m for m in store.as_("eng").list_models() if m.name == "scoring"]
    assert (model.intended_use, model.limitations) == ("rank loan applications for review", "not for automated denial")
    assert _events(store.home, "model.register")[-1]["limitations"] == "not for automated denial"

    result = run_cli(store.home, "model", "edit", "scoring", "--limitations", "", "--intended-use", "triage only",
                     as_="eng")
    assert result.exit_code == 0, result.output
    [model] = [m for m in store.as_("eng").list_models() if m.name == "scoring"]
    assert (model.intended_use, model.limitations, model.description) == ("triage only", None, None)
    edit = _events(store.home, "model.edit")[-1]
    assert edit["before"]["intended_use"] == "rank loan applications for review"
    assert (edit["after"]["intended_use"], edit["after"]["limitations"]) == ("triage only", None)


def test_bad_inventory_text_is_refused_and_nothing_changes(store, run_cli):
    before = snapshot(store.home)
    result = run_cli(store.home, "model", "edit", "credit", "--limitations", "bad\x07bell", as_="eng")
    assert result.exit_code == 2
    assert "the limitations holds characters that do not show as written (U+0007); write it as plain text." \
        in result.output
    result = run_cli(store.home, "model", "register", "other", "--intended-use", "x" * 4001, as_="eng")
    assert result.exit_code == 2 and "the intended use is 4,001 characters; at most 4,000 fit." in result.output
    result = run_cli(store.home, "model", "edit", "credit", "--intended-use", "anything", as_="vic")
    assert result.exit_code == 2
    assert snapshot(store.home) == before
