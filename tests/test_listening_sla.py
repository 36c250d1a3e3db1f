"""SLA policies that target listening topics and sentiment: the policy is chosen with the labels
of the customer message that is arriving (through ingest and the store, no private helper), and a
found post converted to a conversation gets its policy the same way."""
from __future__ import annotations

import time

import pytest

from chalicelib.sla import policies
from tests.test_listening import deliver, thread_of


def _policy(inbox, **fields):
    body = {"name": "Angry refunds", "first_response_seconds": 300, "next_response_seconds": 300}
    body.update(fields)
    status, created = inbox.call("post", "/api/sla-policies", body)
    assert status == 201, created
    return created


def _sla_policy(inbox, psid):
    conversation, _ = thread_of(inbox, psid)
    return inbox.call("get", f"/api/conversations/{conversation}")[1]["sla"]["policy_id"]


def test_a_negative_message_on_a_topic_gets_the_policy_that_targets_both(inbox):
    inbox.call("post", "/api/listening/topics", {"name": "Refunds", "include": ["refund"]})
    angry = _policy(inbox, topics=["refunds"], sentiments=["negative"])
    assert angry["topics"] == ["refunds"] and angry["sentiments"] == ["negative"]
    any_refund = _policy(inbox, name="Refunds", topics=["Refunds"], first_response_seconds=3600)
    deliver(inbox, ("p-angry", "I want a refund, this is awful and broken, worst service ever"),
            ("p-calm", "Thanks, the refund arrived, great service"),
            ("p-other", "This is awful and broken, worst service ever"))
    assert _sla_policy(inbox, "p-angry") == angry["id"]
    assert _sla_policy(inbox, "p-calm") == any_refund["id"]
    assert _sla_policy(inbox, "p-other") == "default"
    conversation, _ = thread_of(inbox, "p-angry")
    assert inbox.call("get", f"/api/conversations/{conversation}")[1]["sla"]["state"] == "ok"


def test_a_converted_found_post_gets_the_policy_of_its_topic_and_sentiment(inbox):
    from chalicelib.listening import items

    inbox.add_account("x", "1111111111111111111")
    angry = _policy(inbox, topics=["Outage"], sentiments=["negative"])
    negative = {"sentiment": {"label": "negative", "score": -0.8, "language": "en"}, "topics": ["Outage"]}
    key = items.record(source="x_search", platform="x", post_id="9001", posted_ms=int(time.time() * 1000),
                       account_id="1111111111111111111", author={"name": "Tom", "handle": "tombee", "followers": 3},
                       text="down again, awful", url=None, analysis=negative, replyable=False,
                       now_ms=int(time.time() * 1000))
    converted = inbox.call("post", f"/api/listening/items/{key}/convert", {})[1]
    conversation = inbox.call("get", f"/api/conversations/{converted['conversation_id']}")[1]
    assert conversation["sla"]["policy_id"] == angry["id"]
    [message] = inbox.messages(converted["conversation_id"])
    assert message["topics"] == ["Outage"] and message["sentiment"]["label"] == "negative"


def test_topic_and_sentiment_conditions_rank_above_a_channel_and_match_case_folded(inbox):
    channel = _policy(inbox, name="Messenger", channels=["messenger"])
    mood = _policy(inbox, name="Negative", sentiments=["negative", "unscored"])
    both = _policy(inbox, name="Negative billing", topics=["Billing"], sentiments=["negative"])

    def chosen(labels):
        return policies.policy_for({"channel": "messenger", "inbound_labels": labels}).policy_id

    assert chosen({"sentiment": "negative", "topics": "Shipping\nBILLING"}) == both["id"]
    assert chosen({"sentiment": "unscored", "topics": "Billing"}) == mood["id"]
    assert chosen({"sentiment": "positive", "topics": "Billing"}) == channel["id"]
    assert chosen(None) == channel["id"]
    listed = [p["id"] for p in inbox.call("get", "/api/sla-policies")[1]["items"]]
    assert listed == [both["id"], mood["id"], channel["id"]]


@pytest.mark.parametrize("fields, words", [
    ({"sentiments": ["angry"]}, "sentiments[0] must be one of"),
    ({"sentiments": []}, "must not be empty"),
    ({"topics": ["bad\u0000name"]}, "topics[0] must be a topic name"),
    ({"topics": ["x" * 81]}, "topics[0] must be a topic name"),
    ({"topics": "Refunds"}, "topics must be a list"),
    ({"topics": [7]}, "topics[0] must be a string"),
    ({"topics": [f"t{i}" for i in range(21)]}, "more than 20"),
])
def test_bad_topic_and_sentiment_conditions_are_400(inbox, fields, words):
    body = {"name": "P", "first_response_seconds": 60, "next_response_seconds": 60, **fields}
    status, answer = inbox.call("post", "/api/sla-policies", body)
    assert status == 400 and words in answer["Message"], answer
