"""The webhooks' own Lambda function behind its function URL (issue 21): the same handshakes,
signature gate and enqueue as the REST route /webhooks/{platform}, answered in the function URL's
shape. Requests go through the function's handler (app.webhook_url) with the event a function URL
sends (tests/helpers.function_url_event)."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.helpers import compact, li_signature, meta_signature, messenger, page_delivery, x_signature

PAGE = "1234567890"


def _delivery(mid: str = "m-url-1", text: str = "Where is my order?") -> bytes:
    return compact(page_delivery(messenger(mid, "psid-url", 1700000000000, text)))


def _meta_headers(raw: bytes, secret: str = "test_app_secret") -> dict:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(raw, secret)}


@pytest.mark.parametrize("encode", [False, True], ids=["text body", "base64 body"])
def test_a_signed_delivery_is_queued_and_becomes_a_conversation(inbox, encode):
    inbox.add_account("messenger", PAGE)
    raw = _delivery()
    answer = inbox.function_url("POST", "/webhooks/meta", raw, _meta_headers(raw), encode=encode)
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is False
    assert inbox.process() == 1
    [conversation] = inbox.conversations()
    assert conversation["last_message_preview"] == "Where is my order?"


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "0" * 64},
    {"Content-Type": "application/json"},
], ids=["forged signature", "no signature"])
def test_a_forged_delivery_is_rejected_before_anything_is_stored(inbox, headers):
    inbox.add_account("messenger", PAGE)
    answer = inbox.function_url("POST", "/webhooks/meta", _delivery(), headers)
    assert answer["statusCode"] in (401, 403)
    assert "error" in json.loads(answer["body"])
    assert inbox.process() == 0 and inbox.conversations() == []


def test_the_meta_handshake_echoes_the_challenge_only_for_the_verify_token(inbox):
    ok = inbox.function_url("GET", "/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444"
                                   "&hub.verify_token=test_verify_token")
    assert (ok["statusCode"], ok["body"]) == (200, "1158201444")
    assert ok["headers"]["Content-Type"].startswith("text/plain")
    wrong = inbox.function_url("GET", "/webhooks/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess")
    assert wrong["statusCode"] == 403 and "1" != wrong["body"]


@pytest.mark.parametrize("path", [
    "/webhooks/meta?hub.mode=subscribe&hub.challenge=42&hub.verify_token=test_verify_token",
    "/webhooks/meta?hub.mode=subscribe&hub.challenge=42&hub.verify_token=nope",
    "/webhooks/x?crc_token=" + quote("abc+/=def", safe=""),
    "/webhooks/x?crc_token=" + quote('{"a":1}', safe=""),
    "/webhooks/x",
    "/webhooks/linkedin?challengeCode=" + "0f6b8a0e-7c2b-4a57-9b67-3b0a5d1b9e11",
    "/webhooks/linkedin?challengeCode=not%20a%20code",
    "/webhooks/nosuchplatform?x=1",
])
def test_every_handshake_answers_as_the_rest_route_does(inbox, path):
    rest = inbox.client.http.get(path)
    url = inbox.function_url("GET", path)
    assert url["statusCode"] == rest.status_code
    assert url["body"].encode() == rest.body
    assert url["headers"]["Content-Type"] == rest.headers["Content-Type"]


@pytest.mark.parametrize("platform,headers", [
    ("x", lambda raw: {"x-twitter-webhooks-signature": x_signature(raw)}),
    ("x", lambda raw: {"x-twitter-webhooks-signature": x_signature(raw, "forged")}),
    ("linkedin", lambda raw: {"X-LI-Signature": li_signature(raw)}),
    ("linkedin", lambda raw: {"X-LI-Signature": li_signature(raw, "forged")}),
    ("telegram", lambda raw: {"X-Telegram-Bot-Api-Secret-Token": "test_telegram_secret"}),
    ("telegram", lambda raw: {"X-Telegram-Bot-Api-Secret-Token": "guess"}),
], ids=["x signed", "x forged", "linkedin signed", "linkedin forged", "telegram signed", "telegram forged"])
def test_deliveries_of_every_platform_are_gated_as_on_the_rest_route(inbox, platform, headers):
    raw = b'{"update_id": 1, "for_user_id": "1", "notifications": []}'
    rest = inbox.post_webhook(platform, raw, headers(raw))
    queued_by_rest = inbox.process()
    url = inbox.function_url("POST", f"/webhooks/{platform}", raw, dict(headers(raw), **{"Content-Type": "application/json"}))
    assert url["statusCode"] == rest.status_code
    assert inbox.process() == queued_by_rest  # as much queued (or as little) as through the REST route


def test_a_delivery_that_is_not_json_typed_is_refused_with_415_and_not_queued(inbox):
    raw = _delivery()
    answer = inbox.function_url("POST", "/webhooks/meta", raw, dict(_meta_headers(raw), **{"Content-Type": "text/plain"}))
    assert answer["statusCode"] == 415
    assert inbox.process() == 0


def test_a_charset_parameter_on_the_json_type_is_accepted(inbox):
    inbox.add_account("messenger", PAGE)
    raw = _delivery()
    headers = dict(_meta_headers(raw), **{"Content-Type": "application/json; charset=utf-8"})
    assert inbox.function_url("POST", "/webhooks/meta", raw, headers)["statusCode"] == 200
    assert inbox.process() == 1


@pytest.mark.parametrize("method,path,status", [
    ("POST", "/", 404), ("GET", "/api/conversations", 404), ("POST", "/webhooks/", 404),
    ("POST", "/webhooks/meta/extra", 404), ("PUT", "/webhooks/meta", 405), ("DELETE", "/webhooks/meta", 405),
])
def test_anything_but_a_webhook_is_refused_with_a_clear_4xx(inbox, method, path, status):
    answer = inbox.function_url(method, path, b"{}", {"Content-Type": "application/json"})
    assert answer["statusCode"] == status
    assert "error" in json.loads(answer["body"])
    assert inbox.process() == 0


def test_a_body_that_is_not_base64_when_flagged_so_is_a_400(inbox):
    from tests.helpers import function_url_event

    event = function_url_event("POST", "/webhooks/meta", b"", {"Content-Type": "application/json"})
    event.update(body="%%% not base64 %%%", isBase64Encoded=True)
    assert inbox.app.webhook_url(event, None)["statusCode"] == 400
    assert inbox.process() == 0


def test_answers_carry_the_security_headers_and_are_never_cached(inbox):
    import app

    answer = inbox.function_url("GET", "/webhooks/x?crc_token=abc")
    for name, value in app.SECURITY_HEADERS.items():
        assert answer["headers"][name] == value
    assert answer["headers"]["Cache-Control"] == "no-store"


def test_the_signature_is_checked_over_the_exact_bytes_sent(inbox):
    """Non-ASCII text and escapes survive the function URL's text body byte for byte (a body
    re-serialised anywhere on the way would fail the signature)."""
    inbox.add_account("messenger", PAGE)
    raw = ('{"object":"page","entry":[{"id":"%s","time":1700000000000,"messaging":[{"sender":{"id":"psid-u"},'
           '"recipient":{"id":"%s"},"timestamp":1700000000000,"message":{"mid":"m-u","text":"Grüße \\u00e9 ✓"}}]}]}'
           % (PAGE, PAGE)).encode("utf-8")
    assert inbox.function_url("POST", "/webhooks/meta", raw, _meta_headers(raw))["statusCode"] == 200
    assert inbox.process() == 1
    [conversation] = inbox.conversations()
    assert conversation["last_message_preview"] == "Grüße é ✓"
