"""More of the agent workspace in headless Chromium (the harness of test_web_inbox): search,
canned replies, who else is viewing or typing, media through our own endpoint, bulk select,
empty and error states, badge contrast; and `make screenshots` (SCREENSHOTS_DIR set)."""
from __future__ import annotations

import base64
import json
import os
import struct
import time
import zlib
from typing import Any

import pytest

from tests.test_web_inbox import (PAGE_ID, XSS, _deliver, _Forward, _messaging, browser,  # noqa: F401
                                  needs_chromium, served)
from tests.test_workspace_browser import ROWS, _clean, _click_row, _open, _type

pytestmark = needs_chromium


def _call(inbox: Any, method: str, path: str, body: Any = None, token: str = "") -> Any:
    headers = {"Authorization": "Bearer " + (token or inbox.login_admin()), "Content-Type": "application/json"}
    with _Forward.lock:  # the app object serves one request at a time (the page's too)
        response = getattr(inbox.client.http, method)(path, headers=headers,
                                                      **({"body": json.dumps(body)} if body is not None else {}))
    assert response.status_code < 300, (path, response.status_code, response.body)
    return json.loads(response.body) if response.body else None


def _key(page: Any, key: str) -> None:
    page.js(f"document.dispatchEvent(new KeyboardEvent('keydown', {{key: {json.dumps(key)}, bubbles: true}}))")


def test_slash_focuses_search_and_a_result_opens_its_conversation(inbox, served, browser):
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("4001", now - 90_000, "m_s1", "My parcel never arrived"),
             _messaging("4002", now - 80_000, "m_s2", "Invoice question"),
             _messaging("4003", now - 70_000, "m_s3", "parcel <b>damaged</b> " + XSS))
    page = browser
    _open(inbox, served, page)
    page.wait_for(f"{ROWS}.length === 3")
    page.js("document.activeElement.blur()")
    _key(page, "/")
    assert page.js("document.activeElement.id") == "search"
    page.js("const s = document.getElementById('search'); s.value = 'parcel'; s.dispatchEvent(new Event('input'))")
    page.wait_for("document.querySelectorAll('#search-results .row').length === 2")
    assert page.js("document.getElementById('search-note').textContent") == "2 conversations found; Esc closes."
    assert page.js("document.querySelectorAll('#search-results b, #search-results img').length") == 0
    page.js("[...document.querySelectorAll('#search-results .row')].find(r => r.textContent.includes('damaged')).click()")
    page.wait_for("[...document.querySelectorAll('#messages .text')].some(t => t.textContent.includes('<b>damaged</b>'))")
    assert page.js("document.getElementById('search-results').hidden") is True
    assert page.js("location.hash").startswith("#c=")
    # nothing found, and a refused query, are said as such (the refusal as an error)
    page.js("const s = document.getElementById('search'); s.value = 'zebra'; s.dispatchEvent(new Event('input'))")
    page.wait_for("document.getElementById('search-note').textContent === 'No contact or message matches \"zebra\".'")
    page.js("const s = document.getElementById('search'); s.value = '!!'; s.dispatchEvent(new Event('input'))")
    page.wait_for("document.getElementById('search-note').classList.contains('error')")
    assert page.js("document.getElementById('search-note').textContent").startswith("Search failed: ")
    _clean(page)


def test_canned_replies_are_picked_with_slash_or_the_button_and_filled_for_the_contact(inbox, served, browser):
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("4101", now - 60_000, "m_c1", "Hello?"))
    _call(inbox, "post", "/api/canned-replies", {"shortcut": "thanks", "title": "Thank you",
                                                 "text": "Thanks {{contact.name}}, {{agent.name}} here.", "shared": True})
    _call(inbox, "post", "/api/canned-replies", {"shortcut": "hours", "title": "Opening <i>hours</i>",
                                                 "text": "We open at 9.", "shared": True})
    page = browser
    _open(inbox, served, page)
    _click_row(page, "Hello?")
    page.js("document.getElementById('draft').focus()")
    _type(page, "/tha")
    page.wait_for("!document.getElementById('canned').hidden")
    assert page.js("[...document.querySelectorAll('#canned [data-id]')].map(b => b.textContent)") == ["/thanks · Thank you"]
    page.js("document.getElementById('draft').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))")
    page.wait_for("document.getElementById('draft').value.startsWith('Thanks ')")
    assert page.js("document.getElementById('draft').value") == "Thanks Messenger user …4101, Admin here."
    assert page.js("document.getElementById('canned').hidden") is True
    assert page.js("document.querySelectorAll('#messages .msg.out').length") == 0  # inserted, not sent
    # the button lists all of them (titles stay text) and appends to what is written
    page.js("document.getElementById('canned-open').click()")
    page.wait_for("document.querySelectorAll('#canned [data-id]').length === 2")
    assert page.js("document.querySelectorAll('#canned i').length") == 0
    page.js("[...document.querySelectorAll('#canned [data-id]')].find(b => b.textContent.includes('hours')).click()")
    page.wait_for("document.getElementById('draft').value.endsWith('\\nWe open at 9.')")
    _clean(page)


def test_the_thread_says_who_else_is_viewing_or_typing_and_the_page_beats_while_open(inbox, served, browser):
    from chalicelib.api.auth import create_agent

    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("4201", now - 60_000, "m_v1", "Anyone there?"))
    create_agent("kim@example.com", "kim password 12345", "Kim", role="admin", agent_id="a_kim")
    kim = json.loads(inbox.client.http.post("/api/auth/login", body=json.dumps(
        {"email": "kim@example.com", "password": "kim password 12345"}),
        headers={"Content-Type": "application/json"}).body)["token"]
    conversation_id = inbox.conversations()[0]["id"]
    page = browser
    _open(inbox, served, page)
    _click_row(page, "Anyone there?")
    deadline = time.time() + 5
    while ("PUT", f"/api/conversations/{conversation_id}/viewing") not in served.requests and time.time() < deadline:
        time.sleep(0.05)
    # the page said it is viewing (not typing)
    viewers = _call(inbox, "get", f"/api/conversations/{conversation_id}/viewers", token=kim)
    assert [(v["name"], v["typing"]) for v in viewers["items"]] == [("Admin", False)]
    _call(inbox, "put", f"/api/conversations/{conversation_id}/viewing", {"typing": True}, token=kim)
    page.js("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for("document.getElementById('viewers').textContent === 'Kim is typing…'")
    _call(inbox, "put", f"/api/conversations/{conversation_id}/viewing", {"typing": False}, token=kim)
    # typing in the composer tells the others at once
    page.js("document.getElementById('draft').focus()")
    _type(page, "On it")
    page.wait_for("document.getElementById('viewers').textContent === 'Kim is also viewing'")
    viewers = _call(inbox, "get", f"/api/conversations/{conversation_id}/viewers", token=kim)
    assert viewers["typing"] == [inbox.get("/api/me")["id"]]
    assert ("PUT", f"/api/conversations/{conversation_id}/viewing") in served.requests
    _clean(page)


def _png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG: warm stripes over a cool gradient."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"".join(bytes((230, 120 + y % 40, 60) if (x // 24) % 2 else (40, 90 + y * 100 // height, 200))
                                         for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_images_show_inline_through_our_media_endpoint_and_files_download_from_it(inbox, served, browser):
    import responses

    cdn = "https://scontent.xx.fbcdn.net/v/t1/photo.png?sig=abc"
    doc = "https://scontent.xx.fbcdn.net/v/t1/terms.pdf?sig=def"
    clip = "https://video.xx.fbcdn.net/v/t2/clip.mp4?sig=ghi"
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("4301", now - 60_000, "m_p1", "See the photo", attachments=[
        {"type": "image", "payload": {"url": cdn}}, {"type": "file", "payload": {"url": doc}},
        {"type": "image", "payload": {"url": "https://example.invalid/not-a-platform.png"}},
        {"type": "video", "payload": {"url": clip}}, {"type": "fallback", "payload": {"url": "https://shop.example/p/1"}}]))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, cdn, body=_png(), content_type="image/png")
        mock.add(responses.GET, doc, body=b"%PDF-1.4 fake", content_type="application/pdf")
        mock.add(responses.GET, clip, body=b"\x00\x00\x00\x18ftypmp42 fake", content_type="video/mp4")
        page = browser
        _open(inbox, served, page)
        _click_row(page, "See the photo")
        page.wait_for("!!document.querySelector('#messages img.media') && document.querySelector('#messages img.media').complete")
        shown = page.js("const i = document.querySelector('#messages img.media'); [i.src.slice(0, 5), i.naturalWidth, i.alt]")
        assert shown == ["blob:", 2, "image"]
        assert page.js("document.querySelectorAll('#messages img').length") == 1  # not the off-platform one
        page.wait_for("!!document.querySelector('#messages video.media')")
        assert page.js("const v = document.querySelector('#messages video.media'); [v.src.slice(0, 5), v.controls]") == ["blob:", True]
        page.wait_for("document.querySelector('#messages .gone').textContent === ' (no longer available)'")
        assert page.js("document.querySelectorAll('#messages .save').length") == 1  # the file, not the link preview
        page.js("document.querySelector('#messages .save').click()")
        page.wait_for("document.querySelectorAll('#messages .save').length === 1")
        time.sleep(0.3)
    media = [p for m, p in served.requests if p.startswith("/api/media/")]
    assert sorted(p.rsplit("/", 1)[1] for p in media) == ["0", "1", "2", "3"]  # only ever our own endpoint
    # every link is http(s); the page loaded nothing from another origin
    assert page.js("[...document.querySelectorAll('#messages a')].every(a => /^https?:/.test(a.href))")
    assert page.js("performance.getEntriesByType('resource').every(r => r.name.startsWith(location.origin))")
    _clean(page)


def test_bulk_select_resolves_assigns_and_tags_and_shows_per_id_failures(inbox, served, browser):
    from chalicelib.models import Conversation

    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, *[_messaging(str(4400 + n), now - 60_000 + n, f"m_b{n}", f"Bulk {n}") for n in range(3)])
    page = browser
    _open(inbox, served, page)
    page.wait_for(f"{ROWS}.length === 3")

    def check(*texts: str) -> None:
        for text in texts:
            page.js(f"const li = [...document.querySelectorAll('#conversations li')].find(l => l.textContent.includes({json.dumps(text)}));"
                    "li.querySelector('.pick').click()")

    check("Bulk 0", "Bulk 1")
    assert page.js("document.getElementById('bulk-count').textContent") == "2 selected"
    assert page.js("document.getElementById('bulk').hidden") is False
    page.js("document.getElementById('bulk-tag').value = 'vip'; document.getElementById('bulk-tagit').click()")
    page.wait_for("document.getElementById('bulk-note').textContent === 'Tag #vip: 2 done.'")
    assert sorted(c["last_message_preview"] for c in inbox.conversations() if "vip" in c["tags"]) == ["Bulk 0", "Bulk 1"]
    page.wait_for("[...document.querySelectorAll('#conversations .tagb')].length === 2")
    assert page.js("document.getElementById('bulk-count').textContent") == "0 selected"

    # one of the two vanishes meanwhile: the other is resolved, the failure is named and stays selected
    check("Bulk 1", "Bulk 2")
    gone = next(c["id"] for c in inbox.conversations() if c["last_message_preview"] == "Bulk 2")
    Conversation.get(gone).delete()
    page.js("document.getElementById('bulk-resolve').click()")
    page.wait_for("document.getElementById('bulk-note').textContent.startsWith('Resolve: 1 done, 1 failed')")
    assert page.js("[...document.querySelectorAll('#bulk-note li.error')].map(l => l.textContent)")[1] \
        .startswith("Messenger user …4402: ")
    assert page.js("document.getElementById('bulk-count').textContent") == "1 selected"
    page.wait_for(f"![...{ROWS}].some(r => r.textContent.includes('Bulk 1'))")  # resolved: out of the open view
    assert [c["status"] for c in inbox.conversations(status="resolved")] == ["resolved"]
    page.js("document.getElementById('bulk-clear').click()")
    assert page.js("document.getElementById('bulk').hidden") is True
    _click_row(page, "Bulk 0")  # x selects the open conversation
    page.js("document.activeElement.blur()")
    _key(page, "x")
    assert page.js("[...document.querySelectorAll('#conversations .pick')].filter(p => p.checked).length") == 1
    page.js("document.getElementById('bulk-assign').click()")
    page.wait_for("document.querySelectorAll('.assign-option').length > 0")
    page.js("document.querySelector('.assign-option').click()")  # you, first
    page.wait_for("document.getElementById('bulk-note').textContent === 'Assign to You: 1 done.'")
    assert page.js("document.getElementById('assign-picker').hidden") is True
    page.wait_for("document.querySelector('[data-count=mine]').textContent === '1'")
    _clean(page)


def _contrast(rgb_a: str, rgb_b: str) -> float:
    def lum(rgb: str) -> float:
        channels = [int(v) / 255 for v in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    high, low = sorted((lum(rgb_a), lum(rgb_b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_empty_inbox_says_how_to_get_demo_traffic_errors_stand_out_and_badges_meet_aa(inbox, served, browser,
                                                                                    monkeypatch):
    from chalicelib.api import views

    page = browser
    _open(inbox, served, page)
    page.js("document.querySelector('[data-view=all]').click()")
    page.wait_for("document.getElementById('list-note').textContent.includes('make demo')")
    assert page.js("document.getElementById('list-note').textContent") == \
        "No conversations yet. On a local stack, run `make demo` (or start with `make run DEMO=1`) to send demo traffic."
    loading = page.js("const n = document.getElementById('list-note'); n.textContent = 'Loading…';"
                      "[getComputedStyle(n).color, getComputedStyle(n).borderTopStyle]")

    # the API fails: the note turns into a visible error that says what happens next
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("down")

    monkeypatch.setattr(views, "list_conversations", boom)
    page.js("document.querySelector('[data-view=team]').click()")
    page.wait_for("document.getElementById('list-note').classList.contains('error')")
    error = page.js("const n = document.getElementById('list-note'); [n.textContent, getComputedStyle(n).color,"
                    "getComputedStyle(n).borderTopStyle, getComputedStyle(n, '::before').content]")
    assert error[0].endswith("Retrying every few seconds.") and error[3] == '"⚠ "'
    assert error[1] != loading[0] and error[2] == "solid" and loading[1] == "none"
    monkeypatch.undo()
    page.wait_for("!document.getElementById('list-note').classList.contains('error')", timeout=8)

    # every channel badge meets WCAG AA (4.5:1 at 11px) on a row, a selected row, light and dark
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("4501", now - 60_000, "m_e1", "Badge row"))
    _click_row(page, "Badge row")
    for scheme in ("light", "dark"):
        page.send("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}])
        found = page.js(
            "const row = [...document.querySelectorAll('#conversations .row')].find(r => r.textContent.includes('Badge row'));"
            "const b = row.querySelector('.ch');"
            "const out = []; for (const ch of ['messenger','instagram','whatsapp','facebook','x','telegram','linkedin']) {"
            " b.className = 'badge ch ch-' + ch; for (const sel of [true, false]) { row.classList.toggle('selected', sel);"
            " let bg = 'rgba(0, 0, 0, 0)', n = row; while (bg === 'rgba(0, 0, 0, 0)' && n) { bg = getComputedStyle(n).backgroundColor; n = n.parentElement; }"
            " out.push([ch, sel, getComputedStyle(b).color, bg]); } } out")
        for channel, selected, color, background in found:
            assert _contrast(color, background) >= 4.5, (scheme, channel, selected, color, background)
    _clean(page)


SCREENSHOTS_DIR = os.environ.get("SCREENSHOTS_DIR")


@pytest.mark.skipif(not SCREENSHOTS_DIR, reason="`make screenshots` sets SCREENSHOTS_DIR")
def test_screenshots(inbox, served, browser):
    """The main screens as PNGs (make screenshots): loopback server, Debian's chromium, seeded data."""
    import responses

    from chalicelib.models import Conversation
    from tests.test_workspace_browser import _set_deadline

    os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
    page = browser

    def shot(name: str) -> None:
        time.sleep(0.4)  # let the last render settle
        data = page.send("Page.captureScreenshot", format="png")["data"]
        with open(os.path.join(SCREENSHOTS_DIR, name + ".png"), "wb") as handle:
            handle.write(base64.b64decode(data))

    page.send("Page.navigate", url=served)
    inbox.login_admin()
    page.wait_for("!document.getElementById('login').hidden")
    shot("login")

    now = int(time.time() * 1000)
    cdn = "https://scontent.xx.fbcdn.net/v/t1/receipt.png?sig=abc"
    inbox.add_account("messenger", PAGE_ID)
    texts = ["Where is my order #4411? It was due Monday.", "Can I change the delivery address?",
             "The parcel arrived damaged, see the photo", "Do you ship to Norway?", "Thanks, all sorted!"]
    _deliver(inbox, *[_messaging(str(7000 + n), now - (50 - n * 9) * 60_000, f"m_shot{n}", t) for n, t in enumerate(texts)])
    _deliver(inbox, _messaging("7002", now - 9 * 60_000, "m_shot_img", None,
                               attachments=[{"type": "image", "payload": {"url": cdn}}]))
    ids = {c["contact"]["platform_id"]: c["id"] for c in inbox.conversations()}
    names = {"7000": "Ana Souza", "7001": "Kim Lee", "7002": "Jonas Berg", "7003": "Ola Nordmann", "7004": "Mia Chen"}
    from chalicelib.models import Contact

    for platform_id, name in names.items():  # as the profile lookup leaves them: on the contact and its conversation
        conversation = Conversation.get(ids[platform_id])
        conversation.update(actions=[Conversation.contact_name.set(name)])
        Contact(conversation.contact_id).update(actions=[Contact.display_name.set(name)])
    _set_deadline(ids["7000"], now - 5 * 60_000, now - 20 * 60_000)
    _set_deadline(ids["7001"], now + 12 * 60_000, now - 60_000)
    _set_deadline(ids["7002"], now + 50 * 60_000, now + 30 * 60_000)
    _call(inbox, "patch", f"/api/conversations/{ids['7001']}", {"priority": "high", "tags": ["billing"]})
    from tests.helpers import signed_in_agent

    kim = signed_in_agent("kim@example.com", "Kim Care", "agent", ["default"])
    signed_in_agent("lee@example.com", "Lee Sharp", "supervisor", ["default", "billing"])
    _call(inbox, "patch", f"/api/conversations/{ids['7004']}", {"assignee": kim["id"]})
    _call(inbox, "post", "/api/canned-replies", {"shortcut": "sorry", "title": "Sorry for the trouble",
                                                 "text": "Sorry about that, {{contact.name}}. {{agent.name}} here.",
                                                 "shared": True})
    _call(inbox, "post", "/api/canned-replies", {"shortcut": "track", "title": "Tracking link",
                                                 "text": "Your tracking link: https://track.example/4411",
                                                 "shared": True})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, cdn, body=_png(320, 180), content_type="image/png")
        _open(inbox, served, page)
        page.wait_for(f"{ROWS}.length === 5")
        _click_row(page, "Jonas Berg")
        _call(inbox, "post", f"/api/conversations/{ids['7002']}/messages",
              {"text": "So sorry! A replacement is on its way.", "kind": "reply", "client_id": "shot-1"})
        _call(inbox, "post", f"/api/conversations/{ids['7002']}/messages",
              {"text": "Refund approved by finance, ticket FIN-221", "kind": "note", "client_id": "shot-2"})
        page.wait_for("document.querySelectorAll('#messages .msg').length >= 4 && !!document.querySelector('#messages img.media')")
        shot("inbox")
    page.js("const s = document.getElementById('search'); s.value = 'parcel'; s.dispatchEvent(new Event('input'))")
    page.wait_for("document.querySelectorAll('#search-results .row').length > 0")
    shot("search")
    page.js("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input'))")
    page.js("document.getElementById('draft').focus()")
    _type(page, "/")
    page.wait_for("document.querySelectorAll('#canned [data-id]').length === 2")
    shot("canned-replies")
    _type(page, "")
    page.js("document.getElementById('canned').hidden = true")
    page.js("document.getElementById('act-assign').click()")
    page.wait_for("document.querySelectorAll('.assign-option').length === 3")
    page.page.keyboard.press("ArrowDown")
    shot("assign-picker")
    page.page.keyboard.press("Escape")
    for text in ("Norway", "address"):
        page.js(f"[...document.querySelectorAll('#conversations li')].find(l => l.textContent.includes('{text}'))"
                ".querySelector('.pick').click()")
    page.js("document.getElementById('bulk-tag').value = 'follow-up'; document.getElementById('bulk-tagit').click()")
    page.wait_for("document.getElementById('bulk-note').textContent.startsWith('Tag #follow-up')")
    shot("bulk")
    page.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
    page.js("document.querySelector('#thread .back').click()")
    shot("phone-list")
    _click_row(page, "Where is my order")
    shot("phone-thread")
