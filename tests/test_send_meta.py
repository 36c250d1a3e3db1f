"""Meta send side (Messenger, Instagram, Facebook comments, WhatsApp) against `responses`:
exact endpoints, bodies and auth from the outbound contract, and every error class."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from chalicelib.channels import adapter_for_channel
from chalicelib.channels.base import OutboundMessage, SendError, account_secrets

GRAPH = "https://graph.facebook.com/v21.0"
IG_GRAPH = "https://graph.instagram.com/v21.0"
PAGE, IG, PHONE = "100000000000001", "17841400000000001", "200000000000001"
SECRETS = {"META_PAGE_TOKEN": "page-token-abc", "INSTAGRAM_ACCESS_TOKEN": "ig-token-def",
           "WHATSAPP_TOKEN": "wa-token-ghi"}


@pytest.fixture(autouse=True)
def _real_base_urls(monkeypatch):
    for name in ("META_GRAPH_BASE_URL", "INSTAGRAM_GRAPH_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def secrets(name):
    return SECRETS.get(name)


def send(message, lookup=secrets):
    return adapter_for_channel(message.channel).send(message, lookup, requests.Session())


def messenger(**changes):
    fields = dict(channel="messenger", account_id=PAGE, thread_key="6100000000000001", thread_kind="dm",
                  recipient_id="6100000000000001", text="Sorry about that! A fresh one is on its way.",
                  outbound_id="msg-01HZXOUT")
    fields.update(changes)
    return OutboundMessage(**fields)


def graph_error(code, subcode=None, message="error", status=400, **extra):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf", **extra}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"json": {"error": error}, "status": status}


def sent_json(call):
    return json.loads(call.request.body)


# --- Messenger / Instagram DMs -------------------------------------------------------------------


@responses.activate
def test_messenger_dm_body_url_and_auth_are_the_contracts():
    responses.post(f"{GRAPH}/{PAGE}/messages", json={"recipient_id": "6100000000000001", "message_id": "m_AbC123"})
    result = send(messenger())
    assert result.platform_message_id == "m_AbC123"
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == "Bearer page-token-abc"
    assert "access_token" not in call.request.url  # the token never travels in a URL
    assert sent_json(call) == {"recipient": {"id": "6100000000000001"}, "messaging_type": "RESPONSE",
                               "message": {"text": "Sorry about that! A fresh one is on its way.",
                                           "metadata": "msg-01HZXOUT"}}


@responses.activate
def test_human_agent_tag_after_the_window():
    responses.post(f"{GRAPH}/{PAGE}/messages", json={"recipient_id": "1", "message_id": "m_tagged"})
    send(messenger(tag="HUMAN_AGENT"))
    body = sent_json(responses.calls[0])
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"


@responses.activate
def test_instagram_login_dm_goes_to_graph_instagram_with_its_token():
    responses.post(f"{IG_GRAPH}/{IG}/messages", json={"recipient_id": "1780000000000001", "message_id": "aWdfZAG1"})
    result = send(messenger(channel="instagram", account_id=IG, recipient_id="1780000000000001"))
    assert result.platform_message_id == "aWdfZAG1"
    assert responses.calls[0].request.headers["Authorization"] == "Bearer ig-token-def"


@responses.activate
def test_instagram_through_a_facebook_page_uses_me_messages_and_the_page_token():
    responses.post(f"{GRAPH}/me/messages", json={"recipient_id": "1780000000000001", "message_id": "aWdfZAG2"})
    only_page = {"META_PAGE_TOKEN": "page-token-abc"}.get
    assert send(messenger(channel="instagram", account_id=IG), only_page).platform_message_id == "aWdfZAG2"
    assert responses.calls[0].request.headers["Authorization"] == "Bearer page-token-abc"


@responses.activate
def test_private_reply_names_the_comment():
    responses.post(f"{GRAPH}/{PAGE}/messages", json={"recipient_id": "6100000000000003", "message_id": "m_private"})
    result = send(messenger(channel="facebook", thread_kind="comment", thread_key="comment:1_2:6100000000000003",
                            reply_to="1234_5678", private_reply=True))
    assert result.platform_message_id == "m_private"
    body = sent_json(responses.calls[0])
    assert body["recipient"] == {"comment_id": "1234_5678"}
    assert body["message"]["text"].startswith("Sorry")


# --- comments ------------------------------------------------------------------------------------


@responses.activate
def test_facebook_comment_reply_posts_message_to_the_comments_edge():
    responses.post(f"{GRAPH}/1234_5678/comments", json={"id": "1234_9999"})
    result = send(messenger(channel="facebook", thread_kind="comment", thread_key="comment:100_1234:6100000000000003",
                            reply_to="1234_5678", text="Yes, decaf-friendly!"))
    assert result.platform_message_id == "1234_9999"
    request = responses.calls[0].request
    assert parse_qs(request.body) == {"message": ["Yes, decaf-friendly!"]}
    assert request.headers["Authorization"] == "Bearer page-token-abc"


@responses.activate
def test_instagram_comment_reply_posts_to_replies_with_message_param():
    responses.post(f"{IG_GRAPH}/18010000000000001/replies", json={"id": "18020000000000002"})
    result = send(messenger(channel="instagram", account_id=IG, thread_kind="comment",
                            thread_key="comment:1790:1780000000000002", reply_to="18010000000000001",
                            text="Our Chiado store!"))
    assert result.platform_message_id == "18020000000000002"
    assert parse_qs(urlparse(responses.calls[0].request.url).query) == {"message": ["Our Chiado store!"]}


def test_a_comment_reply_without_the_comment_is_permanent():
    with pytest.raises(SendError) as caught:
        send(messenger(channel="facebook", thread_kind="comment", reply_to=None))
    assert caught.value.kind == "permanent"


# --- WhatsApp --------------------------------------------------------------------------------


def whatsapp(**changes):
    fields = dict(channel="whatsapp", account_id=PHONE, thread_key="351910000001", thread_kind="dm",
                  recipient_id="351910000001", text="Sim, abrimos ao domingo.", outbound_id="msg-01HZWA",
                  reply_to="wamid.HBgLMzUx")
    fields.update(changes)
    return OutboundMessage(**fields)


@responses.activate
def test_whatsapp_text_with_reply_context():
    responses.post(f"{GRAPH}/{PHONE}/messages", json={
        "messaging_product": "whatsapp", "contacts": [{"input": "351910000001", "wa_id": "351910000001"}],
        "messages": [{"id": "wamid.HBgLMzUxOTEwMDAwMDAxFQIAERgS"}]})
    result = send(whatsapp())
    assert result.platform_message_id == "wamid.HBgLMzUxOTEwMDAwMDAxFQIAERgS"
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == "Bearer wa-token-ghi"
    assert sent_json(call) == {"messaging_product": "whatsapp", "recipient_type": "individual",
                               "to": "351910000001", "context": {"message_id": "wamid.HBgLMzUx"},
                               "type": "text", "text": {"body": "Sim, abrimos ao domingo."},
                               "biz_opaque_callback_data": "msg-01HZWA"}


@responses.activate
def test_whatsapp_template_outside_the_window():
    responses.post(f"{GRAPH}/{PHONE}/messages", json={"messages": [{"id": "wamid.TPL"}]})
    template = {"name": "order_update", "language": {"code": "pt_PT"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "4411"}]}]}
    send(whatsapp(text="", reply_to=None, template=template))
    body = sent_json(responses.calls[0])
    assert body["type"] == "template" and body["template"] == template
    assert "text" not in body and "context" not in body


@pytest.mark.parametrize("template", [{"language": {"code": "en"}}, {"name": "x"}])
def test_whatsapp_template_without_name_or_language_is_permanent(template):
    with pytest.raises(SendError) as caught:
        send(whatsapp(template=template))
    assert caught.value.kind == "permanent"


@responses.activate
def test_whatsapp_131047_is_window_closed_and_130429_retryable():
    responses.post(f"{GRAPH}/{PHONE}/messages", **graph_error(131047, message="Re-engagement message"))
    responses.post(f"{GRAPH}/{PHONE}/messages", **graph_error(130429, message="Rate limit hit"))
    with pytest.raises(SendError) as first:
        send(whatsapp())
    assert (first.value.kind, first.value.code) == ("window_closed", "131047")
    with pytest.raises(SendError) as second:
        send(whatsapp())
    assert second.value.kind == "retryable"


# --- errors --------------------------------------------------------------------------------------


@responses.activate
def test_throttled_then_success_is_retryable_with_the_usage_header_hint():
    usage = {PAGE: [{"type": "messenger", "call_count": 100, "total_cputime": 30, "total_time": 40,
                     "estimated_time_to_regain_access": 5}]}
    responses.post(f"{GRAPH}/{PAGE}/messages", headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
                   **graph_error(80006, message="There have been too many messages sent to this user"))
    responses.post(f"{GRAPH}/{PAGE}/messages", json={"recipient_id": "1", "message_id": "m_after_wait"})
    with pytest.raises(SendError) as caught:
        send(messenger())
    assert caught.value.kind == "retryable" and caught.value.retry_after == 300.0
    assert send(messenger()).platform_message_id == "m_after_wait"


@responses.activate
def test_app_usage_header_and_code_4():
    responses.post(f"{GRAPH}/{PAGE}/messages", headers={"X-App-Usage": json.dumps(
        {"call_count": 100, "total_time": 20, "total_cputime": 10, "estimated_time_to_regain_access": 2})},
        **graph_error(4, message="Application request limit reached"))
    with pytest.raises(SendError) as caught:
        send(messenger())
    assert (caught.value.kind, caught.value.retry_after) == ("retryable", 120.0)


@pytest.mark.parametrize("error,kind", [
    (graph_error(10, 2018278, "This message is sent outside of allowed window."), "window_closed"),
    (graph_error(10, 2534022, "This message is sent outside of allowed window."), "window_closed"),
    (graph_error(10, 9999999, "Message sent outside of allowed window"), "window_closed"),
    (graph_error(10, None, "Application does not have permission for this action"), "permanent"),
    (graph_error(551, 1545041, "This person isn't available right now."), "permanent"),
    (graph_error(190, 463, "Error validating access token: Session has expired", status=401), "reauthorize"),
    (graph_error(200, None, "Permissions error", status=403), "permanent"),
    (graph_error(100, 2018001, "No matching user found"), "permanent"),
    (graph_error(368, 1390008, "Temporarily blocked for policies violations"), "permanent"),
    (graph_error(613, None, "Calls to this api have exceeded the rate limit."), "retryable"),
    (graph_error(2, None, "Service temporarily unavailable", status=503), "retryable"),
    (graph_error(1, None, "An unknown error occurred", status=500, is_transient=True), "retryable"),
    (graph_error(999999, None, "Something new", status=502), "unknown"),
    ({"body": "", "status": 502}, "unknown"),
    ({"body": "<html>Bad Gateway</html>", "status": 504}, "unknown"),
])
@responses.activate
def test_graph_errors_are_classified_as_the_contract_says(error, kind):
    responses.post(f"{GRAPH}/{PAGE}/messages", **error)
    with pytest.raises(SendError) as caught:
        send(messenger())
    assert caught.value.kind == kind, caught.value.reason
    assert "page-token-abc" not in str(caught.value)


@responses.activate
def test_timeout_and_connection_error_are_unknown():
    responses.post(f"{GRAPH}/{PAGE}/messages", body=requests.exceptions.ReadTimeout("read timed out"))
    responses.post(f"{GRAPH}/{PAGE}/messages", body=requests.exceptions.ConnectionError("reset"))
    for _ in range(2):
        with pytest.raises(SendError) as caught:
            send(messenger())
        assert caught.value.kind == "unknown"


@pytest.mark.parametrize("message", [
    messenger(text="x" * 2001),
    messenger(channel="instagram", account_id=IG, text="\u00e9" * 501),  # 1002 bytes
    messenger(channel="facebook", thread_kind="comment", reply_to="1_2", text="y" * 8001),
    messenger(channel="instagram", account_id=IG, thread_kind="comment", reply_to="18", text="z" * 2201),
    whatsapp(text="w" * 4097),
    messenger(text="   "),
])
@responses.activate
def test_over_long_or_empty_text_is_permanent_before_any_http_call(message):
    with pytest.raises(SendError) as caught:
        send(message)
    assert caught.value.kind == "permanent" and caught.value.code in ("text_too_long", "empty_text")
    assert len(responses.calls) == 0


def test_missing_token_asks_for_reauthorization():
    with pytest.raises(SendError) as caught:
        send(messenger(), lambda name: None)
    assert caught.value.kind == "reauthorize"


@responses.activate
def test_base_url_is_configuration(monkeypatch):
    monkeypatch.setenv("META_GRAPH_BASE_URL", "http://127.0.0.1:9/graph/v21.0/")
    responses.post(f"http://127.0.0.1:9/graph/v21.0/{PAGE}/messages", json={"message_id": "m_local"})
    assert send(messenger()).platform_message_id == "m_local"


def test_account_secrets_maps_logical_names_through_credential_refs(monkeypatch):
    monkeypatch.setenv("META_PAGE_TOKEN_ACME", "acme-page-token")
    monkeypatch.setenv("WHATSAPP_TOKEN", "shared-wa-token")
    lookup = account_secrets({"META_PAGE_TOKEN": "META_PAGE_TOKEN_ACME"})
    assert lookup("META_PAGE_TOKEN") == "acme-page-token"
    assert lookup("WHATSAPP_TOKEN") == "shared-wa-token"  # no ref: the logical name itself
    monkeypatch.delenv("META_PAGE_TOKEN_ACME")
    assert lookup("META_PAGE_TOKEN") is None  # a mapped secret never falls back to another one
