"""The post behind comment threads of every platform that has them (Facebook, Instagram, LinkedIn,
X), in a real headless Chromium, from real webhook deliveries: each thread's header shows the
post's first lines as text, its picture through our own endpoint and a link to it, while no agent
id, post URN or numeric post id is visible in the list, the thread, its event log or the alerts,
with every thread held by another agent. The bulk bar's assign picker by keyboard, as an agent: another
team's agent is never offered. `make screenshots` keeps a comment thread with its post header."""
from __future__ import annotations

import base64
import json
import os
import re
import struct
import time
import zlib
from typing import Any, List

import responses

from tests.helpers import fixture_json, signed_in_agent
from tests.test_names_browser import AGENT_ID, ROWS, _shown, _sign_in
from tests.test_post_previews import (FB_PAGE, FB_POST, GRAPH, IG_ACCOUNT, IG_MEDIA, INSTAGRAM_GRAPH, ORG, X_ACCOUNT,
                                      X_OURS, X_PICTURE, linkedin_comment, x_reply)
from tests.test_web_inbox import browser, needs_chromium, served  # noqa: F401

pytestmark = needs_chromium
SCREENSHOTS_DIR = os.environ.get("SCREENSHOTS_DIR")
POST_URN = re.compile(r"urn:li:(?:activity|share|ugcPost):\d+")
PICTURE = "https://scontent.xx.fbcdn.net/v/t39/pastries.jpg?sig=abc"
SIDE = 112


def _png() -> bytes:
    """A real PNG (a warm gradient, SIDE pixels square), so the page's <img> decodes it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\0" + bytes(v for x in range(SIDE) for v in (200 + x // 3, 120 + y // 2, 60 + (x + y) // 4))
                    for y in range(SIDE))
    header = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png()
HEADERS = {
    "facebook": ("Fresh pastries every morning!\nGluten-free on Fridays.", "Open the post on Facebook ↗"),
    "instagram": ("<b>Autumn</b> menu \U0001F342 #coffee", "Open the post on Instagram ↗"),
    "linkedin": ("We're hiring baristas in Lyon \u2615 Apply via the link!", "Open the post on LinkedIn ↗"),
    "x": ("Our spring menu & a new roast \U0001f331", "Open the post on X ↗"),
}


def _post_ids_or_agent_ids(text: str) -> List[str]:
    """Agent ids, post URNs and the numeric ids of the posts behind these threads. (A LinkedIn
    member's own URN is the contact panel's "LinkedIn ID": a person, not a post.)"""
    posts = (FB_POST, FB_POST.split("_")[-1], IG_MEDIA, X_OURS)
    return AGENT_ID.findall(text) + POST_URN.findall(text) + [post for post in posts if post in text]


def _deliver_comment_threads(inbox: Any, platform: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("META_PAGE_TOKEN", "page-token")
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "ig-token")
    for name in ("META_GRAPH_BASE_URL", "INSTAGRAM_GRAPH_BASE_URL", "X_API_BASE_URL", "LINKEDIN_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for channel, account in (("facebook", FB_PAGE), ("instagram", IG_ACCOUNT), ("x", X_ACCOUNT), ("linkedin", ORG)):
        inbox.add_account(channel, account)
    platform.get(f"{GRAPH}/{FB_POST}", json={"message": HEADERS["facebook"][0], "full_picture": PICTURE,
                                             "permalink_url": "https://www.facebook.com/acme/posts/555000111"})
    platform.get(f"{INSTAGRAM_GRAPH}/{IG_MEDIA}", json={"caption": HEADERS["instagram"][0], "media_type": "IMAGE",
                                                        "permalink": "https://www.instagram.com/p/Cx1/"})
    for url in (PICTURE, X_PICTURE):
        platform.get(url, body=PNG, content_type="image/png")
    assert inbox.post_meta(fixture_json("meta", "facebook_comment_add.json")).status_code == 200
    assert inbox.post_meta(fixture_json("meta", "instagram_comment.json")).status_code == 200
    assert inbox.post_x(x_reply(with_our_post=True)).status_code == 200
    assert inbox.post_linkedin(linkedin_comment("NONE")).status_code == 200
    inbox.process()


def test_comment_threads_of_every_platform_show_the_post_behind_them_and_no_ids(inbox, served, browser, monkeypatch):
    from chalicelib.inbox import store
    from chalicelib.sla import escalation

    with responses.RequestsMock(assert_all_requests_are_fired=False) as platform:
        _deliver_comment_threads(inbox, platform, monkeypatch)
        threads = {c["channel"]: c for c in inbox.conversations()}
        assert sorted(threads) == sorted(HEADERS)
        kim = signed_in_agent("kim@example.com", "Kim Care", "agent", ["default"])
        for n, conversation in enumerate(threads.values()):
            store.assign(conversation["id"], kim["id"], "flow" if n % 2 else f"agent:{kim['id']}")
        for channel in ("facebook", "x"):  # the admin (a supervisor role) is alerted
            escalation.escalate("breach", store.get(threads[channel]["id"]))
        page = browser
        _sign_in(served, page, inbox.login_admin())
        page.js("document.querySelector('[data-view=all]').click()")
        page.wait_for(f"{ROWS}.length === 4")
        seen = [_shown(page)]
        for channel, conversation in threads.items():
            name = conversation["contact"]["display_name"]
            page.js(f"[...{ROWS}].find(r => r.textContent.includes({json.dumps(name)})).click()")
            page.wait_for(f"document.querySelector('#thread-head').textContent.includes({json.dumps(name)}) && "
                          "document.querySelector('#thread-head .post-text')")
            text, link = HEADERS[channel]
            assert page.js("document.querySelector('#thread-head .post-text').textContent") == text
            assert page.js("document.querySelectorAll('#thread-head .post-preview b').length") == 0  # text, never markup
            assert page.js("document.querySelector('#thread-head .subject').textContent").endswith(link)
            href = page.js("document.querySelector('#thread-head .subject a').href")
            assert href.startswith("https://www.") or href.startswith("https://x.com/"), href
            if channel in ("facebook", "x"):
                page.wait_for("document.querySelector('#thread-head .post-picture') && "
                              f"document.querySelector('#thread-head .post-picture').naturalWidth === {SIDE}")
                assert page.js("document.querySelector('#thread-head .post-picture').src").startswith("blob:")
            page.wait_for("[...document.querySelectorAll('#messages .event')].some(e => "
                          "e.textContent.startsWith('Assigned to Kim Care by '))")
            seen.append(_shown(page))
            if channel == "facebook" and SCREENSHOTS_DIR:
                os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
                time.sleep(0.4)  # let the last render settle
                with open(os.path.join(SCREENSHOTS_DIR, "post-header.png"), "wb") as handle:
                    handle.write(base64.b64decode(page.send("Page.captureScreenshot", format="png")["data"]))
        page.js("document.getElementById('notif').click()")
        page.wait_for("document.querySelectorAll('#notif-list button').length === 2")
        alerts = page.js("[...document.querySelectorAll('#notif-list button')].map(b => b.textContent)")
        assert sorted(a.split(" · ")[0] for a in alerts) == ["Deadline breached: OtherUser (X)",
                                                              "Deadline breached: Rui Almeida (Facebook)"]
        seen.append(_shown(page))
        assert [found for text in seen for found in _post_ids_or_agent_ids(text)] == []
        assert page.js("window.__violations") == []


def test_the_bulk_bar_picker_by_keyboard_offers_an_agent_only_their_teams_agents(inbox, served, browser):
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import store

    kim = signed_in_agent("kim@example.com", "Kim Care", "agent", ["default"])
    lee = signed_in_agent("lee@example.com", "Lee Sharp", "agent", ["default"])
    signed_in_agent("bob@example.com", "Bob Billing", "agent", ["billing"])
    ids = []
    for n in range(2):
        event = MessageEvent(channel="messenger", account_id="acct", platform_message_id=f"m-bulk-{n}",
                             thread_key=f"55{n}", contact=ContactRef(f"55{n}", f"Bulk Fan {n}"), direction="in",
                             sent_at_ms=int(time.time() * 1000) - 60_000 + n, text=f"Bulk {n}")
        ids.append(store.record_message(event)[1][0])
    page = browser
    _sign_in(served, page, kim["token"])
    page.wait_for(f"{ROWS}.length === 2")
    page.js(f"[...{ROWS}].forEach(r => r.closest('li').querySelector('.pick').click())")
    page.wait_for("document.getElementById('bulk-count').textContent === '2 selected'")
    page.page.locator("#bulk-assign").focus()
    page.page.keyboard.press("Enter")
    page.wait_for("document.activeElement.id === 'assign-q' && document.querySelectorAll('.assign-option').length === 2")
    names = "[...document.querySelectorAll('.assign-option .assign-name')].map(o => o.textContent)"
    assert page.js(names) == ["You (Kim Care)", "Lee Sharp"]  # never Bob: another team
    page.page.keyboard.type("bob")
    page.wait_for("document.getElementById('assign-note').textContent === 'Nobody in your teams matches “bob”.'")
    page.page.keyboard.press("Control+a")
    page.page.keyboard.type("sh")
    page.wait_for(f"JSON.stringify({names}) === JSON.stringify(['Lee Sharp'])")
    page.page.keyboard.press("Enter")
    page.wait_for("document.getElementById('bulk-note').textContent === 'Assign to Lee Sharp: 2 done.'")
    assert [store.get(i)["assignee"] for i in ids] == [lee["id"], lee["id"]]
    assert _post_ids_or_agent_ids(_shown(page)) == []
    assert page.js("window.__violations") == []


def test_an_agent_choosing_another_teams_agent_is_refused_with_the_reason_by_mouse(inbox, served, browser):
    """Kim works in two teams; Bob only in billing. Bob is offered (a teammate in billing), but this
    conversation is the default team's: the API refuses and the picker says why, in place."""
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import store

    kim = signed_in_agent("kim@example.com", "Kim Care", "agent", ["default", "billing"])
    bob = signed_in_agent("bob@example.com", "Bob Billing", "agent", ["billing"])
    event = MessageEvent(channel="messenger", account_id="acct", platform_message_id="m-refused", thread_key="5560",
                         contact=ContactRef("5560", "Ana Souza"), direction="in",
                         sent_at_ms=int(time.time() * 1000) - 60_000, text="Hello?")
    cid = store.record_message(event)[1][0]
    page = browser
    _sign_in(served, page, kim["token"])
    page.wait_for(f"[...{ROWS}].some(r => r.textContent.includes('Ana Souza'))")
    page.page.locator("#conversations .row", has_text="Ana Souza").click()
    page.wait_for("!document.getElementById('composer').hidden")
    page.page.locator("#act-assign").click()
    page.wait_for("[...document.querySelectorAll('.assign-option')].some(o => o.textContent.includes('Bob Billing'))")
    page.page.locator(".assign-option", has_text="Bob Billing").click()
    page.wait_for("document.getElementById('assign-note').textContent.startsWith("
                  "'Could not assign to Bob Billing: this agent is not in team default')")
    assert page.js("document.getElementById('assign-picker').hidden") is False
    assert store.get(cid).get("assignee") != bob["id"]  # (routing may have given it to Kim, online)
    assert _post_ids_or_agent_ids(_shown(page)) == []
