"""The Listening view (static/listening.js) in headless Chromium: hostile mention text stays text,
the most-urgent order, filters, and convert opening the conversation."""
from __future__ import annotations

import time

from tests.helpers import PAGE
from tests.test_web_inbox import XSS, browser, needs_chromium, served  # noqa: F401
from tests.test_workspace_browser import _clean, _open

pytestmark = needs_chromium
ITEMS = "document.querySelectorAll('#listening-panel .listening-item')"


def _mention(post_id, text, sender, at):
    return {"object": "page", "entry": [{"id": PAGE, "time": at, "changes": [{"field": "mention", "value": {
        "post_id": post_id, "item": "post", "verb": "add", "message": text, "sender_id": sender[0],
        "sender_name": sender[1], "created_time": at}}]}]}


def test_the_listening_view_shows_mentions_as_text_orders_by_urgency_and_converts(inbox, served, browser):
    inbox.add_account("facebook", PAGE)
    now = int(time.time())
    inbox.post_meta(_mention(f"{PAGE}_1", "Love the new roast @Acme, great job", ("1", "Happy Hal"), now - 300))
    inbox.post_meta(_mention(f"{PAGE}_2", XSS + " worst service ever, awful @Acme", ("2", XSS), now - 600))
    inbox.process()
    page = browser
    _open(inbox, served, page)
    page.js("document.getElementById('listening-toggle').click()")
    page.wait_for(f"{ITEMS}.length === 2")
    texts = page.js(f"[...{ITEMS}].map(li => li.querySelector('.text').textContent)")
    assert texts[0].startswith("Love the new roast") and texts[1].startswith(XSS)  # newest first
    assert page.js("document.querySelectorAll('#listening-panel img, #listening-panel script').length") == 0
    page.js("[...document.querySelectorAll('#listening-panel button')]"
            ".find(b => b.textContent === 'Most urgent first').click()")
    assert page.js(f"{ITEMS}[0].dataset.sentiment") == "negative"
    page.js("const s = document.querySelector('#listening-panel select[aria-label=sentiments]');"
            "s.value = 'positive'; s.dispatchEvent(new Event('change'))")
    page.wait_for(f"{ITEMS}.length === 1 && {ITEMS}[0].dataset.sentiment === 'positive'")
    page.js(f"[...{ITEMS}[0].querySelectorAll('button')].find(b => b.textContent === 'Take it').click()")
    page.wait_for("location.hash.startsWith('#c=')")
    conversation = page.js("decodeURIComponent(location.hash.slice(3))")
    assert inbox.get(f"/api/conversations/{conversation}")["channel"] == "facebook"
    _clean(page)
