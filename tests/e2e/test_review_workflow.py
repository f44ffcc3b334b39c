"""A reviewer works the demo's review queue in a real browser: claims the next ten items, reads one as a
person would (its row, why it was sampled, what to judge), and judges all ten with one verdict in one step,
submitting with Enter (issue 18: 42 items took 84 CLI calls); then judges one item from the keyboard and
the next claimed one comes up."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from governance.service import Service
from tests.support.browser import settled, sign_in

pytestmark = pytest.mark.e2e
COMMENT = "the recorded labels match the census answers"


def test_a_reviewer_claims_ten_items_and_judges_them_with_one_verdict(demo_dashboard, browser):
    home, url = demo_dashboard
    page = browser.new_page()
    sign_in(page, url, "rosa", "govern-demo")
    page.get_by_role("link", name="Review queue").click()
    how_many = page.get_by_role("spinbutton", name="How many")
    how_many.wait_for(timeout=30_000)
    how_many.fill("10")
    page.get_by_role("button", name="Claim next").click()
    page.get_by_text("Claimed 10 items.").wait_for(timeout=30_000)
    viewer = Service.open(home=home, actor="victor")
    claimed = [i.id for i in viewer.list_review_items(model="employment", status="claimed") if i.assignee == "rosa"]
    assert len(claimed) == 10

    # The first claimed item, for a person: what to judge, the row and why it was sampled, the rule.
    page.get_by_text("Is its recorded label right for its features?").wait_for(timeout=30_000)
    page.get_by_text("Why it was sampled: worst_group (").wait_for()  # no rank: a reviewer is not shown one
    page.get_by_text("The rule these rows were sampled for").wait_for()
    if os.environ.get("GOVERN_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["GOVERN_SCREENSHOTS"], "review.png"), full_page=True)

    page.get_by_role("textbox", name="Comment for all").fill(COMMENT)
    page.get_by_role("textbox", name="Comment for all").press("Enter")  # submits the form: all ten selected
    page.get_by_text("Judged 10 items").wait_for(timeout=30_000)
    for item_id in claimed:
        detail = viewer.show_review_item(item_id=item_id)
        assert detail.item.status == "resolved"
        assert [(j.reviewer, j.verdict, j.comment) for j in detail.judgments] == [("rosa", "label_correct", COMMENT)]

    # One after another: claim two, judge the first from the keyboard, and the second is shown.
    page.get_by_role("spinbutton", name="How many").fill("2")
    page.get_by_role("button", name="Claim next").click()
    page.get_by_text("Claimed 2 items.").wait_for(timeout=30_000)
    settled(page)  # type into this run's comment box, not the last run's
    both = {i.id for i in viewer.list_review_items(model="employment", status="claimed")}
    assert len(both) == 2
    comment = page.get_by_role("textbox", name="Comment", exact=True)
    comment.fill("label stands")
    comment.press("Control+Enter")
    page.get_by_text("Your next claimed item is below.").wait_for(timeout=30_000)
    settled(page)
    # whichever the page showed first is judged; the other, still claimed, is what the picker moved on to
    [judged] = [i for i in both if viewer.show_review_item(item_id=i).item.status == "resolved"]
    [second] = both - {judged}
    assert [j.reviewer for j in viewer.show_review_item(item_id=judged).judgments] == ["rosa"]
    assert viewer.show_review_item(item_id=second).item.status == "claimed"
    picker = page.get_by_role("combobox", name="Item", exact=True)  # not "Claimed items to judge"
    expect(picker).to_have_value(re.compile(f"^{second} · "), timeout=30_000)  # it moved on to the other claim
