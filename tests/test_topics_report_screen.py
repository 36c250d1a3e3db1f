"""The Reports screen's listening section (web/reports/topics.js) in a real browser: share of
voice between the topics compared, sentiment per day, top authors, the CSV download; hostile
handles and topic names stay text; an agent does not get the section."""
from __future__ import annotations

import os
import re
import time

from tests.browser import downloaded, needs_chromium, open_screen
from tests.test_admin_screens import SCREENSHOTS_DIR, _clean, _token
from tests.test_listening_trends import _post
from tests.test_web_inbox import XSS, browser, served  # noqa: F401  (fixtures)

pytestmark = needs_chromium


def _seed():
    _post("1", "2026-11-02T10:00:00", "negative", ["Acme"], XSS, 5000)
    _post("2", "2026-11-02T11:00:00", "negative", ["Acme"], XSS, 5200)
    _post("3", "2026-11-02T12:00:00", "positive", ["Acme", XSS], "bob")
    _post("4", "2026-11-03T09:00:00", "neutral", [XSS], "cat")


def _period(page):
    page.fill("#from", "2026-11-02")
    page.fill("#to", "2026-11-04")
    page.fill("#tz", "UTC")


def test_the_section_loads_when_its_script_comes_after_the_screen_is_shown(inbox, served, browser):
    """A slow link or a busy server can deliver topics.js after /api/me has answered and the
    screen is shown: the section must load then too (it waited for a change that had passed)."""
    from playwright.sync_api import expect

    _seed()
    page = browser.page
    held = []
    page.route(re.compile(r"/static/topics\.js(\?|$)"), lambda route: held.append(route))  # it waits, unanswered
    page.goto(served + "static/icon.svg")  # as open_screen, without waiting for the page's scripts
    page.evaluate("token => sessionStorage.setItem('socialinbox.token', token)", inbox.login_admin())
    page.goto(served + "reports", wait_until="commit")
    expect(page.locator("#reports")).to_be_visible(timeout=40_000)
    assert len(held) == 1 and page.locator("#topics-report").count() == 0
    held[0].continue_()
    expect(page.locator("#topics-report")).to_be_visible(timeout=40_000)
    expect(page.locator("#topics-note")).to_have_text("0 found posts and mentions in the period.")
    _clean(browser)


def test_share_of_voice_days_and_authors_by_keyboard_with_a_csv(inbox, served, browser):
    from playwright.sync_api import expect

    _seed()
    page = open_screen(served, browser, inbox.login_admin(), "reports")
    # shown once its first answer says who may read it: behind the screen's other first reads on
    # the one-threaded test server, which a loaded CI machine makes slow
    expect(page.locator("#topics-report")).to_be_visible(timeout=40_000)
    _period(page)
    page.locator("#topics-compare").focus()
    page.keyboard.type("Acme, " + XSS)
    page.keyboard.press("Enter")
    expect(page.locator("#topics-note")).to_have_text("4 found posts and mentions in the period.")
    voice = page.locator("#topics-voice tbody tr")
    expect(voice).to_have_count(2)
    expect(voice.nth(0).locator("td")).to_have_text(["Acme", "3", "60 %", "66.7 %"])
    expect(voice.nth(1).locator("td")).to_have_text([XSS, "2", "40 %", "0 %"])
    expect(page.locator("#topics-days tbody tr[data-date='2026-11-02'] td")).to_have_text(
        ["2026-11-02", "3", "1", "0", "2", "0", XSS + ": 1, Acme: 3"])
    expect(page.locator("#topics-authors tbody tr").first.locator("td")).to_have_text(
        ["@" + XSS, XSS.title(), "X", "2", "2", "5,200"])
    rows, name = downloaded(page, "#topics-csv")
    assert rows[0] == "date,topic,total,positive,neutral,negative,unscored"
    assert rows[1] == "2026-11-02,(all),3,1,0,2,0" and len(rows) == 1 + 3 + 2
    assert name == "topics-2026-11-02.csv"
    # The screen's own Show reloads the section too; a bad comparison is said, not thrown.
    page.fill("#topics-compare", "Acme")
    page.click("#filters button[type=submit]")
    expect(page.locator("#topics-note")).to_contain_text("compare names 2 to 10 different topics")
    _clean(browser)


def test_an_agent_does_not_get_the_section(inbox, served, browser):
    from playwright.sync_api import expect

    _seed()
    page = open_screen(served, browser, _token("ana@example.com", "agent", ["default"]), "reports")
    expect(page.locator("#reports")).to_be_visible()
    expect(page.locator("#note")).not_to_have_text("Loading…")
    expect(page.locator("#topics-report")).to_be_hidden()


def test_screenshots(inbox, served, browser):
    """The listening section of the Reports screen as a PNG (make screenshots)."""
    import pytest
    from playwright.sync_api import expect

    if not SCREENSHOTS_DIR:
        pytest.skip("`make screenshots` sets SCREENSHOTS_DIR")
    posts = [("Acme", "negative", "maria_r", 12000), ("Acme", "positive", "tom_b", 800), ("Globex", "neutral", "li_w", 300),
             ("Acme", "negative", "maria_r", 12000), ("Globex", "positive", "jo_k", 50), ("Acme", "neutral", "sam", 20),
             ("Globex", "negative", "li_w", 300), ("Acme", "unscored", "ana_p", 4000)]
    for n, (topic, label, handle, followers) in enumerate(posts * 2):
        _post(str(100 + n), f"2026-11-0{2 + n % 3}T1{n % 10}:00:00", label, [topic], handle, followers)
    page = open_screen(served, browser, inbox.login_admin(), "reports")
    _period(page)
    page.fill("#to", "2026-11-05")
    page.fill("#topics-compare", "Acme, Globex")
    page.click("#topics-form button[type=submit]")
    expect(page.locator("#topics-voice tbody tr")).to_have_count(2)
    page.locator("#topics-report").scroll_into_view_if_needed()
    time.sleep(0.3)  # let the last render settle
    os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
    data = page.locator("#topics-report").screenshot()
    with open(os.path.join(SCREENSHOTS_DIR, "reports-topics.png"), "wb") as handle:
        handle.write(data)
