"""X send side against `responses`: DMs and replies to posts, OAuth 1.0a user context (signature
checked with oauthlib) or an OAuth 2.0 user token, and the error classes."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape

from chalicelib.channels import adapter_for_channel
from chalicelib.channels.base import OutboundMessage, SendError
from chalicelib.channels.x import post_weight

API = "https://api.x.com"
ME, CUSTOMER = "1520000000000000001", "1530000000000000009"
OAUTH1 = {"X_CONSUMER_KEY": "ck-123", "X_CONSUMER_SECRET": "cs-456",
          "X_ACCESS_TOKEN": f"{ME}-at789", "X_ACCESS_TOKEN_SECRET": "ats-000"}


@pytest.fixture(autouse=True)
def _real_base_url(monkeypatch):
    monkeypatch.delenv("X_API_BASE_URL", raising=False)
    monkeypatch.delenv("X_REPLY_SUMMONS_CHECK", raising=False)
    monkeypatch.delenv("X_POST_MAX_LENGTH", raising=False)


def send(message, secrets=OAUTH1.get):
    return adapter_for_channel("x").send(message, secrets, requests.Session())


def dm(**changes):
    fields = dict(channel="x", account_id=ME, thread_key=CUSTOMER, thread_kind="dm", recipient_id=CUSTOMER,
                  text="Hi! Could you DM us your order number?", outbound_id="msg-x-1")
    fields.update(changes)
    return OutboundMessage(**fields)


def reply(**changes):
    fields = dict(channel="x", account_id=ME, thread_key="tweet:1850000000000000001", thread_kind="mention",
                  recipient_id=CUSTOMER, text="@lisbon_eats thank you!", outbound_id="msg-x-2",
                  reply_to="1850000000000000005")
    fields.update(changes)
    return OutboundMessage(**fields)


def summoned(post_id="1850000000000000005", **post):
    """X's answer to the pre-reply lookup: a customer post that mentions our account."""
    data = {"id": post_id, "author_id": CUSTOMER, "text": "@acme help",
            "entities": {"mentions": [{"start": 0, "end": 5, "username": "acme", "id": ME}]}}
    data.update(post)
    responses.get(f"{API}/2/tweets/{post_id}", json={"data": data})


def looked_up(post, includes=None):
    """X's answer to the lookup of post 1850000000000000005: `post` and its `includes`."""
    answer = {"data": {"id": "1850000000000000005", **post}}
    if includes:
        answer["includes"] = includes
    responses.get(f"{API}/2/tweets/1850000000000000005", json=answer)


def posted():
    """The POST of the reply (after the lookup)."""
    [call] = [c for c in responses.calls if c.request.method == "POST"]
    return call


def assert_oauth1_signed(request):
    """The Authorization header is a valid HMAC-SHA1 OAuth 1.0a signature of this request (a JSON
    body is not part of the signature base string)."""
    header = request.headers["Authorization"]
    header = header.decode("ascii") if isinstance(header, bytes) else header
    assert header.startswith("OAuth ")
    params = {k: unescape(v) for k, v in parse_authorization_header(header)}
    assert params["oauth_consumer_key"] == "ck-123"
    assert params["oauth_token"] == f"{ME}-at789"
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    signed = OAuthRequest(request.url, request.method, None, {"Authorization": header})
    query = parse_qsl(urlsplit(request.url).query)  # a GET's query is signed too
    signed.params = [(k, v) for k, v in params.items() if k != "oauth_signature"] + query
    signed.signature = params["oauth_signature"]
    assert oauth_signature.verify_hmac_sha1(signed, "cs-456", "ats-000")
    wrong = OAuthRequest(request.url, request.method, None, {"Authorization": header})
    wrong.params, wrong.signature = signed.params, signed.signature
    assert not oauth_signature.verify_hmac_sha1(wrong, "another-secret", "ats-000")


@responses.activate
def test_dm_endpoint_body_and_oauth1_signature():
    responses.post(f"{API}/2/dm_conversations/with/{CUSTOMER}/messages", status=201,
                   json={"data": {"dm_conversation_id": f"{ME}-{CUSTOMER}", "dm_event_id": "1860000000000000042"}})
    assert send(dm()).platform_message_id == "1860000000000000042"
    request = responses.calls[0].request
    assert json.loads(request.body) == {"text": "Hi! Could you DM us your order number?"}
    assert_oauth1_signed(request)


@responses.activate
def test_reply_to_a_post():
    summoned()
    responses.post(f"{API}/2/tweets", status=201, json={"data": {"id": "1850000000000000777", "text": "x"}})
    assert send(reply()).platform_message_id == "1850000000000000777"
    body = json.loads(posted().request.body)
    assert body == {"text": "@lisbon_eats thank you!", "reply": {"in_reply_to_tweet_id": "1850000000000000005"}}
    assert_oauth1_signed(posted().request)
    lookup = responses.calls[0].request
    assert lookup.method == "GET" and "expansions=referenced_tweets.id" in lookup.url
    assert_oauth1_signed(lookup)


@responses.activate
def test_reply_without_reply_to_answers_the_thread_post():
    summoned("1850000000000000001")
    responses.post(f"{API}/2/tweets", status=201, json={"data": {"id": "1", "text": "x"}})
    send(reply(reply_to=None))
    assert json.loads(posted().request.body)["reply"] == {"in_reply_to_tweet_id": "1850000000000000001"}


@responses.activate
def test_oauth2_user_token_when_no_oauth1_credentials():
    summoned()
    responses.post(f"{API}/2/tweets", status=201, json={"data": {"id": "2", "text": "x"}})
    send(reply(), {"X_OAUTH2_USER_TOKEN": "oauth2-user-token"}.get)
    assert posted().request.headers["Authorization"] == "Bearer oauth2-user-token"


def test_no_credentials_asks_for_reauthorization():
    with pytest.raises(SendError) as caught:
        send(dm(), {"X_CONSUMER_KEY": "ck", "X_CONSUMER_SECRET": "cs"}.get)
    assert caught.value.kind == "reauthorize"
    assert "X_ACCESS_TOKEN" in caught.value.reason


@responses.activate
def test_429_then_success_is_retryable_until_the_reset():
    reset = int(time.time()) + 600
    responses.post(f"{API}/2/dm_conversations/with/{CUSTOMER}/messages", status=429,
                   headers={"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0",
                            "x-rate-limit-reset": str(reset)},
                   json={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429})
    responses.post(f"{API}/2/dm_conversations/with/{CUSTOMER}/messages", status=201,
                   json={"data": {"dm_conversation_id": "c", "dm_event_id": "e2"}})
    with pytest.raises(SendError) as caught:
        send(dm())
    assert caught.value.kind == "retryable"
    assert 590 <= caught.value.retry_after <= 600
    assert send(dm()).platform_message_id == "e2"


@responses.activate
def test_exhausted_24_hour_limit_wins_over_the_window_reset():
    now = int(time.time())
    summoned()
    responses.post(f"{API}/2/tweets", status=429, json={"title": "Too Many Requests"}, headers={
        "x-rate-limit-reset": str(now + 60), "x-user-limit-24hour-remaining": "0",
        "x-user-limit-24hour-reset": str(now + 7200)})
    with pytest.raises(SendError) as caught:
        send(reply())
    assert 7100 <= caught.value.retry_after <= 7200


@pytest.mark.parametrize("status,body,kind", [
    (401, {"title": "Unauthorized", "detail": "Unauthorized", "status": 401}, "reauthorize"),
    (403, {"detail": "Reply to this conversation is not allowed because you have not been mentioned "
                     "or otherwise engaged by the author of the post you are replying to.",
           "title": "Forbidden", "status": 403}, "permanent"),
    (403, {"detail": "You are not permitted to send a message to this user.", "status": 403}, "permanent"),
    (403, {"detail": "You are not allowed to create a Tweet with duplicate content.", "status": 403}, "permanent"),
    (400, {"errors": [{"message": "text is required"}], "title": "Invalid Request"}, "permanent"),
    (503, {"title": "Service Unavailable"}, "unknown"),
    (500, None, "unknown"),
])
@responses.activate
def test_errors_are_classified(status, body, kind):
    summoned()
    if body is None:
        responses.post(f"{API}/2/tweets", status=status, body="")
    else:
        responses.post(f"{API}/2/tweets", status=status, json=body)
    with pytest.raises(SendError) as caught:
        send(reply())
    assert caught.value.kind == kind
    assert "at789" not in str(caught.value) and "cs-456" not in str(caught.value)


@responses.activate
def test_timeout_is_unknown():
    summoned()
    responses.post(f"{API}/2/tweets", body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(SendError) as caught:
        send(reply())
    assert caught.value.kind == "unknown"


@pytest.mark.parametrize("message", [
    reply(text="a" * 281),
    reply(text="\u4f60" * 141),  # CJK weighs 2
    dm(text="b" * 10_001),
    dm(text=""),
])
@responses.activate
def test_over_long_text_is_permanent_without_any_http_call(message):
    with pytest.raises(SendError) as caught:
        send(message)
    assert caught.value.kind == "permanent"
    assert len(responses.calls) == 0


def test_post_weight_counts_urls_as_23_and_emoji_as_2():
    assert post_weight("hello") == 5
    assert post_weight("see https://example.com/a/very/long/path/that/is/long") == 4 + 23
    assert post_weight("\u2615") == 2
    assert post_weight("a" * 280) == 280


@responses.activate
def test_longer_posts_when_the_account_allows(monkeypatch):
    monkeypatch.setenv("X_POST_MAX_LENGTH", "4000")
    summoned()
    responses.post(f"{API}/2/tweets", status=201, json={"data": {"id": "3", "text": "x"}})
    assert send(reply(text="a" * 1000)).platform_message_id == "3"


# --- replies only where our account was mentioned or quoted (X's rule since 2026-02-23) -----------


@pytest.mark.parametrize("post,includes", [
    ({"author_id": CUSTOMER, "entities": {"mentions": [{"username": "someone", "id": "42"}]}}, None),
    ({"author_id": CUSTOMER, "text": "no entities at all"}, None),
    ({"author_id": CUSTOMER, "referenced_tweets": [{"type": "quoted", "id": "77"}]},
     {"tweets": [{"id": "77", "author_id": "someone else"}]}),
    ({"author_id": CUSTOMER, "referenced_tweets": [{"type": "replied_to", "id": "77"}]},
     {"tweets": [{"id": "77", "author_id": ME}]}),  # answering our post without naming us
])
@responses.activate
def test_reply_to_a_post_that_neither_mentions_nor_quotes_us_is_refused_before_posting(post, includes):
    looked_up(post, includes)
    with pytest.raises(SendError) as caught:
        send(reply())
    assert (caught.value.kind, caught.value.code) == ("permanent", "not_summoned")
    assert "mentions or quotes this account" in caught.value.reason
    assert [c.request.method for c in responses.calls] == ["GET"]  # never posted


@pytest.mark.parametrize("post,includes", [
    ({"author_id": ME}, None),  # our own post (a thread of ours)
    ({"author_id": CUSTOMER, "referenced_tweets": [{"type": "quoted", "id": "77"}]},
     {"tweets": [{"id": "77", "author_id": ME}]}),
])
@responses.activate
def test_reply_to_our_own_post_or_a_quote_of_ours_is_sent(post, includes):
    looked_up(post, includes)
    responses.post(f"{API}/2/tweets", status=201, json={"data": {"id": "9", "text": "x"}})
    assert send(reply()).platform_message_id == "9"


@pytest.mark.parametrize("status,body,kind,code", [
    (404, {"title": "Not Found Error"}, "permanent", "post_gone"),
    (200, {"errors": [{"title": "Not Found Error", "detail": "Could not find tweet"}]}, "permanent", "post_gone"),
    (429, {"title": "Too Many Requests"}, "retryable", "http_429"),
    (503, None, "retryable", "http_503"),
    (401, {"title": "Unauthorized"}, "reauthorize", "http_401"),
])
@responses.activate
def test_a_failed_lookup_sends_nothing_and_says_why(status, body, kind, code):
    answer = {"body": ""} if body is None else {"json": body}
    responses.get(f"{API}/2/tweets/1850000000000000005", status=status, **answer)
    with pytest.raises(SendError) as caught:
        send(reply())
    assert (caught.value.kind, caught.value.code) == (kind, code)
    assert all(c.request.method == "GET" for c in responses.calls)


@responses.activate
def test_lookup_without_an_answer_is_retryable_not_unknown():
    responses.get(f"{API}/2/tweets/1850000000000000005", body=requests.exceptions.ConnectTimeout("x"))
    with pytest.raises(SendError) as caught:
        send(reply())
    assert caught.value.kind == "retryable" and "nothing was sent" in caught.value.reason


@responses.activate
def test_x_refusing_an_unsummoned_reply_says_why(monkeypatch):
    monkeypatch.setenv("X_REPLY_SUMMONS_CHECK", "off")  # Enterprise: no lookup, X itself decides
    responses.post(f"{API}/2/tweets", status=403, json={
        "detail": "Reply to this conversation is not allowed because you have not been mentioned or otherwise "
                  "engaged by the author of the post you are replying to.", "status": 403})
    with pytest.raises(SendError) as caught:
        send(reply())
    assert (caught.value.kind, caught.value.code) == ("permanent", "not_summoned")
    assert [c.request.method for c in responses.calls] == ["POST"]
