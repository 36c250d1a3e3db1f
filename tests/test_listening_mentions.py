"""Listening, part 2: mentions of our accounts are replyable conversations AND listening items.

Facebook Page `mention` and LinkedIn SHARE_MENTION carry their content; Instagram `mentions`
carries ids only, looked up by the ingest processor with the account's token (never by the
webhook's ack path). Graph API faked with `responses`; deliveries through the real handlers."""
from __future__ import annotations

import time

import pytest
import requests
import responses

from chalicelib.channels import adapter_for_channel
from chalicelib.channels.base import OutboundMessage
from tests.channel_cases import ORG
from tests.helpers import PAGE, fixture_json

GRAPH = "https://graph.facebook.com/v21.0"
IG = "17841400000000077"


@pytest.fixture(autouse=True)
def _real_graph(monkeypatch):
    monkeypatch.delenv("META_GRAPH_BASE_URL", raising=False)




def page_mention(post_id, text, sender=("5551", "Dana Critic"), comment_id=None, verb="add", at=None):
    value = {"post_id": post_id, "item": "comment" if comment_id else "post", "verb": verb, "message": text,
             "sender_id": sender[0], "sender_name": sender[1], "created_time": at or int(time.time()) - 30}
    if comment_id:
        value["comment_id"] = comment_id
    return {"object": "page", "entry": [{"id": PAGE, "time": int(time.time()),
                                         "changes": [{"field": "mention", "value": value}]}]}


def ig_mention(media_id, comment_id=None):
    value = {"media_id": media_id}
    if comment_id:
        value["comment_id"] = comment_id
    return {"object": "instagram", "entry": [{"id": IG, "time": int(time.time()),
                                              "changes": [{"field": "mentions", "value": value}]}]}


def items(inbox, query=""):
    status, body = inbox.call("get", "/api/listening/items" + query)
    assert status == 200, body
    return body["items"]


# --- Facebook Page mentions ----------------------------------------------------------------------


def test_a_page_mention_is_a_conversation_and_a_listening_item(inbox):
    inbox.add_account("facebook", PAGE)
    inbox.call("post", "/api/listening/topics", {"name": "Delivery", "include": ["delivery"]})
    at = int(time.time()) - 30
    inbox.post_meta(page_mention(f"{PAGE}_777", "Worst delivery ever, thanks a lot @Acme. Never again.", at=at))
    inbox.process()
    [conversation] = inbox.conversations()
    assert conversation["channel"] == "facebook" and conversation["kind"] == "mention"
    assert conversation["contact"]["display_name"] == "Dana Critic"
    [message] = inbox.messages(conversation["id"])
    assert message["sentiment"]["label"] == "negative" and message["topics"] == ["Delivery"]
    [item] = items(inbox)
    assert item["source"] == "facebook_mention" and item["platform_post_id"] == f"{PAGE}_777"
    assert item["conversation_id"] == conversation["id"] and item["replyable"] is True
    assert item["not_replyable_reason"] is None and item["url"] == f"https://www.facebook.com/{PAGE}_777"
    assert item["author"] == {"name": "Dana Critic", "handle": "5551", "followers": None}
    assert item["sentiment"]["label"] == "negative" and item["topics"] == ["Delivery"]
    # The platform delivers it again (even with another time): one conversation, message and item.
    inbox.post_meta(page_mention(f"{PAGE}_777", "Worst delivery ever, thanks a lot @Acme. Never again.", at=at + 5))
    inbox.process()
    assert len(inbox.conversations()) == 1 and len(items(inbox)) == 1


def test_a_page_mention_in_a_comment_edited_and_removed(inbox):
    inbox.add_account("facebook", PAGE)
    at = int(time.time()) - 60
    inbox.post_meta(page_mention(f"{PAGE}_9", "@Acme is ok", comment_id=f"{PAGE}_9_1", at=at))
    inbox.post_meta(page_mention(f"{PAGE}_9", "@Acme is great actually", comment_id=f"{PAGE}_9_1", verb="edited",
                                 at=at))
    inbox.process()
    [conversation] = inbox.conversations()
    [message] = inbox.messages(conversation["id"])
    assert message["platform_message_id"] == f"{PAGE}_9_1" and message["text"] == "@Acme is great actually"
    inbox.post_meta(page_mention(f"{PAGE}_9", "", comment_id=f"{PAGE}_9_1", verb="remove", at=at))
    inbox.process()
    assert inbox.messages(conversation["id"])[0]["removed"] is True


@responses.activate
def test_replies_to_mentions_go_where_each_platform_takes_them():
    responses.post(f"{GRAPH}/{PAGE}_9_1/comments", json={"id": f"{PAGE}_9_2"})
    responses.post(f"{GRAPH}/{IG}/mentions", json={"id": "17800000000000001"})
    secrets = {"META_PAGE_TOKEN": "page-token"}.get
    facebook = OutboundMessage(channel="facebook", account_id=PAGE, thread_key=f"mention:{PAGE}_9:5551",
                               thread_kind="mention", recipient_id="5551", text="Thanks!", outbound_id="o1",
                               reply_to=f"{PAGE}_9_1")
    assert adapter_for_channel("facebook").send(facebook, secrets, requests.Session()).platform_message_id == \
        f"{PAGE}_9_2"
    instagram = OutboundMessage(channel="instagram", account_id=IG, thread_key="mention:1790001:lea",
                                thread_kind="mention", recipient_id="lea", text="Thank you Lea!", outbound_id="o2",
                                reply_to="1786001")
    assert adapter_for_channel("instagram").send(instagram, secrets, requests.Session()).platform_message_id == \
        "17800000000000001"
    sent = dict(pair.split("=") for pair in responses.calls[1].request.body.split("&"))
    assert sent == {"media_id": "1790001", "comment_id": "1786001", "message": "Thank+you+Lea%21"}
    assert responses.calls[1].request.headers["Authorization"] == "Bearer page-token"


# --- Instagram mentions: ids only, looked up by the processor -----------------------------------------


def _comment_answer(comment_id, text, username="lea.mueller"):
    return {"mentioned_comment": {"id": comment_id, "text": text, "timestamp": "2026-12-01T10:00:00+0000",
                                  "username": username, "like_count": 3,
                                  "media": {"id": "1790001", "permalink": "https://www.instagram.com/p/Abc/"}},
            "id": IG}


def test_an_instagram_mention_is_looked_up_after_the_webhook_answered(inbox):
    inbox.add_account("instagram", IG)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as graph:
        graph.get(f"{GRAPH}/{IG}", json=_comment_answer("1786001", "@acme your latte is amazing, love it"))
        assert inbox.post_meta(ig_mention("1790001", "1786001")).status_code == 200
        assert len(graph.calls) == 0  # the ack path never waits on Meta
        inbox.process()
        assert len(graph.calls) == 1
        fields = graph.calls[0].request.params["fields"]
        assert fields.startswith("mentioned_comment.comment_id(1786001){") and "username" in fields
        assert graph.calls[0].request.headers["Authorization"] == "Bearer dev_meta_page_token"
    [conversation] = inbox.conversations()
    assert conversation["channel"] == "instagram" and conversation["kind"] == "mention"
    assert conversation["contact"]["handle"] == "lea.mueller"
    [message] = inbox.messages(conversation["id"])
    assert message["text"] == "@acme your latte is amazing, love it" and message["sentiment"]["label"] == "positive"
    [item] = items(inbox, "?source=instagram_mention")
    assert item["url"] == "https://www.instagram.com/p/Abc/" and item["conversation_id"] == conversation["id"]


def test_an_instagram_mention_that_is_gone_is_dropped_and_a_refused_token_is_quarantined(inbox):
    inbox.add_account("instagram", IG)
    with responses.RequestsMock() as graph:
        graph.get(f"{GRAPH}/{IG}", json={"error": {"message": "Unsupported get request", "code": 100,
                                                   "error_subcode": 33}}, status=400)
        inbox.post_meta(ig_mention("1790009"))
        inbox.process()
    assert inbox.conversations() == [] and inbox.quarantine() == []
    with responses.RequestsMock() as graph:
        graph.get(f"{GRAPH}/{IG}", json={"error": {"message": "expired", "type": "OAuthException", "code": 190}},
                  status=400)
        inbox.post_meta(ig_mention("1790010", "1786010"))
        inbox.process()
    [held] = inbox.quarantine()
    assert held["reason"].startswith("lookup refused") and held["replayable"] is True
    assert inbox.conversations() == []
    # Ids that are not Instagram's (they would go into the Graph API request) are never looked up.
    with responses.RequestsMock() as graph:
        inbox.post_meta(ig_mention("1790011", "1){id}"))
        inbox.process()
        assert len(graph.calls) == 0
    assert any(q["reason"].startswith("unreadable") for q in inbox.quarantine())


def test_an_instagram_lookup_that_fails_for_now_is_retried_never_lost(inbox):
    from chalicelib.ingest.processor import RetryLater, process_records

    inbox.add_account("instagram", IG)
    from chalicelib.ingest.envelope import Envelope

    body = Envelope("meta", ig_mention("1790001", "1786001"), int(time.time() * 1000), "c1").to_json()
    record = {"messageId": "id-1", "receiptHandle": "", "body": body, "attributes": {"ApproximateReceiveCount": "1"}}
    with responses.RequestsMock() as graph:
        graph.get(f"{GRAPH}/{IG}", json={"error": {"message": "busy", "code": 2}}, status=503)
        with pytest.raises(RetryLater):
            process_records([record])
    assert inbox.conversations() == []
    with responses.RequestsMock() as graph:
        graph.get(f"{GRAPH}/{IG}", json=_comment_answer("1786001", "@acme hello"))
        assert process_records([dict(record, attributes={"ApproximateReceiveCount": "2"})]) == {"created": 1}
    assert len(inbox.conversations()) == 1


# --- LinkedIn SHARE_MENTION and the items API ---------------------------------------------------------


def test_items_list_filters_dismiss_and_convert(inbox):
    inbox.add_account("facebook", PAGE)
    inbox.add_account("linkedin", ORG)
    inbox.call("post", "/api/listening/topics", {"name": "Workshop", "include": ["workshop"]})
    assert inbox.post_linkedin(fixture_json("linkedin", "share_mention.json")).status_code == 200
    inbox.post_meta(page_mention(f"{PAGE}_1", "Terrible service from @Acme, my delivery was awful",
                                 sender=("1", "Ann")))
    inbox.post_meta(page_mention(f"{PAGE}_2", "Where do I find @Acme opening hours?", sender=("2", "Bo")))
    inbox.process()
    everything = items(inbox)
    assert [i["source"] for i in everything].count("facebook_mention") == 2
    [linkedin] = items(inbox, "?source=linkedin_mention")
    assert linkedin["url"].startswith("https://www.linkedin.com/feed/update/urn:li:")
    assert linkedin["topics"] == ["Workshop"] and items(inbox, "?topic=Workshop") == [linkedin]
    [angry] = items(inbox, "?sentiment=negative")
    assert angry["author"]["name"] == "Ann"
    for bad in ("?source=myspace", "?sentiment=furious", "?status=gone", "?limit=0", "?cursor=forged"):
        assert inbox.call("get", "/api/listening/items" + bad)[0] == 400, bad
    status, dismissed = inbox.call("post", f"/api/listening/items/{angry['id']}/dismiss")
    assert status == 200 and dismissed["status"] == "dismissed"
    assert angry["id"] not in [i["id"] for i in items(inbox)]
    assert [i["id"] for i in items(inbox, "?status=dismissed")] == [angry["id"]]
    status, converted = inbox.call("post", f"/api/listening/items/{linkedin['id']}/convert", {"assignee": "me"})
    assert status == 200 and converted["status"] == "converted"
    assert converted["conversation_id"] == linkedin["conversation_id"]
    assert inbox.get(f"/api/conversations/{converted['conversation_id']}")["assignee"] is not None
    assert inbox.call("post", "/api/listening/items/0000000000000-deadbeefdeadbeef/convert")[0] == 404
    assert inbox.call("post", "/api/listening/items/nope/dismiss")[0] == 404
    assert inbox.call("post", f"/api/listening/items/{linkedin['id']}/convert", {"assignee": "bob"})[0] == 400


def test_one_post_from_two_sources_is_one_item_and_a_found_post_converts_to_a_conversation(inbox):
    from chalicelib.listening import items as listening_items
    from chalicelib.listening.annotate import analyse

    inbox.add_account("x", "4337869213")
    analysis = analyse("@acme my order is broken, I want a refund", "x", {"lang": "en"})
    common = dict(platform="x", post_id="190001", posted_ms=1_733_000_000_000, account_id="4337869213",
                  author={"name": "Lea", "handle": "lea", "followers": 120}, text="@acme my order is broken",
                  url=listening_items.post_url("x", "190001"), analysis=analysis)
    first = listening_items.record(source="x_search", replyable=False,
                                   not_replyable_reason="X replies only to posts that mention us", **common)
    second = listening_items.record(source="x_mention", replyable=True, **common)
    assert first == second
    [item] = items(inbox)
    assert item["source"] == "x_search" and item["conversation_id"] is None and item["author"]["followers"] == 120
    assert item["not_replyable_reason"] == "X replies only to posts that mention us"
    status, converted = inbox.call("post", f"/api/listening/items/{item['id']}/convert")
    assert status == 200 and converted["conversation_id"]
    conversation = inbox.get(f"/api/conversations/{converted['conversation_id']}")
    assert conversation["channel"] == "x" and conversation["kind"] == "mention"
    assert conversation["reply_due_at"] is not None  # a reply deadline like any customer message
    [message] = inbox.messages(converted["conversation_id"])
    assert message["sentiment"]["label"] == "negative"
    again = inbox.call("post", f"/api/listening/items/{item['id']}/convert")[1]
    assert again["conversation_id"] == converted["conversation_id"] and len(inbox.conversations()) == 1
