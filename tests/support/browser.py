"""The real dashboard for browser tests: a Streamlit server (`govern dashboard`) on a free port over a
store, and signing in through its form."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.paths import ROOT

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HEALTHY_WITHIN_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dashboard(home: Path) -> Iterator[str]:
    """`govern dashboard` over the store at `home`; yields its URL once Streamlit reports healthy."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "governance.cli", "--home", str(home), "dashboard", "--port", str(port),
         "--address", "127.0.0.1"],
        cwd=ROOT, env=os.environ | {"GOVERN_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"the Streamlit server did not become healthy in {HEALTHY_WITHIN_S} s")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def sign_in(page, url: str, user: str, password: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="User").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {user}").wait_for(timeout=30_000)


def settled(page) -> None:
    """Streamlit finished the run: its status widget is gone and so is every element the run before drew and this
    one has not (stale until the run ends: switching the version may draw the tabs anew beside the old ones)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"], [data-stale=\"true\"]')",
                           timeout=30_000)


def open_page(page, link: str, title: str, timeout_ms: int = 60_000) -> float:
    """Click the navigation link `link` and wait until the page's title shows and Streamlit stops running the
    script (its status widget gone); returns the seconds that took, as the user waited them."""
    started = time.perf_counter()
    page.get_by_role("link", name=link, exact=True).click()
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    return time.perf_counter() - started
