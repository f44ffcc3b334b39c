"""The real dashboard in a real browser: Streamlit server on a free port, Debian's Chromium driven by
Playwright. A reviewer judges an item and approves a version; an auditor downloads a verified export."""

from __future__ import annotations

import json
import zipfile

import pytest

from governance.service import verify_audit_export
from tests.support.browser import dashboard, sign_in
from tests.support.policies import QUEUE_POLICY, RELEASE_POLICY
from tests.support.stores import file_only

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(evaluated_store, tmp_path):
    store = evaluated_store
    store.as_("eng").evaluate(model="credit", version="1", resamples=0)
    for name, text in (("q.yaml", QUEUE_POLICY), ("r.yaml", RELEASE_POLICY)):
        (tmp_path / name).write_text(text)
    store.assign_policy(tmp_path / "q.yaml")
    store.as_("eng").gate(model="credit", version="1", policy=tmp_path / "q.yaml")
    store.as_("ada").add_user(name="rita", role="reviewer", password="rita's passphrase")
    store.as_("ada").add_user(name="otto", role="auditor", password="otto's passphrase")
    with dashboard(store.home) as url:
        yield store, url


@file_only  # the pages read through the service on either store; AppTest covers DuckLake (test_dashboard)
def test_reviewer_judges_and_approves_then_auditor_downloads_a_verified_export(server, browser, tmp_path):
    store, url = server
    page = browser.new_page(accept_downloads=True)
    sign_in(page, url, "rita", "rita's passphrase")
    # Viewers of a governance record get no Deploy button and no developer menu (client.toolbarMode viewer).
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    page.get_by_role("link", name="Review queue").click()
    page.get_by_role("button", name="Claim", exact=True).click()  # not "Claim next"
    comment = page.get_by_role("textbox", name="Comment", exact=True)
    comment.wait_for(timeout=30_000)
    comment.fill("label is right")
    page.get_by_role("button", name="Judge", exact=True).click()
    page.get_by_text("Judged ri-").wait_for(timeout=30_000)
    [judged] = store.as_("vic").list_review_items(status="resolved")
    assert judged.kind == "example"  # the worklist shows a gate's examples before its rule failure
    assert [j.reviewer for j in store.as_("vic").show_review_item(item_id=judged.id).judgments] == ["rita"]

    page.get_by_role("link", name="Sign-off and release").click()
    page.get_by_text("is blocked by ece").wait_for(timeout=30_000)  # the gate failed: approving must be acknowledged
    page.get_by_text("I have read why the gate is blocked").click()
    page.get_by_role("button", name="Approve").click()
    page.get_by_text("Approved credit 1.").wait_for(timeout=30_000)
    assert [(s.reviewer, s.decision, s.acknowledged_blocked)
            for s in store.as_("vic").signoffs(model="credit", version="1")] == [("rita", "approve", True)]
    approval = [e for e in store.as_("aud").audit_events(action="signoff.approve")[1]][0]
    assert approval.actor == "rita" and json.loads(approval.payload)["auth"]["method"] == "dashboard"
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, url, "otto", "otto's passphrase")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_text("Chain intact").wait_for(timeout=30_000)
    page.get_by_role("button", name="Prepare export").click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download export (zip)").click()
    archive = tmp_path / "export.zip"
    download.value.save_as(archive)
    folder = tmp_path / "export"
    zipfile.ZipFile(archive).extractall(folder)
    report = verify_audit_export(folder, expected_public_key=store.as_("aud").public_key())
    assert report.ok, report.problems
    page.screenshot(path=str(tmp_path / "audit.png"))
