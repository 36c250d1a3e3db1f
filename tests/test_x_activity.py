"""X on the X Activity API (what a self-serve X app receives): the documented deliveries land
through /webhooks/x beside Account Activity ones, routed by filter.user_id, once each, threaded
like their Account Activity twins; plus parser properties over arbitrary envelopes."""
from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import IgnoredEvent, MessageEvent, ParseProblem
from chalicelib.channels.x import XAdapter, summons_refusal
from tests.helpers import fixture_bytes, fixture_json, parse_all
from tests.helpers import json_values as helpers_json_values

ACCOUNT, CUSTOMER = "1111111111111111111", "2222222222222222222"


def deliver(inbox, *names):
    for name in names:
        body = fixture_bytes("x", name) if isinstance(name, str) else json.dumps(name).encode()
        assert inbox.post_x(body).status_code == 200
        inbox.process()


def test_the_same_crc_and_signature_guard_activity_deliveries(inbox):
    inbox.add_account("x", ACCOUNT)
    body = fixture_bytes("x", "activity_dm_received.json")
    assert inbox.post_webhook("x", body).status_code == 401
    assert inbox.post_x(body, secret="someone-else").status_code == 401
    assert inbox.process() == 0
    assert inbox.client.http.get("/webhooks/x?crc_token=challenge_string").status_code == 200


def test_dm_received_and_our_dm_sent_share_the_participant_thread_with_name_handle_and_picture(inbox):
    inbox.add_account("x", ACCOUNT)
    deliver(inbox, "activity_dm_received.json", "activity_dm_sent.json")
    [conversation] = inbox.conversations()
    assert conversation["kind"] == "dm" and conversation["account_id"] == ACCOUNT
    contact = conversation["contact"]
    assert (contact["display_name"], contact["handle"], contact["platform_id"]) == ("OtherUser", "@OtherUser", CUSTOMER)
    received, sent = inbox.messages(conversation["id"])
    assert (received["direction"], received["text"]) == ("in", "hello! caf\u00e9 & cake?")
    assert received["platform_message_id"] == "2080765901528535096"
    assert received["sent_at"] == "2026-07-24T21:23:44.372Z"
    assert (sent["direction"], sent["text"]) == ("out", "Thanks for the update!")  # dm.sent is our echo
    assert conversation["last_message_direction"] == "out"
    contact_id = inbox.get("/api/conversations/" + conversation["id"])["contact"]["id"]
    [identity] = inbox.get(f"/api/contacts/{contact_id}")["identities"]
    assert identity["avatar_url"] == "https://pbs.twimg.com/profile_images/0000000000000000001/example_normal.jpg"
    assert identity["followers"] == 97


def test_account_activity_and_x_activity_dms_of_one_participant_share_a_thread(inbox):
    inbox.add_account("x", ACCOUNT)
    legacy = {"for_user_id": ACCOUNT, "direct_message_events": [{
        "type": "message_create", "id": "1", "created_timestamp": "1784928000000",
        "message_create": {"sender_id": CUSTOMER, "target": {"recipient_id": ACCOUNT}, "message_data": {"text": "hi"}}}]}
    deliver(inbox, legacy, "activity_dm_received.json")
    [conversation] = inbox.conversations()
    assert [m["text"] for m in inbox.messages(conversation["id"])] == ["hi", "hello! caf\u00e9 & cake?"]


def test_each_event_lands_once_whatever_redelivers_it(inbox):
    inbox.add_account("x", ACCOUNT)
    mention = fixture_json("x", "activity_mention.json")
    replayed = copy.deepcopy(mention)  # /2/webhooks/replay: the same event again
    as_reply = copy.deepcopy(mention)  # the same post through another subscription
    as_reply["data"].update(event_uuid="-99", event_type="post.reply.create", tag="replies")
    deliver(inbox, mention, replayed, as_reply, "activity_dm_received.json", "activity_dm_received.json")
    assert sorted(m["platform_message_id"] for m in inbox.all_messages()) == [
        "2080765813578191303", "2080765901528535096"]


def test_mention_our_reply_and_the_customer_answer_form_one_post_thread(inbox):
    inbox.add_account("x", ACCOUNT)
    deliver(inbox, "activity_mention.json", "activity_our_reply.json", "activity_reply.json")
    [conversation] = inbox.conversations()
    assert conversation["kind"] == "mention"
    assert conversation["contact"]["handle"] == "@OtherUser"
    mention, ours, answer = inbox.messages(conversation["id"])
    assert (mention["text"], mention["sent_at"]) == ("hey @ExampleUser", "2026-07-24T21:23:23.000Z")
    assert (ours["direction"], ours["reply_to"]) == ("out", "2080765813578191303")
    assert (answer["direction"], answer["reply_to"]) == ("in", "2080766000000000002")
    assert answer["text"] == "@ExampleUser order #4411 & it never came \U0001f622 (photo attached)"  # note_tweet, unescaped
    assert answer["attachments"] == [{"type": "photo", "url": "https://pbs.twimg.com/media/GxAbCdEfGhI.jpg",
                                      "media_id": "3_2080766500000000100"}]
    assert conversation["last_message_direction"] == "in"


def test_a_quote_of_our_post_is_its_own_thread_with_the_quoting_author(inbox):
    inbox.add_account("x", ACCOUNT)
    deliver(inbox, "activity_quote.json")
    [conversation] = inbox.conversations()
    assert conversation["kind"] == "mention"
    assert (conversation["contact"]["display_name"], conversation["contact"]["handle"]) == ("Public User", "@PublicUser")
    [message] = inbox.messages(conversation["id"])
    assert message["platform_message_id"] == "2080770000000000006" and message["reply_to"] is None


def test_an_encrypted_chat_is_kept_in_the_participant_thread_and_says_to_open_it_on_x(inbox):
    inbox.add_account("x", ACCOUNT)
    deliver(inbox, "activity_dm_received.json", "activity_chat_received.json", "activity_chat_received.json")
    [conversation] = inbox.conversations()
    dm, chat = inbox.messages(conversation["id"])
    assert chat["direction"] == "in" and "open it on X" in chat["text"]
    assert chat["type"] == "encrypted_chat"
    assert chat["attachments"] == [{"type": "encrypted_chat", "title": "open on X", "url": "https://x.com/i/chat"}]
    assert conversation["last_message_preview"].startswith("Encrypted chat")
    assert inbox.quarantine() == []


def test_other_activity_is_ignored_and_an_unknown_account_is_quarantined(inbox):
    deliver(inbox, "activity_like.json", "activity_dm_received.json")
    assert inbox.all_messages() == []
    assert [q["reason"] for q in inbox.quarantine()] == ["unknown account"]


def test_an_event_without_filter_user_id_is_quarantined_not_lost(inbox):
    broken = fixture_json("x", "activity_dm_received.json")
    del broken["data"]["filter"]
    deliver(inbox, broken)
    [problem] = inbox.quarantine()
    assert "filter.user_id" in problem["reason"] and "2080765901528535096" in problem["raw"]


def test_a_list_of_events_under_data_is_split_into_routable_parts():
    events = [fixture_json("x", "activity_dm_received.json")["data"], fixture_json("x", "activity_mention.json")["data"]]
    parts = XAdapter().split({"data": events})
    assert [p["data"]["event_type"] for p in parts] == ["dm.received", "post.mention.create"]
    assert [type(e).__name__ for e in parse_all("x", {"data": events})] == ["MessageEvent", "MessageEvent"]


def test_names_pictures_and_followers_come_from_includes_users():
    [mention] = parse_all("x", fixture_json("x", "activity_mention.json"))
    assert mention.contact.avatar_url == "https://pbs.twimg.com/profile_images/0000000000000000001/example_normal.jpg"
    assert mention.contact.followers == 97
    assert mention.raw["event_uuid"] == "2080765813578191303"
    [dm] = parse_all("x", fixture_json("x", "activity_dm_received.json"))
    assert (dm.contact.display_name, dm.contact.followers) == ("OtherUser", 97)


def test_hostile_names_and_picture_urls_are_not_taken_as_they_come():
    delivery = fixture_json("x", "activity_mention.json")
    user = delivery["data"]["includes"]["users"][0]
    user.update(name="\u202eEvil\x00" + "n" * 500, profile_image_url="javascript:alert(1)",
                public_metrics={"followers_count": -5})
    [event] = parse_all("x", delivery)
    assert event.contact.display_name == "Evil" + "n" * 96
    assert event.contact.avatar_url is None and event.contact.followers is None


# --- the reply rule, as a pure function (the send path's tests are in test_send_x.py) -----------


def test_summons_refusal_over_the_documented_posts():
    mention = fixture_json("x", "activity_mention.json")["data"]
    assert summons_refusal(mention["payload"], mention["includes"], ACCOUNT) is None
    quote = fixture_json("x", "activity_quote.json")["data"]
    assert summons_refusal(quote["payload"], quote["includes"], ACCOUNT) is None
    assert summons_refusal(quote["payload"], {}, ACCOUNT)  # the quoted post's author unknown: refused
    assert summons_refusal(mention["payload"], mention["includes"], "5") is not None


# --- parser properties -------------------------------------------------------------------------

json_values = helpers_json_values()
ids = st.one_of(st.just(ACCOUNT), st.just(CUSTOMER), st.integers(), st.text(max_size=5), st.none())
posts = st.fixed_dictionaries({}, optional={
    "id": ids, "author_id": ids, "text": json_values, "created_at": st.sampled_from(
        ["2026-07-24T21:23:23.000Z", "2026-07-24T21:23:23", "yesterday", ""]) | json_values,
    "referenced_tweets": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["replied_to", "quoted", "retweeted"]),
                                                         "id": ids}), max_size=2) | json_values,
    "note_tweet": json_values, "attachments": st.fixed_dictionaries({}, optional={"media_keys": json_values}),
    "in_reply_to_user_id": ids, "entities": json_values,
})
payloads = st.one_of(posts, json_values, st.fixed_dictionaries({}, optional={
    "direct_message_events": st.lists(json_values, max_size=2) | json_values, "users": json_values,
    "id": ids, "sender_id": ids, "conversation_id": st.text(max_size=45) | json_values,
    "created_at_msec": st.text(max_size=14) | st.integers() | json_values}))
events = st.fixed_dictionaries({}, optional={
    "event_uuid": st.text(max_size=20) | json_values,
    "filter": st.fixed_dictionaries({}, optional={"user_id": ids}) | json_values,
    "event_type": st.sampled_from(["post.mention.create", "post.reply.create", "post.quote.create", "post.create",
                                   "dm.received", "dm.sent", "chat.received", "chat.sent", "like.create"]) | json_values,
    "payload": payloads, "includes": st.fixed_dictionaries({}, optional={
        "users": st.lists(json_values, max_size=3) | json_values, "media": json_values, "tweets": json_values}) | json_values,
})


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=events | st.lists(events, max_size=3) | json_values)
def test_parse_never_raises_and_every_message_is_routable(data):
    found = list(XAdapter().parse({"data": data}, {}))
    assert found, "an X Activity delivery always yields at least one event (never dropped silently)"
    for event in found:
        assert isinstance(event, (MessageEvent, IgnoredEvent, ParseProblem))
        if isinstance(event, MessageEvent):
            assert isinstance(event.sent_at_ms, int) and event.account_id and event.platform_message_id
            assert event.thread_key and event.direction in ("in", "out")
            assert event.contact.avatar_url is None or event.contact.avatar_url.startswith("https://")


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(post=posts | json_values, includes=json_values, account=ids)
def test_summons_refusal_never_raises(post, includes, account):
    answer = summons_refusal(post, includes, str(account))
    assert answer is None or isinstance(answer, str)


# --- the reply window: X's summons rule said before the agent writes ----------------------------


def _unsummoned_reply():
    """A customer answering another customer under some post: X delivers it (post.reply.create
    reaches us through the conversation) but it neither mentions nor quotes our account."""
    reply = fixture_json("x", "activity_reply.json")
    post = reply["data"]["payload"]
    post.update(id="2080766500000000009", in_reply_to_user_id="3333333333333333333",
                text="@SomeoneElse same here", entities={"mentions": [{"start": 0, "end": 12, "username": "SomeoneElse",
                                                                       "id": "3333333333333333333"}]})
    post.pop("note_tweet")
    post["referenced_tweets"] = [{"type": "replied_to", "id": "2080766000000000077"}]
    return reply


def _reply(inbox, conversation_id, kind="reply"):
    return inbox.call("post", f"/api/conversations/{conversation_id}/messages",
                      {"text": "sorry to hear that", "kind": kind, "client_id": f"c-{kind}"})


def test_a_mention_a_quote_and_a_reply_to_our_post_can_be_answered(inbox):
    inbox.add_account("x", ACCOUNT)
    deliver(inbox, "activity_mention.json", "activity_our_reply.json", "activity_reply.json", "activity_quote.json")
    for conversation in inbox.conversations():
        window = inbox.get("/api/conversations/" + conversation["id"])["reply_window"]
        assert (window["can_reply"], window["code"]) == (True, None), conversation["id"]


def test_a_post_that_does_not_summon_us_is_closed_before_the_agent_writes_and_refused_with_422(inbox, monkeypatch):
    inbox.add_account("x", ACCOUNT)
    deliver(inbox, _unsummoned_reply())
    [conversation] = inbox.conversations()
    window = inbox.get("/api/conversations/" + conversation["id"])["reply_window"]
    assert (window["can_reply"], window["mode"], window["code"]) == (False, "closed", "not_summoned")
    assert "mentions or quotes this account" in window["reason"]
    status, body = _reply(inbox, conversation["id"])
    assert status == 422 and body["reason"] == "not_summoned"
    assert _reply(inbox, conversation["id"], kind="note")[0] == 202  # notes still work
    deliver(inbox, "activity_mention.json")  # no effect on another thread
    monkeypatch.setenv("X_REPLY_SUMMONS_CHECK", "off")  # Enterprise apps: X does not restrict them
    assert inbox.get("/api/conversations/" + conversation["id"])["reply_window"]["can_reply"] is True


def test_a_found_post_says_what_the_search_saw(inbox):
    from chalicelib.listening import items as listening_items
    from chalicelib.listening.annotate import analyse

    inbox.add_account("x", ACCOUNT)
    windows = {}
    for post_id, replyable in (("190001", False), ("190002", True)):
        listening_items.record(source="x_search", platform="x", post_id=post_id, posted_ms=1_733_000_000_000,
                               account_id=ACCOUNT, author={"name": "Lea", "handle": "lea", "followers": 1},
                               text="acme coffee is cold", url=None, analysis=analyse("acme coffee is cold", "x"),
                               replyable=replyable, not_replyable_reason="X replies only to posts that mention us")
        [item] = [i for i in inbox.get("/api/listening/items")["items"] if i["platform_post_id"] == post_id]
        converted = inbox.call("post", f"/api/listening/items/{item['id']}/convert")[1]
        windows[post_id] = inbox.get("/api/conversations/" + converted["conversation_id"])["reply_window"]
    assert (windows["190001"]["code"], windows["190001"]["reason"]) == (
        "not_summoned", "X replies only to posts that mention us")
    assert windows["190002"]["can_reply"] is True


def test_account_activity_tweets_follow_the_same_rule(inbox):
    legacy = fixture_json("x", "mention_thread.json")
    account = legacy["for_user_id"]
    inbox.add_account("x", account)
    other = copy.deepcopy(legacy)
    tweet = other["tweet_create_events"][0]
    tweet.update(id_str="990000000000000001", id=990000000000000001, in_reply_to_user_id_str="777",
                 in_reply_to_status_id_str="990000000000000000", entities={"user_mentions": []})
    deliver(inbox, legacy, other)
    verdicts = {c["id"]: inbox.get("/api/conversations/" + c["id"])["reply_window"]["code"]
                for c in inbox.conversations()}
    assert sorted(map(str, verdicts.values())) == ["None", "not_summoned"]


def test_a_dm_delivery_without_messages_is_kept_not_dropped():
    """Found by the property above: `dm.received` with an empty `direct_message_events` list."""
    data = {"event_type": "dm.received", "filter": {"user_id": "1111111111111111111"},
            "payload": {"direct_message_events": []}}
    [problem] = list(XAdapter().parse({"data": data}, {}))
    assert isinstance(problem, ParseProblem) and "without direct_message_events" in problem.reason
