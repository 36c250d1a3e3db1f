"""The agent workspace end to end against the local stack exactly as `make run` starts it (moto
emulator, event pumps, outbox worker, the loopback platform sandbox that echoes and sends
receipts back through our signed webhooks), in Playwright driving Debian's chromium: a deep link
survives the sign-in form, a customer's message arrives, the reply goes queued -> sent ->
delivered on screen, `e` resolves it, and the customer's markup stays text."""
from __future__ import annotations

import json
import time

from tests.browser import browser, needs_chromium  # noqa: F401 - fixtures
from tests.helpers import meta_signature
from tests.test_e2e_local_stack import PASSWORD, _call, _token, local_stack  # noqa: F401 - fixture

pytestmark = needs_chromium
PAGE = "100000000000001"  # the seeded demo Messenger page


def _deliver(base: str, sender: str, mid: str, text: str) -> None:
    now = int(time.time() * 1000)
    raw = json.dumps({"object": "page", "entry": [{"id": PAGE, "time": now, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": PAGE}, "timestamp": now,
         "message": {"mid": mid, "text": text}}]}]}).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(raw, "dev_meta_app_secret")}
    assert _call("POST", base + "/webhooks/meta", raw, headers)[0] == 200


def _conversation_of(base: str, sender: str) -> str:
    auth = {"Authorization": "Bearer " + _token(base)}
    deadline = time.time() + 30
    while time.time() < deadline:
        status, body = _call("GET", base + "/api/conversations?channel=messenger", headers=auth)
        assert status == 200, body
        found = [c["id"] for c in json.loads(body)["items"] if c["contact"]["platform_id"] == sender]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError("the event pump did not deliver the message")


def test_sign_in_through_a_deep_link_reply_and_watch_it_delivered_then_resolve(local_stack, browser):
    base, _, _ = local_stack
    hostile = "Where is my order? <img src=x onerror=window.__pwned=1>"
    _deliver(base, "e2e-browser-user", "m_e2e_browser_1", hostile)
    conversation_id = _conversation_of(base, "e2e-browser-user")

    page = browser.page
    page.goto(f"{base}/#c={conversation_id}")  # signed out: the form, and the link is kept
    page.wait_for_selector("#login-form:not([hidden])")
    page.fill("#email", "admin@example.com")
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    browser.wait_for("!document.getElementById('composer').hidden", timeout=20)
    assert browser.js("location.hash") == "#c=" + conversation_id
    browser.wait_for("document.querySelectorAll('#messages .msg').length === 1")
    assert browser.js("document.querySelector('#messages .msg .text').textContent") == hostile
    assert browser.js("document.querySelectorAll('#messages img').length") == 0

    # every delivery state the reply shows, in order, as the page renders them
    browser.js("window.__seen = []; new MutationObserver(function () {"
               " const d = document.querySelector('#messages .msg.out .delivery');"
               " const s = d && d.className.replace('delivery d-', '');"
               " if (s && window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s);"
               "}).observe(document.getElementById('messages'), {subtree: true, childList: true,"
               " characterData: true, attributes: true})")
    page.fill("#draft", "It ships today")
    page.press("#draft", "Enter")
    browser.wait_for("['delivered', 'read'].includes(window.__seen[window.__seen.length - 1])", timeout=45)
    seen = browser.js("window.__seen")
    # queued first and delivered (or read) last; "sent" shows when a poll lands between the send
    # and the receipt (the sandbox answers in ~0.4 s, the page polls every 2.5 s), so it may be skipped
    assert seen[0] == "queued" and set(seen) <= {"queued", "sent", "delivered", "read"}, seen
    assert seen == sorted(seen, key=["queued", "sent", "delivered", "read"].index), seen  # never backwards
    auth = {"Authorization": "Bearer " + _token(base)}
    [reply] = [m for m in json.loads(_call("GET", f"{base}/api/conversations/{conversation_id}/messages",
                                           headers=auth)[1])["items"] if m["direction"] == "out"]
    assert reply["platform_message_id"], reply  # the platform took it (sent) before its receipt came
    # the platform's echo of our reply merged into the same message: one reply on screen
    assert browser.js("document.querySelectorAll('#messages .msg.out').length") == 1

    page.click("#messages")  # keyboard shortcuts act outside the composer
    page.keyboard.press("e")
    deadline = time.time() + 20
    status = None
    while time.time() < deadline and status != "resolved":
        status = json.loads(_call("GET", f"{base}/api/conversations/{conversation_id}", headers=auth)[1])["status"]
        time.sleep(0.2)
    assert status == "resolved"
    assert browser.js("window.__violations") == [] and browser.js("window.__pwned") is None
