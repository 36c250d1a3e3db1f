"""The agent workspace in a real headless Chromium (Debian's, driven over CDP as in
test_web_inbox): composer, actions, views, deadlines, unread, presence, keyboard, hostile text."""
from __future__ import annotations

import json
import time
from typing import Any, Dict, List

import pytest

from tests.test_web_inbox import (PAGE_ID, XSS, _deliver, _messaging, browser, needs_chromium,  # noqa: F401
                                  served)

pytestmark = needs_chromium
ROWS = "document.querySelectorAll('#conversations .row')"


def _open(inbox: Any, served: Any, page: Any) -> None:
    """Signed in (a token in sessionStorage, as after the login form) with the inbox shown."""
    token = inbox.login_admin()
    page.send("Page.navigate", url=served)
    page.wait_for("document.readyState === 'complete'")
    page.js(f"sessionStorage.setItem('socialinbox.token', {json.dumps(token)})")
    page.send("Page.reload")
    page.wait_for("!document.getElementById('app').hidden")


def _click_row(page: Any, text: str) -> None:
    page.wait_for(f"[...{ROWS}].some(r => r.textContent.includes({json.dumps(text)}))")
    page.js(f"[...{ROWS}].find(r => r.textContent.includes({json.dumps(text)})).click()")
    page.wait_for("!document.getElementById('composer').hidden")


def _type(page: Any, text: str) -> None:
    page.js(f"const d = document.getElementById('draft'); d.value = {json.dumps(text)};"
            "d.dispatchEvent(new Event('input'))")


def _clean(page: Any) -> None:
    assert page.js("window.__violations") == []
    assert page.js("window.__pwned") is None
    assert not [e for e in page.events if e.get("method") == "Page.javascriptDialogOpening"]


def _me(inbox: Any) -> str:
    return inbox.get("/api/me")["id"]


def test_composer_reply_is_queued_once_a_note_is_distinct_and_a_failure_shows_its_reason(inbox, served, browser):
    from chalicelib.models import Message

    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("5678", now - 60_000, "m_1", "Where is my order?"))
    page = browser
    _open(inbox, served, page)
    _click_row(page, "Where is my order?")
    page.wait_for("document.querySelectorAll('#messages .msg').length === 1")

    # Enter sends; a double click on Send while the first is on its way is still one message
    _type(page, "It ships today <b>promise</b>")
    page.js("const b = document.getElementById('send'); b.click(); b.click()")
    assert page.js("document.getElementById('draft').value") == ""  # at once, into the thread
    page.wait_for("!!document.querySelector('#messages .msg.out .d-queued')")
    page.wait_for("document.querySelectorAll('#messages .msg.out').length === 1 && "
                  "!document.querySelector('#messages .pending')")
    conversation_id = page.js("location.hash.slice(3)")
    outs = [m for m in inbox.messages(conversation_id) if m["direction"] == "out"]
    assert [(m["text"], m["delivery_status"]) for m in outs] == [("It ships today <b>promise</b>", "queued")]
    assert page.js("document.querySelector('#messages .msg.out .d-queued').textContent") == "◷ queued"
    assert page.js("document.querySelector('#messages .msg.out .text').textContent") == "It ships today <b>promise</b>"
    assert page.js("document.querySelectorAll('#messages b').length") == 0

    # a private note: its own mode, its own look, never sent
    page.js("document.querySelector('[data-mode=note]').click()")
    assert page.js("document.getElementById('composer').classList.contains('note-mode')")
    _type(page, "VIP, see https://crm.example/c/1. and javascript:alert(1)")
    page.js("document.getElementById('draft').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))")
    page.wait_for("!!document.querySelector('#messages .msg.note:not(.pending)')")
    note = page.js("const n = document.querySelector('#messages .msg.note'); [n.querySelector('.label').textContent,"
                   "getComputedStyle(n).borderStyle, getComputedStyle(n).backgroundColor,"
                   "getComputedStyle(document.querySelector('#messages .msg.out')).backgroundColor,"
                   "[...n.querySelectorAll('a')].map(a => [a.href, a.textContent, a.rel])]")
    assert note[0] == "Private note · only agents see this" and note[1] == "dashed" and note[2] != note[3]
    assert note[4] == [["https://crm.example/c/1", "https://crm.example/c/1", "noopener noreferrer"]]
    assert [m["direction"] for m in inbox.messages(conversation_id)] == ["in", "out", "note"]

    # the outbox fails the reply: polling shows the failure and its reason
    [out] = [m for m in Message.query(conversation_id) if m.direction == "out"]
    out.update(actions=[Message.delivery_status.set("failed"),
                        Message.delivery_error.set("(#551) This person isn't available right now")])
    page.wait_for("!!document.querySelector('#messages .delivery-error')", timeout=8)
    assert page.js("document.querySelector('#messages .delivery-error').textContent") == \
        "Not delivered: (#551) This person isn't available right now"
    assert page.js("document.querySelector('#messages .msg.out .d-failed').textContent") == "✕ failed"
    _clean(page)


def test_composer_shows_a_422_reason_and_asks_before_answering_an_outdated_thread(inbox, served, browser):
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("1111", now - 8 * 86_400_000, "m_old", "Old question"),
             _messaging("2222", now - 60_000, "m_new", "Fresh question"))
    page = browser
    _open(inbox, served, page)
    page.js("document.querySelector('[data-view=all]').click()")
    _click_row(page, "Old question")
    _type(page, "Sorry for the wait")
    page.js("document.getElementById('send').click()")
    page.wait_for("document.getElementById('composer-note').textContent.startsWith('Not sent: ')")
    reason = page.js("document.getElementById('composer-note').textContent")
    assert "(" in reason and reason.endswith(")"), reason  # the reason code is shown
    assert page.js("document.querySelectorAll('#messages .msg.out').length") == 0
    assert page.js("document.getElementById('draft').value") == "Sorry for the wait"  # kept to rework

    _click_row(page, "Fresh question")
    _type(page, "Here is the answer")
    _deliver(inbox, _messaging("2222", int(time.time() * 1000), "m_more", "Actually, never mind"))
    page.wait_for("[...document.querySelectorAll('#messages .text')].some(t => t.textContent === 'Actually, never mind')")
    page.js("document.getElementById('send').click()")
    page.wait_for("!document.getElementById('confirm').hidden")
    assert page.js("document.getElementById('confirm-text').textContent").startswith("The thread changed")
    page.js("document.getElementById('confirm-send').click()")
    page.wait_for("[...document.querySelectorAll('#messages .msg.out .text')].some(t => t.textContent === 'Here is the answer')")
    assert page.js("document.getElementById('confirm').hidden")
    _clean(page)


def test_claim_conflict_names_the_holder_and_resolve_leaves_the_open_view(inbox, served, browser):
    from chalicelib.api.auth import create_agent
    from chalicelib.inbox import store

    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("3333", now - 120_000, "m_a", "Taken already"),
             _messaging("4444", now - 60_000, "m_b", "Free one"))
    other = create_agent("other@example.com", "another password 123", "Other", agent_id="a_other")
    page = browser
    _open(inbox, served, page)
    page.wait_for(f"{ROWS}.length === 2")
    taken = next(c["id"] for c in inbox.conversations() if c["last_message_preview"] == "Taken already")
    _click_row(page, "Taken already")
    store.assign(taken, other.agent_id, "agent:a_other")  # someone else claims it first
    page.js("document.getElementById('act-claim').click()")
    page.wait_for("document.getElementById('action-note').textContent === 'Already assigned to Other.'")

    # keyboard: j moves to the next conversation, a claims it, e resolves it
    page.js("document.activeElement.blur()")
    page.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j', bubbles: true}))")
    page.wait_for("document.querySelector('#thread-head h2').textContent.endsWith('4444')")
    page.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'a', bubbles: true}))")  # the picker
    page.wait_for("document.activeElement.id === 'assign-q' && document.querySelectorAll('.assign-option').length > 0")
    assert page.js("document.querySelector('.assign-option').textContent").startswith("You (Admin)")
    page.page.keyboard.press("Enter")  # you come first: a claim
    page.wait_for("document.querySelector('#thread-head .owner').textContent === 'Assigned to You'")
    page.wait_for("document.querySelector('[data-count=mine]').textContent === '1'")
    page.wait_for("[...document.querySelectorAll('#messages .event')].some(e => e.textContent === 'Assigned to You by you')")
    page.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'e', bubbles: true}))")
    page.wait_for(f"{ROWS}.length === 1")  # out of the open view at once
    assert page.js(f"{ROWS}[0].textContent").count("Taken already") == 1
    page.wait_for("[...document.querySelectorAll('#messages .event')].some(e => e.textContent === 'Status open → resolved by you')")
    assert page.js("document.getElementById('act-reopen').hidden") is False
    assert [c["status"] for c in inbox.conversations(status="resolved")] == ["resolved"]

    # snooze with a preset, then priority and tags; each is logged inline
    _click_row(page, "Taken already")
    page.js("const s = document.getElementById('act-snooze'); s.value = '1h'; s.dispatchEvent(new Event('change'))")
    page.wait_for(f"{ROWS}.length === 0")
    state = inbox.get(f"/api/conversations/{taken}")
    assert state["status"] == "snoozed" and state["snoozed_until"]
    page.js("const p = document.getElementById('act-priority'); p.value = 'urgent'; p.dispatchEvent(new Event('change'))")
    page.js("const t = document.getElementById('act-tags'); t.value = 'vip, refund';"
            "t.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))")
    page.wait_for("[...document.querySelectorAll('#messages .event')].some(e => e.textContent.startsWith('Tags +vip +refund'))")
    state = inbox.get(f"/api/conversations/{taken}")
    assert state["priority"] == "urgent" and sorted(state["tags"]) == ["refund", "vip"]
    _clean(page)


def _iso(ms: int) -> str:
    from chalicelib.api.views import iso

    return iso(ms)


def _set_deadline(conversation_id: str, due_ms: int, warn_ms: int) -> None:
    from chalicelib.models import Conversation

    Conversation.get(conversation_id).update(actions=[Conversation.reply_due_at.set(due_ms),
                                                      Conversation.warn_at.set(warn_ms)])


def test_sla_countdown_turns_amber_at_the_warning_and_red_at_the_breach(inbox, served, browser):
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, *[_messaging(str(5000 + n), now - 60_000 + n, f"m_{n}", f"Customer {n}") for n in range(3)])
    ids = {c["last_message_preview"]: c["id"] for c in inbox.conversations()}
    # from the sla object's warn_at and due_at, not a fixed threshold: a 2-hour deadline already
    # past its warning point is amber; one whose warning comes in 2 s turns amber by itself
    _set_deadline(ids["Customer 0"], now + 2 * 3600_000, now - 1000)
    _set_deadline(ids["Customer 1"], now - 30_000, now - 60_000)
    _set_deadline(ids["Customer 2"], now + 3600_000, now + 1800_000)
    page = browser
    _open(inbox, served, page)
    page.wait_for(f"{ROWS}.length === 3")

    def badges() -> Dict[str, List[str]]:
        return page.js(f"Object.fromEntries([...{ROWS}].map(r => [r.querySelector('.preview').textContent,"
                       "[r.querySelector('.sla').className, r.querySelector('.sla').textContent,"
                       "getComputedStyle(r.querySelector('.sla')).backgroundColor]]))")

    first = badges()
    assert first["Customer 0"][0] == "badge sla sla-at_risk" and first["Customer 0"][1].startswith("1h 59m")
    assert first["Customer 1"][0] == "badge sla sla-breached" and first["Customer 1"][1].startswith("Overdue ")
    overdue = int(first["Customer 1"][1].split("m ")[0][8:]) * 60 + int(first["Customer 1"][1].split("m ")[1].rstrip("s"))
    assert 30 <= overdue <= 31 + (time.time() * 1000 - now) / 1000  # 30 s overdue when seeded; a busy machine adds
    assert first["Customer 2"][0] == "badge sla sla-ok" and first["Customer 2"][1] == "59m left"
    assert first["Customer 0"][2] == "rgb(245, 179, 1)" and first["Customer 1"][2] == "rgb(179, 38, 30)"
    # the page is up: the third deadline now warns in 1.5 s and falls due in 3 s; the countdown
    # changes colour by itself between list refreshes
    soon = int(time.time() * 1000)
    _set_deadline(ids["Customer 2"], soon + 3000, soon + 1500)
    page.js("document.dispatchEvent(new Event('visibilitychange'))")
    row2 = f"[...{ROWS}].find(r => r.textContent.includes('Customer 2'))"
    page.wait_for(f"{row2}.querySelector('.sla').dataset.due === {json.dumps(_iso(soon + 3000))}")
    page.wait_for(f"!!{row2}.querySelector('.sla-at_risk')", timeout=4)
    page.wait_for(f"!!{row2}.querySelector('.sla-breached')", timeout=4)
    assert badges()["Customer 2"][1].startswith("Overdue 0m 0")
    _clean(page)


def test_hostile_names_stay_text_twins_differ_unread_clears_and_presence_beats(inbox, served, browser):
    from chalicelib.models import Conversation

    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("10005678", now - 90_000, "m_t1", "First twin"),
             _messaging("20005678", now - 80_000, "m_t2", "Second twin"),
             _messaging("777", now - 70_000, "m_x", "<script>window.__pwned=1</script>"),
             _messaging("777", now - 60_000, "m_x2", "see http://example.com/a?b=1). or javascript:x"))
    hostile = next(c["id"] for c in inbox.conversations() if c["contact"]["platform_id"] == "777")
    Conversation.get(hostile).update(actions=[Conversation.contact_name.set(XSS),
                                              Conversation.subject.set("<i>post</i>")])
    page = browser
    _open(inbox, served, page)
    page.wait_for(f"{ROWS}.length === 3")
    twins = page.js(f"[...{ROWS}].filter(r => r.textContent.includes('twin'))"
                    ".map(r => r.querySelector('.name').textContent + ' / ' + r.querySelector('.cid').textContent)")
    assert sorted(twins) == ["Messenger user …5678 / ID 10005678", "Messenger user …5678 / ID 20005678"]
    assert page.js("document.title") == "(4) Social Inbox"

    _click_row(page, XSS)
    page.wait_for("document.querySelectorAll('#messages .msg').length === 2")
    assert page.js("document.querySelector('#thread-head h2').textContent") == XSS
    assert page.js("document.querySelectorAll('img, script:not([src]), i, iframe').length") == 0
    links = page.js("[...document.querySelectorAll('#messages a')].map(a => [a.href, a.textContent])")
    assert links == [["http://example.com/a?b=1", "http://example.com/a?b=1"]]
    page.wait_for("!document.querySelector('#conversations .row.selected .unread')")
    assert inbox.get(f"/api/conversations/{hostile}")["unread_count"] == 0
    page.wait_for("document.title === '(2) Social Inbox'", timeout=8)
    assert ("POST", f"/api/conversations/{hostile}/read") in served.requests
    assert ("PUT", "/api/me/presence") in served.requests
    assert ("GET", "/api/me/notifications") in served.requests

    # hidden: the page says the agent is away (and stops polling until visible again)
    page.send("Emulation.setFocusEmulationEnabled", enabled=False)
    page.js("Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
            "document.dispatchEvent(new Event('visibilitychange'))")
    deadline = time.time() + 5
    while time.time() < deadline:
        from chalicelib.routing import directory

        profile = directory.profiles([_me(inbox)]).get(_me(inbox))
        if profile is not None and profile.presence == "away":
            break
        time.sleep(0.1)
    assert profile is not None and profile.presence == "away"
    _clean(page)


@pytest.mark.parametrize("key", ["r", "n"])
def test_r_and_n_focus_the_composer_in_their_mode(inbox, served, browser, key):
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("8888", int(time.time() * 1000) - 1000, "m_k", "Keys"))
    page = browser
    _open(inbox, served, page)
    _click_row(page, "Keys")
    page.js("document.activeElement.blur();"
            f"document.dispatchEvent(new KeyboardEvent('keydown', {{key: {json.dumps(key)}, bubbles: true}}))")
    assert page.js("document.activeElement.id") == "draft"
    assert page.js("document.getElementById('composer').classList.contains('note-mode')") is (key == "n")
    _clean(page)


def test_a_temporary_password_must_be_replaced_before_the_inbox_opens(inbox, served, browser):
    """An agent an admin created signs in with the temporary password and lands on "choose your
    own password" (the API answers nothing else yet); a wrong temporary password stays on that
    form with its reason; the new password opens the inbox, without the admin link."""
    import json as _json

    admin = inbox.login_admin()
    created = inbox.client.http.post("/api/agents", headers={"Authorization": "Bearer " + admin,
                                                             "Content-Type": "application/json"},
                                     body=_json.dumps({"email": "new@example.com", "name": "New Agent"}))
    assert created.status_code == 201, created.body
    temporary = _json.loads(created.body)["temporary_password"]
    page = browser.page
    page.goto(served)
    page.fill("#email", "new@example.com")
    page.fill("#password", temporary)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#password-form:not([hidden])")
    assert page.is_hidden("#app") and page.is_hidden("#login-form") and page.is_hidden("#admin-link")
    page.fill("#pw-current", "not the temporary one")
    page.fill("#pw-new", "my own long passphrase")
    page.click("#password-form button[type=submit]")
    browser.wait_for("document.getElementById('password-error').textContent.length > 0")
    assert page.is_visible("#password-form"), "a wrong password must not end the sign-in"
    page.fill("#pw-current", temporary)
    page.click("#password-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    assert page.is_hidden("#password-form") and page.is_hidden("#admin-link")
    assert inbox.client.http.post("/api/auth/login", headers={"Content-Type": "application/json"}, body=_json.dumps(
        {"email": "new@example.com", "password": "my own long passphrase"})).status_code == 200
    _clean(browser)


def test_admins_and_team_leads_see_the_admin_link(inbox, served, browser):
    _open(inbox, served, browser)
    browser.wait_for("!document.getElementById('admin-link').hidden")
    assert browser.js("document.getElementById('admin-link').getAttribute('href')") == "admin"
    _clean(browser)


def test_handle_time_is_the_focus_the_page_reports_when_the_agent_moves_on(inbox, served, browser):
    """Staffing's measured handle time: a thread open in the visible page counts from the
    heartbeat that opened it; moving to another thread reports the stretch spent on it."""
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("7001", now - 60_000, "m_f1", "First thread"))
    _deliver(inbox, _messaging("7002", now - 50_000, "m_f2", "Second thread"))
    page = browser
    _open(inbox, served, page)
    _click_row(page, "First thread")
    page.wait_for("document.querySelectorAll('#messages .msg').length === 1")
    time.sleep(1.5)  # the agent reads the first thread
    _click_row(page, "Second thread")

    def measured() -> Dict[str, Any]:
        return inbox.get("/api/staffing/handle-time?group=live")

    deadline = time.time() + 10
    while measured()["cycles"] < 1 and time.time() < deadline:
        time.sleep(0.2)
    figures = measured()
    assert figures["cycles"] == 1, figures
    assert 1.0 <= figures["mean_seconds"] <= 20.0, figures
    _clean(page)
