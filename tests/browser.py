"""The browser harness for the end-to-end tests: Playwright for Python driving Debian's chromium.

Never a downloaded browser build: Playwright launches the system's `/usr/bin/chromium` (installed
by `make browser`, or `CHROMIUM_BIN`). The page is served by a loopback HTTP server in front of the
app through Chalice's own local gateway (the test client), so what the browser talks to is the real
routing, auth and headers. Tests skip without chromium, except in CI (REQUIRE_BROWSER_TESTS=1).
"""
from __future__ import annotations

import atexit
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Tuple

import pytest

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")

# CI sets REQUIRE_BROWSER_TESTS=1 (after installing Debian's chromium): a missing browser then
# fails loudly instead of silently skipping the only tests that render untrusted text.
if os.environ.get("REQUIRE_BROWSER_TESTS") == "1" and not os.access(CHROMIUM, os.X_OK):
    raise RuntimeError(f"REQUIRE_BROWSER_TESTS=1 but {CHROMIUM} is not installed (make browser)")
needs_chromium = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is not installed")

# Collected before any page script runs: a CSP or Trusted Types violation fails the test that looks.
_CSP_WATCH = ("window.__violations = [];"
              "document.addEventListener('securitypolicyviolation',"
              " function (e) { window.__violations.push(e.violatedDirective + ' ' + e.blockedURI); });")


class _Forward(BaseHTTPRequestHandler):
    """Loopback HTTP in front of the app through Chalice's own local gateway (the test client)."""

    client: Any = None
    lock = threading.Lock()
    requests: List[Tuple[str, str]] = []

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        self.requests.append((self.command, self.path.split("?")[0]))
        with self.lock:  # the app object serves one request at a time, as in the test client
            if self.client is None:  # the test is over: never touch the next test's tables
                self.send_error(503)
                return
            response = self.client.http.request(self.command, self.path, headers=headers, body=body)
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        payload = response.body if isinstance(response.body, bytes) else str(response.body).encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the page navigated away meanwhile
                pass

    do_GET = do_POST = do_HEAD = do_PATCH = do_PUT = do_DELETE = _forward

    def log_message(self, *args: Any) -> None:
        pass


class Served(str):
    """The page's URL, and the (method, path) of every request the page made."""

    requests: List[Tuple[str, str]]

    def __new__(cls, url: str, requests: List[Tuple[str, str]]) -> "Served":
        made = super().__new__(cls, url)
        made.requests = requests
        return made


@pytest.fixture
def served(inbox: Any, monkeypatch: Any) -> Iterator[str]:
    # A thread per connection (browsers open idle connections ahead of use), one app call at a time.
    # The test itself also writes while the page polls: moto must apply each request atomically.
    from tests.helpers import serialise_moto_requests

    serialise_moto_requests(monkeypatch)
    handler = type("Forward", (_Forward,), {"client": inbox.client, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}/", handler.requests)
    finally:
        server.shutdown()
        server.server_close()
        with handler.lock:  # a request of this page still in the app ends before the next test starts
            handler.client = None


class Chromium:
    """One headless page of Debian's chromium under Playwright's sync API.

    `page` is the Playwright Page (locators, keyboard, screenshots). The older helpers stay for the
    tests written against them: `js` evaluates a block and returns its completion value, `wait_for`
    polls an expression until truthy, `send` is a raw DevTools command on this page's session, and
    `events` records dialogs (as `Page.javascriptDialogOpening`), which are dismissed.
    """

    def __init__(self, width: int = 1200, height: int = 800) -> None:
        self.context = _shared_browser().new_context(viewport={"width": width, "height": height})
        try:
            self.page = self.context.new_page()
            self.page.set_default_timeout(15_000)
            self.page.add_init_script(_CSP_WATCH)
            self.events: List[Dict[str, Any]] = []
            self.page.on("dialog", self._dialog)
            self._cdp = self.context.new_cdp_session(self.page)
        except BaseException:
            self.context.close()
            raise

    def _dialog(self, dialog: Any) -> None:
        self.events.append({"method": "Page.javascriptDialogOpening",
                            "params": {"type": dialog.type, "message": dialog.message}})
        dialog.dismiss()

    def send(self, method: str, deadline: float = 10, **params: Any) -> Dict[str, Any]:
        """A raw DevTools command (Page.navigate, Emulation.*, Page.captureScreenshot...)."""
        del deadline  # Playwright's own timeouts bound the call
        return self._cdp.send(method, params) or {}

    def goto(self, url: str) -> None:
        self.page.goto(url, wait_until="load")

    def js(self, expression: str) -> Any:
        """The completion value of `expression` run as a block (so `const` names do not leak)."""
        from playwright.sync_api import Error

        try:
            # An indirect eval of a block yields its completion value; promises are awaited.
            return self.page.evaluate("([source]) => (0, eval)(source)", ["{" + expression + "\n}"])
        except Error as error:
            raise AssertionError(f"{expression}: {error.message}") from None

    def wait_for(self, expression: str, timeout: float = 10) -> Any:
        stop = time.monotonic() + timeout
        while True:
            try:
                value = self.js(expression)
            except AssertionError:  # e.g. the page is still loading
                value = None
            if value:
                return value
            if time.monotonic() > stop:
                try:
                    text = self.js("document.body.innerText")
                except AssertionError as error:
                    text = str(error)
                raise AssertionError(f"timed out waiting for {expression}; page: {text!r}")
            self.page.wait_for_timeout(50)  # lets Playwright dispatch events (dialogs) meanwhile

    def close(self) -> None:
        self.context.close()


# One chromium per test process; each test gets a fresh context (its own storage, cookies, cache),
# which isolates tests as well as a new browser and starts in a fraction of the time.
_shared: Dict[str, Any] = {}


def _shared_browser() -> Any:
    browser = _shared.get("browser")
    if browser is not None and browser.is_connected():
        return browser
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as page actions do: on a loaded two-core CI machine a screen whose
    # API reads a month of counters from the in-process DynamoDB emulation (seconds there, not on
    # AWS) can take longer than Playwright's default 5 s to fill in.
    expect.set_options(timeout=15_000)
    if "playwright" not in _shared:
        _shared["playwright"] = sync_playwright().start()
        atexit.register(_stop_shared)
    _shared["browser"] = _shared["playwright"].chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"])
    return _shared["browser"]


def _stop_shared() -> None:
    try:
        if _shared.get("browser") is not None:
            _shared["browser"].close()
    finally:
        _shared.pop("playwright").stop()


@pytest.fixture
def browser() -> Iterator[Chromium]:
    chromium = Chromium()
    try:
        yield chromium
    finally:
        chromium.close()


def open_screen(served: str, chromium: Any, token: str, path: str) -> Any:
    """A team lead's screen (`reports`, `staffing`) with the inbox's session in sessionStorage:
    set on the same origin from a page without script first, then the screen itself."""
    page = chromium.page
    page.goto(served + "static/icon.svg")
    page.evaluate("token => { sessionStorage.clear(); sessionStorage.setItem('socialinbox.token', token); }", token)
    page.goto(served + path)
    return page


def downloaded(page: Any, selector: str) -> Tuple[List[str], str]:
    """Click what downloads a text file: (its lines, the name the browser suggests)."""
    with page.expect_download() as download:
        page.click(selector)
    with open(download.value.path(), encoding="utf-8") as handle:
        return handle.read().splitlines(), download.value.suggested_filename
