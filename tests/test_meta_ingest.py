"""Meta webhooks end to end through the public entry points: HTTP in, queue, processor, API out."""
from __future__ import annotations

import json

from tests.helpers import compact, fixture_bytes, meta_signature

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
