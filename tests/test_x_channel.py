"""X (Account Activity API) end to end through the public entry points, plus parser properties."""
from __future__ import annotations

import hashlib
import hmac
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import EditEvent, IgnoredEvent, MessageEvent, ParseProblem, RemoveEvent, StatusEvent
from chalicelib.channels.x import XAdapter, format_created_at, parse_created_at
from tests.helpers import X_SECRET as SECRET
from tests.helpers import fixture_bytes, x_signature
from tests.helpers import json_values as helpers_json_values

ACCOUNT = "4337869213"
CUSTOMER = "3001969357"
EVENT_TYPES = (MessageEvent, StatusEvent, EditEvent, RemoveEvent, IgnoredEvent, ParseProblem)


def post_x(inbox, body, secret: str = SECRET, extra=None):
    return inbox.post_x(body, secret, extra)


def conversation_with(inbox, platform_message_id):
    for conversation in inbox.conversations(channel="x", limit="100"):
        messages = inbox.messages(conversation["id"])
        if any(m["platform_message_id"] == platform_message_id for m in messages):
            return conversation, messages
    raise AssertionError(f"no conversation holds {platform_message_id}")


# --- handshake and signatures ------------------------------------------------------------------


def test_crc_vector_from_the_contract(inbox):
    response = inbox.client.http.get("/webhooks/x?crc_token=challenge_string")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {"response_token": "sha256=583uAmerwtjpykYEAEm+CEIRm6dOywK4QKRr0ha/Pd4="}


def test_crc_without_token_is_a_client_error(inbox):
    assert inbox.client.http.get("/webhooks/x").status_code == 400


def test_post_signature_vector_from_the_contract_is_accepted(inbox):
    body = fixture_bytes("x", "vector_dm.json")
    assert x_signature(body) == "sha256=4F3ur1myERNnyVSixcy6HL900qOfg0/i5Qst6VWGcEs="
    assert XAdapter().signed_headers(body, lambda name: SECRET)["X-Twitter-Webhooks-Signature"] == x_signature(body)
    inbox.add_account("x", ACCOUNT)
    response = post_x(inbox, body)
    assert response.status_code == 200
    assert inbox.process() == 1
    [conversation] = inbox.conversations()
    assert conversation["channel"] == "x" and conversation["kind"] == "dm"
    assert conversation["contact"]["platform_id"] == CUSTOMER
    [message] = inbox.messages(conversation["id"])
    assert message["text"] == "Hello World!"
    assert message["direction"] == "in"
    assert message["platform_message_id"] == "954491830116155396"
    assert message["sent_at"] == "2018-01-19T23:12:40.557Z"  # created_timestamp is a string in ms


def test_unsigned_forged_and_tampered_posts_are_refused_and_nothing_is_stored(inbox):
    inbox.add_account("x", ACCOUNT)
    body = fixture_bytes("x", "vector_dm.json")
    assert inbox.post_webhook("x", body).status_code == 401
    assert post_x(inbox, body, secret="someone-else").status_code == 401
    assert inbox.post_webhook("x", body + b" ", {"x-twitter-webhooks-signature": x_signature(body)}).status_code == 401
    hex_form = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert inbox.post_webhook("x", body, {"x-twitter-webhooks-signature": hex_form}).status_code == 401
    assert inbox.process() == 0
    assert inbox.all_messages() == []


def test_oauth2_signature_is_checked_when_its_secret_is_configured(inbox, monkeypatch):
    inbox.add_account("x", ACCOUNT)
    body = fixture_bytes("x", "vector_dm.json")
    monkeypatch.setenv("X_OAUTH2_CLIENT_SECRET", "oauth2_client_secret")
    bad = post_x(inbox, body, extra={"X-Twitter-Webhooks-Signature-OAuth2": x_signature(body, "wrong")})
    assert bad.status_code == 401
    good = post_x(inbox, body, extra={"X-Twitter-Webhooks-Signature-OAuth2": x_signature(body, "oauth2_client_secret")})
    assert good.status_code == 200
    monkeypatch.setenv("X_OAUTH2_CLIENT_SECRET", "")
    # Not configured: the consumer-secret signature alone decides.
    unchecked = post_x(inbox, body, extra={"X-Twitter-Webhooks-Signature-OAuth2": "sha256=whatever"})
    assert unchecked.status_code == 200
    inbox.process()
    assert len(inbox.all_messages()) == 1


# --- direct messages -------------------------------------------------------------------------


def test_dm_batch_lands_with_names_unescaped_text_echo_and_media_while_the_bad_event_is_quarantined(inbox):
    inbox.add_account("x", ACCOUNT)
    assert post_x(inbox, fixture_bytes("x", "dm_batch.json")).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    contact = conversation["contact"]
    assert (contact["display_name"], contact["handle"], contact["platform_id"]) == ("L\u00e9a M\u00fcller", "@lea_mueller", CUSTOMER)
    first, echo, photo = inbox.messages(conversation["id"])
    assert first["text"] == "Caf\u00e9 & croissants <3 \u2014 is the Z\u00fcrich shop open?"
    assert first["sent_at"] == "2023-11-14T22:13:20.123Z"
    assert first["direction"] == "in"
    assert echo["direction"] == "out" and echo["platform_message_id"] == "1720000000000000102"
    assert photo["type"] == "photo"
    assert photo["attachments"] == [{
        "type": "photo", "media_id": "1720000000000000999",
        "url": "https://ton.twimg.com/1.1/ton/data/dm/1720000000000000103/1720000000000000999/receipt.jpg",
        "link": "https://twitter.com/messages/media/1720000000000000103"}]
    assert conversation["message_count"] == 3
    [problem] = inbox.quarantine()
    assert "1720000000000000104" in problem["raw"]


def test_duplicate_delivery_records_one_message(inbox):
    inbox.add_account("x", ACCOUNT)
    body = fixture_bytes("x", "vector_dm.json")
    for _ in range(3):
        assert post_x(inbox, body).status_code == 200
    inbox.process()
    assert len(inbox.all_messages()) == 1


# --- mentions ----------------------------------------------------------------------------------


def test_mention_reply_and_follow_up_share_one_conversation(inbox):
    inbox.add_account("x", ACCOUNT)
    for name in ("mention_thread.json", "our_reply.json", "customer_followup.json"):
        assert post_x(inbox, fixture_bytes("x", name)).status_code == 200
        inbox.process()
    [conversation] = inbox.conversations()
    assert conversation["kind"] == "mention"
    assert conversation["contact"]["handle"] == "@lea_mueller"
    mention, reply, follow_up = inbox.messages(conversation["id"])
    assert mention["platform_message_id"] == "1050118621198921728"
    assert mention["text"].startswith("@acmecoffee my order #4411 never arrived & support")
    assert mention["text"].endswith("gift for my mum \U0001f622 https://t.co/Qr5")  # extended_tweet.full_text
    assert mention["sent_at"] == "2018-10-10T20:19:24.659Z"  # timestamp_ms wins over created_at
    assert mention["attachments"][0]["url"] == "https://pbs.twimg.com/media/DpMaz0aXcAAbCdE.jpg"
    assert reply["direction"] == "out" and reply["reply_to"] == "1050118621198921728"
    assert reply["sent_at"] == "2018-10-10T20:25:02.000Z"  # from created_at
    # The follow-up answers our reply (thread key tweet:<our reply>) yet joins the original thread.
    assert follow_up["reply_to"] == "1050120039117000001" and follow_up["direction"] == "in"
    assert conversation["last_message_direction"] == "in"


def test_reply_to_an_unknown_tweet_starts_its_own_thread(inbox):
    inbox.add_account("x", ACCOUNT)
    post_x(inbox, fixture_bytes("x", "customer_followup.json"))
    inbox.process()
    [conversation] = inbox.conversations()
    [message] = inbox.messages(conversation["id"])
    assert message["reply_to"] == "1050120039117000001"


def test_unknown_account_is_quarantined(inbox):
    assert post_x(inbox, fixture_bytes("x", "vector_dm.json")).status_code == 200
    inbox.process()
    assert inbox.all_messages() == []
    assert [q["reason"] for q in inbox.quarantine()] == ["unknown account"]


# --- parser, directly (the parsing table is in tests/channel_cases.py) ---------------------------


def test_created_at_round_trip():
    assert parse_created_at("Wed Oct 10 20:19:24 +0000 2018") == 1539202764000
    assert parse_created_at("Wed Oct 10 22:19:24 +0200 2018") == 1539202764000
    assert format_created_at(1539202764000) == "Wed Oct 10 20:19:24 +0000 2018"


def test_split_keeps_each_event_routable():
    payload = json.loads(fixture_bytes("x", "dm_batch.json"))
    parts = XAdapter().split(payload)
    assert len(parts) == 4
    assert all(p["for_user_id"] == ACCOUNT and "users" in p for p in parts)


json_values = helpers_json_values()
ids = st.one_of(st.just(ACCOUNT), st.just(CUSTOMER), st.integers(), st.text(max_size=5), st.none())
dm_events = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["message_create", "other"]) | json_values,
    "id": ids, "created_timestamp": st.one_of(st.integers(), st.text(max_size=14), st.none()),
    "message_create": st.fixed_dictionaries({}, optional={
        "sender_id": ids, "target": st.fixed_dictionaries({}, optional={"recipient_id": ids}) | json_values,
        "message_data": st.fixed_dictionaries({}, optional={"text": json_values, "attachment": json_values}) | json_values,
    }) | json_values,
})
tweets = st.fixed_dictionaries({}, optional={
    "id_str": ids, "user": st.fixed_dictionaries({}, optional={"id_str": ids, "name": json_values}) | json_values,
    "text": json_values, "extended_tweet": json_values, "created_at": st.text(max_size=30) | json_values,
    "timestamp_ms": json_values, "in_reply_to_status_id_str": ids, "entities": json_values,
    "retweeted_status": json_values,
})
shaped = st.fixed_dictionaries({}, optional={
    "for_user_id": ids, "users": json_values,
    "direct_message_events": st.lists(dm_events | json_values, max_size=3) | json_values,
    "tweet_create_events": st.lists(tweets | json_values, max_size=3) | json_values,
    "favorite_events": json_values,
})


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=json_values | shaped)
def test_parse_never_raises_and_yields_only_events(payload):
    events = list(XAdapter().parse(payload, {}))
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    for event in events:
        if isinstance(event, MessageEvent):
            assert isinstance(event.sent_at_ms, int) and event.account_id and event.platform_message_id
