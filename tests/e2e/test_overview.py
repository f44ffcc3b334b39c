"""The Overview as each role sees it on the demo store, in a real browser: the blocked model's failing rule and
groups in words, the override badge with its expiry, and what waits for the signed-in user; every page's
browser-side time as the admin clicks through them."""

from __future__ import annotations

import json

import pytest

from dashboard.app import PAGES
from governance.service import Service
from tests.support.browser import open_page, sign_in

pytestmark = pytest.mark.e2e
PASSWORD = "govern-demo"


def test_a_viewer_sees_why_the_blocked_model_is_blocked_and_its_override(demo_dashboard, browser):
    home, url = demo_dashboard
    board = Service.open(home=home, actor="victor").readiness()
    employment = next(m for m in board.models if m.model == "employment")
    assert employment.verdict == "blocked" and employment.production.action == "override"
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    sign_in(page, url, "victor", PASSWORD)
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0  # client.toolbarMode viewer
    # the verdict in words, naming the failing rule and the columns it failed in, with their values
    verdict = page.get_by_text(employment.summary, exact=True)
    verdict.wait_for(timeout=30_000)
    [parity] = [f for f in employment.findings if f.blocking]
    assert parity.rule_id == "parity-gap" and any(w.startswith("RAC1P ") for w in parity.where)
    assert "parity-gap" in verdict.inner_text() and "RAC1P" in verdict.inner_text()
    expires = f"{employment.production.override_expires:%Y-%m-%d %H:%M} UTC"
    badge = page.locator(".stMarkdownBadge", has_text=f"OVERRIDE until {expires}").first  # a badge, with a tooltip
    badge.wait_for(timeout=10_000)
    page.get_by_text("Nothing waits for you (viewer).").wait_for(timeout=10_000)
    page.close()


@pytest.mark.parametrize("user", ["rosa", "admin"])
def test_needs_you_lists_each_roles_work(demo_dashboard, browser, user):
    home, url = demo_dashboard
    tasks = Service.open(home=home, actor=user).readiness().needs_you
    assert tasks and ("override" in [t.kind for t in tasks]) == (user == "admin")
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    sign_in(page, url, user, PASSWORD)
    for task in tasks:
        page.get_by_text(task.text, exact=True).wait_for(timeout=30_000)
    page.close()


def test_every_page_opens_in_the_browser_and_how_long_it_took(demo_dashboard, browser, record_property):
    _, url = demo_dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    sign_in(page, url, "admin", PASSWORD)
    seconds = {p.title: round(open_page(page, p.title, p.title), 2) for p in PAGES}
    assert page.locator('[data-testid="stException"]').count() == 0
    record_property("browser_seconds_per_page", json.dumps(seconds))
    print("browser-side seconds per page (admin, demo store):", seconds)
    page.close()


def test_a_shared_link_to_a_version_opens_it_after_signing_in(demo_dashboard, browser):
    _, url = demo_dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/version?model=employment&version=1")  # a fresh tab: not signed in yet
    page.get_by_role("textbox", name="User").fill("victor")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Model version", level=1).wait_for(timeout=30_000)
    page.get_by_text("employment v1 is blocked from release").wait_for(timeout=30_000)
    assert page.url.endswith("/version?model=employment&version=1")
    page.close()
