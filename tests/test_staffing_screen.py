"""The Staffing screen (web/staffing) in a real browser: the plan of a month of demo history, the
what-if calculator, agents kept out; and its screenshot (`make screenshots`)."""
from __future__ import annotations

import base64
import os
import time

from tests.browser import needs_chromium, open_screen
from tests.helpers import PAGE, messenger, page_delivery
from tests.test_admin_api import _token
from tests.test_admin_screens import SCREENSHOTS_DIR, _clean
from tests.test_web_inbox import browser, served  # noqa: F401  (fixtures)

pytestmark = needs_chromium


def _open(served, chromium, token):
    return open_screen(served, chromium, token, "staffing")


def test_the_screen_shows_the_plan_and_answers_what_ifs(inbox, served, browser):
    from playwright.sync_api import expect

    from chalicelib.staffing import demo

    demo.seed_history(int(time.time() * 1000))
    inbox.add_account("messenger", PAGE)
    waiting_since = int(time.time() * 1000) - 4 * 60_000
    assert inbox.post_meta(page_delivery(messenger("m_st1", "psid_st1", waiting_since, "Anyone there?"))).status_code == 200
    inbox.process()
    page = _open(served, browser, inbox.login_admin())
    expect(page.locator("#staffing")).to_be_visible()
    inputs = page.locator("#inputs")
    expect(inputs).to_contain_text("Erlang C (live queue)")  # the demo gives chats a 2-minute target
    expect(inputs).to_contain_text("measured: agents' focus per cycle")
    expect(inputs).to_contain_text("WAPE")
    expect(page.locator("#week tr")).to_have_count(7)
    expect(page.locator("#intervals tr")).to_have_count(48)  # today, every half hour
    expect(page.locator("#intervals-gap")).to_contain_text("agent-hours short")
    expect(page.locator("#now")).to_contain_text("agent-hours short")
    expect(page.locator("#now")).to_contain_text("answered within target")  # the demo's agents online
    expect(page.locator("#live")).to_contain_text("Backlog: 1 unassigned, 1 open in the team")
    expect(page.locator("#live")).to_contain_text("oldest wait 4 min")
    expect(page.locator("#live")).to_contain_text("reply deadlines in the next hour")
    # the published check values through the calculator
    page.fill("#w-arrivals", "100")
    page.fill("#w-handle", "180")
    page.fill("#w-target", "20")
    page.fill("#w-pct", "80")
    page.fill("#w-shrinkage", "30")
    page.fill("#w-occupancy", "85")
    page.click("#whatif button[type=submit]")
    expect(page.locator("#whatif-answer")).to_contain_text("14 agents on the floor")
    expect(page.locator("#whatif-answer")).to_contain_text("20 rostered")
    page.fill("#w-arrivals", "10000000")
    page.click("#whatif button[type=submit]")
    expect(page.locator("#whatif-answer")).to_contain_text("Erlangs")  # the API's 400, shown as text
    page.fill("#w-arrivals", "100")
    page.select_option("#w-model", "erlang_a")
    page.fill("#w-patience", "120")
    page.click("#whatif button[type=submit]")
    expect(page.locator("#whatif-answer")).to_contain_text("give up")
    page.select_option("#group", "public")
    page.click("#filters button[type=submit]")
    expect(inputs).to_contain_text("Workload over the target window")
    if SCREENSHOTS_DIR:
        page.select_option("#group", "live")
        page.click("#filters button[type=submit]")
        expect(inputs).to_contain_text("Erlang C (live queue)")
        os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
        time.sleep(0.3)
        data = browser.send("Page.captureScreenshot", format="png")["data"]
        with open(os.path.join(SCREENSHOTS_DIR, "staffing.png"), "wb") as handle:
            handle.write(base64.b64decode(data))
    _clean(browser)


def test_agents_are_kept_out(inbox, served, browser):
    from playwright.sync_api import expect

    page = _open(served, browser, _token("ann@example.com", "agent", ["default"]))
    expect(page.locator("#gate")).to_have_text("Staffing is for team leads and admins.")
    expect(page.locator("#staffing")).to_be_hidden()
    _clean(browser)
