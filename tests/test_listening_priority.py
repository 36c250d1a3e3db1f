"""Listening: priority rules as data. A negative public message from an author with reach jumps
the queue, inbound (through the ingest annotator; the inbox store knows no rule) or found (the
listening item carries the priority, converting it raises the conversation)."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.listening import priority
from tests.helpers import fixture_json

OURS = "1111111111111111111"  # the X account the activity fixtures deliver to
RULES = {"rules": [{"sentiment": "negative", "min_followers": 1000, "priority": "high"},
                   {"sentiment": "negative", "min_followers": 50_000, "priority": "urgent"}]}


def test_the_highest_matching_rule_wins_and_unknown_reach_never_passes_a_minimum():
    rules = priority.validate(RULES)
    assert priority.priority_for(rules, "negative", 60_000, None) == "urgent"
    assert priority.priority_for(rules, "negative", 1_000, 0) == "high"
    assert priority.priority_for(rules, "negative", 999, None) is None
    assert priority.priority_for(rules, "positive", 60_000, None) is None
    assert priority.priority_for(rules, "negative", None, None) is None  # reach unknown
    likes = priority.validate({"rules": [{"min_likes": 500, "priority": "medium"}]})
    assert priority.priority_for(likes, "neutral", None, 500) == "medium"


@pytest.mark.parametrize("body, field", [
    ({"rules": [{"sentiment": "negative", "priority": "none"}]}, "rules[0].priority"),
    ({"rules": [{"priority": "high"}]}, "at least one of"),
    ({"rules": [{"min_followers": -1, "priority": "high"}]}, "rules[0].min_followers"),
    ({"rules": [{"min_likes": True, "priority": "high"}]}, "rules[0].min_likes"),
    ({"rules": [{"sentiment": "angry", "priority": "high"}]}, "rules[0].sentiment"),
    ({"rules": [{"sentiment": "negative", "priority": "high", "when": "now"}]}, "the fields are"),
    ({"rules": [{"min_likes": 1, "priority": "high"}] * 21}, "at most 20"),
    ({"rules": {}}, "the body is"),
])
def test_bad_rules_are_refused_naming_the_field(inbox, body, field):
    inbox.login_admin()
    status, answer = inbox.call("put", "/api/listening/priority-rules", body)
    assert status == 400 and field in answer["Message"]
    assert inbox.call("get", "/api/listening/priority-rules")[1] == {"rules": []}


def test_only_admins_set_the_rules_and_every_agent_reads_them(inbox):
    inbox.login_admin()
    assert inbox.call("put", "/api/listening/priority-rules", RULES)[1] == RULES
    status, agent = inbox.call("post", "/api/agents", {"email": "kim@example.com", "name": "Kim",
                                                       "password": "a long enough password"})
    token = inbox.call("post", "/api/auth/login", {"email": "kim@example.com",
                                                   "password": "a long enough password"}, token="")[1]["token"]
    assert inbox.call("put", "/api/listening/priority-rules", {"rules": []}, token=token)[0] == 403
    assert inbox.call("get", "/api/listening/priority-rules", token=token)[1] == RULES


def _x_mention(inbox, post_id, text, followers):
    event = fixture_json("x", "activity_mention.json")
    payload = event["data"]["payload"]
    payload.update(id=post_id, text=text, lang="en", edit_history_tweet_ids=[post_id], conversation_id=post_id)
    payload["author_id"] = author = f"9{post_id}"
    user = dict(event["data"]["includes"]["users"][0], id=author, username=f"user{post_id}")
    user["public_metrics"] = dict(user["public_metrics"], followers_count=followers)
    event["data"]["includes"] = {"users": [user, event["data"]["includes"]["users"][1]]}
    assert inbox.post_x(json.dumps(event).encode()).status_code == 200
    inbox.process()
    [found] = [c for c in inbox.conversations() if f"user{post_id}" in json.dumps(c)]
    return found


def test_a_negative_mention_from_an_author_with_reach_jumps_the_queue(inbox):
    inbox.add_account("x", OURS)
    inbox.login_admin()
    inbox.call("put", "/api/listening/priority-rules", RULES)
    loud = _x_mention(inbox, "2080765813578191401", "@ExampleUser worst service ever, I want a refund", 80_000)
    assert loud["priority"] == "urgent"
    events = inbox.call("get", f"/api/conversations/{loud['id']}/events")[1]["items"]
    assert any(e["type"] == "priority_changed" and e["actor"] == "flow" for e in events)
    quiet = _x_mention(inbox, "2080765813578191402", "@ExampleUser worst service ever, I want a refund", 40)
    happy = _x_mention(inbox, "2080765813578191403", "@ExampleUser love it, great service, thank you", 80_000)
    assert quiet.get("priority") in (None, "none") and happy.get("priority") in (None, "none")
    items = inbox.call("get", "/api/listening/items?source=x_mention")[1]["items"]
    assert sorted(i["priority"] or "" for i in items) == ["", "", "urgent"]


def test_a_rule_raises_a_public_thread_never_lowers_what_an_agent_set_and_skips_direct_messages(inbox):
    from tests.helpers import PAGE, messenger, page_delivery
    from tests.test_listening_mentions import page_mention

    inbox.add_account("facebook", PAGE)
    inbox.add_account("messenger", PAGE)
    inbox.login_admin()
    inbox.call("put", "/api/listening/priority-rules", {"rules": [{"sentiment": "negative", "priority": "high"}]})
    at = int(time.time()) - 60

    def comment(n, text):
        inbox.post_meta(page_mention(f"{PAGE}_9", text, comment_id=f"{PAGE}_9_{n}", at=at + n))
        inbox.process()
        [conversation] = [c for c in inbox.conversations() if c["channel"] == "facebook"]
        return conversation

    thread = comment(1, "@Acme is fine I guess")
    assert thread.get("priority") in (None, "none")
    assert inbox.call("patch", f"/api/conversations/{thread['id']}", {"priority": "urgent"})[0] == 200
    assert comment(2, "@Acme awful, broken, worst service ever")["priority"] == "urgent"  # never lowered
    assert inbox.call("patch", f"/api/conversations/{thread['id']}", {"priority": "low"})[0] == 200
    assert comment(3, "@Acme still awful and broken, terrible")["priority"] == "high"  # raised from low
    inbox.post_meta(page_delivery(messenger("m-9", "psid-9", at * 1000, "awful, broken, worst service ever")))
    inbox.process()
    [dm] = [c for c in inbox.conversations() if c["channel"] == "messenger"]
    assert dm.get("priority") in (None, "none")  # a direct message has no audience


def test_a_found_post_with_reach_carries_the_priority_and_converting_raises_the_conversation(inbox):
    from chalicelib.listening import items

    inbox.add_account("x", OURS)
    inbox.login_admin()
    inbox.call("put", "/api/listening/priority-rules", {"rules": [{"sentiment": "negative", "min_likes": 200,
                                                                   "priority": "high"}]})
    negative = {"sentiment": {"label": "negative", "score": -0.8}, "topics": []}
    for post_id, likes in (("501", 900), ("502", 10)):
        items.record(source="x_search", platform="x", post_id=post_id, posted_ms=1_796_000_000_000,
                     account_id=OURS, author={"name": "Tom", "handle": "tombee", "followers": 12}, text="refund!!",
                     url=None, analysis=negative, replyable=False, now_ms=1_796_000_000_000, likes=likes)
    found = {i["platform_post_id"]: i for i in inbox.call("get", "/api/listening/items?source=x_search")[1]["items"]}
    assert found["501"]["priority"] == "high" and found["502"]["priority"] is None
    converted = inbox.call("post", f"/api/listening/items/{found['501']['id']}/convert", {})[1]
    assert inbox.call("get", f"/api/conversations/{converted['conversation_id']}")[1]["priority"] == "high"
    plain = inbox.call("post", f"/api/listening/items/{found['502']['id']}/convert", {})[1]
    assert inbox.call("get", f"/api/conversations/{plain['conversation_id']}")[1].get("priority") in (None, "none")
