"""The Listening tab of the admin screens (web/admin/listening-admin.js) in headless Chromium: an
admin edits topics by keyboard and by mouse, sees the X search budget spent and "stopped: budget
reached", raises it, and edits the priority rules; an SLA policy targets a topic and sentiments;
hostile topic text stays text."""
from __future__ import annotations

import base64
import os
import time

from chalicelib.listening import x_search
from tests.test_admin_screens import SCREENSHOTS_DIR, _clean, _open_admin
from tests.test_web_inbox import XSS, browser, needs_chromium, served  # noqa: F401  (fixtures)

pytestmark = needs_chromium


def _exhaust_this_month(inbox, limit, used):
    inbox.call("put", "/api/listening/x-budget", {"monthly_posts": limit})
    assert x_search.reserve(used, limit, x_search.budget(int(time.time() * 1000))["month"])


def test_an_admin_edits_topics_by_keyboard_and_mouse(inbox, served, browser):
    from playwright.sync_api import expect

    inbox.call("post", "/api/listening/topics", {"name": XSS, "include": ["#acmefail"]})
    page = _open_admin(served, browser, inbox.login_admin(), "sla")
    # Keyboard only: the tab list's arrows reach Listening, Tab walks into the form, Enter submits.
    expect(page.locator("#tab-sla")).to_have_attribute("aria-selected", "true")
    page.locator("#tab-sla").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-listening")).to_be_focused()
    expect(page.locator("#panel-listening")).to_be_visible()
    expect(page.locator("#topics tr")).to_have_count(1)
    expect(page.locator("#topics tr td").first).to_have_text(XSS)  # text, never markup
    page.locator("#topic-name").focus()
    page.keyboard.type("Refunds")
    page.keyboard.press("Tab")
    page.keyboard.type('refund, "money back", @acme')
    page.keyboard.press("Tab")
    page.keyboard.type("no refund needed")
    page.keyboard.press("Tab")
    page.keyboard.type("en, ES")
    page.keyboard.press("Tab")  # the first source box
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    expect(page.locator("#topic-form-note")).to_contain_text("Created Refunds")
    topics = {t["name"]: t for t in inbox.call("get", "/api/listening/topics")[1]["items"]}
    refunds = topics["Refunds"]
    assert refunds["include"] == ["refund", "money back", "@acme"] and refunds["exclude"] == ["no refund needed"]
    assert refunds["languages"] == ["en", "es"] and len(refunds["sources"]) == 1
    row = page.locator("#topics tr", has_text="Refunds")
    expect(row).to_contain_text('"money back"')

    # Mouse: edit (a refusal shows first and keeps the form), then delete with a confirming second click.
    row.get_by_role("button", name="Edit").click()
    expect(page.locator("#topic-name")).to_be_focused()
    expect(page.locator("#topic-form-title")).to_have_text("Edit Refunds")
    page.locator("#topic-exclude").fill("refund")
    page.locator("#topic-save").click()
    expect(page.locator("#topic-form-note")).to_contain_text("both included and excluded")
    page.locator("#topic-exclude").fill("")
    page.locator("#topic-include").fill("refund, reembolso")
    page.locator("#topic-save").click()
    expect(page.locator("#topic-form-note")).to_contain_text("Saved Refunds")
    expect(row).to_contain_text("refund, reembolso")
    hostile = page.locator("#topics tr", has_text=XSS)
    hostile.get_by_role("button", name="Delete").click()
    expect(hostile.get_by_role("button", name="Click again to delete")).to_be_visible()
    hostile.get_by_role("button", name="Click again to delete").click()
    expect(page.locator("#topics tr")).to_have_count(1)
    assert [t["name"] for t in inbox.call("get", "/api/listening/topics")[1]["items"]] == ["Refunds"]

    # An SLA policy for negative messages about the topic, from the SLA tab.
    page.locator("#tab-sla").click()
    page.locator("#sla-name").fill("Angry refunds")
    page.locator("#sla-topics").fill("Refunds")
    page.locator("#sla-sentiments").fill("Negative, unscored")
    page.locator("#sla-first").fill("10")
    page.locator("#sla-save").click()
    expect(page.locator("#sla-form-note")).to_contain_text("Created Angry refunds")
    expect(page.locator("#policies tr", has_text="Angry refunds")).to_contain_text(
        "topic Refunds; negative, unscored messages")
    [policy] = inbox.call("get", "/api/sla-policies")[1]["items"]
    assert policy["topics"] == ["Refunds"] and policy["sentiments"] == ["negative", "unscored"]
    _clean(browser)


def test_the_x_budget_shows_spent_and_stopped_and_an_admin_raises_it_and_edits_priority_rules(inbox, served,
                                                                                             browser):
    from playwright.sync_api import expect

    _exhaust_this_month(inbox, 1000, 995)
    page = _open_admin(served, browser, inbox.login_admin(), "listening")
    budget = page.locator("#budget-state")
    expect(budget).to_contain_text("Stopped: budget reached. 995 of 1,000 posts read")
    expect(budget).to_contain_text("($4.98)")
    assert budget.get_attribute("data-state") == "stopped"
    page.locator("#budget-posts").fill("5000")
    page.locator("#budget-posts").press("Enter")
    expect(budget).to_contain_text("995 of 5,000 posts read")
    expect(budget).to_contain_text("4,005 left")
    assert budget.get_attribute("data-state") == "running"
    assert inbox.call("get", "/api/listening/x-budget")[1]["monthly_posts"] == 5000
    page.locator("#budget-posts").fill("-3")
    page.locator("#budget-form button").click()  # the browser's own check refuses it first
    assert inbox.call("get", "/api/listening/x-budget")[1]["monthly_posts"] == 5000

    # Priority rules: add two (keyboard for the first), remove one, save; the list is what the API keeps.
    expect(page.locator("#rules-note")).to_contain_text("No rules")
    page.locator("#rule-add").click()
    expect(page.locator("#rules select").first).to_be_focused()  # sentiment, preset to negative
    page.keyboard.press("Tab")
    page.keyboard.type("10000")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("End")  # priority: urgent
    page.locator("#rule-add").click()
    page.locator("#rules tr").nth(1).get_by_role("button", name="Remove").click()
    page.locator("#rules-save").click()
    expect(page.locator("#rules-note")).to_have_text("Saved 1 rule.")
    assert inbox.call("get", "/api/listening/priority-rules")[1] == {
        "rules": [{"sentiment": "negative", "min_followers": 10000, "priority": "urgent"}]}
    page.locator("#rule-add").click()
    page.locator("#rules tr").nth(1).locator("select").first.select_option("")  # no condition at all
    page.locator("#rules-save").click()
    expect(page.locator("#rules-note")).to_contain_text("rules[1]: a rule needs at least one of")
    _clean(browser)


def test_a_team_lead_does_not_get_the_listening_tab(inbox, served, browser):
    from playwright.sync_api import expect

    from tests.test_admin_api import _token

    page = _open_admin(served, browser, _token("lee@example.com", "supervisor", ["default"]), "listening")
    expect(page.locator("#tab-agents")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#tab-listening")).to_be_hidden()


def test_screenshots(inbox, served, browser):
    """The Listening tab as a PNG (make screenshots)."""
    import pytest
    from playwright.sync_api import expect

    if not SCREENSHOTS_DIR:
        pytest.skip("`make screenshots` sets SCREENSHOTS_DIR")
    os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
    for body in ({"name": "Refunds", "include": ["refund", "money back", "reembolso"], "exclude": ["no refund needed"],
                  "languages": ["en", "es"], "sources": ["x_search", "facebook", "instagram"]},
                 {"name": "Competitor: Globex", "include": ["@globex", "globex"], "sources": ["x_search"]},
                 {"name": "Outage", "include": ["#acmedown", "not working", "outage"]}):
        assert inbox.call("post", "/api/listening/topics", body)[0] == 201
    inbox.call("put", "/api/listening/priority-rules", {"rules": [
        {"sentiment": "negative", "min_followers": 10000, "priority": "urgent"},
        {"sentiment": "negative", "min_likes": 200, "priority": "high"}]})
    _exhaust_this_month(inbox, 20000, 19995)
    page = _open_admin(served, browser, inbox.login_admin(), "listening")
    expect(page.locator("#topics tr")).to_have_count(3)
    expect(page.locator("#rules tr")).to_have_count(2)
    expect(page.locator("#budget-state")).to_contain_text("Stopped")
    time.sleep(0.3)  # let the last render settle
    data = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
    with open(os.path.join(SCREENSHOTS_DIR, "admin-listening.png"), "wb") as handle:
        handle.write(base64.b64decode(data))
