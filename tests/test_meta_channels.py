"""Instagram (DMs and comments on media) and Facebook Page comments through the public entry
points: signed POST /webhooks/meta, the real queue processor, the agent API.

Payload shapes follow Meta's webhook references (Instagram `comments` field: `value.id`,
`value.text`, `value.from {id, username}`, `value.media {id, media_product_type}`,
`value.parent_id`; Page `feed` field: `value.item == "comment"`, `value.verb` add / edited /
remove, `value.comment_id`, `value.post_id`, `value.parent_id`, `value.from {id, name}`,
`value.message`, `value.created_time` in seconds). Fixtures live in tests/fixtures/meta/.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, List

import pytest

from tests.helpers import fixture_bytes
from tests.helpers import json_values as helpers_json_values

IG = "17841400000000099"
PAGE = "104000000000099"
POST = f"{PAGE}_555000111"
MEDIA = "17900000000000123"


def fixture(name: str) -> Dict[str, Any]:
    return json.loads(fixture_bytes("meta", name))


def iso_seconds(seconds: int) -> str:
    from chalicelib.api.views import iso

    return iso(seconds * 1000)


def deliver(inbox, *payloads) -> None:
    for payload in payloads:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response = inbox.post_meta(body)
        assert response.status_code == 200, response.body
    inbox.process()


def only_conversation(inbox, **filters) -> Dict[str, Any]:
    conversations = inbox.conversations(**filters)
    assert len(conversations) == 1, conversations
    return conversations[0]


def by_platform_id(messages: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {m["platform_message_id"]: m for m in messages}


@pytest.fixture
def instagram(inbox):
    inbox.add_account("instagram", IG, "@acmecoffee")
    return inbox


@pytest.fixture
def facebook(inbox):
    inbox.add_account("facebook", PAGE, "Acme Coffee (Page comments)")
    return inbox


# --- Instagram comments -----------------------------------------------------------------------


def test_instagram_comment_becomes_a_comment_thread_per_media_and_author(instagram):
    deliver(instagram, fixture_bytes("meta", "instagram_comment.json"))
    conversation = only_conversation(instagram, channel="instagram")
    assert conversation["kind"] == "comment"
    assert conversation["subject"] == MEDIA
    assert conversation["account_id"] == IG
    assert conversation["contact"]["platform_id"] == "232323232"
    assert conversation["contact"]["handle"] == "lisbon.eats"
    assert conversation["contact"]["display_name"] == "lisbon.eats"
    assert conversation["last_message_preview"] == "Is this available in oat milk?"
    assert conversation["awaiting_reply_since"] == iso_seconds(1717000100)
    [message] = instagram.messages(conversation["id"])
    assert message["platform_message_id"] == "17865799348089039"
    assert message["text"] == "Is this available in oat milk?"
    assert message["direction"] == "in"
    assert message["sent_at"] == iso_seconds(1717000100)  # entry.time, in seconds for changes
    assert message["reply_to"] is None


def test_our_own_instagram_reply_is_outbound_and_joins_the_thread_it_answers(instagram):
    deliver(instagram, fixture_bytes("meta", "instagram_comment.json"),
            fixture_bytes("meta", "instagram_comment_own_reply.json"))
    conversation = only_conversation(instagram, channel="instagram")
    assert conversation["message_count"] == 2
    assert conversation["unread_count"] == 1
    assert conversation["last_message_direction"] == "out"
    assert conversation["awaiting_reply_since"] is None  # answered
    assert conversation["contact"]["platform_id"] == "232323232"  # still the customer's thread
    comment, reply = instagram.messages(conversation["id"])
    assert (comment["direction"], reply["direction"]) == ("in", "out")
    assert reply["reply_to"] == comment["platform_message_id"]
    assert reply["text"] == "@lisbon.eats yes, every day!"


def test_our_reply_to_an_unknown_comment_still_lands_outbound_in_its_own_thread(instagram):
    deliver(instagram, fixture_bytes("meta", "instagram_comment_own_reply.json"))
    conversation = only_conversation(instagram, channel="instagram")
    assert conversation["kind"] == "comment"
    assert conversation["subject"] == MEDIA
    [message] = instagram.messages(conversation["id"])
    assert message["direction"] == "out"
    assert message["reply_to"] == "17865799348089039"
    assert instagram.quarantine() == []


def test_instagram_dm_echo_and_deletion_work_end_to_end(instagram):
    deliver(instagram, fixture_bytes("meta", "instagram_dm_echo_delete.json"))
    conversation = only_conversation(instagram, channel="instagram")
    assert conversation["kind"] == "dm"
    assert conversation["contact"]["platform_id"] == "1780000000000007"
    assert conversation["message_count"] == 2
    question, answer = instagram.messages(conversation["id"])
    assert question["direction"] == "in"
    assert question["text"] == "Hi, do you deliver?"  # our record keeps the text
    assert question["removed"] is True
    assert answer["direction"] == "out"
    assert answer["removed"] is False
    assert answer["sent_at"] == "2024-05-29T16:34:20.000Z"  # messaging timestamps are milliseconds


def test_instagram_dm_edits_keep_history_and_dashboard_style_messages_land(instagram):
    """`message_edit` (new text, edit time in ms) updates the DM and keeps the old text; the
    changes-format messaging payload the App Dashboard sends (field "messages", timestamp in
    seconds as a string) is read like `messaging[]`."""
    customer = "1780000000000007"
    deliver(instagram, fixture_bytes("meta", "instagram_dm_echo_delete.json"), {"object": "instagram", "entry": [
        {"id": IG, "time": 1717000600000, "messaging": [
            {"sender": {"id": customer}, "recipient": {"id": IG}, "timestamp": 1717000600000,
             "message": {"mid": "ig_mid_2", "text": "Wait, what about Porto?"}},
            {"sender": {"id": customer}, "recipient": {"id": IG}, "timestamp": 1717000650000,
             "message_edit": {"mid": "ig_mid_2", "text": "Wait, what about Porto and Braga?", "num_edit": 1}}]},
        {"id": IG, "time": 1717000700, "changes": [{"field": "messages", "value": {
            "sender": {"id": customer}, "recipient": {"id": IG}, "timestamp": "1717000700",
            "message": {"mid": "ig_mid_3", "text": "thanks"}}}]}]})
    conversation = only_conversation(instagram, channel="instagram")
    messages = by_platform_id(instagram.messages(conversation["id"]))
    edited = messages["ig_mid_2"]
    assert edited["text"] == "Wait, what about Porto and Braga?"
    assert edited["edit_history"] == [{"text": "Wait, what about Porto?", "replaced_at": "2024-05-29T16:37:30.000Z"}]
    assert messages["ig_mid_3"]["sent_at"] == iso_seconds(1717000700)
    assert conversation["message_count"] == 4


# --- Facebook Page comments -------------------------------------------------------------------


def test_the_pages_own_reply_is_outbound_in_the_commenters_thread(facebook):
    deliver(facebook, fixture_bytes("meta", "facebook_comment_add.json"),
            fixture_bytes("meta", "facebook_comment_page_reply.json"))
    conversation = only_conversation(facebook, channel="facebook")
    assert conversation["message_count"] == 2
    assert conversation["last_message_direction"] == "out"
    assert conversation["first_response_at"] == iso_seconds(1717001100)
    comment, reply = facebook.messages(conversation["id"])
    assert reply["direction"] == "out"
    assert reply["reply_to"] == "555000111_901"
    assert reply["author_id"] is None


def test_an_edited_comment_keeps_its_history(facebook):
    deliver(facebook, fixture_bytes("meta", "facebook_comment_add.json"),
            fixture_bytes("meta", "facebook_comment_edited.json"))
    conversation = only_conversation(facebook, channel="facebook")
    assert conversation["message_count"] == 1
    [message] = facebook.messages(conversation["id"])
    assert message["text"] == "Do you have gluten-free AND vegan pastries?"
    assert message["edit_history"] == [{"text": "Do you have gluten-free pastries?",
                                         "replaced_at": iso_seconds(1717001201)}]
    assert message["edited_at"] == iso_seconds(1717001201)
    assert message["sent_at"] == iso_seconds(1717001000)  # the original time stays


def test_a_removed_comment_is_marked_removed_never_deleted(facebook):
    deliver(facebook, fixture_bytes("meta", "facebook_comment_add.json"),
            fixture_bytes("meta", "facebook_comment_remove.json"))
    [message] = facebook.all_messages()
    assert message["removed"] is True
    assert message["text"] == "Do you have gluten-free pastries?"
    assert facebook.quarantine() == []


def test_removals_and_edits_are_not_new_messages_for_the_conversation(facebook):
    """A removal or an edit changes a message, not the conversation: the latest-message preview,
    the reply deadline and a resolved status stay as they were."""
    from chalicelib.runtime import runtime

    deliver(facebook, fixture_bytes("meta", "facebook_comment_add.json"),
            fixture_bytes("meta", "facebook_comment_page_reply.json"))
    before = only_conversation(facebook, channel="facebook")
    facebook.login_admin()
    runtime.use_clock(lambda: 1717001150.0)
    try:
        facebook.set_status(before["id"], "resolved")  # as an agent does, over HTTP
    finally:
        runtime.use_clock(None)
    deliver(facebook, fixture_bytes("meta", "facebook_comment_edited.json"),
            fixture_bytes("meta", "facebook_comment_remove.json"))
    after = only_conversation(facebook, channel="facebook", status="resolved")
    for key in ("last_message_preview", "last_message_at", "last_message_direction", "awaiting_reply_since",
                "message_count", "unread_count"):
        assert after[key] == before[key], key
    comment, _reply = facebook.messages(after["id"])
    assert comment["removed"] is True
    assert comment["text"] == "Do you have gluten-free AND vegan pastries?"


def test_an_edit_that_overtakes_its_comment_still_ends_with_one_message(facebook):
    deliver(facebook, fixture_bytes("meta", "facebook_comment_edited.json"),
            fixture_bytes("meta", "facebook_comment_add.json"))
    conversation = only_conversation(facebook, channel="facebook")
    assert conversation["message_count"] == 1
    [message] = facebook.messages(conversation["id"])
    assert message["text"] == "Do you have gluten-free AND vegan pastries?"
    assert message["platform_message_id"] == "555000111_901"


def test_a_removal_that_overtakes_its_comment_still_ends_removed(facebook):
    deliver(facebook, fixture_bytes("meta", "facebook_comment_remove.json"),
            fixture_bytes("meta", "facebook_comment_add.json"))
    conversation = only_conversation(facebook, channel="facebook")
    assert conversation["message_count"] == 1
    [message] = facebook.messages(conversation["id"])
    assert message["removed"] is True


def test_a_photo_comment_keeps_its_attachment(facebook):
    deliver(facebook, fixture_bytes("meta", "facebook_comment_photo.json"))
    conversation = only_conversation(facebook, channel="facebook")
    assert conversation["contact"]["display_name"] == "Ana Sousa"
    assert conversation["last_message_preview"] == "[photo]"
    [message] = facebook.messages(conversation["id"])
    assert message["type"] == "photo"
    assert message["text"] is None
    assert message["attachments"] == [{"type": "photo", "url": "https://scontent.example.invalid/v/t39.30808-6/photo.jpg"}]


def test_one_conversation_per_post_and_author(facebook):
    payload = fixture("facebook_comment_add.json")
    other_author = copy.deepcopy(payload["entry"][0]["changes"][0])
    other_author["value"].update(comment_id="555000111_950", **{"from": {"id": "6200000000000009", "name": "Joana"}})
    other_post = copy.deepcopy(payload["entry"][0]["changes"][0])
    other_post["value"].update(comment_id="555000222_951", post_id=f"{PAGE}_555000222", parent_id=f"{PAGE}_555000222")
    payload["entry"][0]["changes"] += [other_author, other_post]
    deliver(facebook, payload)
    threads = sorted((c["subject"], c["contact"]["platform_id"]) for c in facebook.conversations(channel="facebook"))
    assert threads == [(POST, "6200000000000001"), (POST, "6200000000000009"), (f"{PAGE}_555000222", "6200000000000001")]


def test_out_of_order_comments_read_in_platform_time_order(facebook):
    def comment(comment_id, seconds, text):
        payload = fixture("facebook_comment_add.json")
        payload["entry"][0]["changes"][0]["value"].update(comment_id=comment_id, created_time=seconds, message=text)
        return payload

    deliver(facebook, comment("555000111_3", 1717003000, "third"), comment("555000111_1", 1717001000, "first"),
            comment("555000111_2", 1717002000, "second"))
    conversation = only_conversation(facebook, channel="facebook")
    assert [m["text"] for m in facebook.messages(conversation["id"])] == ["first", "second", "third"]
    assert conversation["last_message_preview"] == "third"
    assert conversation["last_message_at"] == iso_seconds(1717003000)
    assert conversation["awaiting_reply_since"] == iso_seconds(1717001000)


def test_older_and_partial_feed_payloads_are_read_liberally(facebook):
    """`verb: "edit"` with `sender_id`/`sender_name` (older payloads), a comment without any
    author (missing permission), and moderation verbs that are not inbox material."""
    payload = fixture("facebook_comment_add.json")
    [add] = payload["entry"][0]["changes"]
    legacy = copy.deepcopy(add)
    del legacy["value"]["from"]
    legacy["value"].update(verb="edit", sender_id=6200000000000001, sender_name="Rui Almeida",
                           message="edited the old way", created_time=1717001050)
    anonymous = copy.deepcopy(add)
    del anonymous["value"]["from"]
    anonymous["value"].update(comment_id="555000111_960", message="who am I?")
    hidden = copy.deepcopy(add)
    hidden["value"]["verb"] = "hide"
    payload["entry"][0]["changes"] = [add, legacy, anonymous, hidden]
    deliver(facebook, payload)
    threads = {c["contact"]["platform_id"]: c for c in facebook.conversations(channel="facebook")}
    assert sorted(threads) == ["6200000000000001", "unknown"]
    [edited] = facebook.messages(threads["6200000000000001"]["id"])
    assert edited["text"] == "edited the old way"
    assert edited["edit_history"][0]["text"] == "Do you have gluten-free pastries?"
    [anonymous_comment] = facebook.messages(threads["unknown"]["id"])
    assert anonymous_comment["text"] == "who am I?"
    assert facebook.quarantine() == []


# --- exactly once, signatures, routing --------------------------------------------------------


def test_a_duplicated_comment_is_stored_once(instagram):
    body = fixture_bytes("meta", "instagram_comment.json")
    deliver(instagram, body, body, body)
    conversation = only_conversation(instagram, channel="instagram")
    assert conversation["message_count"] == 1
    assert len(instagram.messages(conversation["id"])) == 1


def test_forged_or_unsigned_comment_deliveries_are_401_and_store_nothing(instagram):
    instagram.add_account("facebook", PAGE)
    for name in ("instagram_comment.json", "facebook_comment_add.json"):
        body = fixture_bytes("meta", name)
        assert instagram.post_webhook("meta", body).status_code == 401
        assert instagram.post_meta(body, secret="not-the-app-secret").status_code == 401
    assert instagram.process() == 0
    assert instagram.all_messages() == []
    assert instagram.quarantine() == []


def test_messenger_dms_and_page_comments_need_their_own_accounts(inbox):
    """One POST for a page carries DMs (channel messenger) and comments (channel facebook)."""
    inbox.add_account("messenger", PAGE)
    payload = fixture("facebook_comment_add.json")
    payload["entry"][0]["messaging"] = [{"sender": {"id": "6200000000000001"}, "recipient": {"id": PAGE},
                                         "timestamp": 1717001000500, "message": {"mid": "m_dm_1", "text": "DM!"}}]
    deliver(inbox, payload)
    assert [c["channel"] for c in inbox.conversations()] == ["messenger"]
    [held] = inbox.quarantine()
    assert (held["reason"], held["channel"], held["account_id"]) == ("unknown account", "facebook", PAGE)


def test_a_batch_for_two_pages_with_messaging_and_changes_lands_every_event(inbox):
    other = "104000000000777"
    for channel, account in (("messenger", PAGE), ("facebook", PAGE), ("facebook", other)):
        inbox.add_account(channel, account)
    first = fixture("facebook_comment_add.json")["entry"][0]
    first["messaging"] = [{"sender": {"id": "6200000000000005"}, "recipient": {"id": PAGE},
                           "timestamp": 1717001000500, "message": {"mid": "m_dm_2", "text": "Hello page"}}]
    second = fixture("facebook_comment_photo.json")["entry"][0]
    second["id"] = other
    value = second["changes"][0]["value"]
    value.update(post_id=f"{other}_1", parent_id=f"{other}_1", comment_id="1_77")
    deliver(inbox, {"object": "page", "entry": [first, second]})
    found = sorted((c["channel"], c["account_id"], c["kind"]) for c in inbox.conversations())
    assert found == sorted([("facebook", other, "comment"), ("facebook", PAGE, "comment"), ("messenger", PAGE, "dm")])
    assert inbox.quarantine() == []


def test_a_malformed_item_beside_valid_ones_is_quarantined_while_they_land(inbox):
    inbox.add_account("messenger", PAGE)
    inbox.add_account("facebook", PAGE)
    payload = fixture("facebook_comment_add.json")
    entry = payload["entry"][0]
    entry["messaging"] = [
        {"sender": {"id": "6200000000000005"}, "recipient": {"id": PAGE}, "timestamp": 1717001000500,
         "message": {"mid": "m_ok", "text": "fine"}},
        {"sender": {"id": "6200000000000005"}, "recipient": {"id": PAGE}, "timestamp": "yesterday",
         "message": {"mid": "m_bad_time", "text": "broken"}},
    ]
    no_comment_id = copy.deepcopy(entry["changes"][0])
    del no_comment_id["value"]["comment_id"]
    entry["changes"].append(no_comment_id)
    entry["changes"].append("not a change")
    payload["entry"].append({"time": 1717001000})  # an entry without an id
    deliver(inbox, payload)
    texts = sorted(m["text"] for m in inbox.all_messages())
    assert texts == ["Do you have gluten-free pastries?", "fine"]
    reasons = sorted(q["reason"] for q in inbox.quarantine())
    assert len(reasons) == 4, reasons
    assert all(r.startswith("unreadable") for r in reasons)
    assert any("m_bad_time" in q["raw"] for q in inbox.quarantine())


def test_comments_for_an_unknown_account_are_acknowledged_and_quarantined(inbox):
    response = inbox.post_meta(fixture_bytes("meta", "instagram_comment.json"))
    assert response.status_code == 200
    inbox.process()
    assert inbox.conversations() == []
    [held] = inbox.quarantine()
    assert (held["reason"], held["channel"], held["account_id"]) == ("unknown account", "instagram", IG)


# --- parse never raises ---------------------------------------------------------------------

import glob  # noqa: E402
import os  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.helpers import FIXTURES  # noqa: E402

ALL_FIXTURES = [json.loads(open(path, "rb").read())
                for path in sorted(glob.glob(os.path.join(FIXTURES, "meta", "*.json")))]

json_values = helpers_json_values(allow_nan=True, max_leaves=20)
# Values that look plausible to a parser but are the wrong type or out of range somewhere.
tricky = st.sampled_from([
    None, True, False, 0, -1, 2**70, -(2**70), 1.5, float("inf"), float("-inf"), "", " ", "abc", "-17", "1e3",
    "1717000100", "99999999999999999999", "2024-13-45T99:99:99", "2024-05-29T16:28:20+0000", [], {}, [None],
    {"id": None}, {"id": 12}, {"id": []}, {"mid": 5}, {"body": None}, ["entry"],
]) | json_values


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, prefix + (index,))


def _mutate(document, path, replacement, delete):
    if not path:
        return replacement
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return document


@st.composite
def meta_shaped(draw):
    """A real fixture with a few values replaced by wrong types (or removed)."""
    document = copy.deepcopy(draw(st.sampled_from(ALL_FIXTURES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        document = _mutate(document, path, copy.deepcopy(draw(tricky)), draw(st.booleans()))
    return document


def _parse_all(payload):
    from chalicelib.channels.base import (
        EditEvent, IgnoredEvent, LookupEvent, MessageEvent, ParseProblem, RemoveEvent, StatusEvent,
    )
    from chalicelib.channels.meta import MetaAdapter

    events = list(MetaAdapter().parse(payload, {}))
    kinds = (MessageEvent, StatusEvent, EditEvent, RemoveEvent, IgnoredEvent, ParseProblem, LookupEvent)
    for event in events:
        assert isinstance(event, kinds), event
        messages = [event] if isinstance(event, MessageEvent) else []
        if isinstance(event, EditEvent):
            messages.append(event.message)
        if isinstance(event, RemoveEvent) and event.message is not None:
            messages.append(event.message)
        for message in messages:  # what reaches storage is well-typed
            assert message.channel in MetaAdapter.channels
            for text in (message.account_id, message.platform_message_id, message.thread_key,
                         message.contact.platform_user_id):
                assert isinstance(text, str) and text
            assert isinstance(message.sent_at_ms, int) and 0 <= message.sent_at_ms < 32_503_680_000_001
            assert message.text is None or isinstance(message.text, str)
            assert message.direction in ("in", "out")
            json.dumps(list(message.attachments))
        if isinstance(event, StatusEvent):
            assert isinstance(event.at_ms, int) and isinstance(event.platform_message_id, str)
        if isinstance(event, LookupEvent):  # ids the processor puts in a Graph API path and fields
            assert all(isinstance(v, str) and v for v in event.ids.values()) and event.ids.get("media_id")
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=json_values | st.fixed_dictionaries(
    {"object": st.sampled_from(["page", "instagram", "whatsapp_business_account"]), "entry": json_values}))
def test_parse_never_raises_on_arbitrary_json(payload):
    _parse_all(payload)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=meta_shaped())
def test_parse_never_raises_on_meta_shaped_payloads_with_wrong_types(payload):
    _parse_all(payload)


def test_every_fixture_parses_without_problems():
    from chalicelib.channels.base import ParseProblem

    for payload in ALL_FIXTURES:
        events = _parse_all(payload)
        assert events, payload
        assert not [e for e in events if isinstance(e, ParseProblem)], payload


def test_mutated_payloads_never_break_the_pipeline(inbox):
    """What parse lets through is also storable: mutated fixtures, signed and posted, go through
    the real queue processor without an error (bad parts end in quarantine, nothing is parked)."""
    from chalicelib import aws, config

    for channel, account in (("instagram", IG), ("facebook", PAGE), ("messenger", PAGE),
                             ("messenger", "1234567890"), ("whatsapp", "106540352242922")):
        inbox.add_account(channel, account, "test")
    sqs = aws.client("sqs")

    def queued(name):
        attributes = sqs.get_queue_attributes(QueueUrl=aws.queue_url(name), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=meta_shaped())
    def check(payload):
        _parse_all(payload)
        response = inbox.post_meta(json.dumps(payload).encode())
        assert response.status_code < 500, response.body
        inbox.process()
        assert queued(config.DEAD_LETTER_QUEUE) == 0, "the processor failed on a delivery"
        assert queued(config.INGEST_QUEUE) == 0

    import re

    import responses

    # Instagram mentions are looked up by the processor (Graph API faked: no network in tests).
    with responses.RequestsMock(assert_all_requests_are_fired=False) as graph:
        graph.get(re.compile(r"https://graph\.facebook\.com/v[0-9.]+/[0-9]+"), json={"mentioned_comment": {
            "id": "17865799348089043", "text": "@acme hi", "timestamp": "2026-12-01T10:00:00+0000",
            "username": "someone"}})
        check()
