"""The Model version page in a real browser on the demo store, as a viewer: why a version was blocked comes first,
in words, and the Fairness tab draws the policy's threshold on every sensitive column (read back from the
charts Vega rendered: each threshold mark is an SVG element whose aria-label names its rule and column)."""

from __future__ import annotations

import json
import re

import pytest

from governance.service import Service
from tests.support.browser import settled, sign_in

pytestmark = pytest.mark.e2e

MARK_LABELS = """() => Array.from(document.querySelectorAll(
    '.vega-embed [aria-roledescription="rule mark"], .vega-embed [aria-roledescription="tick"]'))
    .map(mark => mark.getAttribute('aria-label') || '')"""
THRESHOLD = re.compile(r"(?P<rule>\S+): (at most|at least) \S+ on (?P<column>.+)")
AXIS_LABELS = """() => Array.from(document.querySelectorAll('.vega-embed .role-axis-label text'))
    .map(label => label.textContent)"""


def expected_thresholds(home, model: str, version: str) -> tuple[set[str], set[str]]:
    """The version's sensitive columns (and intersections), and the label of each threshold the page should
    draw: one per column for each rule of the latest gate that judges a fairness gap, and for the per-group
    metric it opens on (that of the first per-group rule, in the policy's order, that found something wrong,
    else of the first)."""
    service = Service.open(home=home, actor="admin")
    _, metrics = service.latest_evaluation(model=model, version=version)
    columns = {r.feature for r in metrics.records if r.family == "fairness" and r.group is not None}
    judged = [j for j in service.judged_values(model=model, version=version) if j.metric.startswith("fairness.")]
    per_group = [j for j in judged if j.group is not None]
    shown = next((j for j in per_group if j.status == "failed"), per_group[0]).metric
    word = {"<=": "at most", ">=": "at least"}
    return columns, {f"{j.rule_id}: {word[j.comparison]} {j.threshold:.3g} on {j.feature}" for j in judged
                     if j.group is None or j.metric == shown}


def drawn_thresholds(page, expected: set[str]) -> set[str]:
    """The threshold marks Vega drew, by the description each carries (an interval's rule lists its fields
    instead), once every `expected` one is there (the charts of the version shown before may linger a moment)."""
    page.wait_for_function(f"() => {{ const drawn = new Set(({MARK_LABELS})()); "
                           f"return {json.dumps(sorted(expected))}.every(label => drawn.has(label)); }}",
                           timeout=30_000)
    return {label for label in page.evaluate(MARK_LABELS) if THRESHOLD.fullmatch(label)}


def columns_of(drawn: set[str]) -> set[str]:
    return {THRESHOLD.fullmatch(label)["column"] for label in drawn}


def open_fairness(page) -> None:
    settled(page)
    page.get_by_role("tab", name="Fairness", exact=True).click()
    page.get_by_text("Gap between groups").wait_for(timeout=30_000)


def test_a_viewer_reads_why_and_sees_a_threshold_on_every_sensitive_column(demo_dashboard, browser):
    home, url = demo_dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    sign_in(page, url, "victor", "govern-demo")
    page.get_by_role("link", name="Model version").click()
    page.get_by_text("income v2 passed its gate").wait_for(timeout=30_000)  # the newest version of the busiest model
    assert "/version?model=income&version=2" in page.url  # the address names what is shown: it can be shared

    open_fairness(page)
    columns, thresholds = expected_thresholds(home, "income", "2")
    assert columns == {"sex", "race"} and len(thresholds) == 4  # parity-gap and four-fifths, on each column
    drawn = drawn_thresholds(page, thresholds)
    assert columns_of(drawn) == columns  # a threshold on every sensitive column, and none on anything else
    assert "Amer-Indian-Eskimo" in page.evaluate(AXIS_LABELS)  # group names in full, not cut short
    page.get_by_role("tab", name="Gate and lineage", exact=True).click()
    page.get_by_text("How the retraining search chose this version").wait_for(timeout=30_000)  # v2 came from a job

    page.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name="employment").click()
    summary = page.get_by_text("employment v1 is blocked from release by parity-gap")
    summary.wait_for(timeout=30_000)
    because = page.locator('[data-testid="stMarkdownContainer"]',
                           has_text="demographic parity difference must be at most 0.1; it is not in").inner_text()
    assert "RAC1P 0.218" in because and "SEX*RAC1P 0.137" in because, because  # where, and by how much
    open_fairness(page)
    columns, thresholds = expected_thresholds(home, "employment", "1")
    assert columns == {"SEX", "RAC1P", "SEX*RAC1P"} and len(thresholds) == 6
    drawn = drawn_thresholds(page, thresholds)
    assert columns_of(drawn) == columns
    for column in columns:  # and each chart says in words which rule its line is
        page.get_by_text(f"drawn on {column}.").first.wait_for(timeout=10_000)
