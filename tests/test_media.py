"""GET /api/media/{conversation}/{message}/{index}: attachments fetched with the account's token
(Telegram getFile, WhatsApp media id, Meta CDN URLs) and streamed back with a safe type, under a
size cap; platform HTTP mocked with `responses`."""
from __future__ import annotations

import json

import pytest
import responses

from tests.helpers import PAGE, page_delivery

CDN = "https://scontent.xx.fbcdn.net/v/t1/photo.jpg?sig=abc"


@pytest.fixture
def messenger_photo(inbox):
    inbox.add_account("messenger", PAGE)
    item = {"sender": {"id": "psid_m1"}, "recipient": {"id": PAGE}, "timestamp": 1700000000000,
            "message": {"mid": "m_media1", "attachments": [{"type": "image", "payload": {"url": CDN}},
                                                           {"type": "file", "payload": {"url": "http://evil.example/x"}}]}}
    assert inbox.post_meta(page_delivery(item)).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    [message] = inbox.messages(conversation["id"])
    assert message["attachments"][0]["url"] == CDN
    return inbox, conversation["id"], message["id"]


def _get(inbox, path, token=None, accept="image/avif,image/webp,image/*,*/*;q=0.8"):
    """As an <img> (or a download link) asks for it: binary answers need a matching Accept."""
    return inbox.client.http.get(path, headers={"Authorization": "Bearer " + (token or inbox.login_admin()),
                                                "Accept": accept})


@responses.activate
def test_meta_cdn_image_is_streamed_with_a_safe_type(messenger_photo):
    inbox, conversation_id, message_id = messenger_photo
    responses.add(responses.GET, CDN, body=b"\xff\xd8\xff jpeg bytes", content_type="image/jpeg")
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
    assert response.status_code == 200
    assert response.body == b"\xff\xd8\xff jpeg bytes"
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@responses.activate
def test_dangerous_types_become_downloads_and_expired_links_404(messenger_photo):
    inbox, conversation_id, message_id = messenger_photo
    responses.add(responses.GET, CDN, body=b"<script>alert(1)</script>", content_type="text/html")
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    responses.replace(responses.GET, CDN, status=403)
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
    assert response.status_code == 404 and set(json.loads(response.body)) == {"Code", "Message"}
    # a URL that is not on a platform's media host is never fetched (no SSRF)
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/1")
    assert response.status_code == 404
    assert all("evil.example" not in call.request.url for call in responses.calls)


@responses.activate
def test_size_cap_is_413(messenger_photo):
    from chalicelib.api import media_routes

    inbox, conversation_id, message_id = messenger_photo
    responses.add(responses.GET, CDN, body=b"x" * (media_routes.MAX_BYTES + 1), content_type="image/png")
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
    assert response.status_code == 413 and json.loads(response.body)["Code"] == "TooLarge"


@pytest.mark.parametrize("suffix", ["{c}/{m}/2", "{c}/{m}/-1", "{c}/{m}/abc", "{c}/m_nope/0", "c_nope/{m}/0",
                                    "{c}/{m}/999", "x" * 150 + "/{m}/0"])
def test_bad_paths_are_400_or_404(messenger_photo, suffix):
    inbox, conversation_id, message_id = messenger_photo
    response = _get(inbox, "/api/media/" + suffix.format(c=conversation_id, m=message_id))
    assert response.status_code in (400, 404)
    assert set(json.loads(response.body)) == {"Code", "Message"}


def test_needs_a_token_and_team_access(messenger_photo):
    from chalicelib.api.auth import create_agent
    from chalicelib.models import AgentRouting

    inbox, conversation_id, message_id = messenger_photo
    assert inbox.client.http.get(f"/api/media/{conversation_id}/{message_id}/0").status_code == 401
    agent = create_agent("media.out@example.com", "agent-password-123", "Out")
    AgentRouting(agent.agent_id, teams=["sales"]).save()
    token = json.loads(inbox.client.http.post("/api/auth/login", body=json.dumps(
        {"email": "media.out@example.com", "password": "agent-password-123"}),
        headers={"Content-Type": "application/json"}).body)["token"]
    assert _get(inbox, f"/api/media/{conversation_id}/{message_id}/0", token).status_code == 404


def _stored(channel, account_id, attachment):
    """A conversation and a message with one attachment, as the store would have left them."""
    from chalicelib.inbox import rules
    from chalicelib.models import Conversation, Message

    state = {"conversation_id": f"c_{channel}_media", "channel": channel, "account_id": account_id,
             "thread_key": "t", "contact_id": "ct", "team": "default", "status": "open", "created_at": 1,
             "due_sort": rules.NO_DEADLINE}
    state.update(rules.derived_keys(state))
    Conversation(**state).save()
    Message(state["conversation_id"], "1700000000000#m_x", message_id="m_x", direction="in", channel=channel,
            account_id=account_id, sent_at=1700000000000, received_at=1, attachments=[attachment]).save()
    return state["conversation_id"], "m_x"


@responses.activate
def test_telegram_uses_get_file_with_the_bot_token(inbox, monkeypatch):
    from chalicelib.accounts import register_account

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN_77", "77:secret-bot-token")
    register_account("telegram", "77", "Bot", {"TELEGRAM_BOT_TOKEN": "TELEGRAM_BOT_TOKEN_77"})
    conversation_id, message_id = _stored("telegram", "77", {"type": "photo", "file_id": "AgAC_big",
                                                             "file_size": 10})
    responses.add(responses.GET, "https://api.telegram.org/bot77:secret-bot-token/getFile?file_id=AgAC_big",
                  json={"ok": True, "result": {"file_id": "AgAC_big", "file_path": "photos/file_1.jpg"}})
    responses.add(responses.GET, "https://api.telegram.org/file/bot77:secret-bot-token/photos/file_1.jpg",
                  body=b"PNGDATA", content_type="image/png")
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
    assert response.status_code == 200 and response.body == b"PNGDATA"
    assert response.headers["Content-Type"] == "image/png"
    assert "secret-bot-token" not in json.dumps(dict(response.headers))


@responses.activate
def test_whatsapp_media_id_is_resolved_with_the_token(inbox, monkeypatch):
    from chalicelib.accounts import register_account

    monkeypatch.setenv("WHATSAPP_TOKEN", "wa-token")
    register_account("whatsapp", "106540352242922", "WA")
    conversation_id, message_id = _stored("whatsapp", "106540352242922", {"type": "document", "media_id": "9001",
                                                                          "mime_type": "application/pdf",
                                                                          "filename": "../../etc/pass wd.pdf"})
    responses.add(responses.GET, "https://graph.facebook.com/v21.0/9001",
                  json={"url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=9001"},
                  match=[responses.matchers.header_matcher({"Authorization": "Bearer wa-token"})])
    responses.add(responses.GET, "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=9001",
                  body=b"%PDF-1.7", content_type="application/pdf",
                  match=[responses.matchers.header_matcher({"Authorization": "Bearer wa-token"})])
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
    assert response.status_code == 200 and response.body == b"%PDF-1.7"
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="etc_pass_wd.pdf"'


# --- server-side request forgery -----------------------------------------------------------------
# Attachment URLs come from customers. A loopback server stands for an internal service; a
# sys.audit hook records every socket connect the route makes (Python raises "socket.connect"
# for each), so "no connection" is observed, not assumed.

_CONNECTS: list = []
_WATCHING: list = []


def _audit(event, args):
    if event == "socket.connect" and _WATCHING:
        _CONNECTS.append(args[1])


@pytest.fixture
def connects():
    import sys

    if not getattr(sys, "_socialinbox_media_audit", False):
        sys.addaudithook(_audit)  # hooks cannot be removed: this one records only while watching
        sys._socialinbox_media_audit = True
    _CONNECTS.clear()
    _WATCHING.append(True)
    yield _CONNECTS
    _WATCHING.clear()


@pytest.fixture
def loopback():
    """A TCP server on 127.0.0.1 counting the connections it accepts (and answering a tiny
    HTTP 200 so a fetch the guard lets through visibly succeeds)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 8\r\n"
                             b"Connection: close\r\n\r\nINTERNAL")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.close()
    thread.join(timeout=5)


def _loopback_connects(seen):
    return [address for address in seen if isinstance(address, tuple) and not _public(address[0])]


def _public(host):
    from chalicelib.safe_url import public_address

    return public_address(str(host))


HOSTILE_URLS = [
    "https://127.0.0.1:{port}\\@x.fbcdn.net/",
    "https://127.0.0.1:{port}\\\\@x.fbcdn.net/",
    "HTTPS://127.0.0.1:{port}\\@x.fbcdn.net/",
    "hTTps://127.0.0.1:{port}/x.fbcdn.net",
    "https://x.fbcdn.net@127.0.0.1:{port}/",
    "https://x.fbcdn.net:pw@127.0.0.1:{port}/",
    "https://scontent.xx.fbcdn.net:{port}/photo.jpg",
    "https://127.0.0.1:{port}/.fbcdn.net/",
    "https://[::ffff:127.0.0.1]:{port}/x.fbcdn.net",
    "https://scontent.xx.fbcdn.net\\@127.0.0.1:{port}/",
    "https://scontent.xx.fbcdn.net/photo.jpg\\x",
    "https://scontent.xx.fbcdn.net /photo.jpg",
    "https://scontent.xx.fbcdn.net\t/photo.jpg",
    "http://scontent.xx.fbcdn.net:{port}/photo.jpg",
    "//127.0.0.1:{port}/x.fbcdn.net",
]


def test_hostile_attachment_urls_open_no_connection(inbox, monkeypatch, loopback, connects):
    from chalicelib.runtime import runtime

    port, accepted = loopback
    for name in ("TELEGRAM_API_BASE_URL", "META_GRAPH_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runtime.use_resolver(lambda host, _port: [(2, "127.0.0.1")])  # every name is the loopback server
    inbox.add_account("messenger", PAGE)
    conversation_id, message_id = _stored("messenger", PAGE, {"type": "file", "url": "https://x.fbcdn.net/"})
    for template in HOSTILE_URLS:
        url = template.format(port=port)
        _replace_attachment(conversation_id, {"type": "file", "url": url})
        response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
        assert response.status_code == 404 and b"INTERNAL" not in response.body, url
        assert accepted == [] and _loopback_connects(connects) == [], url


def _replace_attachment(conversation_id, attachment):
    from chalicelib.models import Message

    [message] = list(Message.query(conversation_id))
    message.update(actions=[Message.attachments.set([attachment])])


NON_PUBLIC = [
    ["127.0.0.1"], ["::1"], ["::ffff:127.0.0.1"], ["::ffff:10.0.0.5"], ["10.1.2.3"], ["172.16.0.1"],
    ["192.168.1.1"], ["169.254.169.254"], ["fe80::1"], ["fc00::1"], ["100.64.0.1"], ["0.0.0.0"], ["::"],
    ["64:ff9b::7f00:1"], ["2002:7f00:1::1"], ["224.0.0.1"], ["157.240.1.1", "127.0.0.1"],
]


def test_a_media_host_resolving_to_a_non_public_address_is_never_connected(inbox, monkeypatch, connects):
    """DNS answers chosen by whoever controls the name (rebinding included): the address is
    checked when the socket is opened, and the socket is opened to the checked address."""
    from chalicelib.runtime import runtime

    for name in ("TELEGRAM_API_BASE_URL", "META_GRAPH_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    inbox.add_account("messenger", PAGE)
    conversation_id, message_id = _stored("messenger", PAGE, {"type": "image", "url": CDN})
    for addresses in NON_PUBLIC:
        asked = []
        runtime.use_resolver(lambda host, port: asked.append((host, port)) or [
            (10 if ":" in a else 2, a) for a in addresses])
        response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
        assert response.status_code == 404, addresses
        assert asked == [("scontent.xx.fbcdn.net", 443)], addresses  # at connect time, the checked host
        assert _loopback_connects(connects) == [], addresses
        assert not any(a[0] in addresses for a in connects if isinstance(a, tuple)), addresses


def test_the_configured_sandbox_base_is_the_one_loopback_target(inbox, monkeypatch, loopback, connects):
    """The positive control: the same harness sees a connection when one is allowed (make run
    points META_GRAPH_BASE_URL at the loopback sandbox), and only to that host and port."""
    port, accepted = loopback
    monkeypatch.setenv("META_GRAPH_BASE_URL", f"http://127.0.0.1:{port}")
    inbox.add_account("messenger", PAGE)
    conversation_id, message_id = _stored("messenger", PAGE, {"type": "image", "url": f"http://127.0.0.1:{port}/m.png"})
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
    assert response.status_code == 200 and response.body == b"INTERNAL"
    assert accepted == [1] and ("127.0.0.1", port) in connects
    monkeypatch.setenv("META_GRAPH_BASE_URL", f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}")
    assert _get(inbox, f"/api/media/{conversation_id}/{message_id}/0").status_code == 404
    assert accepted == [1]


@responses.activate
def test_a_redirect_is_never_followed(messenger_photo):
    inbox, conversation_id, message_id = messenger_photo
    responses.add(responses.GET, CDN, status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    response = _get(inbox, f"/api/media/{conversation_id}/{message_id}/0")
    assert response.status_code == 404
    assert [call.request.url for call in responses.calls] == [CDN]
