"""Live updates in the real page (headless Chromium): the local WebSocket API (the one `make run`
serves, calling the app's own handlers) and the fan-out reading the conversations table's stream
(the same runner as `make run`). A message arriving is shown through the socket without a poll;
a dropped socket falls back to polling; the page reconnects and stops polling again."""
from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest

from tests.test_web_inbox import PAGE_ID, _deliver, _messaging, browser, needs_chromium, served  # noqa: F401
from tests.test_workspace_browser import _open

pytestmark = needs_chromium
CHANGES = ("GET", "/api/changes")


@pytest.fixture
def live(inbox: Any, monkeypatch: Any) -> Iterator[Any]:
    """The WebSocket API on a loopback port and the push_fanout stream consumer, both running."""
    import app as application

    from chalicelib import config
    from chalicelib.local import runners, websocket
    from chalicelib.runtime import runtime

    monkeypatch.delenv(config.PUSH_ENDPOINT_ENV, raising=False)
    server = websocket.start(application.app)
    monkeypatch.setenv(config.PUSH_ENDPOINT_ENV, server.endpoint)
    runtime.use_push_client(None)
    [fanout] = [r for r in runners.discover(application.app) if r.function_name == "push_fanout"]
    fanout.start()
    try:
        yield server
    finally:
        fanout.stop()
        fanout.join(timeout=5)
        server.shutdown()
        server.server_close()
        runtime.use_push_client(None)


def _wait(condition: Any, timeout: float = 15.0, what: str = "") -> None:
    stop = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > stop:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def _polls(served: Any) -> int:
    return sum(1 for request in list(served.requests) if request == CHANGES)


def _quiet(served: Any, seconds: float = 3.0) -> int:
    """The poll count once no poll came for `seconds` (longer than the page's POLL_MS): the page
    has stopped polling (or this times out)."""
    stop = time.monotonic() + 30
    count, since = _polls(served), time.monotonic()
    while time.monotonic() - since < seconds:
        if time.monotonic() > stop:
            raise AssertionError("the page kept polling")
        time.sleep(0.1)
        if _polls(served) != count:
            count, since = _polls(served), time.monotonic()
    return count


def _shows(page: Any, text: str) -> None:
    page.wait_for(f"[...document.querySelectorAll('#messages .msg')].some(m => m.textContent.includes({json.dumps(text)}))")


def test_a_message_arrives_by_push_a_dropped_socket_falls_back_to_polling_and_the_page_reconnects(
        inbox, served, browser, live):
    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("4242", now - 60_000, "m_1", "Hello there"))
    page = browser
    _open(inbox, served, page)
    _wait(lambda: len(live.sockets) == 1, what="the page's socket")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 1")
    page.js("document.querySelector('#conversations .row').click()")
    _shows(page, "Hello there")

    # 1. Pushed: the customer writes again; the thread shows it with no poll in between.
    polled = _quiet(served)
    sent = live.sent
    _deliver(inbox, _messaging("4242", int(time.time() * 1000), "m_2", "Are you there?"))
    _shows(page, "Are you there?")
    assert live.sent > sent, "a hint went through the socket"
    assert _polls(served) == polled, "shown by the push, not by a poll"

    # 2. The socket drops and cannot come back (the API refuses upgrades): the page polls and
    # still shows what arrives.
    live.refusing = True
    from chalicelib.runtime import runtime

    for connection_id in list(live.sockets):  # closed through the management API, as AWS would
        runtime.push_client().delete_connection(ConnectionId=connection_id)
    _wait(lambda: not live.sockets, what="the socket closed")
    polled = _polls(served)
    _deliver(inbox, _messaging("4242", int(time.time() * 1000), "m_3", "Hello??"))
    _shows(page, "Hello??")
    assert _polls(served) > polled, "shown by polling"

    # 3. The WebSocket API is back: the page reconnects (with backoff) and pushes resume.
    live.refusing = False
    _wait(lambda: len(live.sockets) == 1, timeout=30, what="the page reconnected")
    polled, sent = _quiet(served), live.sent
    _deliver(inbox, _messaging("4242", int(time.time() * 1000), "m_4", "Thanks!"))
    _shows(page, "Thanks!")
    assert live.sent > sent and _polls(served) == polled
    assert page.js("window.__violations") == []


def _viewing_puts(served: Any) -> int:
    return sum(1 for method, path in list(served.requests) if method == "PUT" and path.endswith("/viewing"))


def test_the_viewing_heartbeat_rides_the_socket_and_falls_back_to_rest(inbox, served, browser, live):
    """Who else is viewing comes back over the socket, the page's own heartbeat (typing included)
    reaches the others without a REST request; with the socket down the page PUTs it again."""
    from tests.test_workspace_contacts import _agent, _call

    now = int(time.time() * 1000)
    inbox.add_account("messenger", PAGE_ID)
    _deliver(inbox, _messaging("4343", now - 60_000, "m_v1", "Anyone?"))
    [conversation] = inbox.conversations()
    kim = _agent("kim@example.com", "Kim", "agent", ["default"])
    path = f"/api/conversations/{conversation['id']}/viewing"
    assert _call(inbox, "PUT", path, kim["token"], {"typing": False}).status_code == 200
    page = browser
    _open(inbox, served, page)
    _wait(lambda: len(live.sockets) == 1, what="the page's socket")
    page.wait_for("document.querySelectorAll('#conversations .row').length === 1")
    page.js("document.querySelector('#conversations .row').click()")
    page.wait_for("!document.getElementById('composer').hidden")
    _shows(page, "Anyone?")
    page.wait_for("document.getElementById('viewers').textContent.includes('Kim is also viewing')")
    # The page starts typing: its heartbeat says so over the socket, Kim's page sees it.
    page.js("const d = document.getElementById('draft'); d.focus(); d.value = 'On it'; d.dispatchEvent(new Event('input'))")
    assert page.js("document.activeElement.id") == "draft"

    def kim_sees_typing() -> bool:
        seen = _call(inbox, "PUT", path, kim["token"], {"typing": False, "viewers": True}).json_body["viewers"]
        return any(v["typing"] and not v["me"] for v in seen)

    _wait(kim_sees_typing, what="the typing heartbeat over the socket")
    assert _viewing_puts(served) == 0, "no REST heartbeat while the socket is up"
    # The socket drops for good: the next heartbeat (typing stopped) is a REST request again.
    live.refusing = True
    from chalicelib.runtime import runtime

    for connection_id in list(live.sockets):
        runtime.push_client().delete_connection(ConnectionId=connection_id)
    _wait(lambda: not live.sockets, what="the socket closed")
    page.js("const d = document.getElementById('draft'); d.value = ''; d.dispatchEvent(new Event('input'))")
    _wait(lambda: _viewing_puts(served) > 0, what="the REST heartbeat")
    assert not kim_sees_typing()
    assert page.js("window.__violations") == []
