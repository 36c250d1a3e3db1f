"""Telegram send side against `responses`: sendMessage with reply_parameters, ids in the form
`parse` gives messages, error classes, and the bot token never in an error."""
from __future__ import annotations

import json

import pytest
import requests
import responses

from chalicelib.channels import adapter_for_channel
from chalicelib.channels.base import OutboundMessage, SendError

TOKEN = "1000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
URL = f"https://api.telegram.org/bot{TOKEN}/sendMessage"


@pytest.fixture(autouse=True)
def _real_base_url(monkeypatch):
    monkeypatch.delenv("TELEGRAM_API_BASE_URL", raising=False)


def send(message, secrets={"TELEGRAM_BOT_TOKEN": TOKEN}.get):
    return adapter_for_channel("telegram").send(message, secrets, requests.Session())


def message(**changes):
    fields = dict(channel="telegram", account_id="1000000001", thread_key="555000111", thread_kind="dm",
                  recipient_id="555000111", text="Yes, Shibuya is open until 22:00.", outbound_id="msg-tg-1",
                  reply_to="555000111:42")
    fields.update(changes)
    return OutboundMessage(**fields)


def ok(message_id=43, chat_id=555000111):
    return {"ok": True, "result": {"message_id": message_id, "date": 1764633600,
                                   "chat": {"id": chat_id, "type": "private"}, "text": "..."}}


def failure(code, description, **parameters):
    body = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return {"json": body, "status": code}


@responses.activate
def test_send_message_with_reply_parameters():
    responses.post(URL, json=ok())
    assert send(message()).platform_message_id == "555000111:43"
    assert json.loads(responses.calls[0].request.body) == {
        "chat_id": 555000111, "text": "Yes, Shibuya is open until 22:00.",
        "reply_parameters": {"message_id": 42, "allow_sending_without_reply": True}}


@responses.activate
def test_group_chat_without_reply():
    responses.post(URL, json=ok(7, -1001234567890))
    result = send(message(thread_key="-1001234567890", thread_kind="group", recipient_id="99", reply_to=None))
    assert result.platform_message_id == "-1001234567890:7"
    assert json.loads(responses.calls[0].request.body) == {"chat_id": -1001234567890,
                                                           "text": "Yes, Shibuya is open until 22:00."}


@responses.activate
def test_429_then_success_honours_retry_after():
    responses.post(URL, **failure(429, "Too Many Requests: retry after 17", retry_after=17))
    responses.post(URL, json=ok(44))
    with pytest.raises(SendError) as caught:
        send(message())
    assert (caught.value.kind, caught.value.retry_after) == ("retryable", 17.0)
    assert send(message()).platform_message_id == "555000111:44"


@responses.activate
def test_migrated_group_is_retargeted_once():
    responses.post(URL, **failure(400, "Bad Request: group chat was upgraded to a supergroup chat",
                                  migrate_to_chat_id=-1009999))
    responses.post(URL, json=ok(5, -1009999))
    assert send(message(thread_key="-4242", reply_to=None)).platform_message_id == "-1009999:5"
    assert json.loads(responses.calls[1].request.body)["chat_id"] == -1009999


@pytest.mark.parametrize("error,kind", [
    (failure(403, "Forbidden: bot was blocked by the user"), "permanent"),
    (failure(403, "Forbidden: bot can't initiate conversation with a user"), "permanent"),
    (failure(400, "Bad Request: chat not found"), "permanent"),
    (failure(401, "Unauthorized"), "reauthorize"),
    (failure(404, "Not Found"), "reauthorize"),
    (failure(500, "Internal Server Error"), "unknown"),
    ({"body": "", "status": 502}, "unknown"),
])
@responses.activate
def test_errors_are_classified(error, kind):
    responses.post(URL, **error)
    with pytest.raises(SendError) as caught:
        send(message())
    assert caught.value.kind == kind
    assert TOKEN not in str(caught.value) and TOKEN.split(":")[1] not in caught.value.reason


@pytest.mark.parametrize("exc", [requests.exceptions.ReadTimeout(f"HTTPSConnectionPool: /bot{TOKEN}/sendMessage"),
                                 requests.exceptions.ConnectionError(f"Max retries exceeded with url: /bot{TOKEN}")])
@responses.activate
def test_timeouts_are_unknown_and_never_carry_the_token(exc):
    responses.post(URL, body=exc)
    with pytest.raises(SendError) as caught:
        send(message())
    assert caught.value.kind == "unknown"
    assert TOKEN.split(":")[1] not in str(caught.value) and caught.value.__cause__ is None


@responses.activate
def test_over_long_text_is_permanent_without_any_http_call():
    with pytest.raises(SendError) as caught:
        send(message(text="t" * 4097))
    assert caught.value.kind == "permanent"
    assert len(responses.calls) == 0


def test_missing_bot_token_asks_for_reauthorization():
    with pytest.raises(SendError) as caught:
        send(message(), lambda name: None)
    assert caught.value.kind == "reauthorize"
