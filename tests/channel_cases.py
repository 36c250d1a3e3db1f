"""Parsing tables: one per channel, delivery -> the events the adapter's `parse` must yield.

No AWS and no HTTP: tests/test_channel_parsing.py runs every case through `parse` directly.
What storage, threading and the API make of events stays in the channels' end-to-end tests.

A case lists the expected events in order, each as {"event": <class name>, <field>: <value>};
a field may be dotted (`contact.display_name`, `message.sent_at_ms`) and a value may be a
predicate (a callable returning True). Only the fields listed are compared, but the number and
kinds of events always are.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Tuple

from tests.helpers import fixture_json


def ms(iso: str) -> int:
    """Epoch milliseconds of an ISO-8601 UTC time as the API shows it (2023-11-14T22:13:20.000Z)."""
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000)


def startswith(prefix: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, str) and value.startswith(prefix)

    check.__name__ = f"startswith({prefix!r})"
    return check


@dataclass(frozen=True)
class Case:
    id: str
    adapter: str  # webhook name: meta | x | telegram | linkedin
    payload: Callable[[], Any]
    expected: Tuple[Dict[str, Any], ...]
    context: Dict[str, str] = field(default_factory=dict)


def fixture(platform: str, name: str, change: Callable[[Any], None] = lambda payload: None) -> Callable[[], Any]:
    """The fixture, decoded afresh for each run and optionally modified by `change`."""
    def build() -> Any:
        payload = copy.deepcopy(fixture_json(platform, name))
        change(payload)
        return payload

    return build


def inline(payload: Any) -> Callable[[], Any]:
    return lambda: copy.deepcopy(payload)


# --- Meta: Instagram, Facebook Page comments (Messenger and WhatsApp share the adapter) ------------

IG = "17841400000000099"
PAGE = "104000000000099"
POST = f"{PAGE}_555000111"


def _set_entry_time(value: Any) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["entry"][0]["time"] = value

    return change


def _set_comment(**values: Any) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["entry"][0]["changes"][0]["value"].update(values)

    return change


META_CASES = [
    Case("instagram comment time in milliseconds is read as milliseconds", "meta",
         fixture("meta", "instagram_comment.json", _set_entry_time(1717000100123)),
         ({"event": "MessageEvent", "sent_at_ms": ms("2024-05-29T16:28:20.123Z")},)),
    Case("page comment becomes a facebook comment thread", "meta", fixture("meta", "facebook_comment_add.json"),
         ({"event": "MessageEvent", "channel": "facebook", "thread_kind": "comment", "subject": POST,
           "account_id": PAGE, "contact.display_name": "Rui Almeida", "contact.platform_user_id": "6200000000000001",
           "platform_message_id": "555000111_901", "text": "Do you have gluten-free pastries?",
           "sent_at_ms": 1717001000 * 1000,  # created_time is seconds
           "direction": "in", "reply_to": None},)),  # parent_id == post_id: a top-level comment
    Case("facebook created_time as a string gives the same time", "meta",
         fixture("meta", "facebook_comment_add.json", _set_comment(created_time="1717001000")),
         ({"event": "MessageEvent", "sent_at_ms": 1717001000 * 1000},)),
    Case("instagram comment_id variant and live comments are messages, mentions are ignored", "meta",
         fixture("meta", "instagram_comment_variants.json"),
         ({"event": "MessageEvent", "channel": "instagram", "subject": "17900000000000456",
           "thread_key": "comment:17900000000000456:454545", "platform_message_id": "17865799348089041",
           "text": "Reel looks great"},
          {"event": "MessageEvent", "channel": "instagram", "subject": "17900000000000789",
           "thread_key": "comment:17900000000000789:565656", "platform_message_id": "17865799348089042",
           "msg_type": "live_comment"},
          # a mention carries ids only: logged, not stored
          {"event": "IgnoredEvent", "channel": "instagram"})),
    Case("other feed items are not inbox material", "meta", fixture("meta", "facebook_feed_not_comments.json"),
         tuple({"event": "IgnoredEvent", "channel": "facebook",
                "reason": startswith(f"feed item {item!r}")} for item in ("status", "reaction", "like", "share", "post"))),
]


# --- X ------------------------------------------------------------------------------------------

X_ACCOUNT = "4337869213"


def _x_mention_with_retweet_and_own_tweet(payload: Any) -> None:
    first = payload["tweet_create_events"][0]
    payload["tweet_create_events"].append({**first, "id_str": "9", "retweeted_status": {}})
    payload["tweet_create_events"].append({"id_str": "10", "text": "Big news!", "user": {"id_str": X_ACCOUNT},
                                           "timestamp_ms": "1"})


X_CASES = [
    Case("mention is a message, a retweet and our own tweet are ignored", "x",
         fixture("x", "mention_thread.json", _x_mention_with_retweet_and_own_tweet),
         ({"event": "MessageEvent", "thread_key": "tweet:1050118621198921728", "thread_kind": "mention"},
          {"event": "IgnoredEvent"}, {"event": "IgnoredEvent"})),
    Case("a delivery without for_user_id is a problem", "x", inline({"direct_message_events": []}),
         ({"event": "ParseProblem", "reason": startswith("delivery has no for_user_id")},)),
    Case("other account activity is ignored", "x", fixture("x", "favorite.json"),
         ({"event": "IgnoredEvent", "channel": "x"},)),
]


# --- Telegram ---------------------------------------------------------------------------------------

BOT = "7000000001"

TELEGRAM_CASES = [
    Case("an edit names the bot from the context and converts seconds", "telegram",
         fixture("telegram", "private_edited.json"),
         ({"event": "EditEvent", "edited_at_ms": 1700000095000, "message.sent_at_ms": 1700000000000,
           "message.account_id": BOT},), {"bot": BOT}),
    Case("without a bot in the context the default bot receives", "telegram", fixture("telegram", "private_text.json"),
         ({"event": "MessageEvent", "account_id": "default"},)),
    Case("channel posts are read from the sender chat", "telegram",
         inline({"update_id": 1, "channel_post": {
             "message_id": 5, "date": 1700000000, "text": "New roast today",
             "sender_chat": {"id": -1002000000001, "title": "Acme News", "type": "channel"},
             "chat": {"id": -1002000000001, "title": "Acme News", "type": "channel"}}}),
         ({"event": "MessageEvent", "thread_kind": "group", "contact.display_name": "Acme News",
           "platform_message_id": "-1002000000001:5"},), {"bot": BOT}),
    Case("membership updates are ignored", "telegram", fixture("telegram", "my_chat_member.json"),
         ({"event": "IgnoredEvent", "channel": "telegram"},), {"bot": BOT}),
]


# --- LinkedIn ---------------------------------------------------------------------------------------

ORG = "urn:li:organization:96072893"
LI_POST = "urn:li:activity:7094637247890620418"
IMAGE_COMMENT = "urn:li:comment:(urn:li:activity:7094637247890620418,7094977717598626100)"

LINKEDIN_CASES = [
    Case("comment batch maps each notification by its action", "linkedin", fixture("linkedin", "comments_batch.json"),
         ({"event": "MessageEvent", "thread_key": f"{LI_POST}|urn:li:person:zLqTygBP8S"},
          {"event": "IgnoredEvent"}, {"event": "ParseProblem"}, {"event": "MessageEvent"})),
    Case("a deleted comment is a removal without the message", "linkedin", fixture("linkedin", "comment_delete.json"),
         ({"event": "RemoveEvent", "message": None, "platform_message_id": IMAGE_COMMENT},)),
    Case("other notification types are ignored", "linkedin",
         inline({"type": "LEAD_ACTION", "leadGenFormResponse": "urn:li:leadGenFormResponse:1"}),
         ({"event": "IgnoredEvent"},)),
    Case("a share mention is a mention thread", "linkedin", fixture("linkedin", "share_mention.json"),
         ({"event": "MessageEvent", "account_id": ORG, "thread_kind": "mention",
           "subject": "urn:li:share:7095000000000000001", "text": startswith("Loved the latte art workshop"),
           "sent_at_ms": ms("2023-08-09T10:46:40.000Z"), "direction": "in"},)),
]


TABLES: Dict[str, List[Case]] = {
    "meta": META_CASES,
    "x": X_CASES,
    "telegram": TELEGRAM_CASES,
    "linkedin": LINKEDIN_CASES,
}


def field_value(event: Any, dotted: str) -> Any:
    value = event
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def mismatches(events: List[Any], expected: Tuple[Dict[str, Any], ...]) -> List[str]:
    """What differs between `events` and the expected descriptions (empty when they agree)."""
    problems = []
    kinds = [type(e).__name__ for e in events]
    wanted = [e["event"] for e in expected]
    if kinds != wanted:
        return [f"events {kinds} != expected {wanted}"]
    for index, (event, description) in enumerate(zip(events, expected)):
        for name, value in description.items():
            if name == "event":
                continue
            actual = field_value(event, name)
            ok = value(actual) if callable(value) else actual == value
            if not ok:
                problems.append(f"event {index} {name}: {actual!r} does not match {getattr(value, '__name__', value)!r}")
    return problems
