"""What an idle agent's open inbox costs per hour, with live updates (the socket) and without
(polling), counted from the real page in headless Chromium whose clock Playwright fast-forwards
through an hour, against the app in-process (moto) and the local WebSocket API (`make run`'s).

    .venv/bin/python bench/push_bench.py [--minutes 60] [--thread]

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
"""
from __future__ import annotations

import argparse
import json
import re
import os
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any, Dict

import inprocess  # noqa: F401  (first: settings before boto3, pynamodb or the app)

os.environ.setdefault("AUTH_TOKEN_SECRET", "push-bench-token-secret-0123456789abcdef")

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


def _measure(minutes: int, live: bool, thread: bool, real_ttl: int) -> Dict[str, Any]:
    from chalice.test import Client

    import app as application
    from chalicelib import config
    from chalicelib.api import auth
    from chalicelib.local import stack, websocket
    from chalicelib.runtime import runtime
    from tests.browser import Chromium, _Forward
    from tests.helpers import PAGE, messenger, page_delivery, META_SECRET, meta_signature, compact

    os.environ["META_APP_SECRET"] = META_SECRET  # the delivery below is signed with the tests' secret
    runtime.reset()
    stack.create_all()
    from chalicelib.accounts import register_account

    register_account("messenger", PAGE, "Page")
    auth.create_agent("bench@example.com", "a long enough password", "Bench", role="agent")
    from chalicelib.routing import directory

    directory.set_routing(auth.Agent.get("bench@example.com").agent_id, ["default"], None)
    sockets = websocket.start(application.app) if live else None
    if not live:
        os.environ.pop(config.PUSH_ENDPOINT_ENV, None)
    with Client(application.app) as client:
        body = compact(page_delivery(messenger("m-1", "psid-1", int(time.time() * 1000), "hello")))
        client.http.post("/webhooks/meta", body=body, headers={"X-Hub-Signature-256": meta_signature(body, META_SECRET),
                                                               "Content-Type": "application/json"})
        from chalicelib.local.pump import drain

        drain(application.ingest_processor)
        answer = client.http.post("/api/auth/login", headers={"Content-Type": "application/json"}, body=json.dumps(
            {"email": "bench@example.com", "password": "a long enough password"}))
        login = json.loads(answer.body)
        assert "token" in login, (answer.status_code, login)
        handler = type("Forward", (_Forward,), {"client": client, "requests": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        page = Chromium()
        try:
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
                    page.page.clock.run_for(1000)
                    time.sleep(0.1)
                assert sockets.sockets, "the page opened no socket"
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
        finally:
            page.close()
            server.shutdown()
            if sockets is not None:
                sockets.shutdown()
                sockets.server_close()
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


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=60, help="page-clock minutes to run (scaled to an hour)")
    parser.add_argument("--thread", action="store_true", help="a conversation open (its viewing heartbeat)")
    args = parser.parse_args(argv)
    for live in (False, True):
        print(json.dumps(measure(args.minutes, live, args.thread), indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
