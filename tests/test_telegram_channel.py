"""Telegram Bot API end to end through the public entry points, plus parser properties."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import EditEvent, IgnoredEvent, MessageEvent, ParseProblem, RemoveEvent, StatusEvent
from chalicelib.channels.telegram import TelegramAdapter
from tests.helpers import TELEGRAM_TOKEN as TOKEN
from tests.helpers import fixture_bytes
from tests.helpers import json_values as helpers_json_values

BOT = "7000000001"
EVENT_TYPES = (MessageEvent, StatusEvent, EditEvent, RemoveEvent, IgnoredEvent, ParseProblem)


def post_telegram(inbox, body, token=TOKEN, bot=BOT):
    return inbox.post_telegram(body, token, bot)


def group_updates():
    return json.loads(fixture_bytes("telegram", "group_messages.json"))


# --- handshake and verification ------------------------------------------------------------------


def test_there_is_no_get_handshake(inbox):
    assert inbox.client.http.get("/webhooks/telegram").status_code == 405


def test_missing_or_wrong_secret_token_is_refused_and_nothing_is_stored(inbox):
    inbox.add_account("telegram", BOT)
    body = fixture_bytes("telegram", "private_text.json")
    assert post_telegram(inbox, body, token=None).status_code == 401
    assert post_telegram(inbox, body, token="guess").status_code == 401
    assert post_telegram(inbox, body, token=TOKEN + "x").status_code == 401
    assert post_telegram(inbox, body, token="").status_code == 401
    assert inbox.process() == 0
    assert inbox.all_messages() == []


def test_a_bot_parameter_that_is_not_an_id_is_refused(inbox):
    response = post_telegram(inbox, fixture_bytes("telegram", "private_text.json"), bot="x%22%3E%3Cscript")
    assert response.status_code == 400
    assert inbox.process() == 0


# --- private chats -------------------------------------------------------------------------------


def test_private_text_message_lands_under_the_bot_named_in_the_url(inbox):
    inbox.add_account("telegram", BOT, "@AcmeCoffeeBot")
    response = post_telegram(inbox, fixture_bytes("telegram", "private_text.json"))
    assert response.status_code == 200
    assert inbox.process() == 1
    [conversation] = inbox.conversations()
    assert (conversation["channel"], conversation["account_id"], conversation["kind"]) == ("telegram", BOT, "dm")
    assert conversation["contact"]["display_name"] == "Zo\u00eb Ng\u00f4"
    assert conversation["contact"]["handle"] == "@zoe_ngo"
    assert conversation["contact"]["platform_id"] == "777000111"
    [message] = inbox.messages(conversation["id"])
    assert message["text"] == "Xin ch\u00e0o! Is my order #4411 ready? \U0001f64f"
    assert message["platform_message_id"] == "777000111:4021"
    assert message["sent_at"] == "2023-11-14T22:13:20.000Z"  # `date` is seconds
    assert message["direction"] == "in"


def test_without_a_bot_parameter_the_default_bot_receives(inbox):
    inbox.add_account("telegram", "default")
    assert post_telegram(inbox, fixture_bytes("telegram", "private_text.json"), bot=None).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    assert conversation["account_id"] == "default"


def test_configured_default_bot_id_is_used(inbox, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_ID", BOT)
    inbox.add_account("telegram", BOT)
    assert post_telegram(inbox, fixture_bytes("telegram", "private_text.json"), bot=None).status_code == 200
    inbox.process()
    assert [c["account_id"] for c in inbox.conversations()] == [BOT]


def test_updates_for_an_unconfigured_bot_are_quarantined(inbox):
    inbox.add_account("telegram", BOT)
    post_telegram(inbox, fixture_bytes("telegram", "private_text.json"), bot="7999999999")
    inbox.process()
    assert inbox.all_messages() == []
    [item] = inbox.quarantine()
    assert (item["reason"], item["account_id"]) == ("unknown account", "7999999999")


def test_duplicate_update_records_one_message(inbox):
    inbox.add_account("telegram", BOT)
    for _ in range(3):
        assert post_telegram(inbox, fixture_bytes("telegram", "private_text.json")).status_code == 200
    inbox.process()
    assert len(inbox.all_messages()) == 1


def test_edited_message_keeps_the_edit_history(inbox):
    inbox.add_account("telegram", BOT)
    post_telegram(inbox, fixture_bytes("telegram", "private_text.json"))
    inbox.process()
    post_telegram(inbox, fixture_bytes("telegram", "private_edited.json"))
    inbox.process()
    [message] = inbox.all_messages()
    assert message["text"] == "Xin ch\u00e0o! Is my order #4412 ready? \U0001f64f (sorry, typo)"
    assert message["edited_at"] == "2023-11-14T22:14:55.000Z"  # edit_date, seconds
    assert message["sent_at"] == "2023-11-14T22:13:20.000Z"
    assert message["edit_history"] == [{"text": "Xin ch\u00e0o! Is my order #4411 ready? \U0001f64f",
                                        "replaced_at": "2023-11-14T22:14:55.000Z"}]


def test_an_edit_that_overtakes_its_original_still_records_one_message(inbox):
    inbox.add_account("telegram", BOT)
    post_telegram(inbox, fixture_bytes("telegram", "private_edited.json"))
    post_telegram(inbox, fixture_bytes("telegram", "private_text.json"))
    inbox.process()
    [message] = inbox.all_messages()
    assert message["text"].endswith("(sorry, typo)")


def test_photo_keeps_the_largest_size_and_the_caption_document_keeps_its_file(inbox):
    inbox.add_account("telegram", BOT)
    post_telegram(inbox, fixture_bytes("telegram", "private_photo.json"))
    post_telegram(inbox, fixture_bytes("telegram", "private_document.json"))
    inbox.process()
    [conversation] = inbox.conversations()
    photo, document = inbox.messages(conversation["id"])
    assert photo["type"] == "photo" and photo["text"] == "The cup arrived cracked \U0001f61e"
    assert photo["attachments"] == [{"type": "photo", "file_id": "AgACAgQAAxkBAAIC_x1280",
                                     "file_unique_id": "AQAD_x1280", "file_size": 187044, "width": 1280, "height": 960}]
    assert document["type"] == "document" and document["text"] is None
    assert document["attachments"][0]["file_name"] == "receipt-4412.pdf"
    assert conversation["last_message_preview"] == "[document]"


def test_a_malformed_update_is_quarantined_while_its_neighbours_land(inbox):
    inbox.add_account("telegram", BOT)
    for name in ("private_text.json", "malformed_message.json", "private_photo.json"):
        assert post_telegram(inbox, fixture_bytes("telegram", name)).status_code == 200
    inbox.process()
    assert sorted(m["platform_message_id"] for m in inbox.all_messages()) == ["777000111:4021", "777000111:4022"]
    [problem] = inbox.quarantine()
    assert problem["reason"].startswith("unreadable: unreadable message")
    assert "a message whose chat went missing" in problem["raw"]


# --- groups --------------------------------------------------------------------------------------


def test_group_chat_is_one_conversation_per_chat_and_ids_are_unique_per_chat(inbox):
    inbox.add_account("telegram", BOT)
    for update in group_updates():
        assert post_telegram(inbox, update).status_code == 200
    inbox.process()
    regulars = next(c for c in inbox.conversations() if c["subject"] == "Acme Coffee Regulars \u2615")
    assert regulars["kind"] == "group" and regulars["message_count"] == 2  # the join notice is not a message
    question, sticker = inbox.messages(regulars["id"])
    assert question["platform_message_id"] == "-1001987654321:88"
    assert sticker["platform_message_id"] == "-1001987654321:89"
    assert sticker["reply_to"] == "-1001987654321:88"
    assert sticker["type"] == "sticker" and sticker["attachments"][0]["emoji"] == "\U0001f44d"
    assert sticker["author_id"] != question["author_id"]  # two people, one group conversation
    wholesale = next(c for c in inbox.conversations() if c["subject"] == "Acme wholesale")
    [location] = inbox.messages(wholesale["id"])
    assert location["platform_message_id"] == "-4001234567:89"  # same message_id, other chat
    assert location["attachments"] == [{"type": "location", "latitude": 55.604981, "longitude": 13.003822}]
    assert len(inbox.conversations()) == 2 and inbox.quarantine() == []


# --- other update kinds --------------------------------------------------------------------------


def test_callback_query_becomes_an_inbound_callback_message(inbox):
    inbox.add_account("telegram", BOT)
    post_telegram(inbox, fixture_bytes("telegram", "private_text.json"))
    post_telegram(inbox, fixture_bytes("telegram", "callback_query.json"))
    inbox.process()
    [conversation] = inbox.conversations()
    _, callback = inbox.messages(conversation["id"])
    assert callback["type"] == "callback" and callback["text"] == "order:4412:coming"
    assert callback["reply_to"] == "777000111:4030"


# --- parser properties (the parsing table is in tests/channel_cases.py) --------------------------


json_values = helpers_json_values()
ids = st.one_of(st.integers(), st.text(max_size=6), st.none(), st.booleans())
users = st.fixed_dictionaries({}, optional={"id": ids, "first_name": json_values, "username": json_values})
messages = st.fixed_dictionaries({}, optional={
    "message_id": ids, "date": st.integers() | json_values, "edit_date": st.integers() | json_values,
    "from": users | json_values, "sender_chat": users | json_values,
    "chat": st.fixed_dictionaries({}, optional={"id": ids, "type": st.sampled_from(["private", "group", "supergroup", "channel"]) | json_values, "title": json_values}),
    "text": json_values, "caption": json_values, "photo": st.lists(json_values, max_size=3) | json_values,
    "document": json_values, "sticker": json_values, "location": json_values, "venue": json_values,
    "contact": json_values, "poll": json_values, "dice": json_values, "reply_to_message": json_values,
    "new_chat_members": json_values,
})
updates = st.fixed_dictionaries({"update_id": st.integers()}, optional={
    "message": messages | json_values, "edited_message": messages | json_values, "channel_post": messages,
    "callback_query": st.fixed_dictionaries({}, optional={"id": ids, "from": users | json_values, "data": json_values,
                                                          "message": messages | json_values}) | json_values,
    "my_chat_member": json_values,
})
contexts = st.fixed_dictionaries({}, optional={"bot": st.text(max_size=8), "received_at": st.text(max_size=14)})


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=json_values | updates, context=contexts)
def test_parse_never_raises_and_yields_only_events(payload, context):
    events = list(TelegramAdapter().parse(payload, context))
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    for event in events:
        message = event.message if isinstance(event, EditEvent) else event
        if isinstance(message, MessageEvent):
            assert isinstance(message.sent_at_ms, int) and message.account_id and message.thread_key
