"""LinkedIn send side against `responses`: organization comments (top-level and nested), the
required headers, the comment URN from x-restli-id or the body, and the error classes."""
from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
import requests
import responses

from chalicelib.channels import adapter_for_channel
from chalicelib.channels.base import OutboundMessage, SendError

API = "https://api.linkedin.com/rest/socialActions"
ORG = "urn:li:organization:10000001"
ACTIVITY = "urn:li:activity:7100000000000000002"
COMMENT = f"urn:li:comment:({ACTIVITY},7100000000000000777)"


@pytest.fixture(autouse=True)
def _real_base_url(monkeypatch):
    monkeypatch.delenv("LINKEDIN_API_BASE_URL", raising=False)
    monkeypatch.setenv("LINKEDIN_API_VERSION", "202611")


def send(message, secrets={"LINKEDIN_ACCESS_TOKEN": "li-token"}.get):
    return adapter_for_channel("linkedin").send(message, secrets, requests.Session())


def message(**changes):
    fields = dict(channel="linkedin", account_id=ORG, thread_key=f"{ACTIVITY}|urn:li:person:dMx7Qa01",
                  thread_kind="comment", recipient_id="urn:li:person:dMx7Qa01",
                  text="Danke! Yes, it ships to Wien.", outbound_id="msg-li-1", reply_to=COMMENT)
    fields.update(changes)
    return OutboundMessage(**fields)


@responses.activate
def test_nested_reply_to_a_comment():
    created = f"urn:li:comment:({ACTIVITY},7100000000000000888)"
    responses.post(f"{API}/{quote(COMMENT, safe='')}/comments", status=201, headers={"x-restli-id": created},
                   json={"actor": ORG, "commentUrn": created})
    assert send(message()).platform_message_id == created
    request = responses.calls[0].request
    assert json.loads(request.body) == {"actor": ORG, "object": ACTIVITY, "message": {"text": "Danke! Yes, it ships to Wien."},
                                        "parentComment": COMMENT}
    assert request.headers["Authorization"] == "Bearer li-token"
    assert request.headers["LinkedIn-Version"] == "202611"
    assert request.headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert "%3A" in request.url and "(" not in request.url.split("socialActions/")[1].split("/comments")[0]


@responses.activate
def test_top_level_comment_on_the_post_and_urn_from_the_body():
    created = f"urn:li:comment:({ACTIVITY},55)"
    responses.post(f"{API}/{quote(ACTIVITY, safe='')}/comments", status=201, json={"commentUrn": created})
    assert send(message(reply_to=None)).platform_message_id == created
    assert "parentComment" not in json.loads(responses.calls[0].request.body)


@responses.activate
def test_a_bare_id_is_completed_into_the_comment_urn_parse_uses():
    responses.post(f"{API}/{quote(COMMENT, safe='')}/comments", status=201, headers={"x-restli-id": "99"})
    assert send(message()).platform_message_id == f"urn:li:comment:({ACTIVITY},99)"


@responses.activate
def test_429_then_success_waits_until_midnight_utc():
    responses.post(f"{API}/{quote(COMMENT, safe='')}/comments", status=429,
                   json={"status": 429, "message": "Resource level throttle APPLICATION DAY limit"})
    responses.post(f"{API}/{quote(COMMENT, safe='')}/comments", status=201, headers={"x-restli-id": COMMENT})
    with pytest.raises(SendError) as caught:
        send(message())
    now = time.time()
    assert caught.value.kind == "retryable"
    assert abs(caught.value.retry_after - (86400 - now % 86400)) < 5
    assert send(message()).platform_message_id == COMMENT


@pytest.mark.parametrize("status,body,kind", [
    (401, {"status": 401, "serviceErrorCode": 65601, "message": "The token used in the request has been revoked"},
     "reauthorize"),
    (403, {"status": 403, "message": "Not enough permissions to access: partnerApiSocialActions.CREATE"}, "permanent"),
    (404, {"status": 404, "message": "Not found"}, "permanent"),
    (500, None, "unknown"),
])
@responses.activate
def test_errors_are_classified(status, body, kind):
    if body is None:
        responses.post(f"{API}/{quote(COMMENT, safe='')}/comments", status=status, body="")
    else:
        responses.post(f"{API}/{quote(COMMENT, safe='')}/comments", status=status, json=body)
    with pytest.raises(SendError) as caught:
        send(message())
    assert caught.value.kind == kind


@responses.activate
def test_timeout_is_unknown():
    responses.post(f"{API}/{quote(COMMENT, safe='')}/comments", body=requests.exceptions.ConnectTimeout("slow"))
    with pytest.raises(SendError) as caught:
        send(message())
    assert caught.value.kind == "unknown"


@responses.activate
def test_over_long_text_is_permanent_without_any_http_call():
    with pytest.raises(SendError) as caught:
        send(message(text="l" * 1251))
    assert caught.value.kind == "permanent" and len(responses.calls) == 0


def test_missing_token_asks_for_reauthorization():
    with pytest.raises(SendError) as caught:
        send(message(), lambda name: None)
    assert caught.value.kind == "reauthorize"
