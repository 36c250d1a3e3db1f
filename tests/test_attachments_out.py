"""Attachments out: an agent's file checked by content and size, handed to WhatsApp's media store
(`POST /{phone-number-id}/media`), then sent by its id with the reply's text as caption; the
signed attachment token binds it to its conversation; the sent file shows in the thread through
our media endpoint like a received one (offline, against the sandbox)."""
from __future__ import annotations

import base64
import json
import time

import pytest
import responses

from tests.helpers import PAGE, PHONE, messenger, page_delivery, send_queued_whatsapp_reply, whatsapp_delivery

GRAPH = "https://graph.facebook.com/v21.0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


@pytest.fixture(autouse=True)
def _whatsapp_credentials(monkeypatch):
    monkeypatch.delenv("META_GRAPH_BASE_URL", raising=False)
    monkeypatch.setenv("WHATSAPP_TOKEN", "wa-test-token")


@pytest.fixture
def open_thread(inbox):
    """A WhatsApp conversation whose customer wrote a minute ago (the window is open)."""
    inbox.add_account("whatsapp", PHONE, "Demo number")
    inbox.post_meta(whatsapp_delivery("wamid.F1", "447700900002", int(time.time()) - 60, "send me the receipt"))
    inbox.process()
    [conversation] = inbox.conversations(channel="whatsapp")
    return inbox, conversation["id"]


def _upload(inbox, conversation_id, data, filename=None, content_type="application/octet-stream"):
    path = f"/api/conversations/{conversation_id}/attachments" + (f"?filename={filename}" if filename else "")
    response = inbox.client.http.post(path, body=data, headers={
        "Authorization": "Bearer " + inbox.login_admin(), "Content-Type": content_type})
    return response.status_code, (json.loads(response.body) if response.body else None)


def _reply(inbox, conversation_id, body):
    return inbox.call("POST", f"/api/conversations/{conversation_id}/messages", body)


@responses.activate
def test_an_image_is_uploaded_to_whatsapp_then_sent_by_its_id_with_the_caption(open_thread):
    inbox, conversation_id = open_thread
    responses.post(f"{GRAPH}/{PHONE}/media", json={"id": "4490000000000001"})
    status, uploaded = _upload(inbox, conversation_id, PNG, filename="..%2F..%2Fetc%2Fshot.PNG.exe",
                               content_type="image/jpeg")  # the browser's guess is not what counts
    assert status == 201, uploaded
    assert {k: uploaded[k] for k in ("type", "mime_type", "size", "media_id")} == {
        "type": "image", "mime_type": "image/png", "size": len(PNG), "media_id": "4490000000000001"}
    assert "/" not in uploaded["filename"] and uploaded["filename"].endswith(".png")
    [call] = responses.calls
    assert call.request.headers["Authorization"] == "Bearer wa-test-token"
    assert b'name="messaging_product"' in call.request.body and PNG in call.request.body
    assert b"image/png" in call.request.body

    status, shown = _reply(inbox, conversation_id, {"client_id": "f-1", "text": "Here it is",
                                                    "attachment": uploaded["token"]})
    assert status == 202, shown
    assert shown["type"] == "image" and shown["attachments"][0]["media_id"] == "4490000000000001"
    sent = send_queued_whatsapp_reply()
    assert sent["type"] == "image" and sent["image"] == {"id": "4490000000000001", "caption": "Here it is"}
    assert "text" not in sent


@responses.activate
def test_a_pdf_goes_as_a_document_with_its_name_and_without_a_caption_when_there_is_no_text(open_thread):
    inbox, conversation_id = open_thread
    responses.post(f"{GRAPH}/{PHONE}/media", json={"id": "4490000000000002"})
    status, uploaded = _upload(inbox, conversation_id, PDF, filename="Receipt%20A-7.pdf")
    assert status == 201 and uploaded["type"] == "document" and uploaded["filename"] == "Receipt A-7.pdf"
    status, shown = _reply(inbox, conversation_id, {"client_id": "f-2", "attachment": uploaded["token"]})
    assert status == 202 and shown["type"] == "document"
    assert send_queued_whatsapp_reply()["document"] == {"id": "4490000000000002", "filename": "Receipt A-7.pdf"}


@responses.activate
@pytest.mark.parametrize("data, status, reason", [
    (b"GIF89a" + b"\x00" * 20, 422, "attachment_type"),
    (b"MZ\x90\x00" + b"\x00" * 20, 422, "attachment_type"),  # a Windows executable named .png
    (b"<svg onload=alert(1)>", 422, "attachment_type"),
    (b"<html><script>alert(1)</script>", 422, "attachment_type"),
    (b"", 422, "bad_attachment"),
    (JPEG + b"\x00" * (4 * 1024 * 1024), 413, None),
])
def test_files_that_are_not_a_sendable_type_by_content_or_too_large_are_refused_before_any_upload(
        open_thread, data, status, reason):
    inbox, conversation_id = open_thread
    answer_status, answer = _upload(inbox, conversation_id, data, filename="photo.png")
    assert answer_status == status, answer
    if reason:
        assert answer["reason"] == reason
    assert len(responses.calls) == 0


@responses.activate
def test_a_channel_that_cannot_take_files_says_so_before_upload(inbox):
    from tests.helpers import fixture_bytes

    inbox.add_account("facebook", "104000000000099", "Page")
    assert inbox.post_meta(fixture_bytes("meta", "facebook_comment_add.json")).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    status, answer = _upload(inbox, conversation["id"], PNG)
    assert status == 422 and answer["reason"] == "attachments_not_supported" and "WhatsApp" in answer["Message"]
    assert len(responses.calls) == 0
    assert _upload(inbox, "c_nope", PNG)[0] == 404


@responses.activate
def test_a_refused_upload_is_a_502_with_the_platforms_reason(open_thread):
    inbox, conversation_id = open_thread
    responses.post(f"{GRAPH}/{PHONE}/media", status=400,
                   json={"error": {"code": 131053, "message": "Media upload error"}})
    status, answer = _upload(inbox, conversation_id, JPEG)
    assert status == 502 and "131053" in answer["Message"] and "wa-test-token" not in json.dumps(answer)


@responses.activate
def test_only_a_token_the_upload_signed_for_this_conversation_and_still_fresh_is_sent(open_thread):
    from chalicelib.runtime import runtime

    inbox, conversation_id = open_thread
    responses.post(f"{GRAPH}/{PHONE}/media", json={"id": "4490000000000003"})
    token = _upload(inbox, conversation_id, JPEG)[1]["token"]
    body, mac = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged["a"]["media_id"] = "someone-elses-media"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    for bad in (forged_body + "." + mac, token + "x", "not-a-token", 42, {"media_id": "x"}, "a.b.c"):
        status, answer = _reply(inbox, conversation_id, {"client_id": "bad", "attachment": bad})
        assert status == 422 and answer["reason"] == "bad_attachment", (bad, answer)
    other = inbox.call("POST", f"/api/conversations/{conversation_id}/messages",
                       {"client_id": "n", "kind": "note", "text": "x", "attachment": token})
    assert other[0] == 400
    later = time.time() + 25 * 3600
    runtime.use_clock(lambda: later)
    try:
        status, answer = _reply(inbox, conversation_id, {"client_id": "late", "attachment": token})
    finally:
        runtime.use_clock(None)
    assert status == 422 and answer["reason"] == "attachment_expired"
    assert [m["direction"] for m in inbox.messages(conversation_id)] == ["in"]


@responses.activate
def test_a_caption_longer_than_whatsapp_takes_is_422(open_thread):
    inbox, conversation_id = open_thread
    responses.post(f"{GRAPH}/{PHONE}/media", json={"id": "4490000000000004"})
    token = _upload(inbox, conversation_id, JPEG)[1]["token"]
    status, answer = _reply(inbox, conversation_id, {"client_id": "c", "text": "x" * 1025, "attachment": token})
    assert status == 422 and answer["reason"] == "text_too_long"


def test_the_sandbox_takes_the_upload_and_the_sent_file_shows_in_the_thread(open_thread, monkeypatch):
    from chalicelib.local import sandbox
    from chalicelib.outbound import worker
    from chalicelib.runtime import runtime

    inbox, conversation_id = open_thread
    platform, env = sandbox.start(None, secrets={"WHATSAPP_TOKEN": "wa-test-token"}.get)
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        status, uploaded = _upload(inbox, conversation_id, PNG, filename="shot.png")
        assert status == 201, uploaded
        status, shown = _reply(inbox, conversation_id, {"client_id": "sb-1", "text": "see", "attachment": uploaded["token"]})
        assert status == 202
        sqs = runtime.client("sqs")
        [record] = sqs.receive_message(QueueUrl=runtime.queue_url("outbox"), MaxNumberOfMessages=1)["Messages"]
        assert worker.process_body(record["Body"]) == "sent"
        [sent] = [r for r in platform.requests if r["path"].endswith("/messages")]
        assert sent["body"]["image"]["id"] == uploaded["media_id"]
        media = inbox.client.http.get(f"/api/media/{conversation_id}/{shown['id']}/0",
                                      headers={"Authorization": "Bearer " + inbox.login_admin(), "Accept": "image/png"})
        assert media.status_code == 200 and media.body == PNG
        assert media.headers["Content-Type"] == "image/png"
    finally:
        platform.close()


@responses.activate
def test_messenger_takes_the_file_by_the_attachment_upload_api_and_sends_it_without_text(inbox, monkeypatch):
    from chalicelib.outbound import worker
    from chalicelib.runtime import runtime

    monkeypatch.setenv("META_PAGE_TOKEN", "page-test-token")
    inbox.add_account("messenger", PAGE, "Demo page")
    inbox.post_meta(page_delivery(messenger("m-f2", "psid-f2", int(time.time() * 1000), "the invoice?")))
    inbox.process()
    [conversation] = inbox.conversations()
    responses.post(f"{GRAPH}/me/message_attachments", json={"attachment_id": "1857777774821032"})
    status, uploaded = _upload(inbox, conversation["id"], PDF, filename="invoice.pdf")
    assert status == 201 and uploaded["media_id"] == "1857777774821032"
    [call] = [c for c in responses.calls if c.request.url.endswith("/message_attachments")]
    assert call.request.headers["Authorization"] == "Bearer page-test-token"
    assert b'name="filedata"' in call.request.body and b'"is_reusable": true' in call.request.body
    status, answer = _reply(inbox, conversation["id"], {"client_id": "m-1", "text": "hi", "attachment": uploaded["token"]})
    assert status == 422 and answer["reason"] == "caption_not_supported"
    status, shown = _reply(inbox, conversation["id"], {"client_id": "m-2", "attachment": uploaded["token"]})
    assert status == 202 and shown["type"] == "document"
    sqs = runtime.client("sqs")
    [record] = sqs.receive_message(QueueUrl=runtime.queue_url("outbox"), MaxNumberOfMessages=1)["Messages"]
    responses.post(f"{GRAPH}/{PAGE}/messages", json={"recipient_id": "psid-f2", "message_id": "m_file1"})
    assert worker.process_body(record["Body"]) == "sent"
    sent = json.loads(responses.calls[-1].request.body)
    assert sent["recipient"] == {"id": "psid-f2"} and sent["messaging_type"] == "RESPONSE"
    assert sent["message"]["attachment"] == {"type": "file", "payload": {"attachment_id": "1857777774821032"}}
    assert "text" not in sent["message"] and sent["message"]["metadata"]
