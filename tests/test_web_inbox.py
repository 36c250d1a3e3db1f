"""The agents' web inbox (GET /): how the page and its assets are served, and what the page does
with untrusted text. The last tests drive a real headless Chromium (skipped when it is absent)."""
from __future__ import annotations

import json
import os
import re
import time
from html.parser import HTMLParser
from typing import Any, Dict, List, Optional, Tuple

import pytest

from chalicelib.web.routes import compact
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD

PAGE_ID = "1234567890"
XSS = "<img src=x onerror=alert(1)>"
STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chalicelib", "web", "static")


def csp_directives(header: str) -> Dict[str, List[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: List[Tuple[str, Dict[str, Optional[str]]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def parsed_page(inbox: Any) -> _PageParser:
    parser = _PageParser()
    parser.feed(inbox.client.http.get("/").body.decode("utf-8"))
    return parser


def asset_urls(inbox: Any) -> List[str]:
    page = parsed_page(inbox)
    return ["/" + (attrs.get("src") or attrs.get("href") or "") for tag, attrs in page.tags
            if (tag == "script" and attrs.get("src")) or (tag == "link" and attrs.get("href"))]


# --- serving ---------------------------------------------------------------------------------------


def test_the_page_is_served_at_the_root_with_a_strict_content_security_policy(inbox):
    response = inbox.client.http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    csp = response.headers["Content-Security-Policy"]
    directives = csp_directives(csp)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["require-trusted-types-for"] == ["'script'"]
    assert "unsafe" not in csp and "data:" not in csp and "*" not in csp


def test_the_page_has_no_inline_script_style_or_event_handler(inbox):
    page = parsed_page(inbox)
    assert page.script_text.strip() == ""
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    assert not [tag for tag, _ in page.tags if tag == "style"]
    for tag, attrs in page.tags:
        assert not [name for name in attrs if name.startswith("on") or name == "style"], (tag, attrs)
        for name in ("src", "href", "action"):
            if attrs.get(name) and (tag, attrs.get("id")) != ("a", "admin-link"):  # the one page link: /admin
                assert re.fullmatch(r"static/[a-z]+\.(js|css|svg)\?v=[0-9a-f]{12}", attrs[name]), attrs[name]
    assert [attrs["href"] for tag, attrs in page.tags if tag == "a" and attrs.get("id") == "admin-link"] == ["admin"]


def test_assets_have_their_content_types_and_versioned_urls_are_cached_for_a_year(inbox):
    urls = asset_urls(inbox)
    expected = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    assert sorted(os.path.splitext(url.split("?")[0])[1] for url in urls) == [".css"] + [".js"] * 5 + [".svg"]
    for url in urls:
        response = inbox.client.http.get(url)
        assert response.status_code == 200, url
        assert response.headers["Content-Type"] == expected[os.path.splitext(url.split("?")[0])[1]]
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in response.headers
        name = url.split("?")[0].rsplit("/", 1)[1]
        with open(os.path.join(STATIC_DIR, name), encoding="utf-8") as handle:
            assert response.body == compact(name, handle.read()).encode("utf-8")


def test_the_script_is_sent_without_indentation_or_comments_but_line_for_line_the_same_code():
    with open(os.path.join(STATIC_DIR, "app.js"), encoding="utf-8") as handle:
        source = handle.read()
    sent = compact("app.js", source)
    assert len(sent) < 0.9 * len(source)
    code = [line.strip() for line in source.split("\n") if line.strip() and not line.strip().startswith("//")]
    header_end = next(i for i, line in enumerate(code) if line.endswith("*/"))
    assert sent.split("\n")[:-1] == code[header_end + 1:]  # only whole-line comments and blanks are gone
    assert "`" not in sent.replace("`make demo`", "").replace("`make run DEMO=1`", "")  # no multi-line literal
    assert compact("app.css", "a {\n  b: c }") == "a {\n  b: c }"  # other assets go out as they are


def test_unversioned_assets_are_revalidated_with_an_etag(inbox):
    for url in ("/static/app.js", "/static/app.css?v=000000000000"):
        response = inbox.client.http.get(url)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"
        etag = response.headers["ETag"]
        again = inbox.client.http.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.body == b""
        assert inbox.client.http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    page = inbox.client.http.get("/")
    assert inbox.client.http.get("/", headers={"If-None-Match": page.headers["ETag"]}).status_code == 304


def test_head_requests_get_the_headers_only(inbox):
    response = inbox.client.http.head("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.body == b""


def test_only_the_listed_assets_are_served(inbox):
    for name in ("routes.py", "__init__.py", "index.html", "app.js.map", "..%2Froutes.py", "%2e%2e", "APP.JS"):
        response = inbox.client.http.get("/static/" + name)
        assert response.status_code in (403, 404), name
        assert b"import" not in response.body


def test_the_assets_stay_small(inbox):
    """The budget is what the page costs to send: the page and its assets as served (the script
    without indentation and comments), and gzipped (a gateway or CDN that compresses)."""
    import gzip

    bodies = [inbox.client.http.get(url).body for url in ["/"] + asset_urls(inbox)]
    assert len(bodies) == 8
    assert sorted(os.listdir(STATIC_DIR)) == ["app.css", "app.js", "attach.js", "icon.svg", "index.html", "listening.js",
                                              "picker.js", "templates.js"]
    sent = sum(len(body) for body in bodies)
    # the whole workspace as sent: the raw size bounds parse work (small either way); the gzipped
    # size below is what an agent's phone downloads and is the budget that bites. Raised from
    # 88 / 24 KiB for: the assign picker (picker.js and its styles: ~10 KiB raw, ~3 KiB gzipped), the
    # Listening view (listening.js: ~5 / 2 KiB), the WhatsApp template picker (templates.js: ~6 / 2
    # KiB) and files out (attach.js: ~4 / 1.5 KiB), each a module of its own; then 34 -> 35 KiB
    # gzipped for files out on five channels with the server's per-channel rules and a check of the
    # file's first bytes before upload (attach.js: ~+0.8 KiB) and customer pictures and follower
    # counts (app.js: ~+0.3 KiB);
    # 35 -> 36 KiB (114 -> 118 KiB raw) for live updates (the socket, its fallback to polling and
    # reconnects: ~0.8 KiB gzipped)
    assert sent < 118 * 1024, sent
    wire = sum(len(gzip.compress(body)) for body in bodies)
    assert wire < 36 * 1024, wire


@pytest.mark.parametrize("name", ["app.js", "listening.js", "picker.js", "templates.js", "attach.js"])
def test_the_script_never_turns_strings_into_markup_or_code(name):
    with open(os.path.join(STATIC_DIR, name), encoding="utf-8") as handle:
        script = handle.read()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(",
                 "srcdoc", "createContextualFragment", "DOMParser", "parseFromString", "javascript:",
                 "setAttribute('on", 'setAttribute("on', "localStorage"):
        assert sink not in script, sink
    assert not re.search(r"set(Timeout|Interval)\(\s*['\"`]", script)
    # which links reach the page is checked on the rendered page (every anchor of the thread after
    # hostile content: test_the_browser_renders_untrusted_text_as_text_and_keeps_the_view_on_refresh)


def test_untrusted_text_reaches_the_page_as_json_data_verbatim(inbox):
    inbox.add_account("messenger", PAGE_ID)
    body = {"object": "page", "entry": [{"id": PAGE_ID, "time": 1700000000000, "messaging": [
        {"sender": {"id": "5678"}, "recipient": {"id": PAGE_ID}, "timestamp": 1700000000000,
         "message": {"mid": "m_xss", "text": XSS, "attachments": [
             {"type": "file", "payload": {"url": "javascript:alert(1)"}}]}}]}]}
    assert inbox.post_meta(body).status_code == 200
    assert inbox.process() == 1
    listing = inbox.client.http.get("/api/conversations", headers={"Authorization": "Bearer " + inbox.login_admin()})
    assert b"&lt;" not in listing.body
    [conversation] = json.loads(listing.body)["items"]
    assert conversation["last_message_preview"] == XSS
    thread = inbox.client.http.get(f"/api/conversations/{conversation['id']}/messages",
                                   headers={"Authorization": "Bearer " + inbox.login_admin()})
    assert XSS.encode() in thread.body  # JSON data, not HTML-escaped text
    [message] = json.loads(thread.body)["items"]
    assert message["text"] == XSS
    assert message["attachments"] == [{"type": "file", "url": "javascript:alert(1)"}]


# --- a real browser ------------------------------------------------------------------------------------

# The harness (Playwright driving Debian's chromium, the loopback server) lives in tests/browser.py;
# the names stay importable from here for the tests that import them from this module.
from tests.browser import CHROMIUM, Chromium, Served, _Forward, browser, needs_chromium, served  # noqa: E402,F401


def _messaging(sender: str, at: int, mid: str, text: Optional[str] = None, echo: bool = False,
               **extra: Any) -> Dict[str, Any]:
    message: Dict[str, Any] = {"mid": mid, **extra}
    if text is not None:
        message["text"] = text
    if echo:
        message["is_echo"] = True
        return {"sender": {"id": PAGE_ID}, "recipient": {"id": sender}, "timestamp": at, "message": message}
    return {"sender": {"id": sender}, "recipient": {"id": PAGE_ID}, "timestamp": at, "message": message}


def _deliver(inbox: Any, *items: Dict[str, Any]) -> None:
    body = {"object": "page", "entry": [{"id": PAGE_ID, "time": int(time.time() * 1000), "messaging": list(items)}]}
    assert inbox.post_meta(body).status_code == 200
    inbox.process()


MORE = "One more <u>thing</u> javascript:window.__pwned=5 data:text/html,<b>x</b> https://example.com/x?a=1"


def _seed_thread(inbox: Any, now: int) -> None:
    from chalicelib.channels.base import StatusEvent
    from chalicelib.ingest.pipeline import handle

    inbox.add_account("messenger", PAGE_ID)
    _deliver(
        inbox,
        _messaging("5678", now - 20 * 60_000, "m_xss", XSS),
        _messaging("5678", now - 19 * 60_000, "m_script", "<script>window.__pwned=2</script><b>bold</b>", attachments=[
            {"type": "image", "payload": {"url": "https://example.invalid/receipt.jpg"}},
            {"type": "file", "payload": {"url": "javascript:window.__pwned=3"}},
            {"type": "file", "payload": {"url": " javascript:window.__pwned=4"}},
            {"type": "file", "payload": {"url": "data:text/html,<script>alert(1)</script>"}}]),
        _messaging("5678", now - 18 * 60_000, "m_edit", "Original <i>text</i>"),
        _messaging("5678", now - 17 * 60_000, "m_gone", "Never mind", is_deleted=True),
        _messaging("9999", now - 20 * 60_000 - 30_000, "m_other", "Plain question"),
    )
    _deliver(inbox, {"sender": {"id": "5678"}, "recipient": {"id": PAGE_ID}, "timestamp": now - 16 * 60_000,
                     "message_edit": {"mid": "m_edit", "text": "Edited text", "num_edit": 1}})
    _deliver(inbox, _messaging("5678", now - 10 * 60_000, "m_out", "We're on it", echo=True))
    # Messenger reports no failed sends by webhook: the receipt goes in through the pipeline's entry.
    assert handle(StatusEvent("messenger", PAGE_ID, "m_out", "failed", now - 9 * 60_000,
                              '{"title": "<b>blocked</b>"}')).startswith("status")
    _deliver(inbox, _messaging("5678", now - 5 * 60_000, "m_last", "Hello again?"))


@needs_chromium
def test_the_browser_renders_untrusted_text_as_text_and_keeps_the_view_on_refresh(inbox, served, browser):
    now = int(time.time() * 1000)
    _seed_thread(inbox, now)
    inbox.login_admin()  # creates the admin agent
    page = browser
    page.send("Page.navigate", url=served)
    page.wait_for("!document.getElementById('login').hidden")
    page.js(f"document.getElementById('email').value = {json.dumps(ADMIN_EMAIL)};"
            f"document.getElementById('password').value = {json.dumps(ADMIN_PASSWORD)};"
            "document.getElementById('login-form').requestSubmit()")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 2")
    assert page.js("sessionStorage.getItem('socialinbox.token')")
    rows = page.js("[...document.querySelectorAll('#conversations .row')].map(r => ["
                   "r.querySelector('.name').textContent, r.querySelector('.ch').textContent,"
                   "r.querySelector('.preview').textContent, r.querySelector('time').textContent,"
                   "(r.querySelector('.unread') || {}).textContent || '', r.querySelector('.sla').className,"
                   "r.querySelector('.sla').textContent])")
    names = [row[0] for row in rows]
    assert names == ["Messenger user …9999", "Messenger user …5678"]  # the next deadline first
    by_name = {row[0]: row for row in rows}
    assert by_name["Messenger user …5678"][1:6] == ["Messenger", "Hello again?", "5 min ago", "5",
                                                    "badge sla sla-ok"]
    assert re.fullmatch(r"(9m [0-5]\d|10m 00)s left", by_name["Messenger user …5678"][6])
    assert by_name["Messenger user …9999"][1:6] == ["Messenger", "Plain question", "21 min ago", "1",
                                                    "badge sla sla-breached"]
    assert re.fullmatch(r"Overdue 5m [0-5]\ds", by_name["Messenger user …9999"][6])

    page.js("[...document.querySelectorAll('#conversations .row')].find(r => r.textContent.includes('5678')).click()")
    page.wait_for("document.querySelectorAll('#messages .msg').length === 6")
    assert page.js("const m = document.getElementById('messages');"
                   "m.scrollHeight - m.scrollTop - m.clientHeight < 2")  # opened at the newest message
    texts = page.js("[...document.querySelectorAll('#messages .msg .text')].map(t => t.textContent)")
    assert texts == [XSS, "<script>window.__pwned=2</script><b>bold</b>", "Edited text", "Never mind", "We're on it",
                     "Hello again?"]
    assert page.js("[...document.querySelectorAll('#messages .msg')].map(m => m.className)") == [
        "msg in", "msg in", "msg in", "msg in removed", "msg out failed", "msg in"]
    assert page.js("document.querySelectorAll('#messages img, #messages script, #messages b, #messages i').length") == 0
    assert page.js("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.js("document.querySelector('#messages .removed del.text').textContent") == "Never mind"
    links = page.js("[...document.querySelectorAll('#messages a')].map(a => [a.href, a.target, a.rel, a.textContent])")
    assert links == [["https://example.invalid/receipt.jpg", "_blank", "noopener noreferrer", "image"]]
    assert page.js("[...document.querySelectorAll('#messages .attachments .label')].map(l => l.textContent)") == [
        "file", "file", "file"]
    # the edit history is on the page, not only in a tooltip
    assert page.js("[...document.querySelectorAll('#messages .history li')].map(l => l.textContent)") == [
        "Original <i>text</i>"]
    assert page.js("document.querySelector('#messages .history').offsetHeight") > 0
    assert page.js("document.querySelector('#messages .d-failed').textContent") == "✕ failed"
    assert page.js("document.querySelector('#messages .delivery-error').textContent") == \
        'Not delivered: {"title": "<b>blocked</b>"}'
    # opening the thread clears its unread count, in the list and in the API
    page.wait_for("!document.querySelector('#conversations .row.selected .unread')")
    assert [c["unread_count"] for c in inbox.conversations() if c["contact"]["platform_id"] == "5678"] == [0]
    assert page.js("document.querySelector('#thread-head h2').textContent") == "Messenger user …5678"
    selected = page.js("document.querySelector('#conversations .row.selected').dataset.id")
    assert page.js("location.hash") == "#c=" + selected

    # auto-refresh (here triggered by the tab becoming visible): new data, same selection and scroll
    page.send("Emulation.setDeviceMetricsOverride", width=1200, height=420, deviceScaleFactor=1, mobile=False)
    page.wait_for("const m = document.getElementById('messages'); m.scrollHeight > m.clientHeight + 100")
    page.js("const m = document.getElementById('messages'); m.scrollTop = 0")
    _deliver(inbox, _messaging("5678", int(time.time() * 1000), "m_new", MORE))
    page.js("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for("document.querySelectorAll('#messages .msg').length === 7")
    assert page.js("[...document.querySelectorAll('#messages .text')].pop().textContent") == MORE
    assert page.js("document.querySelector('#conversations .row.selected').dataset.id") == selected
    assert page.js("document.querySelector('#conversations .row.selected .preview').textContent") == MORE
    assert page.js("document.getElementById('messages').scrollTop") == 0
    # every link on the rendered page, after all that hostile content: http(s) only, or our own blob:
    anchors = page.js("[...document.querySelectorAll('a[href], [href]')].map(a => [a.tagName, a.href || "
                      "a.getAttribute('href'), a.closest('#messages') !== null])")
    origin = served.rstrip("/")
    assert ["A", "https://example.com/x?a=1", True] in anchors and ["A", "https://example.invalid/receipt.jpg",
                                                                    True] in anchors
    for tag, href, _ in anchors:
        assert re.match(r"https?://[^/]", href) or href.startswith("blob:" + origin + "/") \
            or (tag == "LINK" and href.startswith(origin + "/static/")), (tag, href)

    assert page.js("window.__pwned") is None
    assert page.js("window.__violations") == []
    assert not [e for e in page.events if e.get("method") == "Page.javascriptDialogOpening"]


@needs_chromium
def test_the_browser_filters_pages_and_returns_to_login_on_401(inbox, served, browser):
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, *[_messaging(str(7000 + n), now - n * 1000, f"m_{n}", f"Message {n}") for n in range(27)])
    inbox.login_admin()
    page = browser
    page.send("Page.navigate", url=served)
    page.wait_for("!document.getElementById('login').hidden")
    page.js("document.getElementById('email').value = 'admin@example.com';"
            "document.getElementById('password').value = 'wrong password';"
            "document.getElementById('login-form').requestSubmit()")
    page.wait_for("document.getElementById('login-error').textContent === 'Wrong email or password.'")
    page.js(f"document.getElementById('password').value = {json.dumps(ADMIN_PASSWORD)};"
            "document.getElementById('login-form').requestSubmit()")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 25")
    assert page.js("document.getElementById('more').hidden") is False
    page.js("document.getElementById('more').click()")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 27")
    assert page.js("document.getElementById('more').hidden") is True
    previews = page.js("[...document.querySelectorAll('#conversations .preview')].map(p => p.textContent)")
    assert previews == [f"Message {n}" for n in reversed(range(27))]  # the oldest unanswered is due first
    assert page.js("document.querySelector('[data-view=team]').getAttribute('aria-selected')") == "true"
    page.wait_for("document.querySelector('[data-count=team]').textContent === '27'")
    assert page.js("document.querySelector('[data-count=unassigned]').textContent") == "27"
    assert page.js("document.querySelector('[data-count=mine]').textContent") == "0"

    page.js("const s = document.getElementById('status'); s.value = 'resolved'; s.dispatchEvent(new Event('change'))")
    page.wait_for("document.getElementById('list-note').textContent.startsWith('Nothing here.')")
    assert page.js("document.querySelectorAll('#conversations .row').length") == 0
    page.js("const s = document.getElementById('status'); s.value = 'open'; s.dispatchEvent(new Event('change'))")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 25")
    page.js("const s = document.getElementById('sort'); s.value = 'recent'; s.dispatchEvent(new Event('change'))")
    page.wait_for("document.querySelector('#conversations .preview').textContent === 'Message 0'")
    # filters work together: a channel with nothing in it, then back
    page.js("const c = document.getElementById('channel'); c.value = 'telegram'; c.dispatchEvent(new Event('change'))")
    page.wait_for("document.getElementById('list-note').textContent.startsWith('Nothing here.')")
    page.js("const c = document.getElementById('channel'); c.value = ''; c.dispatchEvent(new Event('change'))")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 25")
    page.js("document.querySelector('[data-view=mine]').click()")
    page.wait_for("document.getElementById('list-note').textContent.startsWith('Nothing here.')")
    # An agent's own queue is ordered by reply deadline: the sort control says so.
    assert page.js("document.getElementById('sort').value === 'due' && document.getElementById('sort').disabled")
    page.js("document.querySelector('[data-view=all]').click()")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 27")  # every status, one list

    page.js("document.getElementById('logout').click()")
    assert page.js("!document.getElementById('login').hidden && document.getElementById('app').hidden")
    assert page.js("sessionStorage.getItem('socialinbox.token')") is None

    page.js("sessionStorage.setItem('socialinbox.token', 'not-a-valid-token')")
    page.send("Page.reload")
    page.wait_for("document.getElementById('login-error').textContent.includes('session has ended')")
    assert page.js("document.getElementById('app').hidden") is True
    assert page.js("sessionStorage.getItem('socialinbox.token')") is None
    assert page.js("window.__violations") == []


# --- the agent workspace's contact panel, messaging window, deep links and idle cost --------------


def _sign_in_form(page: Any) -> None:
    page.wait_for("!document.getElementById('login').hidden")
    page.js(f"document.getElementById('email').value = {json.dumps(ADMIN_EMAIL)};"
            f"document.getElementById('password').value = {json.dumps(ADMIN_PASSWORD)};"
            "document.getElementById('login-form').requestSubmit()")


def _signed_in(inbox: Any, served: Any, page: Any) -> None:
    inbox.login_admin()  # creates the admin agent
    page.send("Page.navigate", url=served)
    _sign_in_form(page)
    page.wait_for("!document.getElementById('app').hidden")


def _whatsapp(inbox: Any, wa_id: str, name: str, seconds: int, text: str) -> None:
    from tests.helpers import whatsapp_delivery

    assert inbox.post_meta(whatsapp_delivery(f"wamid.{wa_id}.{seconds}", wa_id, seconds, text,
                                             name=name)).status_code == 200
    inbox.process()


@needs_chromium
def test_the_contact_panel_shows_identities_history_and_notes_and_the_composer_the_window(inbox, served, browser):
    from tests.helpers import PHONE

    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    inbox.add_account("whatsapp", PHONE)
    _deliver(inbox, _messaging("5678", now - 60_000, "m_ana", "Where is my order?"))
    _whatsapp(inbox, "5511999990000", "Ana Lima", now // 1000 - 30 * 3600, "Hello from WhatsApp")
    page = browser
    _signed_in(inbox, served, page)
    page.js("document.querySelector('[data-view=all]').click()")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 2")
    page.js("[...document.querySelectorAll('#conversations .row')].find(r => r.textContent.includes('order')).click()")
    page.wait_for("!document.getElementById('contact').hidden && document.querySelectorAll('#history li').length === 1")
    assert page.js("[...document.querySelectorAll('#identities li')].map(l => l.textContent)") == [
        "Messenger ID 5678"]
    window = page.js("document.getElementById('window').textContent")
    assert re.fullmatch(r"Reply window open: 23h 5\dm left, then only with the HUMAN_AGENT tag\.", window), window
    assert page.js("document.getElementById('window').className") == "window"

    # a private note about the person: hostile text stays text; its author edits it
    page.js(f"document.getElementById('note-text').value = {json.dumps(XSS)};"
            "document.getElementById('note-form').requestSubmit()")
    page.wait_for(f"document.querySelector('#contact-notes .cnote .text')?.textContent === {json.dumps(XSS)}")
    assert page.js("document.querySelectorAll('#contact img').length") == 0
    page.js("document.querySelector('#contact-notes [data-edit]').click()")
    page.js("const t = document.querySelector('#contact-notes textarea'); t.value = 'VIP, ships to Lisbon';"
            "t.nextElementSibling.click()")
    page.wait_for("document.querySelector('#contact-notes .cnote .text')?.textContent === 'VIP, ships to Lisbon'")
    assert page.js("document.querySelector('#contact-notes .meta').textContent").startswith("Admin · ")

    # the same person on WhatsApp: found by name, linked; the history spans both channels
    page.js("document.getElementById('link-q').value = 'Ana'; document.getElementById('link-form').requestSubmit()")
    page.wait_for("document.querySelector('#link-results [data-link]')")
    assert page.js("document.querySelector('#link-results').textContent") == "WhatsApp Same person: Ana Lima (@+5511999990000)"
    page.js("document.querySelector('#link-results [data-link]').click()")
    page.wait_for("document.querySelectorAll('#identities li').length === 2 && document.querySelectorAll('#history li').length === 2")
    assert page.js("[...document.querySelectorAll('#identities li')].map(l => l.textContent)") == [
        "Messenger ID 5678 Unlink", "WhatsApp Ana Lima · @+5511999990000 · ID 5511999990000 Unlink"]
    # the WhatsApp conversation opens from the history: its 24-hour window closed, a template is needed
    page.js("[...document.querySelectorAll('#history [data-id]')].find(b => b.textContent.includes('WhatsApp')).click()")
    page.wait_for("document.querySelector('#thread-head h2').textContent === 'Ana Lima'")
    page.wait_for("document.getElementById('window').className === 'window closed'")
    closed = page.js("document.getElementById('window').textContent")
    assert closed.startswith("No reply possible now: WhatsApp's 24-hour customer service window closed at ")
    assert closed.endswith("only an approved template can be sent ({\"template\": {\"name\": ..., \"language\": ...}})"
                           " (template_required). Notes still work.")
    page.wait_for("document.querySelectorAll('#history li').length === 2"  # the same person's panel
                  " && document.querySelector('#history [aria-current]')?.textContent.startsWith('WhatsApp')")
    # narrower screens: the panel gives the thread its room and opens over it on demand
    page.send("Emulation.setDeviceMetricsOverride", width=900, height=700, deviceScaleFactor=1, mobile=False)
    page.wait_for("getComputedStyle(document.getElementById('contact')).display === 'none'")
    page.js("document.querySelector('#thread-head .who-toggle').click()")
    page.wait_for("document.getElementById('contact').getBoundingClientRect().width > 200")
    assert page.js("window.__violations") == [] and page.js("window.__pwned") is None


@needs_chromium
def test_a_deep_link_survives_sign_in_and_a_new_tab_does_not_ask_again(inbox, served, browser):
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("1001", now - 60_000, "m_a", "First customer"),
             _messaging("2002", now - 30_000, "m_b", "Second customer"))
    ids = {c["last_message_preview"]: c["id"] for c in inbox.conversations()}
    inbox.login_admin()
    page = browser
    # signed out, opened on a conversation's address: the sign-in form, then that conversation
    page.send("Page.navigate", url=served + "#c=" + ids["Second customer"])
    _sign_in_form(page)
    page.wait_for("document.querySelector('#thread-head h2')?.textContent === 'Messenger user …2002'")
    assert page.js("document.querySelector('#conversations .row.selected').dataset.id") == ids["Second customer"]
    assert page.js("location.hash") == "#c=" + ids["Second customer"]
    # a new tab (nothing in its sessionStorage) is let in by this one: no sign-in form
    page.js("window.__tab = window.open('about:blank'); window.__tab.sessionStorage.clear();"
            f"window.__tab.location.href = location.origin + '/#c=' + {json.dumps(ids['First customer'])}")
    page.wait_for("window.__tab.document.querySelector('#thread-head h2')?.textContent === 'Messenger user …1001'")
    assert page.js("window.__tab.document.getElementById('login').hidden") is True
    # only the first tab holds the (use-once) refresh token; the new one got an access token
    assert page.js("[Boolean(window.__tab.sessionStorage.getItem('socialinbox.token')),"
                   " window.__tab.sessionStorage.getItem('socialinbox.refresh'),"
                   " Boolean(sessionStorage.getItem('socialinbox.refresh'))]") == [True, None, True]
    # signing out in one tab signs out the other
    page.js("document.getElementById('logout').click()")
    page.wait_for("window.__tab.document.getElementById('login-error').textContent === "
                  "'You signed out in another tab.'")
    page.js("window.__tab.close()")
    # an ended session keeps the address too
    page.js(f"sessionStorage.setItem('socialinbox.token', 'not-a-valid-token');"
            f"location.hash = '#c=' + {json.dumps(ids['First customer'])}")
    page.send("Page.reload")
    page.wait_for("document.getElementById('login-error').textContent.includes('session has ended')")
    assert page.js("location.hash") == "#c=" + ids["First customer"]
    _sign_in_form(page)
    page.wait_for("document.querySelector('#thread-head h2')?.textContent === 'Messenger user …1001'")
    assert page.js("window.__violations") == []


@needs_chromium
def test_an_idle_open_inbox_costs_about_30_small_requests_a_minute_and_still_sees_changes(inbox, served, browser):
    """Counted over two minutes of the page's own (virtual) time: Chromium runs its timers as fast as
    the requests they make are answered, so the count does not depend on this machine's speed."""
    from collections import Counter

    from chalicelib.api import ratelimit
    from chalicelib.runtime import runtime

    # The page's virtual time runs two minutes of polls in a few real seconds; the server's
    # per-agent budget refills in real seconds and would refuse them (429), so it is widened here.
    runtime.rate_budgets = dict(ratelimit.BUDGETS, poll=ratelimit.Budget(1000, 100))
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, *[_messaging(str(3000 + n), now - 60_000 + n, f"m_i{n}", f"Idle {n}") for n in range(3)])
    page = browser
    _signed_in(inbox, served, page)
    page.wait_for("document.querySelectorAll('#conversations .row').length === 3")
    page.js("[...document.querySelectorAll('#conversations .row')].find(r => r.textContent.includes('Idle 1')).click()")
    page.wait_for("document.querySelectorAll('#history li').length === 1 && !document.querySelector('.row.selected .unread')")
    # settle: the page reacts once to its own read of the thread (its counts at most every 10 s)
    page.js("window.__t0 = Date.now()")
    page.send("Emulation.setVirtualTimePolicy", policy="pauseIfNetworkFetchesPending", budget=12_000)
    page.wait_for("Date.now() - window.__t0 >= 12000")
    start = len(served.requests)
    page.js("window.__t0 = Date.now()")
    page.send("Emulation.setVirtualTimePolicy", policy="pauseIfNetworkFetchesPending", budget=120_000)
    page.wait_for("Date.now() - window.__t0 >= 120000", timeout=60)
    made = Counter(served.requests[start:])
    per_minute = sum(made.values()) / 2
    assert 24 <= per_minute <= 32, sorted(made.items())
    assert made[("GET", "/api/changes")] in (47, 48, 49), made  # one every 2.5 s
    assert not [p for (m, p) in made if p.endswith(("/messages", "/events", "/viewers"))], made  # nothing moved
    assert made[("GET", "/api/conversations")] <= 1 and made[("GET", "/api/counts")] <= 1, made  # the safety net
    # a customer writes: the next poll (within 2.5 s of page time) brings it to the list and the thread
    _deliver(inbox, _messaging("3001", int(time.time() * 1000), "m_i_new", "Still idle?"))
    page.js("window.__t0 = Date.now()")
    page.send("Emulation.setVirtualTimePolicy", policy="pauseIfNetworkFetchesPending", budget=2600)
    page.wait_for("Date.now() - window.__t0 >= 2600")
    page.wait_for("[...document.querySelectorAll('#messages .text')].some(t => t.textContent === 'Still idle?')")
    page.wait_for("document.querySelector('#conversations .row.selected .preview').textContent === 'Still idle?'")
