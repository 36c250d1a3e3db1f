"""The loopback sandbox of the platforms' send APIs: it answers like the platform and calls a
(tiny, local) webhook back with correctly signed echoes and receipts, and simulates failures."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from chalicelib.channels import adapter_for_channel, get_adapter
from chalicelib.channels.base import MessageEvent, OutboundMessage, SendError, StatusEvent, WebhookRequest
from chalicelib.local import sandbox

PAGE, PHONE = "100000000000001", "200000000000001"
SECRETS = {"META_APP_SECRET": "sandbox-test-app-secret", "X_CONSUMER_SECRET": "sandbox-test-consumer-secret"}
TOKENS = {"META_PAGE_TOKEN": "page-token", "INSTAGRAM_ACCESS_TOKEN": "ig-token", "WHATSAPP_TOKEN": "wa-token",
          "X_CONSUMER_KEY": "ck", "X_CONSUMER_SECRET": "cs", "X_ACCESS_TOKEN": "1520000000000000001-at",
          "X_ACCESS_TOKEN_SECRET": "ats", "TELEGRAM_BOT_TOKEN": "1000000001:tg", "LINKEDIN_ACCESS_TOKEN": "li"}


class Receiver(ThreadingHTTPServer):
    """Records every webhook POST (path, lower-cased headers, raw body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.received = []
        self.arrived = threading.Condition()

    def wait_for(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count and time.monotonic() < deadline:
                self.arrived.wait(0.05)
            return list(self.received)


class _Record(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.arrived:
            self.server.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, raw))
            self.server.arrived.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def loop(monkeypatch):
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    server, env = sandbox.start(f"http://127.0.0.1:{receiver.server_address[1]}", delay=0.05,
                                slow_seconds=0.5, secrets={**TOKENS, **SECRETS}.get)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield server, receiver
    server.close()
    receiver.shutdown()
    receiver.server_close()


def send(message):
    return adapter_for_channel(message.channel).send(message, TOKENS.get, requests.Session())


def messenger(recipient="6100000000000001"):
    return OutboundMessage(channel="messenger", account_id=PAGE, thread_key=recipient, thread_kind="dm",
                           recipient_id=recipient, text="A fresh one is on its way \u2615", outbound_id="msg-01SANDBOX")


def events_of(adapter_name, path, headers, raw):
    """Verify the callback like our webhook does, then parse it."""
    adapter = get_adapter(adapter_name)
    assert path == f"/webhooks/{adapter_name}"
    adapter.verify(WebhookRequest("POST", headers, {}, raw), SECRETS.get)  # raises when forged
    return list(adapter.parse(json.loads(raw), {}))


def test_messenger_send_is_answered_and_echoed_with_a_correct_signature_then_receipts(loop):
    server, receiver = loop
    result = send(messenger())
    assert result.platform_message_id.startswith("m_")
    received = receiver.wait_for(3)
    assert len(received) == 3
    echo = events_of("meta", *received[0])
    assert len(echo) == 1 and isinstance(echo[0], MessageEvent)
    assert echo[0].direction == "out" and echo[0].platform_message_id == result.platform_message_id
    assert echo[0].thread_key == "6100000000000001" and echo[0].text == "A fresh one is on its way \u2615"
    assert echo[0].raw["message"]["metadata"] == "msg-01SANDBOX"
    delivered = events_of("meta", *received[1])
    assert delivered == [StatusEvent("messenger", PAGE, result.platform_message_id, "delivered", delivered[0].at_ms)]
    with pytest.raises(Exception):  # a forged signature is refused by the same check
        events_of("meta", received[0][0], {**received[0][1], "x-hub-signature-256": "sha256=" + "0" * 64},
                  received[0][2])
    assert server.requests[-1]["auth"] == "Bearer"


def test_whatsapp_statuses_sent_delivered_read_carry_our_outbound_id(loop):
    _, receiver = loop
    message = OutboundMessage(channel="whatsapp", account_id=PHONE, thread_key="351910000001", thread_kind="dm",
                              recipient_id="351910000001", text="Ol\u00e1!", outbound_id="msg-wa-1",
                              reply_to="wamid.IN")
    result = send(message)
    assert result.platform_message_id.startswith("wamid.")
    received = receiver.wait_for(3)
    statuses = [e for r in received for e in events_of("meta", *r)]
    assert [s.status for s in statuses] == ["sent", "delivered", "read"]
    assert {s.platform_message_id for s in statuses} == {result.platform_message_id}
    raw = json.loads(received[0][2])["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert raw["biz_opaque_callback_data"] == "msg-wa-1"


def test_whatsapp_window_failure_arrives_asynchronously(loop):
    _, receiver = loop
    message = OutboundMessage(channel="whatsapp", account_id=PHONE, thread_key="fail-window-1", thread_kind="dm",
                              recipient_id="fail-window-1", text="late", outbound_id="msg-wa-2")
    result = send(message)  # accepted first, as the Cloud API does
    (status,) = events_of("meta", *receiver.wait_for(1)[0])
    assert status.status == "failed" and status.platform_message_id == result.platform_message_id
    assert "131047" in status.error


def test_x_dm_echo_comes_from_the_token_user(loop):
    _, receiver = loop
    result = send(OutboundMessage(channel="x", account_id="1520000000000000001", thread_key="1530000000000000009",
                                  thread_kind="dm", recipient_id="1530000000000000009", text="Hi!", outbound_id="o"))
    (echo,) = events_of("x", *receiver.wait_for(1)[0])
    assert echo.direction == "out" and echo.platform_message_id == result.platform_message_id
    assert echo.thread_key == "1530000000000000009"


@pytest.mark.parametrize("recipient,kind", [("fail-blocked-1", "permanent"), ("fail-token-1", "reauthorize"),
                                            ("fail-window-1", "window_closed")])
def test_simulated_failures(loop, recipient, kind):
    _, receiver = loop
    with pytest.raises(SendError) as caught:
        send(messenger(recipient))
    assert caught.value.kind == kind
    time.sleep(0.2)
    assert receiver.received == []  # nothing sent, nothing echoed


def test_429_once_then_success(loop):
    with pytest.raises(SendError) as caught:
        send(messenger("fail-429-once-a"))
    assert caught.value.kind == "retryable" and caught.value.code == "613"
    assert send(messenger("fail-429-once-a")).platform_message_id.startswith("m_")


def test_timeout_is_unknown_but_the_echo_still_comes(loop, monkeypatch):
    from chalicelib.channels import base

    _, receiver = loop
    monkeypatch.setattr(base, "SEND_TIMEOUT", (1.0, 0.2))
    with pytest.raises(SendError) as caught:
        send(messenger("fail-timeout-1"))
    assert caught.value.kind == "unknown"
    # The echo and the receipts are separate callbacks: under load a receipt can come first.
    deadline = time.monotonic() + 10
    echoes = []
    while not echoes and time.monotonic() < deadline:
        arrived = receiver.wait_for(len(receiver.received) + 1, timeout=0.5)
        echoes = [e for delivery in arrived for e in events_of("meta", *delivery) if isinstance(e, MessageEvent)]
    assert echoes and echoes[0].raw["message"]["metadata"] == "msg-01SANDBOX"  # what the outbox reconciles against


def test_close_cancels_pending_callbacks_and_only_loopback_webhooks():
    with pytest.raises(ValueError):
        sandbox.start("http://example.com")
    server, env = sandbox.start("http://127.0.0.1:9", delay=5.0, secrets=SECRETS.get)
    assert all(value.startswith(f"http://127.0.0.1:{server.server_address[1]}/") for value in env.values())
    server.later(5.0, "meta", {"object": "page", "entry": []})
    assert len(server._timers) == 1
    server.close()
    assert server._timers == set()
    server, _ = sandbox.start("http://0.0.0.0:8000")  # an API listening everywhere is called on loopback
    assert server.webhook_base_url == "http://127.0.0.1:8000"
    server.close()


def _graph_send(server, token, headers=None):
    """A Messenger send as a web page could POST it (a CORS-simple request: text/plain body,
    the token in the query string), unless `headers` say otherwise."""
    body = json.dumps({"recipient": {"id": "6100000000000002"}, "message": {"text": "forged echo"}})
    return requests.post(f"{server.base_url}/graph/{sandbox.GRAPH_VERSION}/{PAGE}/messages",
                         params={"access_token": token}, data=body,
                         headers={"Content-Type": "text/plain", **(headers or {})}, timeout=5)


@pytest.mark.parametrize("headers", [
    {"Origin": "https://attacker.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
    {"Host": "attacker.example:8025"},  # a page on a DNS name rebound to 127.0.0.1
])
def test_a_web_page_cannot_make_the_sandbox_deliver_a_signed_echo(loop, headers):
    server, receiver = loop
    assert _graph_send(server, TOKENS["META_PAGE_TOKEN"], headers).status_code == 403
    time.sleep(0.2)  # callbacks come 0.05 s after an answer
    assert receiver.received == []
    # the same request from the local server (no browser headers) is answered and echoed
    assert _graph_send(server, TOKENS["META_PAGE_TOKEN"]).status_code == 200
    assert len(receiver.wait_for(1)) >= 1


@pytest.mark.parametrize("path,kwargs", [
    (f"/graph/{sandbox.GRAPH_VERSION}/{PAGE}/messages",
     {"json": {"recipient": {"id": "61"}, "message": {"text": "x"}}, "headers": {"Authorization": "Bearer guessed"}}),
    (f"/graph/{sandbox.GRAPH_VERSION}/{PHONE}/messages",
     {"json": {"messaging_product": "whatsapp", "to": "351910000001", "type": "text", "text": {"body": "x"}},
      "headers": {"Authorization": "Bearer " + TOKENS["META_PAGE_TOKEN"]}}),  # another product's token
    (f"/instagram/{sandbox.GRAPH_VERSION}/{PAGE}/messages",
     {"json": {"recipient": {"id": "61"}, "message": {"text": "x"}}, "headers": {"Authorization": "Bearer guessed"}}),
    ("/x/2/dm_conversations/with/1530000000000000009/messages",
     {"json": {"text": "x"}, "headers": {"Authorization": 'OAuth oauth_consumer_key="ck", '
                                                         'oauth_token="1520000000000000001-guessed"'}}),
    ("/x/2/tweets", {"json": {"text": "x", "reply": {"in_reply_to_tweet_id": "1"}},
                     "headers": {"Authorization": "Bearer guessed"}}),
    ("/telegram/bot1000000001:guessed/sendMessage", {"json": {"chat_id": 5, "text": "x"}}),
    ("/linkedin/rest/socialActions/urn:li:activity:1/comments",
     {"json": {"actor": "urn:li:organization:1", "object": "urn:li:activity:1", "message": {"text": "x"}},
      "headers": {"Authorization": "Bearer guessed"}}),
])
def test_a_send_without_the_configured_token_is_refused_and_echoes_nothing(loop, path, kwargs):
    server, receiver = loop
    answer = requests.post(server.base_url + path, timeout=5, **kwargs)
    assert answer.status_code == 401, answer.text
    time.sleep(0.2)
    assert receiver.received == []


def test_a_send_with_a_wrong_token_asks_the_adapter_for_reauthorization(loop):
    _, receiver = loop
    with pytest.raises(SendError) as caught:
        adapter_for_channel("messenger").send(messenger(), {**TOKENS, "META_PAGE_TOKEN": "guessed"}.get,
                                              requests.Session())
    assert caught.value.kind == "reauthorize"
    time.sleep(0.2)
    assert receiver.received == []


def test_the_sandbox_listens_on_loopback_only(loop):
    server, _ = loop
    assert server.server_address[0] == "127.0.0.1"


def test_x_reply_to_a_post_that_does_not_mention_us_is_refused_before_posting(loop):
    server, receiver = loop
    message = OutboundMessage(channel="x", account_id="1520000000000000001", thread_key="tweet:185-not-summoned",
                              thread_kind="mention", recipient_id="1530000000000000009", text="Hi!", outbound_id="o",
                              reply_to="185-not-summoned")
    with pytest.raises(SendError) as caught:
        send(message)
    assert (caught.value.kind, caught.value.code) == ("permanent", "not_summoned")
    assert not any(r["platform"] == "x" and r["path"].endswith("/2/tweets") for r in server.requests)
    result = send(OutboundMessage(**{**message.__dict__, "reply_to": "1850000000000000005"}))
    (echo,) = events_of("x", *receiver.wait_for(1)[0])  # post.create: our reply lands in its thread
    assert (echo.platform_message_id, echo.direction, echo.reply_to) == (result.platform_message_id, "out",
                                                                         "1850000000000000005")


def test_the_post_behind_a_comment_thread_is_served_offline_with_the_accounts_token_only(loop):
    from chalicelib.api import media_routes
    from chalicelib.channels.posts import PostUnavailable, fetch_post

    facebook = fetch_post("facebook", "104000000000099_555000111", TOKENS.get, requests.Session())
    assert facebook.text.startswith("Fresh from the oven") and facebook.url.startswith("https://www.facebook.com/")
    body, kind = media_routes.fetch_public(facebook.picture)  # our media fetch reaches the sandbox base only
    assert kind == "image/png" and body.startswith(b"\x89PNG")
    instagram = fetch_post("instagram", "17900000000000123", TOKENS.get, requests.Session())
    assert instagram.url.startswith("https://www.instagram.com/p/") and instagram.picture
    with pytest.raises(PostUnavailable):
        fetch_post("facebook", "104000000000099_555000111", {"META_PAGE_TOKEN": "wrong"}.get, requests.Session())


def test_x_and_linkedin_posts_behind_threads_are_served_offline_with_the_accounts_token_only(loop):
    """The same look-ups our code makes against X and LinkedIn (chalicelib.channels.posts), answered
    like the platforms, with pictures our media fetch reaches offline."""
    from chalicelib.api import media_routes
    from chalicelib.channels.posts import PostUnavailable, fetch_post

    x = fetch_post("x", "1850000000000000042", TOKENS.get, requests.Session())
    assert x.text.startswith("Our winter blend") and x.url == "https://x.com/acmecoffee/status/1850000000000000042"
    assert media_routes.fetch_public(x.picture)[1] == "image/png"
    share = "urn:li:share:7100000000000000001"
    linkedin = fetch_post("linkedin", "urn:li:activity:7100000000000000002", TOKENS.get, requests.Session(), share)
    assert linkedin.text.startswith("Our autumn roast")
    assert linkedin.url == "https://www.linkedin.com/feed/update/urn:li:activity:7100000000000000002/"
    assert media_routes.fetch_public(linkedin.picture)[1] == "image/png"
    server, _ = loop
    lookups = [r for r in server.requests if r["platform"] == "linkedin"]
    assert [r["path"].split("/")[3] for r in lookups] == ["posts", "images"] and all(r["auth"] == "Bearer" for r in lookups)
    for channel, wrong in (("x", {**TOKENS, "X_ACCESS_TOKEN": "1520000000000000001-wrong"}),
                           ("linkedin", {"LINKEDIN_ACCESS_TOKEN": "wrong"})):
        with pytest.raises(PostUnavailable):
            fetch_post(channel, share if channel == "linkedin" else "1850000000000000042", wrong.get,
                       requests.Session())
