"""The outbox worker and reconciliation: a fake adapter injected through the runtime (no module
patching) answers like a platform would; echoes and receipts come in through the real webhook
and processor."""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional

import pytest

from tests.helpers import PAGE, messenger, page_delivery

PSID = "psid-out-1"


class FakeAdapter:
    """Scripted answers: each a SendResult, a SendError, or a callable(message) -> either."""

    def __init__(self, *script: Any) -> None:
        self.script: List[Any] = list(script)
        self.sent: List[Any] = []

    def send(self, message: Any, secrets: Any, http: Any) -> Any:
        self.sent.append(message)
        step = self.script.pop(0)
        if callable(step) and not isinstance(step, type):
            step = step(message)
        if isinstance(step, Exception):
            raise step
        return step


def _now() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def page(inbox):
    inbox.add_account("messenger", PAGE, "Demo page")
    inbox.post_meta(page_delivery(messenger("m-in-1", PSID, _now() - 60_000, "Where is my order?")))
    inbox.process()
    [conversation] = inbox.conversations()
    inbox.conversation_id = conversation["id"]
    return inbox


def _use(adapter: FakeAdapter, channel: str = "messenger") -> FakeAdapter:
    from chalicelib.runtime import runtime

    runtime.use_adapter(channel, adapter)
    return adapter


def _reply(inbox, text: str = "It ships today", client_id: str = "c-1") -> Dict[str, Any]:
    response = inbox.client.http.post(f"/api/conversations/{inbox.conversation_id}/messages", body=json.dumps(
        {"text": text, "kind": "reply", "client_id": client_id}), headers={
        "Authorization": "Bearer " + inbox.login_admin(), "Content-Type": "application/json"})
    assert response.status_code == 202, response.body
    return json.loads(response.body)


def _drain_outbox(inbox) -> int:
    from chalicelib.local.pump import drain

    return drain(inbox.app.outbox_worker, queue="outbox")


def _outbound(inbox) -> List[Dict[str, Any]]:
    return [m for m in inbox.messages(inbox.conversation_id) if m["direction"] == "out"]


def _echo(inbox, mid: str, text: str, metadata: Optional[str] = None) -> None:
    item = messenger(mid, PSID, _now(), text, echo=True)
    if metadata is not None:
        item["message"]["metadata"] = metadata
    inbox.post_meta(page_delivery(item))
    inbox.process()


def _delivered(inbox, mid: str) -> None:
    inbox.post_meta(page_delivery({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": _now(),
                                   "delivery": {"mids": [mid], "watermark": _now()}}))
    inbox.process()


def _location(inbox, message_id: str):
    from chalicelib.models import Message

    [found] = [m for m in Message.query(inbox.conversation_id) if m.message_id == message_id]
    return found.conversation_id, found.sort_key


def test_send_success_marks_sent_with_platform_id_and_receipts_land_on_it(page):
    from chalicelib.channels.base import SendResult

    fake = _use(FakeAdapter(SendResult("mid.sent-1")))
    reply = _reply(page)
    assert _drain_outbox(page) == 1
    [message] = fake.sent
    assert message.text == "It ships today" and message.recipient_id == PSID and message.tag is None
    assert message.outbound_id == f"{page.conversation_id}|{_location(page, reply['id'])[1]}"
    [shown] = _outbound(page)
    assert shown["id"] == reply["id"] and shown["delivery_status"] == "sent"
    assert shown["platform_message_id"] == "mid.sent-1" and shown["delivery_error"] is None
    _echo(page, "mid.sent-1", "It ships today")  # the echo after the answer: a duplicate
    _delivered(page, "mid.sent-1")
    [shown] = _outbound(page)
    assert shown["delivery_status"] == "delivered"
    assert page.get(f"/api/conversations/{page.conversation_id}")["message_count"] == 2
    assert page.quarantine() == []


def test_echo_before_the_send_answer_is_exactly_one_outbound_message(page):
    from chalicelib.channels.base import SendResult

    def echo_first(message: Any) -> Any:
        _echo(page, "mid.race-1", message.text)  # no metadata: found as the in-flight reply
        return SendResult("mid.race-1")

    _use(FakeAdapter(echo_first))
    reply = _reply(page)
    _drain_outbox(page)
    [shown] = _outbound(page)
    assert shown["id"] == reply["id"] and shown["delivery_status"] == "sent"
    assert shown["platform_message_id"] == "mid.race-1"
    assert page.get(f"/api/conversations/{page.conversation_id}")["message_count"] == 2


def test_echo_with_metadata_lands_on_our_reply_even_with_other_text(page):
    from chalicelib.channels.base import SendResult

    def echo_first(message: Any) -> Any:
        _echo(page, "mid.meta-1", "text the platform rewrote", metadata=message.outbound_id)
        return SendResult("mid.meta-1")

    _use(FakeAdapter(echo_first))
    reply = _reply(page)
    _drain_outbox(page)
    [shown] = _outbound(page)
    assert shown["id"] == reply["id"] and shown["platform_message_id"] == "mid.meta-1"


def test_echo_stored_as_its_own_message_is_merged_when_the_send_answers(page):
    from chalicelib.channels.base import SendResult

    def unrecognisable_echo(message: Any) -> Any:
        _echo(page, "mid.merge-1", "Ｉｔ ｓｈｉｐｓ")  # different text, no metadata: stored on its own
        assert len(_outbound(page)) == 2
        return SendResult("mid.merge-1")

    _use(FakeAdapter(unrecognisable_echo))
    reply = _reply(page)
    _drain_outbox(page)
    [shown] = _outbound(page)
    assert shown["id"] == reply["id"] and shown["platform_message_id"] == "mid.merge-1"
    conversation = page.get(f"/api/conversations/{page.conversation_id}")
    assert conversation["message_count"] == 2
    _delivered(page, "mid.merge-1")
    assert _outbound(page)[0]["delivery_status"] == "delivered"


def test_throttled_then_success_is_retried_with_backoff(page):
    from chalicelib.channels.base import SendError, SendResult
    from chalicelib.outbound import worker
    from chalicelib.runtime import runtime

    fake = _use(FakeAdapter(SendError("retryable", "Meta throttled the page (code 613)", retry_after=3),
                            SendResult("mid.after-429")))
    reply = _reply(page)
    _drain_outbox(page)  # the retry is delayed: not delivered again by this drain
    [shown] = _outbound(page)
    assert shown["delivery_status"] == "queued" and "retrying" in shown["delivery_error"]
    queue = runtime.client("sqs").get_queue_attributes(QueueUrl=runtime.queue_url("outbox"),
                                                       AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert queue["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert worker.send_one(*_location(page, reply["id"])) == "sent"  # the delayed redelivery
    [shown] = _outbound(page)
    assert shown["delivery_status"] == "sent" and shown["platform_message_id"] == "mid.after-429"
    assert shown["delivery_error"] is None and len(fake.sent) == 2


def test_retry_after_longer_than_sqs_can_delay_is_carried_as_not_before(page):
    from chalicelib.channels.base import SendError
    from chalicelib.outbound import worker
    from chalicelib.runtime import runtime

    _use(FakeAdapter(SendError("retryable", "X rate limit", retry_after=3600)))
    reply = _reply(page)
    _drain_outbox(page)
    sqs = runtime.client("sqs")
    for message in sqs.receive_message(QueueUrl=runtime.queue_url("outbox"), MaxNumberOfMessages=10).get("Messages", []):
        pytest.fail(f"nothing should be visible yet: {message}")
    body = json.dumps({"conversation_id": page.conversation_id, "sort_key": _location(page, reply["id"])[1],
                       "not_before": runtime.now_ms() + 3_000_000})
    assert worker.process_body(body) == "deferred"  # re-enqueued, not sent


def test_gives_up_after_max_attempts(page):
    from chalicelib.channels.base import SendError
    from chalicelib.outbound import worker

    fake = _use(FakeAdapter(*[SendError("retryable", "throttled")] * worker.MAX_SEND_ATTEMPTS))
    reply = _reply(page)
    location = _location(page, reply["id"])
    results = [worker.send_one(*location) for _ in range(worker.MAX_SEND_ATTEMPTS)]
    assert results[-1] == "failed" and results[:-1] == ["retry"] * (worker.MAX_SEND_ATTEMPTS - 1)
    [shown] = _outbound(page)
    assert shown["delivery_status"] == "failed" and "gave up" in shown["delivery_error"]
    assert len(fake.sent) == worker.MAX_SEND_ATTEMPTS


def test_permanent_failure_is_failed_with_a_readable_error(page):
    from chalicelib.channels.base import SendError

    _use(FakeAdapter(SendError("permanent", "This person isn't available right now (551/1545041)", code="551")))
    _reply(page)
    _drain_outbox(page)
    [shown] = _outbound(page)
    assert shown["delivery_status"] == "failed"
    assert shown["delivery_error"] == "This person isn't available right now (551/1545041)"


def test_window_closed_answer_is_failed_with_the_reason(page):
    from chalicelib.channels.base import SendError

    _use(FakeAdapter(SendError("window_closed", "sent outside of allowed window (10/2018278)")))
    _reply(page)
    _drain_outbox(page)
    [shown] = _outbound(page)
    assert shown["delivery_status"] == "failed" and shown["delivery_error"].startswith("the messaging window is closed")


def test_expired_token_marks_the_account_needs_reauth_visible_in_the_api(page):
    from chalicelib.accounts import update_account
    from chalicelib.channels.base import SendError, SendResult

    fake = _use(FakeAdapter(SendError("reauthorize", "Error validating access token: session expired (190)")))
    _reply(page, client_id="r-1")
    _drain_outbox(page)
    [shown] = _outbound(page)
    assert shown["delivery_status"] == "failed" and "must be reconnected" in shown["delivery_error"]
    [account] = page.get("/api/accounts")["items"]
    assert account["needs_reauth"] is True and "expired" in account["needs_reauth_reason"]
    _reply(page, text="second try", client_id="r-2")
    _drain_outbox(page)
    assert len(fake.sent) == 1  # the next reply fails at once, without calling the platform
    assert all(m["delivery_status"] == "failed" for m in _outbound(page))
    update_account("messenger", PAGE, credential_refs={"META_PAGE_TOKEN": "META_PAGE_TOKEN_NEW"})
    assert page.get("/api/accounts")["items"][0]["needs_reauth"] is False
    fake.script.append(SendResult("mid.reconnected"))
    _reply(page, text="third try", client_id="r-3")
    _drain_outbox(page)
    assert _outbound(page)[-1]["delivery_status"] == "sent"


def test_timeout_is_unknown_never_resent_then_reconciled_by_the_echo(page):
    from chalicelib.channels.base import SendError
    from chalicelib.outbound import worker

    fake = _use(FakeAdapter(SendError("unknown", "Meta did not answer in time (ReadTimeout)", code="timeout")))
    reply = _reply(page)
    _drain_outbox(page)
    [shown] = _outbound(page)
    assert shown["delivery_status"] == "unknown" and "did not answer" in shown["delivery_error"]
    assert worker.send_one(*_location(page, reply["id"])) == "already unknown"
    assert len(fake.sent) == 1
    _echo(page, "mid.late-echo", "It ships today")  # the platform had sent it after all
    [shown] = _outbound(page)
    assert shown["id"] == reply["id"] and shown["delivery_status"] == "sent"
    assert shown["platform_message_id"] == "mid.late-echo" and shown["delivery_error"] is None
    _delivered(page, "mid.late-echo")
    assert _outbound(page)[0]["delivery_status"] == "delivered"


def test_receipt_carrying_our_outbound_id_overtakes_the_send_answer(page):
    from chalicelib.channels.base import StatusEvent
    from chalicelib.inbox import store
    from chalicelib.models import Message

    reply = _reply(page)
    location = _location(page, reply["id"])

    class Receipt:
        channel, account_id, platform_message_id, status, at_ms, error = (
            "messenger", PAGE, "mid.early", "delivered", _now(), None)
        outbound_id = f"{location[0]}|{location[1]}"

    assert store.apply_receipt(Receipt()) == "status applied"
    message = Message.get(*location)
    assert message.delivery_status == "delivered" and message.platform_message_id == "mid.early"
    assert store.apply_receipt(StatusEvent("messenger", PAGE, "mid.early", "read", _now())) == "status applied"


def test_a_claim_left_by_a_dead_attempt_becomes_unknown_not_a_resend(page):
    from chalicelib.inbox import outbound
    from chalicelib.outbound import worker
    from chalicelib.runtime import runtime

    fake = _use(FakeAdapter())
    reply = _reply(page)
    location = _location(page, reply["id"])
    assert outbound.claim(outbound.load(*location)) is not None  # an attempt that then died
    with pytest.raises(worker.InFlight):
        worker.send_one(*location)
    later = time.time() + outbound.CLAIM_STALE_MS / 1000 + 1
    runtime.use_clock(lambda: later)
    assert worker.send_one(*location) == "unknown"
    assert fake.sent == [] and _outbound(page)[0]["delivery_status"] == "unknown"


def test_duplicate_queue_messages_send_once(page):
    from chalicelib.channels.base import SendResult
    from chalicelib.outbound import worker

    fake = _use(FakeAdapter(SendResult("mid.once")))
    reply = _reply(page)
    worker.enqueue(*_location(page, reply["id"]))
    worker.enqueue(*_location(page, reply["id"]))
    _drain_outbox(page)
    assert len(fake.sent) == 1 and _outbound(page)[0]["delivery_status"] == "sent"


def test_a_failing_record_is_retried_alone_and_parked_after_the_limit(page):
    from chalicelib.outbound import worker
    from chalicelib.runtime import runtime

    good = {"body": json.dumps({"conversation_id": "c_gone", "sort_key": "0#m"}), "messageId": "a",
            "receiptHandle": None, "attributes": {"ApproximateReceiveCount": "1"}}
    bad = {"body": json.dumps({"conversation_id": page.conversation_id, "sort_key": 123}), "messageId": "b",
           "attributes": {"ApproximateReceiveCount": "1"}}
    # an unreadable record is dropped (logged), a gone message is settled
    assert worker.handle_records([good, bad]) == {"gone": 1, "unreadable": 1}

    class Broken(FakeAdapter):
        pass

    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("dynamodb down")

    original = worker.send_one
    try:
        worker.send_one = boom  # type: ignore[assignment]
        with pytest.raises(worker.RetryLater):
            worker.handle_records([dict(good, attributes={"ApproximateReceiveCount": "1"})])
        assert worker.handle_records([dict(good, attributes={"ApproximateReceiveCount": str(
            worker.MAX_PROCESSING_ATTEMPTS)})]) == {"parked": 1}
    finally:
        worker.send_one = original  # type: ignore[assignment]
    parked = runtime.client("sqs").receive_message(QueueUrl=runtime.queue_url("outbox-dlq"),
                                                   MessageAttributeNames=["All"])["Messages"]
    assert "dynamodb down" in parked[0]["MessageAttributes"]["error"]["StringValue"]


def test_note_is_never_sent_even_if_enqueued(page):
    from chalicelib.outbound import worker

    fake = _use(FakeAdapter())
    response = page.client.http.post(f"/api/conversations/{page.conversation_id}/messages", body=json.dumps(
        {"text": "internal", "kind": "note", "client_id": "n-1"}), headers={
        "Authorization": "Bearer " + page.login_admin(), "Content-Type": "application/json"})
    note = json.loads(response.body)
    assert worker.send_one(*_location(page, note["id"])) == "not a reply"
    assert fake.sent == []
