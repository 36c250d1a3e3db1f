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
    Case("instagram comment_id variant and live comments are messages, mentions are looked up", "meta",
         fixture("meta", "instagram_comment_variants.json"),
         ({"event": "MessageEvent", "channel": "instagram", "subject": "17900000000000456",
           "thread_key": "comment:17900000000000456:454545", "platform_message_id": "17865799348089041",
           "text": "Reel looks great"},
          {"event": "MessageEvent", "channel": "instagram", "subject": "17900000000000789",
           "thread_key": "comment:17900000000000789:565656", "platform_message_id": "17865799348089042",
           "msg_type": "live_comment"},
          # a mention carries ids only: the processor looks it up with the account's token
          {"event": "LookupEvent", "channel": "instagram", "kind": "instagram_mention"})),
    Case("other feed items are not inbox material", "meta", fixture("meta", "facebook_feed_not_comments.json"),
         tuple({"event": "IgnoredEvent", "channel": "facebook",
                "reason": startswith(f"feed item {item!r}")} for item in ("status", "reaction", "like", "share", "post"))),
]


# --- WhatsApp Cloud API: one fixture per message type ----------------------------------------------

PHONE_ID = "106540352242922"
WA_CUSTOMER = "16505551234"
REPLIED = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="


def wamid(n: int) -> str:
    return f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMx{n:02d}"


def one_attachment(**fields: Any) -> Callable[[Any], bool]:
    """Exactly one attachment, holding (at least) these fields with these values."""
    def check(attachments: Any) -> bool:
        return len(attachments) == 1 and all(attachments[0].get(k, object()) == v for k, v in fields.items())

    check.__name__ = f"one attachment with {fields!r}"
    return check


def _wa_message(n: int, **fields: Any) -> Dict[str, Any]:
    """A customer's WhatsApp message number n of the type fixtures (timestamps 1739321024 + n)."""
    return {"event": "MessageEvent", "channel": "whatsapp", "account_id": PHONE_ID, "platform_message_id": wamid(n),
            "thread_key": WA_CUSTOMER, "contact.platform_user_id": WA_CUSTOMER,
            "contact.display_name": "Sheena Nelson", "contact.handle": "+" + WA_CUSTOMER, "direction": "in",
            "sent_at_ms": (1739321024 + n) * 1000, **fields}


def _wa_media(n: int, kind: str, caption: Any, **extra: Any) -> Case:
    body = fixture_json("meta", f"whatsapp_{kind}.json")["entry"][0]["changes"][0]["value"]["messages"][0][kind]
    return Case(f"whatsapp {kind} keeps its media id, type and hash", "meta", fixture("meta", f"whatsapp_{kind}.json"),
                (_wa_message(n, msg_type=kind, text=caption, attachments=one_attachment(
                    type=kind, media_id=body["id"], mime_type=body["mime_type"], sha256=body["sha256"], **extra)),))


def _wa_contact_card(attachments: Any) -> bool:
    [card_set] = attachments
    [card] = card_set["contacts"]
    return (card["phones"] == [{"phone": "+1 (650) 555-1234", "wa_id": "16505551234", "type": "WORK"}]
            and card["org"]["company"] == "Lucky Shrub")


def _wa_unsupported(attachments: Any) -> bool:
    [attachment] = attachments
    return (attachment["content"] == {"type": "poll_update"} and attachment["errors"][0]["code"] == 131051
            and attachment["errors"][0]["error_data"]["details"] == "Message type is currently not supported.")


WHATSAPP_CASES = [
    Case("whatsapp text", "meta", fixture("meta", "whatsapp_text.json"),
         (_wa_message(1, msg_type="text", text="Hello, is the Lisbon store open on Sunday?", attachments=()),)),
    _wa_media(2, "image", "My receipt",
              url="https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=2754859441498128"),
    _wa_media(3, "audio", None, voice=True),
    _wa_media(4, "video", "The spill"),
    _wa_media(5, "document", "Invoice", filename="invoice-4411.pdf"),
    _wa_media(6, "sticker", None, animated=False),
    Case("whatsapp location", "meta", fixture("meta", "whatsapp_location.json"),
         (_wa_message(7, msg_type="location", text="Rossio Pra\u00e7a Dom Pedro IV, Lisboa", attachments=one_attachment(
             type="location", latitude=38.7223, longitude=-9.1393, url="https://example.invalid/rossio")),)),
    Case("whatsapp contacts", "meta", fixture("meta", "whatsapp_contacts.json"),
         (_wa_message(8, msg_type="contacts", text="Kerry Fuller", attachments=_wa_contact_card),)),
    Case("whatsapp interactive button reply", "meta", fixture("meta", "whatsapp_interactive_button_reply.json"),
         (_wa_message(9, msg_type="interactive", text="Cancel", reply_to=REPLIED, attachments=(
             {"type": "interactive", "interactive_type": "button_reply",
              "reply": {"id": "cancel-button", "title": "Cancel"}},)),)),
    Case("whatsapp interactive list reply", "meta", fixture("meta", "whatsapp_interactive_list_reply.json"),
         (_wa_message(10, msg_type="interactive", text="Priority Mail Express", attachments=one_attachment(
             interactive_type="list_reply", reply={"id": "priority_express", "title": "Priority Mail Express",
                                                   "description": "Next Day to 2 Days"})),)),
    Case("whatsapp template button", "meta", fixture("meta", "whatsapp_button.json"),
         (_wa_message(11, msg_type="button", text="Stop promotions",
                      reply_to="wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAC=",
                      attachments=({"type": "button", "payload": "STOP_PROMOS", "text": "Stop promotions"},)),)),
    Case("whatsapp reaction, and the reaction taken back", "meta", fixture("meta", "whatsapp_reaction.json"),
         (_wa_message(12, msg_type="reaction", text="\U0001F44D", reply_to=REPLIED,
                      attachments=({"type": "reaction", "emoji": "\U0001F44D", "message_id": REPLIED},)),
          _wa_message(13, text=None, reply_to=REPLIED,
                      attachments=({"type": "reaction", "emoji": None, "message_id": REPLIED, "removed": True},)))),
    Case("whatsapp unsupported keeps the platform's errors", "meta", fixture("meta", "whatsapp_unsupported.json"),
         (_wa_message(14, msg_type="unsupported", text=None, attachments=_wa_unsupported),)),
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
    "meta": META_CASES + WHATSAPP_CASES,
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
