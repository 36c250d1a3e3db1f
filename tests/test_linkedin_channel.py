"""LinkedIn organization social action webhooks end to end through the public entry points,
plus parser properties."""
from __future__ import annotations

import hashlib
import hmac
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import EditEvent, IgnoredEvent, MessageEvent, ParseProblem, RemoveEvent, StatusEvent
from chalicelib.channels.linkedin import LinkedInAdapter, normalize_comment_urn
from tests.helpers import LINKEDIN_SECRET as SECRET
from tests.helpers import fixture_bytes, li_signature
from tests.helpers import json_values as helpers_json_values

ORG = "urn:li:organization:96072893"
POST = "urn:li:activity:7094637247890620418"
FIRST_COMMENT = "urn:li:comment:(urn:li:activity:7094637247890620418,7094977717598625792)"
IMAGE_COMMENT = "urn:li:comment:(urn:li:activity:7094637247890620418,7094977717598626100)"
EVENT_TYPES = (MessageEvent, StatusEvent, EditEvent, RemoveEvent, IgnoredEvent, ParseProblem)


def post_linkedin(inbox, body, signature=None):
    return inbox.post_linkedin(body, signature)


def deliver(inbox, *names):
    for name in names:
        assert post_linkedin(inbox, fixture_bytes("linkedin", name)).status_code == 200
        inbox.process()


def conversation_holding(inbox, platform_message_id):
    for conversation in inbox.conversations(channel="linkedin", limit="100"):
        messages = inbox.messages(conversation["id"])
        if any(m["platform_message_id"] == platform_message_id for m in messages):
            return conversation, messages
    raise AssertionError(f"no conversation holds {platform_message_id}")


# --- handshake and signatures ----------------------------------------------------------------------


def test_challenge_is_answered_with_the_hex_hmac_of_the_code(inbox):
    code = "890e4665-4dfe-4ab1-b689-ed553bceeed0"
    response = inbox.client.http.get(f"/webhooks/linkedin?challengeCode={code}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {
        "challengeCode": code,
        "challengeResponse": "e64163a2f47447d7f390b92545489749376b433cde92fd3da49258933ec8bb65",
    }
    assert hmac.new(SECRET.encode(), code.encode(), hashlib.sha256).hexdigest() == json.loads(response.body)["challengeResponse"]
    assert inbox.client.http.get("/webhooks/linkedin").status_code == 400


def test_signed_headers_follow_the_documented_form():
    body = fixture_bytes("linkedin", "share_mention.json")
    assert LinkedInAdapter().signed_headers(body, lambda name: SECRET) == {"X-LI-Signature": li_signature(body)}


def test_documented_signature_and_its_tolerated_spellings_are_accepted(inbox):
    inbox.add_account("linkedin", ORG)
    body = fixture_bytes("linkedin", "share_mention.json")
    assert post_linkedin(inbox, body, li_signature(body)).status_code == 200
    assert post_linkedin(inbox, body, "hmacsha256=" + li_signature(body)).status_code == 200
    bare = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert post_linkedin(inbox, body, bare.upper()).status_code == 200
    inbox.process()
    assert len(inbox.all_messages()) == 1


def test_unsigned_forged_and_tampered_posts_are_refused_and_nothing_is_stored(inbox):
    inbox.add_account("linkedin", ORG)
    body = fixture_bytes("linkedin", "comments_batch.json")
    assert inbox.post_webhook("linkedin", body).status_code == 401
    assert post_linkedin(inbox, body, li_signature(body, "someone-else")).status_code == 401
    assert post_linkedin(inbox, body + b"\n", li_signature(body)).status_code == 401
    assert post_linkedin(inbox, body, "hmacsha256=").status_code == 401
    assert inbox.process() == 0
    assert inbox.all_messages() == []


# --- comments ------------------------------------------------------------------------------------


def test_comment_batch_lands_one_thread_per_post_and_author_and_the_bad_item_is_quarantined(inbox):
    inbox.add_account("linkedin", ORG, "Acme Coffee (LinkedIn)")
    deliver(inbox, "comments_batch.json")
    conversations = inbox.conversations()
    assert len(conversations) == 2
    assert {c["kind"] for c in conversations} == {"comment"}
    assert {c["subject"] for c in conversations} == {POST}
    conversation, [message] = conversation_holding(inbox, FIRST_COMMENT)  # the short URN spelling normalised
    assert conversation["contact"]["platform_id"] == "urn:li:person:zLqTygBP8S"
    assert conversation["account_id"] == ORG
    assert message["text"] == "Super ! Est-ce que l'\u00e9quipe parle anglais ? \U0001f1ec\U0001f1e7"
    assert message["sent_at"] == "2023-08-09T09:48:26.310Z"  # lastModifiedAt is milliseconds
    assert message["direction"] == "in"
    _, [image] = conversation_holding(inbox, IMAGE_COMMENT)
    assert image["text"] == "Applied yesterday, any news? \U0001f91e"  # comment.message.text shape
    assert image["attachments"][0]["type"] == "image"
    assert image["attachments"][0]["url"].startswith("https://media.licdn.com/")
    [problem] = inbox.quarantine()
    assert "lost in time" in problem["raw"] and problem["account_id"] == ORG


def test_duplicate_notifications_record_one_message(inbox):
    inbox.add_account("linkedin", ORG)
    deliver(inbox, "comments_batch.json", "comments_batch.json")
    assert len(inbox.all_messages()) == 2


def test_our_reply_joins_the_commenters_thread(inbox):
    inbox.add_account("linkedin", ORG)
    deliver(inbox, "comments_batch.json", "admin_reply.json")
    conversation, messages = conversation_holding(inbox, FIRST_COMMENT)
    assert [m["direction"] for m in messages] == ["in", "out"]
    assert messages[1]["reply_to"] == FIRST_COMMENT
    assert conversation["last_message_direction"] == "out"
    assert conversation["first_response_at"] == "2023-08-09T09:56:40.000Z"


def test_comment_edit_keeps_history_and_delete_marks_removed(inbox):
    inbox.add_account("linkedin", ORG)
    deliver(inbox, "comments_batch.json", "comment_edit.json", "comment_delete.json")
    _, [edited] = conversation_holding(inbox, FIRST_COMMENT)
    assert edited["text"] == "Super ! Est-ce que l'\u00e9quipe parle anglais ou espagnol ?"
    assert edited["edited_at"] == "2023-08-09T10:13:20.000Z"
    assert edited["edit_history"][0]["text"].startswith("Super ! Est-ce que l'\u00e9quipe parle anglais ?")
    _, [removed] = conversation_holding(inbox, IMAGE_COMMENT)
    assert removed["removed"] is True and removed["text"] == "Applied yesterday, any news? \U0001f91e"


def test_notifications_for_an_unknown_organization_are_quarantined(inbox):
    deliver(inbox, "share_mention.json")
    assert [q["reason"] for q in inbox.quarantine()] == ["unknown account"]


# --- parser, directly (the parsing table is in tests/channel_cases.py) ---------------------------


def test_comment_urn_spellings_are_normalised():
    assert normalize_comment_urn("urn:li:comment:(activity:1,2)") == "urn:li:comment:(urn:li:activity:1,2)"
    assert normalize_comment_urn("urn:li:comment:(urn:li:ugcPost:1,2)") == "urn:li:comment:(urn:li:ugcPost:1,2)"


def test_split_keeps_notifications_whole():
    parts = LinkedInAdapter().split(json.loads(fixture_bytes("linkedin", "comments_batch.json")))
    assert len(parts) == 4 and all(p["type"] == "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS" for p in parts)


json_values = helpers_json_values()
urns = st.one_of(st.just(ORG), st.just(POST), st.just(FIRST_COMMENT), st.text(max_size=12), st.integers(), st.none())
notifications = st.fixed_dictionaries({}, optional={
    "notificationId": st.integers() | json_values, "organizationalEntity": urns,
    "action": st.sampled_from(["COMMENT", "ADMIN_COMMENT", "COMMENT_EDIT", "COMMENT_DELETE", "SHARE_MENTION",
                               "LIKE", "SHARE", "OTHER"]) | json_values,
    "sourcePost": urns, "generatedActivity": urns, "lastModifiedAt": st.integers() | json_values,
    "decoratedSourcePost": json_values,
    "decoratedGeneratedActivity": st.fixed_dictionaries({}, optional={
        "comment": st.fixed_dictionaries({}, optional={"entity": urns, "owner": urns, "text": json_values,
                                                       "parentComment": urns, "content": json_values,
                                                       "created": json_values, "message": json_values}) | json_values,
        "share": json_values}) | json_values,
})
deliveries = st.fixed_dictionaries({}, optional={
    "type": st.just("ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS") | json_values,
    "notifications": st.lists(notifications | json_values, max_size=4) | json_values,
})


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=json_values | deliveries)
def test_parse_never_raises_and_yields_only_events(payload):
    events = list(LinkedInAdapter().parse(payload, {}))
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    for event in events:
        message = event.message if isinstance(event, (EditEvent, RemoveEvent)) else event
        if isinstance(message, MessageEvent):
            assert isinstance(message.sent_at_ms, int) and message.account_id and message.platform_message_id


def test_a_member_without_a_name_is_shown_as_linkedin_member_in_the_list_and_the_contact_panel(inbox):
    from chalicelib.inbox import store

    inbox.add_account("linkedin", ORG)
    deliver(inbox, "share_mention.json")
    [row] = inbox.conversations(channel="linkedin")
    # the member as LinkedIn gives it without the organization's member permission: no name
    state = store.get(row["id"])
    assert not state.get("contact_name") and not state.get("contact_handle"), state
    detail = inbox.get("/api/conversations/" + row["id"])
    assert row["contact"]["display_name"] == detail["contact"]["display_name"] == "LinkedIn member"
    assert inbox.get("/api/contacts/" + detail["contact"]["id"])["display_name"] == "LinkedIn member"
