"""Hostile input on the new file paths: uploads into Telegram, Instagram and X conversations
(junk, polyglots, hostile file names and query values) and hostile platform answers to the X
media upload and to Telegram / Instagram file sends. Never a 5xx, never a token in an answer,
never a file name in our storage key, and what our media endpoint serves back is typed safely."""
from __future__ import annotations

import json

import pytest
import responses

from tests.test_attachments_channels import (BOT_TOKEN, IG, IG_GRAPH, PDF, PNG, TELEGRAM, X_API, instagram_dm,
                                             media, reply, send_queued, stored_objects, telegram_dm, upload,
                                             x_conversation)
from tests.test_attachments_channels import _platform_settings  # noqa: F401  (autouse here too)

BODIES = [b"", b"\x00" * 64, b"<svg onload=alert(1)>", b"\xff\xd8", b"%PDF", b"GIF89a" + b"\x00" * 20,
          b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script>",  # a PNG signature before HTML: a polyglot
          b"%PDF-1.7\n<script>alert(document.cookie)</script>", b"\xed\xa0\x80" * 50]
NAMES = ["..%2F..%2Fetc%2Fpasswd", "%00.png", "%ED%A0%80.png", "a%0D%0AContent-Type:%20text/html.png",
         "%E2%80%AEgnp.exe", "x" * 2000 + ".png", "<img src=x onerror=alert(1)>.pdf", "%2F", "CON.png"]


@pytest.fixture
def chats(inbox):
    return inbox, {"telegram": telegram_dm(inbox), "instagram": instagram_dm(inbox),
                   "x": x_conversation(inbox, "activity_dm_received.json")}


@responses.activate
def test_hostile_uploads_into_the_new_channels_never_answer_5xx_and_never_name_the_key(chats):
    inbox, conversations = chats
    responses.post(f"{X_API}/2/media/upload", json={"data": {"id": "1880028106020515840"}})
    for channel, conversation_id in conversations.items():
        for body in BODIES:
            status, answer = upload(inbox, conversation_id, body, "photo.png")
            assert status < 500, (channel, body[:20], answer)
            if status == 201:  # only the polyglots with a real signature pass the content check
                assert body[:4] in (b"\x89PNG", b"%PDF")
        for name in NAMES:
            status, answer = upload(inbox, conversation_id, PNG, name)
            assert status in (201, 400), (channel, name, answer)
            if status == 201:
                assert answer["storage_key"].startswith(f"outbound/{conversation_id}/")
                assert all(c not in answer["filename"] for c in "/\\<>\r\n\x00\u202e")
                assert len(answer["filename"]) <= 120 and answer["filename"].endswith(".png")
                assert answer["storage_key"].rsplit("/", 1)[1].isalnum()
    assert all(key.startswith("outbound/") for key in stored_objects())


@responses.activate
def test_a_polyglot_is_served_back_as_its_checked_type_never_as_html(chats):
    inbox, conversations = chats
    conversation_id = conversations["telegram"]
    polyglot = b"%PDF-1.7\n<html><script>alert(1)</script></html>"
    uploaded = upload(inbox, conversation_id, polyglot, "evil.html")[1]
    assert uploaded["mime_type"] == "application/pdf" and uploaded["filename"] == "evil.pdf"
    assert reply(inbox, conversation_id, {"client_id": "p-1", "attachment": uploaded["token"]})[0] == 202
    responses.post(f"{TELEGRAM}/bot{BOT_TOKEN}/sendDocument", json={"ok": True, "result": {
        "message_id": 9, "chat": {"id": 42, "type": "private"}, "date": 1}})
    assert send_queued() == "sent"
    sent = inbox.messages(conversation_id)[-1]
    shown = media(inbox, conversation_id, sent["id"], accept="application/pdf")
    assert shown.status_code == 200 and shown.body == polyglot
    assert shown.headers["Content-Type"] == "application/pdf"
    assert shown.headers["Content-Disposition"].startswith("attachment;")
    assert shown.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in shown.headers["Content-Security-Policy"]


@responses.activate
@pytest.mark.parametrize("answer", [
    {"body": "<html>proxy error</html>", "status": 200},
    {"json": {"data": []}, "status": 200},
    {"json": {"data": {"id": {"$gt": ""}}}, "status": 200},
    {"json": {"data": {"id": True}}, "status": 200},
    {"json": [1, 2, 3], "status": 400},
    {"json": {"errors": [{"message": "x" * 5000}]}, "status": 403},
    {"json": {"title": "Unauthorized"}, "status": 401},
    {"body": "", "status": 503},
])
def test_hostile_x_media_upload_answers_are_a_502_with_a_bounded_reason(inbox, answer):
    conversation_id = x_conversation(inbox, "activity_dm_received.json")
    responses.post(f"{X_API}/2/media/upload", **answer)
    status, body = upload(inbox, conversation_id, PNG)
    assert status == 502, body
    assert "x-user-token" not in json.dumps(body) and len(body["Message"]) < 1000


@responses.activate
@pytest.mark.parametrize("answer, outcome", [
    ({"body": "<html>bad gateway</html>", "status": 502}, "unknown"),
    ({"json": {"ok": True, "result": "not an object"}, "status": 200}, "unknown"),
    ({"json": {"ok": False, "error_code": 400, "description": "\u202e\x00" + "y" * 5000}, "status": 400}, "failed"),
    ({"json": {"ok": False, "error_code": 429, "parameters": {"retry_after": "soon"}}, "status": 429}, "retry"),
])
def test_hostile_telegram_answers_to_a_file_send_settle_the_reply_without_leaking_the_token(
        inbox, answer, outcome):
    conversation_id = telegram_dm(inbox)
    token = upload(inbox, conversation_id, PNG)[1]["token"]
    assert reply(inbox, conversation_id, {"client_id": "h-1", "attachment": token})[0] == 202
    responses.post(f"{TELEGRAM}/bot{BOT_TOKEN}/sendPhoto", **answer)
    assert send_queued() == outcome
    sent = inbox.messages(conversation_id)[-1]
    assert BOT_TOKEN not in json.dumps(sent)


@responses.activate
def test_a_hostile_instagram_answer_to_a_file_send_is_unknown_never_resent(inbox):
    conversation_id = instagram_dm(inbox)
    token = upload(inbox, conversation_id, PDF)[1]["token"]
    assert reply(inbox, conversation_id, {"client_id": "h-2", "attachment": token})[0] == 202
    responses.post(f"{IG_GRAPH}/{IG}/messages", body="<html>oops</html>", status=500)
    assert send_queued() == "unknown"
    assert len(responses.calls) == 1
