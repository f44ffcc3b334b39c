"""Browser tests' fixtures: Debian's Chromium through Playwright, and the demo store (conftest's demo_store,
built once per test process) served by a real `govern dashboard` per test module, on a copy, so that what
one module's users do is not seen by another's."""

from __future__ import annotations

import shutil

import pytest

from tests.support.browser import CHROMIUM_ARGS, dashboard

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def demo_dashboard(demo_store, tmp_path_factory):
    """(home, url): a copy of the demo store, served by a real Streamlit server for one test module."""
    source, _, _ = demo_store
    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(source, home)
    with dashboard(home) as url:
        yield home, url
