"""Files out on Telegram, Instagram and X: the upload is checked (content, the platform's types
and limits, whether the thread can carry a file at all) and kept in our own bucket first (moto),
then sent the way each platform takes it: Telegram sendPhoto / sendDocument and Instagram DMs by
a pre-signed URL of our copy made at send time, X by the media id `POST /2/media/upload` answered.
The sent file shows in the thread from our copy; every failure names its reason."""
from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

import pytest
import responses

from tests.helpers import fixture_json

GRAPH = "https://graph.facebook.com/v21.0"
IG_GRAPH = "https://graph.instagram.com/v21.0"
TELEGRAM = "https://api.telegram.org"
X_API = "https://api.x.com"
BOT, BOT_TOKEN = "1000000001", "1000000001:bot-secret"
IG = "17841400000000099"
X_ACCOUNT, X_CUSTOMER = "1111111111111111111", "2222222222222222222"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


@pytest.fixture(autouse=True)
def _platform_settings(monkeypatch):
    for name in ("META_GRAPH_BASE_URL", "INSTAGRAM_GRAPH_BASE_URL", "X_API_BASE_URL", "TELEGRAM_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "ig-login-token")
    monkeypatch.setenv("X_OAUTH2_USER_TOKEN", "x-user-token")
    monkeypatch.setenv("X_CONSUMER_KEY", "")  # the OAuth 2.0 user token, not the dev OAuth 1.0a defaults
    monkeypatch.setenv("X_REPLY_SUMMONS_CHECK", "off")


def _only(inbox, **filters):
    [conversation] = inbox.conversations(**filters)
    return conversation["id"]


def telegram_dm(inbox):
    inbox.add_account("telegram", BOT, "Bot")
    inbox.post_telegram({"update_id": 1, "message": {"message_id": 5, "date": int(time.time()), "text": "the menu?",
                                                     "chat": {"id": 42, "type": "private"},
                                                     "from": {"id": 42, "is_bot": False, "first_name": "Tom"}}},
                        bot=BOT)
    inbox.process()
    return _only(inbox, channel="telegram")


@pytest.fixture
def telegram_chat(inbox):
    return inbox, telegram_dm(inbox)


def instagram_dm(inbox, text="do you deliver?"):
    now = int(time.time() * 1000)
    inbox.add_account("instagram", IG, "@acmecoffee")
    inbox.post_meta({"object": "instagram", "entry": [{"id": IG, "time": now, "messaging": [{
        "sender": {"id": "7700000000000001"}, "recipient": {"id": IG}, "timestamp": now,
        "message": {"mid": f"aWdfZAG1f{now}", "text": text}}]}]})
    inbox.process()
    return _only(inbox, channel="instagram")


def x_conversation(inbox, fixture):
    inbox.add_account("x", X_ACCOUNT)
    assert inbox.post_x(json.dumps(fixture_json("x", fixture)).encode()).status_code == 200
    inbox.process()
    return _only(inbox, channel="x")


def upload(inbox, conversation_id, data, filename="file"):
    response = inbox.client.http.post(f"/api/conversations/{conversation_id}/attachments?filename={filename}",
                                      body=data, headers={"Authorization": "Bearer " + inbox.login_admin(),
                                                          "Content-Type": "application/octet-stream"})
    return response.status_code, json.loads(response.body)


def reply(inbox, conversation_id, body):
    return inbox.call("POST", f"/api/conversations/{conversation_id}/messages", body)


def send_queued():
    from chalicelib.outbound import worker
    from chalicelib.runtime import runtime

    [record] = runtime.client("sqs").receive_message(QueueUrl=runtime.queue_url("outbox"),
                                                     MaxNumberOfMessages=1)["Messages"]
    return worker.process_body(record["Body"])


def stored_objects():
    from chalicelib import config
    from chalicelib.runtime import runtime

    listed = runtime.client("s3").list_objects_v2(Bucket=config.attachments_bucket())
    return [item["Key"] for item in listed.get("Contents", [])]


def stored(key):
    from chalicelib import config
    from chalicelib.runtime import runtime

    return runtime.client("s3").get_object(Bucket=config.attachments_bucket(), Key=key)["Body"].read()


def assert_presigned_url_of(url, key):
    from chalicelib import config

    parts = urlsplit(url)
    assert parts.scheme == "https" and config.attachments_bucket() in parts.netloc + parts.path
    assert parts.path.endswith(key) and "Signature=" in parts.query and "Expires=" in parts.query


def media(inbox, conversation_id, message_id, accept="image/png"):
    return inbox.client.http.get(f"/api/media/{conversation_id}/{message_id}/0",
                                 headers={"Authorization": "Bearer " + inbox.login_admin(), "Accept": accept})


# --- Telegram ------------------------------------------------------------------------------------


@responses.activate
def test_telegram_takes_an_image_by_sendphoto_with_the_caption_from_our_stored_copy(telegram_chat):
    inbox, conversation_id = telegram_chat
    status, uploaded = upload(inbox, conversation_id, PNG, "menu.png")
    assert status == 201, uploaded
    assert "media_id" not in uploaded and uploaded["type"] == "image"
    assert stored_objects() == [uploaded["storage_key"]] and stored(uploaded["storage_key"]) == PNG
    assert uploaded["storage_key"].startswith(f"outbound/{conversation_id}/")
    assert len(responses.calls) == 0  # nothing reaches Telegram before the reply is sent
    status, shown = reply(inbox, conversation_id, {"client_id": "t-1", "text": "Today's menu", "attachment": uploaded["token"]})
    assert status == 202 and shown["type"] == "image"
    responses.post(f"{TELEGRAM}/bot{BOT_TOKEN}/sendPhoto", json={"ok": True, "result": {
        "message_id": 77, "chat": {"id": 42, "type": "private"}, "date": int(time.time()), "photo": []}})
    assert send_queued() == "sent"
    [call] = responses.calls
    body = json.loads(call.request.body)
    assert body["chat_id"] == 42 and body["caption"] == "Today's menu" and "text" not in body
    assert_presigned_url_of(body["photo"], uploaded["storage_key"])
    [_, sent] = inbox.messages(conversation_id)
    assert sent["delivery_status"] == "sent" and sent["platform_message_id"] == "42:77"
    assert "url" not in sent["attachments"][0]  # the signed URL is never stored
    shown_file = media(inbox, conversation_id, sent["id"])
    assert shown_file.status_code == 200 and shown_file.body == PNG
    assert shown_file.headers["Content-Type"] == "image/png"


@responses.activate
def test_telegram_takes_a_pdf_by_senddocument_and_its_refusal_names_the_reason(telegram_chat):
    inbox, conversation_id = telegram_chat
    token = upload(inbox, conversation_id, PDF, "menu.pdf")[1]["token"]
    assert reply(inbox, conversation_id, {"client_id": "t-2", "attachment": token})[0] == 202
    responses.post(f"{TELEGRAM}/bot{BOT_TOKEN}/sendDocument", status=400, json={
        "ok": False, "error_code": 400, "description": "Bad Request: failed to get HTTP URL content"})
    assert send_queued() == "failed"
    body = json.loads(responses.calls[0].request.body)
    assert "document" in body and "caption" not in body
    [_, sent] = inbox.messages(conversation_id)
    assert sent["delivery_status"] == "failed"
    assert "failed to get HTTP URL content" in sent["delivery_error"] and BOT_TOKEN not in sent["delivery_error"]


@responses.activate
def test_a_caption_longer_than_telegram_takes_is_422_before_storing_the_reply(telegram_chat):
    inbox, conversation_id = telegram_chat
    token = upload(inbox, conversation_id, PNG)[1]["token"]
    status, answer = reply(inbox, conversation_id, {"client_id": "t-3", "text": "x" * 1025, "attachment": token})
    assert status == 422 and answer["reason"] == "text_too_long"
    assert [m["direction"] for m in inbox.messages(conversation_id)] == ["in"]


@responses.activate
def test_a_file_whose_stored_copy_expired_fails_with_that_reason_and_nothing_is_sent(telegram_chat):
    from chalicelib import config
    from chalicelib.runtime import runtime

    inbox, conversation_id = telegram_chat
    uploaded = upload(inbox, conversation_id, PNG)[1]
    assert reply(inbox, conversation_id, {"client_id": "t-4", "attachment": uploaded["token"]})[0] == 202
    runtime.client("s3").delete_object(Bucket=config.attachments_bucket(), Key=uploaded["storage_key"])
    assert send_queued() == "failed"
    assert len(responses.calls) == 0
    [_, sent] = inbox.messages(conversation_id)
    assert "no longer in our storage" in sent["delivery_error"]
    assert media(inbox, conversation_id, sent["id"]).status_code == 404


# --- Instagram -----------------------------------------------------------------------------------


@responses.activate
def test_instagram_takes_a_file_by_the_url_of_our_copy_and_without_text(inbox):
    conversation_id = instagram_dm(inbox)
    status, uploaded = upload(inbox, conversation_id, PDF, "price list.pdf")
    assert status == 201 and uploaded["type"] == "document" and "media_id" not in uploaded
    status, answer = reply(inbox, conversation_id, {"client_id": "i-1", "text": "here", "attachment": uploaded["token"]})
    assert status == 422 and answer["reason"] == "caption_not_supported"
    assert reply(inbox, conversation_id, {"client_id": "i-2", "attachment": uploaded["token"]})[0] == 202
    responses.post(f"{IG_GRAPH}/{IG}/messages", json={"recipient_id": "7700000000000001", "message_id": "aWdfZAGout"})
    assert send_queued() == "sent"
    [call] = responses.calls
    assert call.request.headers["Authorization"] == "Bearer ig-login-token"
    body = json.loads(call.request.body)
    assert body["recipient"] == {"id": "7700000000000001"} and "text" not in body["message"]
    assert body["message"]["attachment"]["type"] == "file"
    assert_presigned_url_of(body["message"]["attachment"]["payload"]["url"], uploaded["storage_key"])


@responses.activate
def test_instagram_comment_threads_cannot_carry_a_file_and_say_so_before_anything_is_stored(inbox):
    from tests.helpers import fixture_bytes

    inbox.add_account("instagram", IG, "@acmecoffee")
    assert inbox.post_meta(fixture_bytes("meta", "instagram_comment.json")).status_code == 200
    inbox.process()
    conversation_id = _only(inbox, channel="instagram")
    status, answer = upload(inbox, conversation_id, PNG)
    assert status == 422 and answer["reason"] == "attachments_not_supported"
    assert "Instagram comment replies cannot carry a file" in answer["Message"]
    assert stored_objects() == [] and len(responses.calls) == 0


# --- X ------------------------------------------------------------------------------------------


def _media_upload_form(request):
    body = request.body if isinstance(request.body, bytes) else request.body.encode()
    fields = dict(re.findall(rb'name="(media_category|media_type)"\r\n\r\n([^\r]*)', body))
    return {k.decode(): v.decode() for k, v in fields.items()}, body


@responses.activate
def test_x_dm_image_is_uploaded_to_x_then_sent_by_its_media_id(inbox):
    conversation_id = x_conversation(inbox, "activity_dm_received.json")
    responses.post(f"{X_API}/2/media/upload", json={"data": {"id": "1880028106020515840",
                                                             "media_key": "3_1880028106020515840",
                                                             "expires_after_secs": 86400}})
    status, uploaded = upload(inbox, conversation_id, PNG, "map.png")
    assert status == 201 and uploaded["media_id"] == "1880028106020515840", uploaded
    assert stored(uploaded["storage_key"]) == PNG  # our copy first, whatever X keeps
    [call] = responses.calls
    fields, raw = _media_upload_form(call.request)
    assert fields == {"media_category": "dm_image", "media_type": "image/png"} and PNG in raw
    assert call.request.headers["Authorization"] == "Bearer x-user-token"
    assert reply(inbox, conversation_id, {"client_id": "x-1", "text": "this way", "attachment": uploaded["token"]})[0] == 202
    responses.post(f"{X_API}/2/dm_conversations/with/{X_CUSTOMER}/messages",
                   status=201, json={"data": {"dm_conversation_id": "1-2", "dm_event_id": "1582838"}})
    assert send_queued() == "sent"
    assert json.loads(responses.calls[-1].request.body) == {"text": "this way",
                                                           "attachments": [{"media_id": "1880028106020515840"}]}


@responses.activate
def test_x_reply_image_goes_as_a_tweet_image_in_the_posts_media(inbox):
    conversation_id = x_conversation(inbox, "activity_mention.json")
    responses.post(f"{X_API}/2/media/upload", json={"data": {"id": "1880028106020515841"}})
    uploaded = upload(inbox, conversation_id, PNG)[1]
    assert _media_upload_form(responses.calls[0].request)[0]["media_category"] == "tweet_image"
    assert reply(inbox, conversation_id, {"client_id": "x-2", "attachment": uploaded["token"]})[0] == 202
    responses.post(f"{X_API}/2/tweets", status=201, json={"data": {"id": "2080765813578199999", "text": ""}})
    assert send_queued() == "sent"
    sent = json.loads(responses.calls[-1].request.body)
    assert sent == {"media": {"media_ids": ["1880028106020515841"]},
                    "reply": {"in_reply_to_tweet_id": "2080765813578191303"}}


@responses.activate
def test_x_takes_no_documents_and_a_refused_media_upload_names_xs_reason(inbox):
    conversation_id = x_conversation(inbox, "activity_dm_received.json")
    status, answer = upload(inbox, conversation_id, PDF)
    assert status == 422 and answer["reason"] == "attachment_type" and "images" in answer["Message"]
    responses.post(f"{X_API}/2/media/upload", status=400, json={
        "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
        "errors": [{"message": "media type unrecognized."}]})
    status, answer = upload(inbox, conversation_id, PNG)
    assert status == 502 and "media type unrecognized" in answer["Message"]
    assert "x-user-token" not in json.dumps(answer)


# --- the sandbox (`make run`) -----------------------------------------------------------------


def test_the_sandbox_takes_files_on_telegram_instagram_and_x(inbox, monkeypatch):
    from chalicelib.local import sandbox

    platform, env = sandbox.start(None, secrets={"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "INSTAGRAM_ACCESS_TOKEN": "ig-login-token",
                                                  "X_OAUTH2_USER_TOKEN": f"{X_ACCOUNT}-user-token"}.get)
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("X_OAUTH2_USER_TOKEN", f"{X_ACCOUNT}-user-token")
        chats = {"telegram": telegram_dm(inbox), "instagram": instagram_dm(inbox),
                 "x": x_conversation(inbox, "activity_dm_received.json")}
        for channel, conversation_id in chats.items():
            status, uploaded = upload(inbox, conversation_id, PNG, "shot.png")
            assert status == 201, (channel, uploaded)
            assert reply(inbox, conversation_id, {"client_id": f"sb-{channel}", "attachment": uploaded["token"]})[0] == 202
            assert send_queued() == "sent", channel
            sent = inbox.messages(conversation_id)[-1]
            assert sent["delivery_status"] == "sent" and sent["platform_message_id"], (channel, sent)
            assert media(inbox, conversation_id, sent["id"]).body == PNG
        paths = [r["path"] for r in platform.requests]
        assert any(p.endswith("/sendPhoto") for p in paths)
        assert any(p == "/x/2/media/upload" for p in paths)
        [ig] = [r for r in platform.requests if r["path"].endswith(f"{IG}/messages")]
        assert ig["body"]["message"]["attachment"]["type"] == "image"
    finally:
        platform.close()


def test_the_composer_knows_the_same_rules_as_the_server():
    """static/attach.js says before any upload whether a conversation can carry a file: its RULES
    are the server's (chalicelib.outbound.attachments.composer_rules)."""
    import os

    from chalicelib.outbound import attachments

    path = os.path.join(os.path.dirname(__file__), "..", "chalicelib", "web", "static", "attach.js")
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    found = re.search(r"var RULES = (\{.*?\});  // RULES", source, re.S)
    assert found, "attach.js declares its RULES on one line"
    assert json.loads(found.group(1)) == attachments.composer_rules()
