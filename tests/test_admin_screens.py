"""The team lead and admin screens (/admin) in a real headless browser: Playwright driving Debian's
chromium (tests/browser.py) against the app on a loopback server. An admin sees a channel account
that needs re-authorisation and reconnects it, changes an agent's capacity, creates an SLA policy
with business hours (a bad time zone is refused visibly first) and replays a dead letter; hostile
text stays text; a team lead gets read-only people screens; an agent gets none of it."""
from __future__ import annotations

import base64
import os
import time
from typing import Any, List

import pytest

from tests.browser import needs_chromium
from chalicelib.runtime import runtime
from tests.helpers import PAGE, HandOffs, messenger, page_delivery
from tests.test_admin_api import _park_next_delivery, _token
from tests.test_web_inbox import XSS, browser, served  # noqa: F401  (fixtures)

pytestmark = needs_chromium
WHATSAPP_PHONE = "15550001111"
SCREENSHOTS_DIR = os.environ.get("SCREENSHOTS_DIR")


def _open_admin(served: Any, chromium: Any, token: str, tab: str = "") -> Any:
    """The admin page signed in (a token in sessionStorage, as the inbox's sign-in leaves it)."""
    page = chromium.page
    page.goto(served + "static/icon.svg")  # same origin, no script: set the session first
    page.evaluate("token => { sessionStorage.clear(); sessionStorage.setItem('socialinbox.token', token); }", token)
    page.goto(served + "admin" + ("#" + tab if tab else ""))
    return page


def _clean(chromium: Any) -> None:
    assert chromium.js("window.__violations") == []
    assert chromium.js("document.querySelectorAll('img, script:not([src]), iframe, object, embed').length") == 0
    assert chromium.events == []  # no dialog ever opened


def _seed(inbox: Any) -> str:
    """Two accounts (one refused by its platform), an agent, a parked delivery, a quarantined one."""
    from chalicelib.accounts import find_account
    from chalicelib.outbound.worker import mark_needs_reauth

    inbox.add_account("messenger", PAGE, "Acme Support " + XSS)
    inbox.add_account("whatsapp", WHATSAPP_PHONE, "Acme WhatsApp")
    mark_needs_reauth(find_account("messenger", PAGE), "OAuthException 190: " + XSS)
    _token("ana@example.com", "agent", ["default"])
    runtime.use_invoker(HandOffs())  # the delivery is handed off, and parked below
    assert inbox.post_meta(page_delivery(messenger("m_dlq", "p_dlq", 1700000000000, "Parked question"))).status_code == 200
    parked = _park_next_delivery("RuntimeError: table throttled " + XSS)
    unknown = page_delivery(messenger("m_q", "p_q", 1700000003000, XSS), page="999000999")
    assert inbox.post_meta(unknown).status_code == 200
    inbox.process()
    return parked


def _texts(page: Any, selector: str) -> List[str]:
    return page.locator(selector).all_text_contents()


def test_an_admin_reconnects_an_account_sets_capacity_creates_a_policy_and_replays_a_dead_letter(inbox, served,
                                                                                                 browser):
    from playwright.sync_api import expect

    from chalicelib.routing import directory
    from chalicelib.sla import policies

    parked = _seed(inbox)
    page = _open_admin(served, browser, inbox.login_admin())

    # Channel accounts first: the refused one is flagged at the top, on every tab, as text.
    banner = page.locator("#reauth")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("1 channel account needs re-authorisation: Acme Support " + XSS + " (Messenger)")
    expect(page.locator("#count-reauth")).to_have_text("1")
    rows = page.locator("#accounts tr[data-account]")
    expect(rows).to_have_count(2)
    first = rows.nth(0)
    assert first.get_attribute("class") == "stale"
    expect(first.locator(".badge")).to_have_text("Needs re-authorisation")
    expect(first.locator(".reason")).to_have_text("OAuthException 190: " + XSS)
    expect(rows.nth(1).locator(".badge")).to_have_text("Healthy")
    assert page.locator("#tab-accounts").get_attribute("aria-selected") == "true"

    first.get_by_role("button", name="Reconnect…").click()
    refs = page.get_by_label("New credentials for Acme Support " + XSS)
    refs.fill("not a mapping")
    page.get_by_role("button", name="Save credentials").click()
    expect(page.locator(".reconnect .note.error")).to_contain_text("Write one SETTING=secret-name per line")
    refs.fill("META_PAGE_TOKEN=AWS_SECRET_ACCESS_KEY")  # only the credential's own (suffixed) name
    page.get_by_role("button", name="Save credentials").click()
    expect(page.locator("#accounts-note")).to_contain_text("credential_refs maps a platform credential")
    refs.fill("META_PAGE_TOKEN=META_PAGE_TOKEN_ACME_2026")
    page.get_by_role("button", name="Save credentials").click()
    expect(page.locator("#accounts-note")).to_have_text("Acme Support " + XSS + ": reconnected; replies are sent again.")
    expect(banner).to_be_hidden()
    expect(page.locator("#accounts tr[data-account] .badge.bad")).to_have_count(0)
    assert [a["needs_reauth"] for a in inbox.get("/api/accounts")["items"]] == [False, False]

    # Agents: capacity through the keyboard-reachable tabs (ARIA: arrows move the selection).
    page.locator("#tab-accounts").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-agents")).to_be_focused()
    assert page.locator("#tab-agents").get_attribute("aria-selected") == "true"
    assert page.url.endswith("/admin#agents")
    ana = page.locator("#agents tr", has_text="ana@example.com")
    capacity = ana.get_by_label("Capacity of Ana")
    expect(capacity).to_have_value("10")
    capacity.fill("3")
    ana.get_by_role("button", name="Save").click()
    expect(page.locator("#agents-note")).to_have_text("Saved Ana: capacity 3.")
    [ana_id] = [a["id"] for a in inbox.get("/api/agents")["items"] if a["email"] == "ana@example.com"]
    assert directory.profile(ana_id).capacity == 3

    page.locator("#tab-teams").click()
    team = page.locator("section.team[data-team=default]")
    expect(team.locator("tr", has_text="Ana")).to_contain_text("0 / 3 open")
    expect(team.locator("tr", has_text="Ana").locator(".badge")).to_have_text("offline")

    # SLA policy with business hours: a wrong time zone is refused visibly, then fixed.
    page.locator("#tab-sla").click()
    expect(page.locator("#policies tr.builtin")).to_contain_text("Built-in default")
    page.locator("#sla-name").fill("WhatsApp weekdays")
    page.locator("#sla-channels").fill("WhatsApp")
    page.locator("#sla-first").fill("30")
    page.locator("#sla-next").fill("120")
    page.locator("#sla-hours-on").check()
    page.locator("#sla-tz").fill("Mars/Olympus_Mons")
    page.get_by_label("Open on Fri").uncheck()
    page.get_by_label("Mon opens").fill("08:30")
    page.locator("#sla-dates").fill("2026-12-24, 2026-12-31")
    page.get_by_role("button", name="Create").click()
    error = page.locator("#sla-form-note")
    expect(error).to_have_class("note error")
    expect(error).to_contain_text("unknown time zone 'Mars/Olympus_Mons'")
    page.locator("#sla-tz").fill("Europe/Berlin")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#sla-form-note")).to_have_text(
        "Created WhatsApp weekdays. It applies to turns that start from now on.")
    row = page.locator("#policies tr", has_text="WhatsApp weekdays")
    expect(row).to_contain_text("WhatsApp30 min2 h")
    expect(row).to_contain_text("Mon 08:30–17:00; Tue 09:00–17:00; Wed 09:00–17:00; Thu 09:00–17:00 (Europe/Berlin), "
                                "2 closed date(s)")
    [stored] = policies.list_policies()
    assert stored["channels"] == ["whatsapp"] and stored["first_response_seconds"] == 1800
    assert stored["business_hours"]["timezone"] == "Europe/Berlin"
    assert stored["business_hours"]["week"] == {"mon": [["08:30", "17:00"]], "tue": [["09:00", "17:00"]],
                                                "wed": [["09:00", "17:00"]], "thu": [["09:00", "17:00"]]}
    assert stored["business_hours"]["dates"] == ["2026-12-24", "2026-12-31"]
    assert stored["pause_on"] == ["pending", "snoozed"]

    # Editing loads the stored policy into the form (hours included) and saves with PUT.
    row.get_by_role("button", name="Edit").click()
    expect(page.locator("#sla-form-title")).to_have_text("Edit WhatsApp weekdays")
    expect(page.locator("#sla-tz")).to_have_value("Europe/Berlin")
    expect(page.get_by_label("Open on Fri")).not_to_be_checked()
    expect(page.get_by_label("Mon opens")).to_have_value("08:30")
    page.locator("#sla-first").fill("45")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#sla-form-note")).to_contain_text("Saved WhatsApp weekdays.")
    expect(row).to_contain_text("WhatsApp45 min2 h")
    assert [p["first_response_seconds"] for p in policies.list_policies()] == [2700]

    # Quarantine: the held delivery's hostile text is shown as text.
    page.locator("#tab-quarantine").click()
    expect(page.locator("#quarantine tr")).to_have_count(1)
    expect(page.locator("#quarantine .preview")).to_contain_text(XSS)

    # Dead letters: the error is shown, the selected one is replayed and lands once.
    expect(page.locator("#count-dlq")).to_have_text("1")
    page.locator("#tab-dlq").click()
    entry = page.locator(f"#dlq tr[data-id='{parked}']")
    expect(entry).to_contain_text("RuntimeError: RuntimeError: table throttled " + XSS)
    expect(entry.locator("td").nth(2)).to_have_text("Meta")
    expect(page.locator("#dlq-replay-selected")).to_be_disabled()
    entry.get_by_role("checkbox").check()
    page.locator("#dlq-replay-selected").click()
    expect(page.locator("#dlq-note")).to_have_text(
        "Replayed 1 delivery to the ingest queue; what already landed is skipped.")
    expect(page.locator("#dlq tr")).to_have_count(0)
    assert inbox.process() == 1
    assert [m["text"] for m in inbox.all_messages()] == ["Parked question"]
    _clean(browser)


def test_an_admin_adds_an_agent_registers_an_account_sets_a_team_mode_and_deletes_a_policy(inbox, served, browser):
    from playwright.sync_api import expect

    from chalicelib.routing import directory
    from chalicelib.sla import policies

    inbox.add_account("messenger", PAGE, "Acme Support")
    policies.create_policy({"name": "VIP", "tags": ["vip"], "first_response_seconds": 600,
                            "next_response_seconds": 600}, int(time.time() * 1000))
    page = _open_admin(served, browser, inbox.login_admin(), tab="agents")
    page.locator("#agent-email").fill("Kim@Example.com")
    page.locator("#agent-name").fill("Kim " + XSS)
    page.locator("#agent-role").select_option("supervisor")
    page.locator("#agent-teams").fill("billing, vip")
    page.locator("#agent-capacity").fill("4")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#agent-form-note")).to_contain_text("Added Kim " + XSS + ". Temporary password (shown once")
    temporary = page.locator("#agent-form-note").text_content().rsplit(": ", 1)[1]
    assert len(temporary) >= 16
    expect(page.locator("#agents tr", has_text="kim@example.com").get_by_label("Capacity of Kim " + XSS)).to_have_value("4")
    [kim] = [a for a in inbox.get("/api/agents")["items"] if a["email"] == "kim@example.com"]
    assert (kim["role"], kim["teams"], kim["capacity"], kim["must_change_password"]) == ("supervisor", ["billing", "vip"], 4, True)
    page.locator("#agent-email").fill("kim@example.com")
    page.locator("#agent-name").fill("Kim again")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#agent-form-note")).to_have_text("an agent with this email already exists")
    expect(page.locator("#agent-form-note")).to_have_class("note error")

    page.locator("#tab-teams").click()
    mode = page.get_by_label("How vip shares out conversations")
    expect(mode).to_have_value("round_robin")
    mode.select_option("least_loaded")
    expect(page.locator("section.team[data-team=vip] .note")).to_have_text("Saved.")
    assert directory.team("vip").mode == "least_loaded"

    page.locator("#tab-accounts").click()
    page.locator("#account-channel").select_option("telegram")
    page.locator("#account-id").fill("7001")
    page.locator("#account-name").fill("AcmeBot")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#account-form-note")).to_contain_text("Registered AcmeBot.")
    expect(page.locator("#accounts tr[data-account]")).to_have_count(2)
    page.locator("#account-channel").select_option("messenger")
    page.locator("#account-id").fill(PAGE)
    page.locator("#account-name").fill("Again")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#account-form-note")).to_contain_text(f"messenger account {PAGE} is already registered")
    page.locator("#accounts tr", has_text="AcmeBot").get_by_role("button", name="Disable").click()
    expect(page.locator("#accounts tr", has_text="AcmeBot").locator(".badge")).to_have_text("Disabled")

    page.locator("#tab-sla").click()
    delete = page.locator("#policies tr", has_text="VIP").get_by_role("button", name="Delete")
    delete.click()
    expect(delete).to_have_text("Click again to delete")
    assert len(policies.list_policies()) == 1  # one click deletes nothing
    delete.click()
    expect(page.locator("#sla-note")).to_have_text("Deleted VIP.")
    expect(page.locator("#policies tr", has_text="VIP")).to_have_count(0)
    assert policies.list_policies() == []
    _clean(browser)


def test_a_team_lead_gets_read_only_people_screens_and_an_agent_gets_none(inbox, served, browser):
    from playwright.sync_api import expect

    inbox.add_account("messenger", PAGE)
    lead = _token("sue@example.com", "supervisor", ["billing"])
    _token("bob@example.com", "agent", ["billing"])
    agent = _token("ana@example.com", "agent", ["default"])

    page = _open_admin(served, browser, lead, tab="dlq")  # a tab the lead may not use: falls back
    expect(page.locator("#tab-agents")).to_have_attribute("aria-selected", "true")
    assert [t for t in _texts(page, "[role=tab]:visible")] == ["Agents", "Teams"]
    expect(page.locator("#agents tr")).to_have_count(2)
    assert sorted(_texts(page, "#agents tr td:first-child")) == ["Bob", "Sue"]
    expect(page.locator("#agents input, #agents select, #agents button")).to_have_count(0)
    expect(page.locator("#agent-form")).to_be_hidden()
    expect(page.locator("#agents-note")).to_contain_text("Only admins change agents")
    page.locator("#tab-teams").click()
    expect(page.locator("section.team")).to_have_count(1)
    expect(page.locator("section.team[data-team=billing] select")).to_be_disabled()
    assert not [p for m, p in served.requests if p.startswith("/api/admin/") and p != "/api/admin/teams"]
    assert ("GET", "/api/accounts") not in served.requests

    served.requests.clear()
    page = _open_admin(served, browser, agent)
    expect(page.locator("#gate")).to_contain_text("These screens are for admins and team leads.")
    expect(page.locator("#gate a")).to_have_attribute("href", ".")
    expect(page.locator("#admin")).to_be_hidden()
    assert [p for m, p in served.requests if p.startswith("/api/")] == ["/api/me"]
    # and the API refuses them whatever the page shows
    assert page.evaluate("t => fetch('api/admin/dlq', {headers: {Authorization: 'Bearer ' + t}}).then(r => r.status)",
                         agent) == 403

    page.evaluate("sessionStorage.clear()")
    page.reload()
    expect(page.locator("#gate")).to_have_text("You are not signed in. Sign in on the inbox.")
    _clean(browser)


def test_flags_badges_and_errors_meet_wcag_aa_in_light_and_dark(inbox, served, browser):
    from playwright.sync_api import expect

    from tests.test_workspace_more import _contrast

    _seed(inbox)
    _token("bob@example.com", "agent", ["default"])
    page = _open_admin(served, browser, inbox.login_admin())
    expect(page.locator("#accounts .badge.bad")).to_be_visible()
    page.locator("#sla-form").evaluate("f => f.closest('section').hidden = false")  # a visible error note
    page.locator("#sla-form-note").evaluate("n => { n.className = 'note error'; n.textContent = 'refused'; }")
    selectors = ["#reauth", "#count-reauth", "#count-dlq", "#accounts .badge.bad", "#accounts .reason",
                 "#accounts .badge.ok", ".help", ".grid th", "#tab-accounts", "#sla-form-note", "#inbox-link",
                 "button[type=submit]"]
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for selector in selectors:
            color, background = page.locator(selector).first.evaluate(
                "n => { let bg = 'rgba(0, 0, 0, 0)', p = n;"
                " while (bg === 'rgba(0, 0, 0, 0)' && p) { bg = getComputedStyle(p).backgroundColor; p = p.parentElement; }"
                " return [getComputedStyle(n).color, bg === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : bg]; }")
            assert _contrast(color, background) >= 4.5, (scheme, selector, color, background)
    _clean(browser)


@pytest.mark.skipif(not SCREENSHOTS_DIR, reason="`make screenshots` sets SCREENSHOTS_DIR")
def test_screenshots(inbox, served, browser):
    """The admin screen as a PNG (make screenshots): an account needing re-authorisation on top."""
    from playwright.sync_api import expect

    from chalicelib.accounts import find_account
    from chalicelib.outbound.worker import mark_needs_reauth

    os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
    for channel, account_id, name in (("messenger", PAGE, "Acme Support"), ("whatsapp", WHATSAPP_PHONE, "Acme WhatsApp"),
                                      ("instagram", "17841400000000", "@acme"), ("telegram", "7001", "AcmeBot")):
        inbox.add_account(channel, account_id, name)
    mark_needs_reauth(find_account("messenger", PAGE),
                      "OAuthException 190: Error validating access token: Session has expired")
    runtime.use_invoker(HandOffs())  # the delivery is handed off, and parked below
    assert inbox.post_meta(page_delivery(messenger("m_s1", "p_s1", 1700000000000, "Where is my order?"))).status_code == 200
    _park_next_delivery("ClientError: ProvisionedThroughputExceededException")
    from chalicelib.sla import policies

    policies.create_policy({"name": "VIP customers", "tags": ["vip"], "first_response_seconds": 900,
                            "next_response_seconds": 1800, "pause_on": ["pending", "snoozed"]}, int(time.time() * 1000))
    page = _open_admin(served, browser, inbox.login_admin())

    def shot(name: str) -> None:
        time.sleep(0.3)  # let the last render settle
        data = browser.send("Page.captureScreenshot", format="png")["data"]
        with open(os.path.join(SCREENSHOTS_DIR, name + ".png"), "wb") as handle:
            handle.write(base64.b64decode(data))

    expect(page.locator("#accounts tr[data-account]")).to_have_count(4)
    expect(page.locator("#count-dlq")).to_have_text("1")
    shot("admin")
    page.locator("#tab-sla").click()
    expect(page.locator("#policies tr", has_text="VIP customers")).to_be_visible()
    page.locator("#sla-name").fill("WhatsApp weekdays")
    page.locator("#sla-channels").fill("whatsapp")
    page.locator("#sla-first").fill("30")
    page.locator("#sla-hours-on").check()
    page.locator("#sla-tz").fill("Europe/Berlin")
    shot("admin-sla")
    assert page.evaluate("window.__violations") == []
