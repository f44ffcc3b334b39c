"""Browser tests' fixtures: Debian's Chromium through Playwright, and the demo store (built once per test
process with the reduced demo) served by a real `govern dashboard` per test module, on a copy, so that
what one module's users do is not seen by another's."""

from __future__ import annotations

import shutil

import pytest

from governance.demo import DemoConfig, run_demo
from tests.support.browser import CHROMIUM_ARGS, dashboard

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUICK_DEMO = DemoConfig(sample=0.3, epochs=8, resamples=20, gold_items=6)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """The reduced demo's store (income: v1 blocked, v2 released; employment: blocked, in production on an
    admin override, its review items open). Read it only: tests copy it (see demo_dashboard)."""
    home = tmp_path_factory.mktemp("demo") / "home"
    return home, run_demo(home, QUICK_DEMO)


@pytest.fixture(scope="module")
def demo_dashboard(demo_store, tmp_path_factory):
    """(home, url): a copy of the demo store, served by a real Streamlit server for one test module."""
    source, _ = demo_store
    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(source, home)
    with dashboard(home) as url:
        yield home, url
