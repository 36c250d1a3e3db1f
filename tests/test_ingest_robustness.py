"""Correctly signed deliveries we can never process: acknowledged once, quarantined, never a 5xx.

A 5xx makes the platform retry for days and then drop the whole batch, valid events included;
these bodies would fail the same way on every retry.
"""
from __future__ import annotations

import json

import pytest

from chalicelib import aws, config
from tests.test_inbox_api import PAGE, messenger, page_delivery


def _count(queue: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(queue), AttributeNames=["ApproximateNumberOfMessages",
                                                       "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _delivery_with(placeholder_replacement: str) -> bytes:
    """A valid two-message delivery whose second text is replaced by raw JSON text."""
    body = json.dumps(page_delivery(messenger("m_ok", "p1", 1700000000000, "fine"),
                                    messenger("m_odd", "p2", 1700000001000, "PLACEHOLDER")),
                      separators=(",", ":"))
    return body.replace('"PLACEHOLDER"', placeholder_replacement).encode("ascii")


def _assert_refused_and_quarantined(inbox, response, reason_fragment: str) -> None:
    assert response.status_code == 200, response.body  # acknowledged: retrying cannot help
    assert inbox.process() == 1
    assert _count(config.INGEST_QUEUE) == 0 and _count(config.DEAD_LETTER_QUEUE) == 0
    assert inbox.conversations(limit="100") == [], "nothing of a refused body is stored as messages"
    [item] = inbox.quarantine()
    assert reason_fragment in item["reason"]


@pytest.mark.parametrize("where", ["value", "key"])
def test_a_lone_surrogate_is_acknowledged_and_quarantined_not_a_5xx(inbox, where):
    inbox.add_account("messenger", PAGE)
    odd = '"broken \\ud83d emoji"' if where == "value" else '{"\\udc00":"x"}'
    response = inbox.post_meta(_delivery_with(odd))
    _assert_refused_and_quarantined(inbox, response, "surrogate")


def test_a_valid_escaped_surrogate_pair_is_an_ordinary_message(inbox):
    inbox.add_account("messenger", PAGE)
    response = inbox.post_meta(_delivery_with('"smile \\ud83d\\ude00"'))
    assert response.status_code == 200
    inbox.process()
    assert sorted(m["text"] for m in inbox.all_messages()) == ["fine", "smile \U0001F600"]
    assert inbox.quarantine() == []


@pytest.mark.parametrize("levels", [980, 100_000])
def test_absurd_nesting_is_acknowledged_and_quarantined_not_a_5xx(inbox, levels):
    inbox.add_account("messenger", PAGE)
    response = inbox.post_meta(_delivery_with("[" * levels + "]" * levels))
    _assert_refused_and_quarantined(inbox, response, "nested deeper than")


def test_ordinary_nesting_is_not_refused(inbox):
    from chalicelib.ingest.webhook import MAX_JSON_DEPTH, unprocessable

    inside = "[" * (MAX_JSON_DEPTH - 6) + "]" * (MAX_JSON_DEPTH - 6)  # the delivery itself nests 5 levels
    body = _delivery_with(inside)
    assert unprocessable(body, json.loads(body)) is None
    deeper = _delivery_with("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert "nested deeper than" in unprocessable(deeper, json.loads(deeper))


def test_a_forged_odd_body_is_still_rejected_before_anything_is_stored(inbox):
    response = inbox.post_meta(_delivery_with('"\\ud83d"'), secret="wrong")
    assert response.status_code == 401
    assert _count(config.INGEST_QUEUE) == 0
