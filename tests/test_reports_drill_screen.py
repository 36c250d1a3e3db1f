"""The Reports screen's drill-down and conversation export in a real browser: a number opens the
conversation cycles it counts (as many as it says), in the chosen time zone and filters, each
opening in the inbox; the CSV download holds exactly the rows the screen lists."""
from __future__ import annotations

import base64
import csv
import io
import os
import time

from tests.browser import needs_chromium, open_screen
from tests.test_admin_screens import SCREENSHOTS_DIR, _clean
from tests.test_reports import history  # noqa: F401  (fixture)
from tests.test_reports_export import people_history  # noqa: F401  (fixture)
from tests.test_web_inbox import browser, served  # noqa: F401  (fixtures)

pytestmark = needs_chromium


def duration(seconds):
    """The screen's duration format (reports.js `duration`), to read a CSV value as shown."""
    if seconds in ("", None):
        return "—"
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def as_shown(row):
    """A CSV row as the drill-down's table shows it."""
    return [row["cycle_started"][:16].replace("T", " "), row["channel"], row["team"], row["agents"].replace("; ", ", "),
            row["tags"].lstrip("'").replace("; ", ", "), row["priority"] or "—", duration(row["first_response_s"]),
            duration(row["resolution_s"]), row["sla_first"] or "—", "Open"]


def _show(page, tz="UTC", agent=""):
    page.fill("#from", "2023-11-14")
    page.fill("#to", "2023-11-15")
    page.fill("#tz", tz)
    page.fill("#agent", agent)
    page.click("#filters button[type=submit]")


def _downloaded(page, button):
    with page.expect_download() as download:
        page.click(button)
    with open(download.value.path(), encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(io.StringIO(handle.read())))


def test_numbers_open_the_conversations_they_count_and_the_csv_matches(people_history, served, browser):
    from playwright.sync_api import expect

    inbox, cid, other, ana = people_history
    page = open_screen(served, browser, inbox.login_admin(), "reports")
    expect(page.locator("#reports")).to_be_visible()
    _show(page)
    expect(page.locator("#note")).to_contain_text("Cycles that started 2023-11-14")
    rows = page.locator("#drill-rows tr")

    page.locator("#sla tr").first.locator("td").nth(2).locator("button").click()  # first response: missed
    expect(page.locator("#drill-title")).to_contain_text("First response · Missed: 1")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td")).to_have_text(["2023-11-14 23:13", "messenger", "default", "an unknown agent", "",
                                                   "—", "30 min", "—", "missed", "Open"])
    expect(rows.first.locator("a")).to_have_attribute("href", "./#c=" + cid)

    page.locator("#times tr").first.locator("td").nth(1).locator("button").click()  # first response: count
    expect(page.locator("#drill-count")).to_have_text("3 conversation cycles")
    shown = [[cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()] for i in range(3)]
    exported = _downloaded(page, "#drill-csv")
    assert [as_shown(row) for row in exported] == shown  # the CSV holds what the screen lists
    assert shown[2][3] == "Ana Alves" and shown[2][4] == "=hyperlink(1), refund"
    assert [row["conversation_id"] for row in exported] == [cid, cid, other]
    everything = _downloaded(page, "#conversations-csv")
    assert len(everything) == 3 and everything[0]["first_response_s"] == "120"

    page.locator("#heat tr").nth(1).locator("td").nth(23).locator("button").click()  # Tuesday 23:00
    expect(rows).to_have_count(2)

    _show(page, tz="Europe/Berlin")  # the same numbers in another zone: local times
    page.locator("#volume tr", has_text="New conversations").locator("td").nth(1).locator("button").click()
    expect(rows).to_have_count(1)  # Berlin's 14 November holds only the first conversation's start
    expect(rows.first.locator("td").first).to_have_text("2023-11-14 23:13")

    _show(page, agent=ana.agent_id)  # an agent's numbers open only their cycles
    page.locator("#times tr").first.locator("td").nth(1).locator("button").click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").nth(3)).to_have_text("Ana Alves")
    _show(page)
    page.locator("#sla tr").first.locator("td").nth(1).locator("button").click()
    expect(rows).to_have_count(2)
    if SCREENSHOTS_DIR:
        os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
        time.sleep(0.3)
        data = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(os.path.join(SCREENSHOTS_DIR, "reports.png"), "wb") as handle:
            handle.write(base64.b64decode(data))
    page.locator("#drill-rows a").first.click()  # opens the conversation in the inbox
    page.wait_for_url("**/#c=" + cid)
    _clean(browser)
