"""Meta webhooks end to end through the public entry points: HTTP in, queue, processor, API out."""
from __future__ import annotations

import threading

import pytest

from tests.helpers import HandOffs, fixture_bytes, meta_signature

PAGE = "1234567890"


def test_signature_vector_from_the_contract_is_accepted(inbox):
    body = fixture_bytes("meta", "vector_page_text.json")
    assert meta_signature(body) == "sha256=fac63b33feb721448a826a7e152a9c6148ad2b5bf2d513fb8d9abcc5044de67f"
    inbox.add_account("messenger", PAGE)
    response = inbox.post_meta(body)
    assert response.status_code == 200
    assert inbox.process() == 1
    [conversation] = inbox.conversations()
    assert conversation["channel"] == "messenger"
    assert conversation["last_message_preview"] == "Hello World"
    [message] = inbox.messages(conversation["id"])
    assert message["text"] == "Hello World"
    assert message["direction"] == "in"
    assert message["sent_at"] == "2023-11-14T22:13:20.000Z"


# --- handshake --------------------------------------------------------------------------------


@pytest.fixture
def http():
    """The app's routes without the fake AWS backend (the handshake stores nothing)."""
    from chalice.test import Client

    import app as application

    with Client(application.app, stage_name="local") as client:
        yield client.http


def test_handshake_echoes_the_challenge_as_plain_text_when_the_token_matches(http):
    response = http.get("/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=test_verify_token")
    assert response.status_code == 200
    assert response.body == b"1158201444"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_handshake_is_refused_with_403_otherwise(http):
    for query in [
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong_token",
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=",
        "hub.mode=subscribe&hub.challenge=1158201444",
        "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=test_verify_token",
        "hub.challenge=1158201444&hub.verify_token=test_verify_token",
        "hub.mode=subscribe&hub.verify_token=test_verify_token",
    ]:
        response = http.get("/webhooks/meta?" + query)
        assert response.status_code == 403, query
        assert b"1158201444" not in response.body, query
    assert http.get("/webhooks/meta").status_code == 403


# --- signatures and bodies --------------------------------------------------------------------


def test_missing_or_invalid_signature_is_401_and_nothing_is_stored(inbox):
    inbox.add_account("messenger", PAGE)
    body = fixture_bytes("meta", "vector_page_text.json")
    for headers in [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": "sha256="},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": meta_signature(body, "another_secret")},
        {"X-Hub-Signature-256": meta_signature(body)[len("sha256="):]},  # no "sha256=" prefix
        {"X-Hub-Signature": "sha1=" + "0" * 40},  # the legacy SHA-1 header alone is not enough
    ]:
        response = inbox.post_webhook("meta", body, headers)
        assert response.status_code == 401, headers
    tampered = body.replace(b"Hello World", b"Hello Werld")
    assert inbox.post_webhook("meta", tampered, {"X-Hub-Signature-256": meta_signature(body)}).status_code == 401
    assert inbox.process() == 0
    assert inbox.all_messages() == []
    assert inbox.quarantine() == []


def test_a_signed_body_that_is_not_json_is_400_and_nothing_is_stored(inbox):
    for body in [b"not json", b'{"object": "page", ', b"\xff\xfe\x00garbage", b""]:
        response = inbox.post_meta(body)
        assert response.status_code == 400, body
    assert inbox.process() == 0
    assert inbox.quarantine() == []


def test_unicode_escaped_bodies_are_verified_over_the_raw_bytes_and_stored_decoded(inbox):
    inbox.add_account("messenger", PAGE)
    # Meta escapes non-ASCII characters; the signature covers these exact bytes.
    body = (b'{"object":"page","entry":[{"id":"1234567890","time":1700000000000,"messaging":[{"sender":{"id":"5678"},'
            b'"recipient":{"id":"1234567890"},"timestamp":1700000000000,"message":{"mid":"m_cafe",'
            b'"text":"caf\\u00e9 \\ud83d\\ude00"}}]}]}')
    assert b"\\u00e9" in body
    response = inbox.post_webhook("meta", body, {"X-Hub-Signature-256": meta_signature(body)})
    assert response.status_code == 200
    inbox.process()
    [message] = inbox.all_messages()
    assert message["text"] == "caf\u00e9 \U0001F600"


# --- exactly once -----------------------------------------------------------------------------


def _one_message(mid: str = "m_dup", text: str = "again?") -> dict:
    return {"object": "page", "entry": [{"id": PAGE, "time": 1700000000000, "messaging": [
        {"sender": {"id": "5678"}, "recipient": {"id": PAGE}, "timestamp": 1700000000000,
         "message": {"mid": mid, "text": text}}]}]}


def test_the_same_message_delivered_ten_times_is_stored_once(inbox):
    inbox.add_account("messenger", PAGE)
    for _ in range(10):
        assert inbox.post_meta(_one_message()).status_code == 200
        inbox.process()
    [conversation] = inbox.conversations()
    assert conversation["message_count"] == 1
    assert conversation["unread_count"] == 1
    assert len(inbox.messages(conversation["id"])) == 1


def _one_request_at_a_time(monkeypatch) -> None:
    """DynamoDB applies each request atomically; moto does not (a failed transaction restores a
    snapshot of the whole table, erasing writes other threads made meanwhile). Serialising moto's
    request handling gives the threads DynamoDB's per-request atomicity while the pipeline code
    itself still interleaves freely between requests."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def atomic(self, request):
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", atomic)


def test_the_same_message_processed_by_ten_threads_at_once_is_stored_once(inbox, monkeypatch):
    from chalicelib.ingest import processor
    from chalicelib.runtime import runtime

    _one_request_at_a_time(monkeypatch)

    inbox.add_account("messenger", PAGE)
    handed = HandOffs()
    runtime.use_invoker(handed)
    for _ in range(10):
        assert inbox.post_meta(_one_message()).status_code == 200
    bodies = handed.bodies()
    assert len(bodies) == 10, "the ten deliveries should all be handed off"

    start = threading.Barrier(10)
    outcomes, failures = [], []

    def work(body):
        try:
            start.wait(timeout=10)
            outcomes.extend(processor.process_body(body))
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert sorted(outcomes) == ["created"] + ["duplicate"] * 9
    [conversation] = inbox.conversations()
    assert conversation["message_count"] == 1
    assert len(inbox.messages(conversation["id"])) == 1


def test_fifty_messages_batched_in_one_post_all_land(inbox):
    inbox.add_account("messenger", PAGE)
    items = [{"sender": {"id": "5678"}, "recipient": {"id": PAGE}, "timestamp": 1700000000000 + i * 1000,
              "message": {"mid": f"m_batch_{i}", "text": f"message {i}"}} for i in range(50)]
    half = len(items) // 2
    payload = {"object": "page", "entry": [{"id": PAGE, "time": 1700000100000, "messaging": items[:half]},
                                           {"id": PAGE, "time": 1700000100000, "messaging": items[half:]}]}
    assert inbox.post_meta(payload).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    assert conversation["message_count"] == 50
    messages = inbox.messages(conversation["id"])
    assert [m["text"] for m in messages] == [f"message {i}" for i in range(50)]
    assert conversation["last_message_preview"] == "message 49"


def test_an_event_for_an_unknown_account_is_acknowledged_and_quarantined(inbox):
    inbox.add_account("messenger", "some-other-page")
    response = inbox.post_meta(fixture_bytes("meta", "vector_page_text.json"))
    assert response.status_code == 200
    inbox.process()
    assert inbox.conversations() == []
    [item] = inbox.quarantine()
    assert item["reason"] == "unknown account"
    assert item["channel"] == "messenger"
    assert item["account_id"] == PAGE
    assert "Hello World" in item["raw"]
