"""POST /api/conversations/{id}/messages: stored first (202, queued), one message per client_id,
notes never sent, window rules (422 with a reason), outdated threads (409), hostile input."""
from __future__ import annotations

import json
import time
from typing import Any, Dict, Optional

import pytest

from tests.helpers import PAGE, PHONE, messenger, page_delivery, whatsapp_delivery

HOUR = 3600_000
DAY = 24 * HOUR


@pytest.fixture
def accounts(inbox):
    inbox.add_account("messenger", PAGE, "Demo page")
    inbox.add_account("whatsapp", PHONE, "Demo number")
    return inbox


def _now() -> int:
    return int(time.time() * 1000)


def _messenger_conversation(inbox, psid: str = "psid-1", ago_ms: int = 60_000, mid: str = "m-in-1") -> Dict[str, Any]:
    inbox.post_meta(page_delivery(messenger(mid, psid, _now() - ago_ms, "Where is my order?")))
    inbox.process()
    [conversation] = [c for c in inbox.conversations(limit="100") if c["contact"]["platform_id"] == psid] or \
        [c for c in inbox.conversations(limit="100")]
    return conversation


def _post(inbox, conversation_id: str, body: Any, raw: Optional[bytes] = None):
    data = raw if raw is not None else json.dumps(body).encode()
    return inbox.client.http.post(f"/api/conversations/{conversation_id}/messages", body=data, headers={
        "Authorization": "Bearer " + inbox.login_admin(), "Content-Type": "application/json"})


def _outbox_bodies():
    from chalicelib.runtime import runtime

    sqs = runtime.client("sqs")
    found = sqs.receive_message(QueueUrl=runtime.queue_url("outbox"), MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in found.get("Messages", [])]


def test_reply_is_stored_first_answered_202_queued_and_enqueued(accounts):
    conversation = _messenger_conversation(accounts)
    response = _post(accounts, conversation["id"], {"text": "Let me check", "kind": "reply", "client_id": "c-1"})
    assert response.status_code == 202, response.body
    body = json.loads(response.body)
    assert body["delivery_status"] == "queued" and body["kind"] == "reply" and body["direction"] == "out"
    assert body["text"] == "Let me check" and body["client_id"] == "c-1" and body["platform_message_id"] is None
    [queued] = _outbox_bodies()
    assert queued["conversation_id"] == conversation["id"]
    thread = accounts.messages(conversation["id"])
    assert [m["direction"] for m in thread] == ["in", "out"]
    after = accounts.get(f"/api/conversations/{conversation['id']}")
    assert after["awaiting_reply_since"] is None and after["message_count"] == 2
    events = accounts.get(f"/api/conversations/{conversation['id']}/events")["items"]
    assert events[-1]["type"] == "replied" and events[-1]["data"]["message_id"] == body["id"]


def test_double_click_is_one_message(accounts):
    conversation = _messenger_conversation(accounts)
    payload = {"text": "Hello!", "kind": "reply", "client_id": "click-1"}
    first, second = _post(accounts, conversation["id"], payload), _post(accounts, conversation["id"], payload)
    assert first.status_code == 202 and second.status_code == 200
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]
    assert [m["direction"] for m in accounts.messages(conversation["id"])] == ["in", "out"]
    assert accounts.get(f"/api/conversations/{conversation['id']}")["message_count"] == 2
    reused = _post(accounts, conversation["id"], dict(payload, text="Something else"))
    assert reused.status_code == 409 and json.loads(reused.body)["Code"] == "ClientIdReused"


def test_concurrent_double_click_is_one_message(accounts, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.inbox import outbound, store
    from tests.helpers import serialise_moto_requests

    serialise_moto_requests(monkeypatch)  # DynamoDB applies each request atomically; in-process moto does not
    conversation = _messenger_conversation(accounts)
    state = store.get(conversation["id"])
    draft = outbound.Draft(conversation["id"], "reply", "twice", "race-1", "agent-1")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: outbound.create(draft, state), range(4)))
    assert len({m.message_id for m, _ in results}) == 1
    assert sum(1 for _, created in results if created) == 1
    assert [m["direction"] for m in accounts.messages(conversation["id"])] == ["in", "out"]
    assert store.get(conversation["id"])["message_count"] == 2


def test_a_client_id_reused_concurrently_with_another_text_is_refused_not_answered_with_the_other(
        accounts, monkeypatch):
    """Issue 16 item 10: concurrent calls with one client_id and different texts answered 200 with
    the other text's message; each call gets its own message (created or repeated) or a refusal."""
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.inbox import outbound, store
    from tests.helpers import serialise_moto_requests

    serialise_moto_requests(monkeypatch)
    conversation = _messenger_conversation(accounts)
    state = store.get(conversation["id"])
    texts = ["first text", "second text", "first text", "third text", "second text", "fourth text"]

    def send(text: str):
        try:
            message, created = outbound.create(outbound.Draft(conversation["id"], "reply", text, "race-2", "a-1"), state)
        except outbound.ClientIdReused:
            return text, None, None
        return text, message.text, created

    with ThreadPoolExecutor(len(texts)) as pool:
        results = list(pool.map(send, texts))
    [winner] = [stored for _, stored, created in results if created]
    for text, stored, created in results:
        assert stored in (None, text), (text, stored)  # never somebody else's message
        assert (stored is None) == (text != winner)
    assert [m["text"] for m in accounts.messages(conversation["id"]) if m["direction"] == "out"] == [winner]
    # The route answers such a refusal 409, like a sequential reuse.
    other = next(text for text in texts if text != winner)
    reused = _post(accounts, conversation["id"], {"text": other, "kind": "reply", "client_id": "race-2"})
    assert reused.status_code == 409 and json.loads(reused.body)["Code"] == "ClientIdReused"


def test_note_is_stored_logged_and_never_queued(accounts):
    conversation = _messenger_conversation(accounts)
    response = _post(accounts, conversation["id"], {"text": "VIP customer", "kind": "note", "client_id": "n-1"})
    assert response.status_code == 202
    body = json.loads(response.body)
    assert body["kind"] == "note" and body["delivery_status"] is None
    assert _outbox_bodies() == []
    after = accounts.get(f"/api/conversations/{conversation['id']}")
    assert after["awaiting_reply_since"] is not None  # a note does not answer the customer
    assert accounts.get(f"/api/conversations/{conversation['id']}/events")["items"][-1]["type"] == "note_added"


def test_note_is_allowed_when_the_window_is_closed(accounts):
    conversation = _messenger_conversation(accounts, ago_ms=9 * DAY)
    assert _post(accounts, conversation["id"], {"text": "closed", "kind": "note", "client_id": "n"}).status_code == 202


def test_messenger_window_closed_after_seven_days_is_422_with_reason(accounts):
    conversation = _messenger_conversation(accounts, ago_ms=8 * DAY)
    response = _post(accounts, conversation["id"], {"text": "Sorry for the delay", "client_id": "late"})
    assert response.status_code == 422
    body = json.loads(response.body)
    assert body["reason"] == "window_closed" and "Human Agent window closed" in body["Message"]
    assert _outbox_bodies() == [] and len(accounts.messages(conversation["id"])) == 1


def test_messenger_after_24h_is_sent_with_the_human_agent_tag(accounts):
    conversation = _messenger_conversation(accounts, ago_ms=2 * DAY)
    response = _post(accounts, conversation["id"], {"text": "Following up", "client_id": "tagged"})
    assert response.status_code == 202 and json.loads(response.body)["tag"] == "HUMAN_AGENT"


def test_whatsapp_after_24h_needs_a_template(accounts):
    seconds = (_now() - 2 * DAY) // 1000
    accounts.post_meta(whatsapp_delivery("wamid.A", "447700900001", seconds, "hola"))
    accounts.process()
    [conversation] = accounts.conversations(channel="whatsapp")
    refused = _post(accounts, conversation["id"], {"text": "hi again", "client_id": "w-1"})
    assert refused.status_code == 422
    body = json.loads(refused.body)
    assert body["reason"] == "template_required" and "template" in body["Message"]
    template = {"name": "order_update", "language": "en_US"}
    accepted = _post(accounts, conversation["id"], {"template": template, "client_id": "w-2"})
    assert accepted.status_code == 202, accepted.body
    shown = json.loads(accepted.body)
    assert shown["template"] == {"name": "order_update", "language": {"code": "en_US"}}
    assert shown["type"] == "template"
    bad = _post(accounts, conversation["id"], {"template": {"name": "x"}, "client_id": "w-3"})
    assert bad.status_code == 422 and json.loads(bad.body)["reason"] == "bad_template"


def test_template_is_refused_outside_whatsapp(accounts):
    conversation = _messenger_conversation(accounts)
    response = _post(accounts, conversation["id"], {"template": {"name": "a", "language": "en"}, "client_id": "t"})
    assert response.status_code == 422 and json.loads(response.body)["reason"] == "template_not_supported"


def test_text_longer_than_the_channel_accepts_is_422(accounts):
    conversation = _messenger_conversation(accounts)
    response = _post(accounts, conversation["id"], {"text": "x" * 2001, "client_id": "long"})
    assert response.status_code == 422 and json.loads(response.body)["reason"] == "text_too_long"
    assert _post(accounts, conversation["id"], {"text": "x" * 2000, "client_id": "ok"}).status_code == 202


def test_outdated_thread_is_409_unless_confirmed(accounts):
    conversation = _messenger_conversation(accounts, mid="m-old")
    seen = accounts.messages(conversation["id"])[-1]["id"]
    accounts.post_meta(page_delivery(messenger("m-new", "psid-1", _now(), "Hello??")))
    accounts.process()
    stale = _post(accounts, conversation["id"], {"text": "Answer", "client_id": "s-1", "after_message_id": seen})
    assert stale.status_code == 409 and json.loads(stale.body)["Code"] == "OutdatedThread"
    latest = accounts.messages(conversation["id"])[-1]["id"]
    fresh = _post(accounts, conversation["id"], {"text": "Answer", "client_id": "s-2", "after_message_id": latest})
    assert fresh.status_code == 202
    confirmed = _post(accounts, conversation["id"], {"text": "Answer 2", "client_id": "s-3", "after_message_id": seen,
                                                     "confirm": True})
    assert confirmed.status_code == 202


def test_seen_version_refuses_a_reply_after_the_customer_wrote_again(accounts):
    conversation = _messenger_conversation(accounts)
    version = accounts.get(f"/api/conversations/{conversation['id']}")["version"]
    _post(accounts, conversation["id"], {"text": "first", "client_id": "v-1"})
    accounts.post_meta(page_delivery(messenger("m-2", "psid-1", _now(), "still there?")))
    accounts.process()
    response = _post(accounts, conversation["id"], {"text": "second", "client_id": "v-2", "seen_version": version})
    assert response.status_code == 409


def test_unknown_conversation_is_404(accounts):
    response = _post(accounts, "c_doesnotexist", {"text": "hi", "client_id": "x"})
    assert response.status_code == 404
    assert _post(accounts, "c_" + "a" * 300, {"text": "hi", "client_id": "x"}).status_code == 404


def test_requires_a_token(accounts):
    response = accounts.client.http.post("/api/conversations/c_x/messages", body=b"{}",
                                         headers={"Content-Type": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize("body", [
    {"kind": "reply", "client_id": "a"},  # no text
    {"text": "   ", "client_id": "a"},  # blank text
    {"text": 42, "client_id": "a"},
    {"text": ["hi"], "client_id": "a"},
    {"text": "hi"},  # no client_id
    {"text": "hi", "client_id": 7},
    {"text": "hi", "client_id": ""},
    {"text": "hi", "client_id": "x" * 65},
    {"text": "hi", "client_id": "a\u0000b"},
    {"text": "hi", "client_id": "a", "kind": "shout"},
    {"text": "hi", "client_id": "a", "kind": None},
    {"text": "hi", "client_id": "a", "confirm": "yes"},
    {"text": "hi", "client_id": "a", "seen_version": "3"},
    {"text": "hi", "client_id": "a", "seen_version": True},
    {"text": "hi", "client_id": "a", "after_message_id": 5},
    {"text": "hi", "client_id": "a", "surprise": 1},
    {"text": "bell\u0007", "client_id": "a"},
    {"text": "x" * 60_000, "client_id": "a"},
    {"text": "hi", "client_id": "a", "kind": "note", "template": {"name": "a", "language": "en"}},
])
def test_hostile_bodies_are_400(accounts, body):
    conversation = _messenger_conversation(accounts)
    response = _post(accounts, conversation["id"], body)
    assert response.status_code == 400, (body, response.body)
    assert len(accounts.messages(conversation["id"])) == 1


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b"\"text\"", b"\xff\xfe", b"{" * 5000,
                                 b'{"text": "\\ud800", "client_id": "a"}', b'{"text": "hi", "client_id": "\\udfff"}'])
def test_malformed_json_and_lone_surrogates_are_400(accounts, raw):
    conversation = _messenger_conversation(accounts)
    response = _post(accounts, conversation["id"], None, raw=raw)
    assert response.status_code == 400, (raw[:20], response.body)


@pytest.mark.parametrize("text", ["👍🏽 merci beaucoup", "שלום عليكم", "e\u0301\u200d\ufeff", "\U0001F469\u200d\U0001F4BB" * 10,
                                  "line one\nline two\ttabbed"])
def test_unicode_edge_cases_are_stored_exactly(accounts, text):
    conversation = _messenger_conversation(accounts)
    response = _post(accounts, conversation["id"], {"text": text, "client_id": "u-" + str(len(text))})
    assert response.status_code == 202, response.body
    assert accounts.messages(conversation["id"])[-1]["text"] == text


def test_instagram_limit_counts_bytes(inbox):
    from chalicelib.outbound import policy

    with pytest.raises(policy.Refused):
        policy.check_length("é" * 501, "instagram", "dm")
    policy.check_length("é" * 500, "instagram", "dm")
    policy.check_length("x" * 2000, "messenger", "dm")


def test_window_rules_are_pure_and_exact_at_the_edges():
    from chalicelib.outbound import policy

    now = 10 * DAY
    dm = {"channel": "messenger", "thread_kind": "dm"}
    assert policy.plan(dict(dm, last_inbound_at=now - DAY), now, True) == policy.Plan()
    assert policy.plan(dict(dm, last_inbound_at=now - DAY - 1), now, True).tag == "HUMAN_AGENT"
    assert policy.plan(dict(dm, last_inbound_at=now - 7 * DAY), now, True).tag == "HUMAN_AGENT"
    with pytest.raises(policy.Refused):
        policy.plan(dict(dm, last_inbound_at=now - 7 * DAY - 1), now, True)
    with pytest.raises(policy.Refused):
        policy.plan(dm, now, True)  # the customer never wrote
    comment = {"channel": "facebook", "thread_kind": "comment", "last_inbound_at": now - 8 * DAY}
    assert policy.plan(comment, now, True) == policy.Plan()  # a public reply has no window
    with pytest.raises(policy.Refused):
        policy.plan(comment, now, True, private_reply=True)
    assert policy.plan(dict(comment, last_inbound_at=now - DAY), now, True, private_reply=True).private_reply
    for channel in ("x", "telegram", "linkedin"):
        assert policy.plan({"channel": channel, "thread_kind": "dm"}, now, True) == policy.Plan()


def test_a_repeat_finishes_an_application_that_a_dead_call_left_undone(accounts):
    from chalicelib.inbox import outbound, store
    from chalicelib.models import Message
    from chalicelib.runtime import runtime

    conversation = _messenger_conversation(accounts)
    state = store.get(conversation["id"])
    draft = outbound.Draft(conversation["id"], "reply", "half done", "dead-1", "agent-1")
    original = outbound._apply
    try:
        outbound._apply = lambda message, recount: None  # the first call dies after storing
        message, created = outbound.create(draft, state)
    finally:
        outbound._apply = original
    assert created and store.get(conversation["id"])["message_count"] == 1
    again, created = outbound.create(draft, state)  # too soon: the first call may still be at it
    assert not created and again.applied_at is None
    later = time.time() + outbound.FINISH_AFTER_MS / 1000 + 1
    runtime.use_clock(lambda: later)
    again, created = outbound.create(draft, state)
    assert not created and again.message_id == message.message_id
    after = store.get(conversation["id"])
    assert after["message_count"] == 2 and after.get("awaiting_reply_since") is None
    assert Message.get(*(conversation["id"], message.sort_key)).applied_at is not None
