"""The Reports screen's Attention section (web/reports/attention.js) in a real browser: the
table shows what GET /api/reports/attention answers, the CSV holds the same rows, channels
without platform analytics (Telegram) say so, and agents are told it is not for them."""
from __future__ import annotations

import json

from tests.browser import needs_chromium, open_screen
from tests.test_admin_screens import SCREENSHOTS_DIR, _clean, _token
from tests.test_analytics import local_platform  # noqa: F401  (fixture)
from tests.test_reports import history, stream_records  # noqa: F401  (fixture)
from tests.test_web_inbox import browser, served  # noqa: F401  (fixtures)

pytestmark = needs_chromium
NOV16 = 1_700_100_000_000  # 2023-11-16 02:00 UTC: the snapshot stores up to the 15th


def test_the_attention_section_shows_the_apis_rows_and_its_csv(history, served, browser, local_platform):
    from playwright.sync_api import expect

    from chalicelib.analytics import snapshot
    from chalicelib.reports import consumer

    inbox, cid = history
    consumer.handle_records(stream_records(cid))
    assert snapshot.run(now_ms=NOV16)["failed"] == 0
    admin = inbox.login_admin()
    api = json.loads(inbox.client.http.get("/api/reports/attention?from=2023-11-14&to=2023-11-16&tz=UTC"
                                           "&channel=messenger", headers={"Authorization": "Bearer " + admin}).body)
    page = open_screen(served, browser, admin, "reports")
    expect(page.locator("#reports")).to_be_visible()
    page.fill("#from", "2023-11-14")
    page.fill("#to", "2023-11-16")
    page.fill("#tz", "UTC")
    page.select_option("#channel", "messenger")
    page.click("#filters button[type=submit]")
    rows = page.locator("#attention-rows tr")
    expect(rows).to_have_count(len(api["rows"]))
    first = api["rows"][0]
    expect(rows.first.locator("td").nth(0)).to_have_text(first["day"])
    expect(rows.first.locator("td").nth(2)).to_have_text(f"{first['reach']:,}")
    expect(rows.first.locator("td").nth(3)).to_have_text(f"{first['followers']:,}")
    expect(rows.first.locator("td").nth(5)).to_have_text(str(first["new_conversations"]))
    expect(page.locator("#attention-sources")).to_contain_text("messenger: Facebook Page insights")
    with page.expect_download() as download:
        page.click("#attention-csv")
    with open(download.value.path(), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 1 + len(api["rows"]) and lines[1].startswith(f"{first['day']},messenger,{first['reach']},")
    if SCREENSHOTS_DIR:  # make screenshots
        import os

        os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
        page.locator("section[aria-labelledby=attention-title]").screenshot(
            path=os.path.join(SCREENSHOTS_DIR, "attention.png"))
    page.select_option("#channel", "telegram")
    page.click("#filters button[type=submit]")
    expect(page.locator("#attention-sources")).to_contain_text("telegram: no platform analytics")
    _clean(browser)


def test_an_agent_is_told_the_attention_report_is_not_theirs(history, served, browser):
    from playwright.sync_api import expect

    inbox, _ = history
    page = open_screen(served, browser, _token("ann@example.com", "agent", ["default"]), "reports")
    expect(page.locator("#attention-note")).to_contain_text("for supervisors and admins")
    _clean(browser)
