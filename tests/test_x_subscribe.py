"""The X Activity setup command: it registers the webhook (X checks it with a CRC GET) and the
account's subscriptions, idempotently; offline against the loopback sandbox, and its requests as X
documents them (faked with `responses`)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from chalicelib.channels.base import WebhookRequest
from chalicelib.channels.x import SUBSCRIBED_EVENTS, SetupError, XAdapter, main, subscribe
from chalicelib.local import sandbox

ACCOUNT = "1520000000000000001"
SECRETS = {"X_CONSUMER_SECRET": "setup-consumer-secret", "X_BEARER_TOKEN": "app-bearer",
           "X_CONSUMER_KEY": "ck", "X_ACCESS_TOKEN": f"{ACCOUNT}-at", "X_ACCESS_TOKEN_SECRET": "ats"}


class CrcEndpoint(ThreadingHTTPServer):
    """Our /webhooks/x handshake on loopback (the adapter's own CRC answer, or a wrong one)."""

    daemon_threads = True

    def __init__(self, secret: str) -> None:
        super().__init__(("127.0.0.1", 0), _Crc)
        self.secret = secret

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhooks/x"


class _Crc(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        reply = XAdapter().handshake(WebhookRequest("GET", {}, query, b""), {"X_CONSUMER_SECRET": self.server.secret}.get)
        data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def offline(monkeypatch):
    server, env = sandbox.start(None, secrets=SECRETS.get)
    monkeypatch.setenv("X_API_BASE_URL", env["X_API_BASE_URL"])
    endpoints = []

    def endpoint(secret=SECRETS["X_CONSUMER_SECRET"]):
        crc = CrcEndpoint(secret)
        threading.Thread(target=crc.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        endpoints.append(crc)
        return crc

    yield server, endpoint
    server.close()
    for crc in endpoints:
        crc.shutdown()
        crc.server_close()


def test_offline_setup_registers_the_webhook_and_every_subscription_once(offline):
    server, endpoint = offline
    url = endpoint().url
    first = subscribe(ACCOUNT, url, SECRETS.get, requests.Session())
    assert first["created"] == list(SUBSCRIBED_EVENTS) and first["existing"] == []
    again = subscribe(ACCOUNT, url, SECRETS.get, requests.Session())
    assert again == {"webhook_id": first["webhook_id"], "created": [], "existing": list(SUBSCRIBED_EVENTS)}
    assert [w["url"] for w in server.x_webhooks] == [url]
    assert sorted(s["event_type"] for s in server.x_subscriptions) == sorted(SUBSCRIBED_EVENTS)
    assert {s["filter"]["user_id"] for s in server.x_subscriptions} == {ACCOUNT}
    assert {s["webhook_id"] for s in server.x_subscriptions} == {first["webhook_id"]}


def test_a_webhook_failing_the_crc_check_is_not_registered(offline):
    server, endpoint = offline
    with pytest.raises(SetupError) as caught:
        subscribe(ACCOUNT, endpoint(secret="not-the-apps-secret").url, SECRETS.get, requests.Session())
    assert "register the webhook" in str(caught.value) and "CRC" in str(caught.value)
    assert server.x_webhooks == [] and server.x_subscriptions == []


@pytest.mark.parametrize("missing,words", [("X_BEARER_TOKEN", "bearer token"), ("X_ACCESS_TOKEN", "X_ACCESS_TOKEN")])
def test_missing_credentials_are_named_before_any_call(offline, missing, words):
    server, endpoint = offline
    with pytest.raises(SetupError) as caught:
        subscribe(ACCOUNT, endpoint().url, {k: v for k, v in SECRETS.items() if k != missing}.get, requests.Session())
    assert words in str(caught.value)
    assert not server.requests


@responses.activate
def test_requests_follow_the_documented_endpoints(monkeypatch):
    monkeypatch.delenv("X_API_BASE_URL", raising=False)
    api = "https://api.x.com/2"
    responses.get(f"{api}/webhooks", json={"data": [], "meta": {"result_count": 0}})
    responses.post(f"{api}/webhooks", json={"data": {"id": "1146654567674912769", "url": "https://inbox.example/webhooks/x",
                                                     "valid": True}})
    responses.get(f"{api}/activity/subscriptions", json={"data": [
        {"subscription_id": "1", "event_type": "dm.received", "filter": {"user_id": ACCOUNT}}]})
    responses.post(f"{api}/activity/subscriptions", json={"data": {"subscription_id": "2"}})
    result = subscribe(ACCOUNT, "https://inbox.example/webhooks/x", SECRETS.get, requests.Session(),
                       events=("dm.received", "post.mention.create"))
    assert result == {"webhook_id": "1146654567674912769", "created": ["post.mention.create"], "existing": ["dm.received"]}
    webhook_get, webhook_post, list_subs, create = [c.request for c in responses.calls]
    assert webhook_post.headers["Authorization"] == "Bearer app-bearer"
    assert json.loads(webhook_post.body) == {"url": "https://inbox.example/webhooks/x"}
    assert create.headers["Authorization"].startswith(b"OAuth ")  # private events: the account's user context
    assert json.loads(create.body) == {"event_type": "post.mention.create", "filter": {"user_id": ACCOUNT},
                                       "tag": "socialinbox", "webhook_id": "1146654567674912769"}
    assert "app-bearer" not in str(result)


@responses.activate
def test_x_refusing_a_subscription_is_reported_with_its_reason(monkeypatch):
    monkeypatch.delenv("X_API_BASE_URL", raising=False)
    api = "https://api.x.com/2"
    responses.get(f"{api}/webhooks", json={"data": [{"id": "7", "url": "https://inbox.example/webhooks/x"}]})
    responses.get(f"{api}/activity/subscriptions", json={"data": []})
    responses.post(f"{api}/activity/subscriptions", status=403,
                   json={"title": "Forbidden", "detail": "The user has not authorized this app for private events"})
    with pytest.raises(SetupError) as caught:
        subscribe(ACCOUNT, "https://inbox.example/webhooks/x", SECRETS.get, requests.Session())
    assert "HTTP 403" in str(caught.value) and "not authorized" in str(caught.value)


def test_the_cli_refuses_a_plain_http_url_for_the_real_x(capsys):
    assert main(["subscribe", "--account-id", ACCOUNT, "--webhook-url", "http://127.0.0.1:8000/webhooks/x"]) == 2
    assert "HTTPS" in capsys.readouterr().err
