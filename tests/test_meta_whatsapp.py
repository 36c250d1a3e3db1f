"""WhatsApp Cloud API deliveries through the public entry points: every message type stored
faithfully, delivery receipts applied out of order, coexistence echoes.

Shapes follow the WhatsApp Cloud API `messages` webhook reference (one fixture per type in
tests/fixtures/meta/whatsapp_*.json): media carry `id`, `mime_type`, `sha256` (+ `caption`,
`filename`, `voice`, `animated`), `interactive` carries `button_reply` / `list_reply`,
`reaction` carries `message_id` (+ `emoji`, omitted when the reaction is taken back),
`unsupported` carries `errors[]` and `unsupported.type`; timestamps are seconds as strings.
"""
from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from tests.helpers import fixture_bytes, fixture_json, parse_all

PHONE_ID = "106540352242922"
CUSTOMER = "16505551234"
TYPE_FIXTURES = [
    "whatsapp_text.json", "whatsapp_image.json", "whatsapp_audio.json", "whatsapp_video.json",
    "whatsapp_document.json", "whatsapp_sticker.json", "whatsapp_location.json", "whatsapp_contacts.json",
    "whatsapp_interactive_button_reply.json", "whatsapp_interactive_list_reply.json", "whatsapp_button.json",
    "whatsapp_reaction.json", "whatsapp_unsupported.json",
]


def wamid(n: int) -> str:
    return f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMx{n:02d}"


def iso_seconds(seconds: int) -> str:
    from chalicelib.api.views import iso

    return iso(seconds * 1000)


@pytest.fixture
def whatsapp(inbox):
    inbox.add_account("whatsapp", PHONE_ID, "Acme WhatsApp")
    return inbox


@pytest.fixture
def delivered(whatsapp) -> Dict[str, Any]:
    """Every type fixture delivered once, read back through the API."""
    for name in TYPE_FIXTURES:
        assert whatsapp.post_meta(fixture_bytes("meta", name)).status_code == 200, name
    whatsapp.process()
    assert whatsapp.quarantine() == []
    [conversation] = whatsapp.conversations(channel="whatsapp")
    return {"conversation": conversation, "messages": whatsapp.messages(conversation["id"])}


def test_every_type_is_stored_as_parsed(delivered):
    """One delivery per type (one stack setup): the API shows every message exactly as the adapter
    parsed it. What parsing makes of each type is checked, type by type, in the parsing table
    (tests/channel_cases.py, WHATSAPP_CASES); this checks that storage keeps all of it."""
    from chalicelib.api.views import iso

    conversation = delivered["conversation"]
    stored = {m["platform_message_id"]: m for m in delivered["messages"]}
    assert conversation["contact"]["display_name"] == "Sheena Nelson"
    assert conversation["contact"]["handle"] == "+" + CUSTOMER
    assert conversation["message_count"] == 14
    assert [stored[wamid(n)]["sent_at"] for n in range(1, 15)] == [iso_seconds(1739321024 + n) for n in range(1, 15)]
    assert all(m["direction"] == "in" for m in stored.values())
    events = [event for name in TYPE_FIXTURES for event in parse_all("meta", fixture_json("meta", name))]
    assert sorted(e.platform_message_id for e in events) == sorted(stored) == [wamid(n) for n in range(1, 15)]
    for event in events:
        message = stored[event.platform_message_id]
        assert (message["type"], message["text"], message["reply_to"], message["direction"], message["sent_at"]) == (
            event.msg_type, event.text, event.reply_to, event.direction, iso(event.sent_at_ms)), event.platform_message_id
        assert message["attachments"] == json.loads(json.dumps(list(event.attachments))), event.platform_message_id


# --- delivery receipts ------------------------------------------------------------------------


def _record_outbound(whatsapp, platform_id: str, seconds: int, text: str) -> None:
    """One of our messages in the customer's thread, as WhatsApp reports it (a coexistence echo)."""
    payload = json.loads(fixture_bytes("meta", "whatsapp_smb_message_echo.json"))
    [echo] = payload["entry"][0]["changes"][0]["value"]["message_echoes"]
    echo.update(id=platform_id, timestamp=str(seconds), text={"body": text})
    assert whatsapp.post_meta(payload).status_code == 200
    whatsapp.process()
    assert platform_id in {m["platform_message_id"] for m in whatsapp.all_messages() if m["direction"] == "out"}


def test_statuses_move_forward_only_even_out_of_order(whatsapp):
    _record_outbound(whatsapp, "wamid.OUTBOUND01", 1739321070, "Your order is ready")
    _record_outbound(whatsapp, "wamid.OUTBOUND02", 1739321190, "Still there?")
    # read, then delivered, then sent (reverse order), and a failure with its error
    assert whatsapp.post_meta(fixture_bytes("meta", "whatsapp_statuses.json")).status_code == 200
    whatsapp.process()
    messages = {m["platform_message_id"]: m for m in whatsapp.all_messages()}
    assert messages["wamid.OUTBOUND01"]["delivery_status"] == "read"
    assert messages["wamid.OUTBOUND01"]["delivery_error"] is None
    failed = messages["wamid.OUTBOUND02"]
    assert failed["delivery_status"] == "failed"
    error = json.loads(failed["delivery_error"])
    assert error["code"] == 131047
    assert error["title"] == "Re-engagement message"
    assert "24 hours" in error["details"]
    assert whatsapp.quarantine() == []


def test_statuses_in_order_end_on_the_latest(whatsapp):
    _record_outbound(whatsapp, "wamid.OUTBOUND01", 1739321070, "Your order is ready")
    payload = json.loads(fixture_bytes("meta", "whatsapp_statuses.json"))
    statuses = payload["entry"][0]["changes"][0]["value"]["statuses"]
    first = [s for s in statuses if s["id"] == "wamid.OUTBOUND01"]
    for status in reversed(first):  # sent, delivered, read: one POST each
        payload["entry"][0]["changes"][0]["value"]["statuses"] = [status]
        assert whatsapp.post_meta(payload).status_code == 200
        whatsapp.process()
        [message] = whatsapp.all_messages()
        assert message["delivery_status"] == status["status"]
    payload["entry"][0]["changes"][0]["value"]["statuses"] = [first[1]]  # a late duplicate "delivered"
    whatsapp.post_meta(payload)
    whatsapp.process()
    [message] = whatsapp.all_messages()
    assert message["delivery_status"] == "read"


def test_a_receipt_for_a_message_we_do_not_know_is_kept_in_quarantine(whatsapp):
    payload = json.loads(fixture_bytes("meta", "whatsapp_statuses.json"))
    payload["entry"][0]["changes"][0]["value"]["statuses"] = [
        {"id": "wamid.NOT_OURS", "status": "delivered", "timestamp": "1739321090", "recipient_id": CUSTOMER}]
    assert whatsapp.post_meta(payload).status_code == 200
    whatsapp.process()
    [held] = whatsapp.quarantine()
    assert held["reason"] == "receipt for an unknown message"


def test_messages_sent_from_the_business_app_are_outbound_in_the_customers_thread(whatsapp):
    for name in ("whatsapp_text.json", "whatsapp_smb_message_echo.json"):
        assert whatsapp.post_meta(fixture_bytes("meta", name)).status_code == 200
    whatsapp.process()
    [conversation] = whatsapp.conversations(channel="whatsapp")
    question, answer = whatsapp.messages(conversation["id"])
    assert (question["direction"], answer["direction"]) == ("in", "out")
    assert answer["text"] == "Thanks, see you Sunday!"
    assert conversation["first_response_at"] == iso_seconds(1739321300)
    assert conversation["contact"]["display_name"] == "Sheena Nelson"


def test_duplicate_whatsapp_message_is_stored_once(whatsapp):
    body = fixture_bytes("meta", "whatsapp_image.json")
    for _ in range(3):
        assert whatsapp.post_meta(body).status_code == 200
    whatsapp.process()
    [conversation] = whatsapp.conversations(channel="whatsapp")
    assert conversation["message_count"] == 1


def test_a_bad_message_beside_good_ones_is_quarantined_while_they_land(whatsapp):
    payload = json.loads(fixture_bytes("meta", "whatsapp_text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    value["messages"] = [good, {"from": CUSTOMER, "type": "text", "text": {"body": "no id"}, "timestamp": "1739321030"},
                         dict(good, id="wamid.SECOND", timestamp="1739321040", text={"body": "second"})]
    value["statuses"] = [{"id": "wamid.X", "timestamp": "1739321040"}]  # no status
    payload["entry"].append({"id": "WABA2", "changes": [{"field": "messages", "value": {"messages": [good]}}]})
    assert whatsapp.post_meta(payload).status_code == 200
    whatsapp.process()
    assert sorted(m["text"] for m in whatsapp.all_messages()) == ["Hello, is the Lisbon store open on Sunday?", "second"]
    reasons = sorted(q["reason"] for q in whatsapp.quarantine())
    assert len(reasons) == 3, reasons
    assert all(r.startswith("unreadable") for r in reasons)
