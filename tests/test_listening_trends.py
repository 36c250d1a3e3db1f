"""The listening report (`GET /api/reports/topics`): topics and sentiment per local day, share of
voice between the topics compared, top authors, CSV; bounded reads (one Query's pages, never a
Scan); supervisors and admins only; bad queries are 400."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any, List

import pytest

from chalicelib.listening import items, trends
from tests.test_admin_api import _token

OURS = "1111111111111111111"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def _post(post_id: str, at: str, label: str, topics: List[str], handle: str, followers: int = 10,
          source: str = "x_search") -> None:
    items.record(source=source, platform="x", post_id=post_id, posted_ms=_ms(at), account_id=OURS,
                 author={"name": handle.title(), "handle": handle, "followers": followers}, text="...", url=None,
                 analysis={"sentiment": {"label": label, "score": None}, "topics": topics}, replyable=False,
                 now_ms=_ms(at))


def _seed() -> None:
    _post("1", "2026-11-02T10:00:00", "negative", ["Acme"], "angry_ann", 5000)
    _post("2", "2026-11-02T11:00:00", "negative", ["Acme"], "angry_ann", 5200)
    _post("3", "2026-11-02T12:00:00", "positive", ["Acme", "Globex"], "bob")
    _post("4", "2026-11-02T23:30:00", "neutral", ["Globex"], "cat")  # 3 November in Berlin
    _post("5", "2026-11-03T09:00:00", "negative", ["Globex"], "dan", source="x_mention")
    _post("6", "2026-11-05T09:00:00", "unscored", ["Acme"], "eve")  # outside the period
    _post("7", "2026-11-01T22:59:00", "negative", ["Acme"], "fay")  # 1 November 23:59 in Berlin: outside


def test_topics_and_sentiment_per_local_day_share_of_voice_and_top_authors(inbox):
    _seed()
    inbox.login_admin()
    status, report = inbox.call("get", "/api/reports/topics?from=2026-11-02&to=2026-11-04&tz=Europe/Berlin"
                                       "&compare=acme,Globex")
    assert status == 200, report
    assert [d["date"] for d in report["days"]] == ["2026-11-02", "2026-11-03"]
    first, second = report["days"]
    assert first["all"] == {"total": 3, "positive": 1, "neutral": 0, "negative": 2, "unscored": 0}
    assert first["topics"]["Acme"]["negative"] == 2 and first["topics"]["Globex"]["total"] == 1
    assert second["all"]["total"] == 2 and second["topics"]["Globex"] == {
        "total": 2, "positive": 0, "neutral": 1, "negative": 1, "unscored": 0}
    assert [(t["name"], t["total"]) for t in report["topics"]] == [("Acme", 3), ("Globex", 3)]
    assert report["share_of_voice"] == [{"name": "Acme", "posts": 3, "share": 50.0, "negative_share": 66.7},
                                        {"name": "Globex", "posts": 3, "share": 50.0, "negative_share": 33.3}]
    top = report["top_authors"][0]
    assert (top["handle"], top["posts"], top["negative"], top["followers"]) == ("angry_ann", 2, 2, 5200)
    assert {a["handle"] for a in report["top_authors"]} == {"angry_ann", "bob", "cat", "dan"}
    assert report["items_read"] == 5 and report["truncated"] is False and report["counted_until"] is None
    assert report["period"]["tz"] == "Europe/Berlin"

    # The same period in UTC: post 4 is on the 2nd, post 7 is outside.
    days = inbox.call("get", "/api/reports/topics?from=2026-11-02&to=2026-11-04")[1]["days"]
    assert [(d["date"], d["all"]["total"]) for d in days] == [("2026-11-02", 4), ("2026-11-03", 1)]
    # A compared topic nobody mentioned is there with no posts.
    status, report = inbox.call("get", "/api/reports/topics?from=2026-11-02&to=2026-11-04&compare=Acme,Initech")
    assert report["share_of_voice"][1] == {"name": "Initech", "posts": 0, "share": 0.0, "negative_share": None}


def test_the_csv_has_a_row_per_day_and_topic_and_never_starts_a_formula(inbox):
    _post("1", "2026-11-02T10:00:00", "negative", ["=HYPERLINK(\"http://x\")"], "ann")
    inbox.login_admin()
    response = inbox.client.http.get("/api/reports/topics?from=2026-11-02&to=2026-11-03&format=csv",
                                     headers={"Authorization": "Bearer " + inbox.login_admin()})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert [(r["date"], r["topic"], r["total"], r["negative"]) for r in rows] == [
        ("2026-11-02", "(all)", "1", "1"), ("2026-11-02", "'=HYPERLINK(\"http://x\")", "1", "1")]


def _count_listening_calls(monkeypatch: Any) -> List[str]:
    """The DynamoDB operations on the listening table from now on."""
    from botocore.client import BaseClient

    calls: List[str] = []
    original = BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb" and params.get("TableName", "").endswith("listening"):
            calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return calls


def test_a_report_reads_one_query_in_bounded_pages_and_says_when_it_stopped(inbox, monkeypatch):
    _seed()
    token = inbox.login_admin()
    calls = _count_listening_calls(monkeypatch)
    monkeypatch.setattr(trends, "PAGE_SIZE", 2)
    monkeypatch.setattr(trends, "MAX_ITEMS", 4)
    status, report = inbox.call("get", "/api/reports/topics?from=2026-11-01&to=2026-11-06", token=token)
    assert status == 200
    assert calls == ["Query", "Query"]  # 4 items in pages of 2, then it stops: never a Scan
    assert report["items_read"] == 4 and report["truncated"] is True
    assert report["counted_until"].startswith("2026-11-02T12:00")


def test_only_supervisors_and_admins_read_it(inbox):
    inbox.login_admin()
    agent = _token("ana@example.com", "agent", ["default"])
    lead = _token("lee@example.com", "supervisor", ["default"])
    assert inbox.call("get", "/api/reports/topics?from=2026-11-02&to=2026-11-03", token=agent)[0] == 403
    assert inbox.call("get", "/api/reports/topics?from=2026-11-02&to=2026-11-03", token=lead)[0] == 200
    assert inbox.client.http.get("/api/reports/topics?from=2026-11-02&to=2026-11-03").status_code == 401


@pytest.mark.parametrize("query, words", [
    ("from=2026-11-03&to=2026-11-02", "to must be after from"),
    ("from=2026-11-02&to=2026-11-03&tz=Mars/Olympus", "tz"),
    ("from=yesterday&to=2026-11-03", "from"),
    ("from=2026-11-02&to=2026-11-03&format=xml", "format must be json or csv"),
    ("from=2026-11-02&to=2026-11-03&compare=Acme", "compare names 2 to"),
    ("from=2026-11-02&to=2026-11-03&compare=Acme,acme", "compare names 2 to"),
    ("from=2026-11-02&to=2026-11-03&compare=Acme,%00x", "printable"),
    ("from=2026-11-02&to=2026-11-03&compare=" + ",".join(f"t{i}" for i in range(11)), "compare names 2 to"),
    ("from=2000-01-01&to=2026-11-03", "at most"),
])
def test_bad_queries_are_400(inbox, query, words):
    inbox.login_admin()
    status, answer = inbox.call("get", "/api/reports/topics?" + query)
    assert status == 400 and words in answer["Message"], answer


def test_an_agents_correction_moves_the_counts(inbox, monkeypatch):
    """A converted found post's message and a Page mention's message, corrected by an agent: the
    report counts each under the corrected label (share of voice, the day's sentiment)."""
    import time

    from tests.helpers import PAGE
    from tests.test_listening_mentions import page_mention

    _seed()
    inbox.add_account("x", OURS)
    inbox.add_account("facebook", PAGE)
    inbox.call("post", "/api/listening/topics", {"name": "Delivery", "include": ["delivery"]})
    period = "/api/reports/topics?from=2026-11-02&to=2026-11-04&tz=Europe/Berlin&compare=Acme,Globex"
    before = inbox.call("get", period)[1]
    assert before["days"][0]["all"]["negative"] == 2 and before["share_of_voice"][1]["negative_share"] == 33.3

    found = next(i for i in inbox.call("get", "/api/listening/items")[1]["items"] if i["platform_post_id"] == "3")
    conversation = inbox.call("post", f"/api/listening/items/{found['id']}/convert")[1]["conversation_id"]
    [message] = inbox.messages(conversation)
    calls = _count_listening_calls(monkeypatch)
    status, _ = inbox.call("patch", f"/api/conversations/{conversation}/messages/{message['id']}",
                           {"sentiment": "negative"})
    assert status == 200
    # Bounded: the labelled example, then the post's pointer and its item by key, one write.
    assert sorted(calls) == ["GetItem", "GetItem", "PutItem", "UpdateItem"]
    after = inbox.call("get", period)[1]
    assert after["days"][0]["all"] == {"total": 3, "positive": 0, "neutral": 0, "negative": 3, "unscored": 0}
    assert after["share_of_voice"] == [{"name": "Acme", "posts": 3, "share": 50.0, "negative_share": 100.0},
                                       {"name": "Globex", "posts": 3, "share": 50.0, "negative_share": 66.7}]
    assert after["items_read"] == before["items_read"]  # the item moved, nothing was added
    corrected = next(i for i in inbox.call("get", "/api/listening/items?sentiment=negative")[1]["items"]
                     if i["id"] == found["id"])
    assert corrected["sentiment"]["corrected"] is True

    # A mention is a conversation message itself: its correction moves today's counts.
    inbox.post_meta(page_mention(f"{PAGE}_777", "Worst delivery ever, thanks a lot @Acme. Never again.",
                                 at=int(time.time()) - 30))
    inbox.process()
    mention = next(c for c in inbox.conversations() if c["kind"] == "mention" and c["channel"] == "facebook")
    [said] = inbox.messages(mention["id"])
    today = datetime.now(timezone.utc).date()
    window = f"/api/reports/topics?from={today.isoformat()}&to={today.fromordinal(today.toordinal() + 1).isoformat()}"
    assert [d["all"]["negative"] for d in inbox.call("get", window)[1]["days"]] == [1]
    inbox.call("patch", f"/api/conversations/{mention['id']}/messages/{said['id']}", {"sentiment": "positive"})
    [day] = inbox.call("get", window)[1]["days"]
    assert (day["all"]["negative"], day["all"]["positive"], day["topics"]["Delivery"]["positive"]) == (0, 1, 1)
