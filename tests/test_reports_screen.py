"""The Reports screen (web/reports) in a real browser: it shows what the API answers for the
chosen period and time zone, nothing as markup, and agents get only their own numbers."""
from __future__ import annotations

from tests.browser import needs_chromium, open_screen
from tests.test_admin_screens import _clean, _token
from tests.test_reports import history, stream_records  # noqa: F401  (fixture)
from tests.test_web_inbox import browser, served  # noqa: F401  (fixtures)

pytestmark = needs_chromium


def _open(served, chromium, token):
    return open_screen(served, chromium, token, "reports")


def _show_the_day(page, compare=False):
    """The history's day (2023-11-14, UTC) through the screen's filters, as a user shows it."""
    from playwright.sync_api import expect

    expect(page.locator("#reports")).to_be_visible()
    page.fill("#from", "2023-11-14")
    page.fill("#to", "2023-11-15")
    page.fill("#tz", "UTC")
    if compare:
        page.check("#compare")
    page.click("#filters button[type=submit]")
    expect(page.locator("#note")).to_contain_text("Cycles that started 2023-11-14")


def test_the_screen_shows_the_apis_numbers_for_the_chosen_period(history, served, browser):
    from playwright.sync_api import expect

    from chalicelib.reports import consumer

    inbox, cid = history
    consumer.handle_records(stream_records(cid))
    page = _open(served, browser, inbox.login_admin())
    _show_the_day(page, compare=True)
    first = page.locator("#times tr").first.locator("td")
    expect(first).to_have_text(["First response", "2", "2 min", "30 min", "50 %", "2 min", "30 min", "—"])  # 24/7 policy
    expect(page.locator("#sla tr").first.locator("td")).to_have_text(["First response", "1", "1", "0", "50 %"])
    expect(page.locator("#heat td.heat4")).to_have_count(2)  # Tuesday 22:00 and 23:00 UTC: the waits
    with page.expect_download() as download:
        page.click("#csv")
    with open(download.value.path(), encoding="utf-8") as handle:
        rows = handle.read().splitlines()
    assert rows[0].startswith("start,") and len(rows) == 1 + 96  # one day of 15-minute intervals
    assert download.value.suggested_filename == "intervals-2023-11-14.csv"
    page.fill("#tz", "+05:00")
    page.click("#filters button[type=submit]")
    expect(page.locator("#note")).to_contain_text("IANA time zone")
    _clean(browser)


def test_an_older_load_answered_last_never_paints_over_the_chosen_period(history, served, browser):
    """The screen's first load (this month) is still waiting when the user shows another period;
    its answer then arrives last and must not replace what the user chose."""
    import re

    from playwright.sync_api import expect

    from chalicelib.reports import consumer

    inbox, cid = history
    consumer.handle_records(stream_records(cid))
    page = browser.page
    held = []

    def hold_the_first(route):
        if held:
            route.continue_()
        else:
            held.append(route)  # the screen's own first summary request, answered below

    page.route(re.compile(r"/api/reports/summary\?"), hold_the_first)
    page = _open(served, browser, inbox.login_admin())
    _show_the_day(page)
    expect(page.locator("#times tr").first.locator("td").nth(1)).to_have_text("2")
    with page.expect_response(re.compile(r"/api/reports/summary\?")):
        held[0].continue_()
    page.wait_for_timeout(300)  # whatever the older load still paints lands within this
    expect(page.locator("#note")).to_contain_text("Cycles that started 2023-11-14")
    expect(page.locator("#times tr").first.locator("td").nth(1)).to_have_text("2")
    _clean(browser)


def test_an_agent_reads_only_their_own_numbers(history, served, browser):
    from playwright.sync_api import expect

    inbox, _ = history
    token = _token("ann@example.com", "agent", ["default"])
    page = _open(served, browser, token)
    expect(page.locator("#reports")).to_be_visible()
    expect(page.locator("#team")).to_be_disabled()
    expect(page.locator("#times tr")).to_have_count(3)
    _clean(browser)


def test_the_screen_shows_volume_response_rates_and_a_chart_equal_to_the_api(history, served, browser):
    import json

    from playwright.sync_api import expect

    from chalicelib.models import Message
    from chalicelib.reports import consumer, messages

    inbox, cid = history
    consumer.handle_records(stream_records(cid))
    messages.handle_records([{"eventName": "INSERT", "dynamodb": {"NewImage": m.serialize()}}
                             for m in Message.query(cid)])
    admin = inbox.login_admin()
    page = _open(served, browser, admin)
    expect(page.locator("#reports")).to_be_visible()
    page.fill("#from", "2023-11-13")
    page.fill("#to", "2023-11-16")
    page.fill("#tz", "UTC")
    page.click("#filters button[type=submit]")
    expect(page.locator("#note")).to_contain_text("Cycles that started 2023-11-13")
    # three customer messages (one a follow-up that is not logged), one author, replies applied without a message
    expect(page.locator("#volume tr").nth(0).locator("td")).to_have_text(["Inbound messages", "3", "—", "activity"])
    expect(page.locator("#volume tr").nth(2).locator("td")).to_have_text(["Unique authors", "1", "—", "activity"])
    expect(page.locator("#rates tr").nth(1).locator("td")).to_have_text(
        ["Direct messages", "100 %", "2", "2", "2", "0", "0"])
    expect(page.locator("#unanswered")).to_have_text("Unanswered: 0 · oldest wait: —")
    bars = page.locator("#series rect.bar")
    expect(bars).to_have_count(3)
    response = inbox.client.http.get("/api/reports/timeseries?from=2023-11-13&to=2023-11-16&tz=UTC&metric=inbound"
                                     "&group_by=day", headers={"Authorization": "Bearer " + admin})
    expected = [str(p["value"]) for p in json.loads(response.body)["points"]]
    assert expected == ["0", "3", "0"]
    assert [bars.nth(i).get_attribute("data-value") for i in range(3)] == expected
    _clean(browser)
