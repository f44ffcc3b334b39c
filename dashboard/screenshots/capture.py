"""Retake the README's screenshots: the dashboard on a demo store, in Debian's Chromium.

    govern demo --home /tmp/govern-demo
    python dashboard/screenshots/capture.py /tmp/govern-demo
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (file, sidebar link, (which select box, option to pick) or None, tab to open or None)
SHOTS = [("overview.png", "Overview", None, None),
         ("version.png", "Model version", None, "Fairness"),
         ("drift.png", "Model version", (0, "employment"), "Drift"), ("review.png", "Review queue", None, None),
         ("audit.png", "Audit log", None, None)]


def main() -> None:
    from playwright.sync_api import sync_playwright

    home = Path(sys.argv[1]).resolve()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "governance.cli", "--home", str(home), "dashboard", "--port",
                               str(port), "--address", "127.0.0.1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("textbox", name="User").fill("admin")
            page.get_by_role("textbox", name="Password").fill("govern-demo")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Signed in as").wait_for()
            for file, link, pick, tab in SHOTS:
                page.get_by_role("link", name=link).click()
                page.wait_for_timeout(2500)
                if pick:
                    page.get_by_role("combobox").nth(pick[0]).click()
                    page.get_by_role("option", name=pick[1], exact=True).click()
                    page.wait_for_timeout(2500)
                if tab:
                    page.get_by_role("tab", name=tab).click()
                    page.wait_for_timeout(1500)
                page.screenshot(path=str(HERE / file), full_page=True)
                print(f"wrote {HERE / file}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
