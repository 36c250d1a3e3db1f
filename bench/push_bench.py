"""What an idle agent's open inbox costs per hour, with live updates (the socket) and without
(polling), counted from the real page in headless Chromium whose clock Playwright fast-forwards
through an hour, against the app in-process (moto) and the local WebSocket API (`make run`'s).

    .venv/bin/python bench/push_bench.py [--minutes 60] [--thread]
    .venv/bin/python bench/push_bench.py --latency 20 [--spacing 2]

Counted per idle agent-hour: REST requests by route, socket messages from the page (beats),
hints pushed to it, connection minutes. Priced with list prices (us-east-1): API Gateway REST
$3.50/M requests; WebSocket $1.00/M messages (32 KB units, both directions) and $0.25/M
connection minutes; Lambda $0.20/M requests + $0.0000166667/GB-s at 512 MB and LAMBDA_MS per
invocation (each REST request and each message from the page runs one). A month is 176
agent-hours (8 h x 22 days, docs/COST.md). DynamoDB units are not priced here (bench/wru.py).

Tokens: the page renews its 15-minute access token before it expires; with a fast-forwarded
page clock and a real server clock that would loop, so the bench issues 2-hour tokens and adds
the renewals the page makes in an hour (POST /api/auth/refresh and the beat that carries the new
token, 3600 / (TOKEN_TTL - 120 s) each) from chalicelib.api.auth's constant.

Counted "hints pushed" are every message to the page: the fan-out's hints and the viewers the
viewing heartbeat brings back when they changed.

`--latency N` (issue 21: a new message shows in an open workspace <= 1 s after it is stored): the
page's real clock, its one conversation open, the push_fanout stream consumer running as in
`make run` (its reader polls the stream every 0.25 s, as Lambda does). N inbound messages go
through the signed webhook about --spacing seconds apart (jittered); for each, the delay from the
message's stored timestamp (`received_at`, set as it is written, before the conversation write
whose stream record the fan-out reads) to its text in the DOM, in the open thread and in its list
row (a MutationObserver in the page; page and server share the machine's clock). Prints median,
min and max, the messages the socket carried and the polls made meanwhile (none expected).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import inprocess  # noqa: F401  (first: settings before boto3, pynamodb or the app)

os.environ.setdefault("AUTH_TOKEN_SECRET", "push-bench-token-secret-0123456789abcdef")
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REST_PER_M = 3.50
MESSAGE_PER_M = 1.00
CONNECTION_MINUTE_PER_M = 0.25
LAMBDA_REQUEST_PER_M = 0.20
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_MB, LAMBDA_MS = 512, 25
HOURS_PER_MONTH = 176
RENEW_BEFORE_SECONDS = 120
STEP_MS, STEP_REAL_SECONDS = 2500, 0.08  # app.js: beatLive renews a token expiring within 2 minutes


def lambda_cost() -> float:
    return LAMBDA_REQUEST_PER_M / 1e6 + LAMBDA_MB / 1024 * LAMBDA_MS / 1000 * LAMBDA_GB_SECOND


def measure(minutes: int, live: bool, thread: bool) -> Dict[str, Any]:
    """One idle page for `minutes` of its clock; tokens last 2 hours meanwhile (the docstring)."""
    from moto import mock_aws

    from chalicelib.api import auth

    real_ttl = auth.TOKEN_TTL_SECONDS
    auth.TOKEN_TTL_SECONDS = 2 * 3600
    try:
        with mock_aws():
            return _measure(minutes, live, thread, real_ttl)
    finally:
        auth.TOKEN_TTL_SECONDS = real_ttl


class Opened:
    """The app in-process (moto), the page in Chromium signed in as an agent of the default team,
    its one conversation listed (and open with `thread`); with `live`, the local WebSocket API."""

    application: Any
    client: Any
    page: Any
    handler: Any
    sockets: Any


def deliver(opened: Opened, message_id: str, text: str, psid: str = "psid-1") -> None:
    """One inbound Messenger message through the signed webhook, then the processor runs what it
    was handed (the local runner of asynchronous invocations, as `make run`'s does), so it is
    stored when this returns."""
    from chalicelib.runtime import runtime
    from tests.helpers import META_SECRET, PAGE, compact, messenger, meta_signature, page_delivery

    body = compact(page_delivery(messenger(message_id, psid, int(time.time() * 1000), text), page=PAGE))
    with opened.handler.lock:  # the app object serves one request at a time (tests.browser._Forward)
        opened.client.http.post("/webhooks/meta", body=body, headers={
            "X-Hub-Signature-256": meta_signature(body, META_SECRET), "Content-Type": "application/json"})
    runtime.invoker().run_pending()


@contextlib.contextmanager
def opened_inbox(live: bool, thread: bool, fake_clock: bool) -> Iterator[Opened]:
    from chalice.test import Client

    import app as application
    from chalicelib import config
    from chalicelib.api import auth
    from chalicelib.local import stack, websocket
    from chalicelib.runtime import runtime
    from tests.browser import Chromium, _Forward
    from tests.helpers import META_SECRET, PAGE

    os.environ["META_APP_SECRET"] = META_SECRET  # the deliveries are signed with the tests' secret
    runtime.reset()
    stack.create_all()
    from chalicelib.accounts import register_account

    register_account("messenger", PAGE, "Page")
    auth.create_agent("bench@example.com", "a long enough password", "Bench", role="agent")
    from chalicelib.routing import directory

    directory.set_routing(auth.Agent.get("bench@example.com").agent_id, ["default"], None)
    opened = Opened()
    opened.application = application
    opened.sockets = sockets = websocket.start(application.app) if live else None
    if not live:
        os.environ.pop(config.PUSH_ENDPOINT_ENV, None)
    with Client(application.app, stage_name="local", project_dir=PROJECT) as client:
        opened.client = client
        opened.handler = handler = type("Forward", (_Forward,), {"client": client, "requests": []})
        deliver(opened, "m-1", "hello")
        answer = client.http.post("/api/auth/login", headers={"Content-Type": "application/json"}, body=json.dumps(
            {"email": "bench@example.com", "password": "a long enough password"}))
        login = json.loads(answer.body)
        assert "token" in login, (answer.status_code, login)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        opened.page = page = Chromium()
        try:
            if fake_clock:
                page.page.clock.install()
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            page.goto(url)
            page.js(f"sessionStorage.setItem('socialinbox.token', {json.dumps(login['token'])});"
                    f"sessionStorage.setItem('socialinbox.refresh', {json.dumps(login['refresh_token'])})")
            page.page.reload()
            page.wait_for("!document.getElementById('app').hidden")
            page.wait_for("document.querySelectorAll('#conversations .row').length === 1")
            if thread:
                page.js("document.querySelector('#conversations .row').click()")
                page.wait_for("!document.getElementById('composer').hidden")
            if live:
                stop = time.monotonic() + 15
                while not sockets.sockets and time.monotonic() < stop:
                    if fake_clock:
                        page.page.clock.run_for(1000)
                    time.sleep(0.1)
                assert sockets.sockets, "the page opened no socket"
            yield opened
        finally:
            page.close()
            server.shutdown()
            if sockets is not None:
                sockets.shutdown()
                sockets.server_close()


def _measure(minutes: int, live: bool, thread: bool, real_ttl: int) -> Dict[str, Any]:
    with opened_inbox(live, thread, fake_clock=True) as opened:
        page, handler, sockets = opened.page, opened.handler, opened.sockets
        page.page.clock.run_for(5000)
        time.sleep(1.0)
        handler.requests.clear()
        received0, sent0 = (sockets.received, sockets.sent) if live else (0, 0)
        # in steps of the page's shortest period (POLL_MS), each step's requests completing in
        # real time before the next: a poll still in flight would make the next one skip
        for _ in range(minutes * 60_000 // STEP_MS):
            page.page.clock.run_for(STEP_MS)
            time.sleep(STEP_REAL_SECONDS)
        time.sleep(1.0)
        requests = list(handler.requests)
        connected = len(sockets.sockets) if live else 0
        received = (sockets.received - received0) if live else 0
        pushed = (sockets.sent - sent0) if live else 0
    scale = 60.0 / minutes
    by_route: Dict[str, float] = {}
    for method, path in requests:
        route = f"{method} {re.sub(r'^/api/conversations/[^/]+', '/api/conversations/{id}', path)}"
        by_route[route] = by_route.get(route, 0) + scale
    rest = len(requests) * scale
    messages_in = received * scale
    if live:  # the renewals a real 15-minute token needs (see the module's docstring)
        renewals = 3600 / (real_ttl - RENEW_BEFORE_SECONDS)
        by_route["POST /api/auth/refresh (renewals)"] = renewals
        rest += renewals
        messages_in += renewals if not received else 0  # the new token rides on a beat that is sent anyway
    minutes_connected = 60.0 * connected
    cost = (rest * (REST_PER_M / 1e6 + lambda_cost()) + messages_in * (MESSAGE_PER_M / 1e6 + lambda_cost())
            + pushed * scale * MESSAGE_PER_M / 1e6 + minutes_connected * CONNECTION_MINUTE_PER_M / 1e6)
    return {"mode": "live updates" if live else "polling", "thread_open": thread,
            "rest_requests_per_hour": round(rest, 1), "by_route": {k: round(v, 1) for k, v in sorted(by_route.items())},
            "socket_messages_from_page_per_hour": round(messages_in, 1), "hints_pushed_per_hour": round(pushed * scale, 1),
            "connection_minutes_per_hour": minutes_connected, "usd_per_agent_hour": round(cost, 7),
            "usd_per_agent_month": round(cost * HOURS_PER_MONTH, 4)}


PROBE = "latency probe"
#: Records, in the page, when each probe's text first shows in the open thread and in its row.
OBSERVER = """
window.__shown = {thread: {}, row: {}};
(function () {
  function mark(where, nodes) {
    var now = Date.now();
    nodes.forEach(function (n) {
      var m = /latency probe (\\d+)$/.exec(n.textContent || '');
      if (m && !(m[1] in window.__shown[where])) window.__shown[where][m[1]] = now;
    });
  }
  new MutationObserver(function () {
    mark('thread', document.querySelectorAll('#messages .msg .text'));
    mark('row', document.querySelectorAll('#conversations .row .preview'));
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
})();
"""


def latency(count: int, spacing: float) -> Dict[str, Any]:
    """`count` inbound messages, about `spacing` seconds apart, into the conversation open in the
    page (live updates on, the push_fanout stream consumer running as in `make run`): from each
    message's stored timestamp to its text in the page's DOM (the open thread; its list row)."""
    from moto import mock_aws

    with mock_aws():
        return _latency(count, spacing)


def _latency(count: int, spacing: float) -> Dict[str, Any]:
    import random

    from chalicelib.local import runners
    from chalicelib.models import Message

    with opened_inbox(live=True, thread=True, fake_clock=False) as opened:
        page, sockets = opened.page, opened.sockets
        [fanout] = [r for r in runners.discover(opened.application.app) if r.function_name == "push_fanout"]
        fanout.start()
        try:
            page.js(OBSERVER)
            time.sleep(1.0)
            polls = sum(1 for request in list(opened.handler.requests) if request == ("GET", "/api/changes"))
            sent = sockets.sent
            for number in range(count):
                time.sleep(spacing * random.uniform(0.75, 1.25))  # never in step with a page timer
                deliver(opened, f"m-latency-{number}", f"{PROBE} {number}")
            try:
                page.wait_for(f"Object.keys(window.__shown.thread).length === {count} && "
                              f"Object.keys(window.__shown.row).length === {count}", timeout=30)
            finally:
                shown = page.js("JSON.stringify(window.__shown)")
            shown = json.loads(shown)
            polls = sum(1 for request in list(opened.handler.requests) if request == ("GET", "/api/changes")) - polls
            hints = sockets.sent - sent
        finally:
            fanout.stop()
            fanout.join(timeout=5)
        stored = {m.text.rsplit(" ", 1)[1]: int(m.received_at) for m in Message.scan()
                  if (m.text or "").startswith(PROBE)}
    assert len(stored) == count, stored

    def figures(where: str) -> Dict[str, Any]:
        delays = [shown[where][n] - stored[n] for n in sorted(stored, key=int)]
        return {"median_ms": round(statistics.median(delays)), "max_ms": max(delays), "min_ms": min(delays)}

    return {"mode": "latency: stored -> shown (live updates)", "messages": count, "spacing_seconds": spacing,
            "open_thread": figures("thread"), "list_row": figures("row"),
            "socket_messages_to_the_page": hints, "polls_meanwhile": polls}


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=60, help="page-clock minutes to run (scaled to an hour)")
    parser.add_argument("--thread", action="store_true", help="a conversation open (its viewing heartbeat)")
    parser.add_argument("--latency", type=int, metavar="N", default=0,
                        help="instead: N inbound messages, stored -> shown in the open workspace (median, max)")
    parser.add_argument("--spacing", type=float, default=2.0, help="seconds between --latency's messages (about)")
    args = parser.parse_args(argv)
    if args.latency:
        print(json.dumps(latency(args.latency, args.spacing), indent=1), flush=True)
        return 0
    for live in (False, True):
        print(json.dumps(measure(args.minutes, live, args.thread), indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
