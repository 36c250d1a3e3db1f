"""Listening: Instagram hashtag search. 30 unique hashtags per account per rolling 7 days,
tracked and enforced; each tag read at least every 6 hours (recent_media covers 24 h); found
media become listening items that say why they cannot be answered. Graph API faked with
`responses` and the loopback sandbox."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from chalicelib.listening import ig_hashtags

GRAPH = "https://graph.facebook.com/v21.0"
IG = "17841400000000077"
DAY = 24 * 3_600_000
NOW = 1_796_000_000_000


@pytest.fixture(autouse=True)
def _real_graph(monkeypatch):
    monkeypatch.delenv("META_GRAPH_BASE_URL", raising=False)
    # The Page token explicitly (another test file's leftovers have been seen to hide the dev default).
    monkeypatch.setenv("META_PAGE_TOKEN", "page-token-for-hashtags")


def test_a_tag_keeps_its_slot_for_seven_days_and_the_thirty_first_waits():
    full = {f"t{i}": NOW - i * 3_600_000 for i in range(30)}
    assert ig_hashtags.pick_account("t5", {"a": full}, NOW) == "a"  # re-querying a held tag is free
    assert ig_hashtags.pick_account("new", {"a": full}, NOW) is None
    assert ig_hashtags.pick_account("new", {"a": full}, NOW - 29 * 3_600_000 + 7 * DAY) == "a"  # t29 freed
    assert ig_hashtags.pick_account("new", {"a": full, "b": {"x": NOW}}, NOW) == "b"  # another account's slots
    assert ig_hashtags.pick_account("new", {"b": {"x": NOW}, "c": {}}, NOW) == "c"  # the emptiest
    assert ig_hashtags.live_slots({"old": NOW - 7 * DAY, "fresh": NOW - 1}, NOW) == {"fresh": NOW - 1}


def _setup(inbox, tags, name="Tags"):
    inbox.add_account("instagram", IG)
    inbox.login_admin()
    for start in range(0, len(tags), 20):
        status, body = inbox.call("post", "/api/listening/topics", {
            "name": f"{name} {start}", "include": [f"#{t}" for t in tags[start:start + 20]],
            "sources": ["instagram_hashtag"]})
        assert status == 201, body


def _graph(x, media=None):
    def search(request):
        tag = parse_qs(urlparse(request.url).query)["q"][0]
        return 200, {}, '{"data": [{"id": "1784%s"}]}' % (sum(map(ord, tag)) * 1000 + len(tag))

    x.add_callback("GET", f"{GRAPH}/ig_hashtag_search", callback=search)
    x.add("GET", re.compile(rf"{re.escape(GRAPH)}/1784\d+/recent_media.*"),
          json={"data": media or [], "paging": {"cursors": {"after": "QVFI"}}})


def test_found_media_become_items_and_each_tag_is_read_every_six_hours(inbox):
    _setup(inbox, ["acmefail"])
    inbox.call("put", "/api/listening/priority-rules", {"rules": [{"min_likes": 1000, "priority": "high"}]})
    media = [{"id": "18000000000000001", "caption": "Charged twice, no refund <b>#acmefail</b>", "like_count": 5100,
              "permalink": "https://www.instagram.com/p/ABC/", "timestamp": "2026-12-01T10:00:00+0000"},
             {"id": "18000000000000002", "caption": "meh #acmefail", "timestamp": "2026-12-01T09:00:00+0000"}]
    with responses.RequestsMock() as x:
        _graph(x, media)
        assert ig_hashtags.poll(NOW) == {"tags": 1, "requests": 2, "media": 2, "no_slot": 0}
        sent = parse_qs(urlparse(x.calls[1].request.url).query)
        assert sent["user_id"] == [IG] and "like_count" in sent["fields"][0]
        assert x.calls[0].request.headers["Authorization"].startswith("Bearer ")
        assert ig_hashtags.poll(NOW + 5 * 3_600_000)["requests"] == 0  # read 5 h ago: not due
        assert ig_hashtags.poll(NOW + 6 * 3_600_000) == {"tags": 1, "requests": 1, "media": 2, "no_slot": 0}
    found = inbox.call("get", "/api/listening/items?source=instagram_hashtag")[1]["items"]
    assert len(found) == 2  # read twice, one item per media
    loud = next(i for i in found if i["platform_post_id"] == "18000000000000001")
    assert loud["replyable"] is False and "Instagram" in loud["not_replyable_reason"]
    assert loud["url"] == "https://www.instagram.com/p/ABC/" and loud["priority"] == "high"
    assert loud["author"] == {"name": None, "handle": None, "followers": None}
    assert loud["text"] == "Charged twice, no refund <b>#acmefail</b>"  # kept as text; the page escapes it


def test_thirty_unique_tags_per_account_per_seven_days_are_enforced_and_shown(inbox):
    tags = [f"tag{i:02d}" for i in range(31)]
    _setup(inbox, tags)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as x:
        _graph(x)
        runs = [ig_hashtags.poll(NOW) for _ in range(4)]
        assert sum(r["tags"] for r in runs) == 30 and runs[-1]["no_slot"] == 1
        searched = {parse_qs(urlparse(c.request.url).query)["q"][0] for c in x.calls if "ig_hashtag_search" in c.request.url}
        assert len(searched) == 30 and "tag30" not in searched
    status = inbox.call("get", "/api/listening/ig-hashtags")[1]
    [account] = status["accounts"]
    assert account["account_id"] == IG and account["used"] == 30 and account["limit"] == 30
    waiting = next(t for t in status["tags"] if t["tag"] == "tag30")
    assert waiting["last_polled"] is None and waiting["overdue"] is True
    with responses.RequestsMock(assert_all_requests_are_fired=False) as x:
        _graph(x)
        later = ig_hashtags.poll(NOW + 7 * DAY)  # the slots free: tag30 gets one, the others re-take theirs
        assert later["tags"] == 10 and later["no_slot"] == 0


def test_a_failed_read_waits_for_the_next_run(inbox):
    _setup(inbox, ["acmefail"])
    with responses.RequestsMock() as x:
        x.add("GET", f"{GRAPH}/ig_hashtag_search", status=500, json={"error": {"message": "oops", "code": 1}})
        assert ig_hashtags.poll(NOW)["media"] == 0
        x.replace("GET", f"{GRAPH}/ig_hashtag_search", json={"data": [{"id": "17841234"}]})
        x.add("GET", f"{GRAPH}/17841234/recent_media", json={"data": [{"id": "18000000000000009",
                                                                         "caption": "#acmefail again"}]})
        assert ig_hashtags.poll(NOW + 60_000)["media"] == 1  # not read yet: due again at once


def test_the_sandbox_serves_hashtag_search_and_recent_media(inbox, monkeypatch):
    from chalicelib.local import sandbox

    server, env = sandbox.start(None)
    try:
        monkeypatch.setenv("META_GRAPH_BASE_URL", env["META_GRAPH_BASE_URL"])
        _setup(inbox, ["acmefail", "acmecoffee"])
        stats = ig_hashtags.poll()
        assert stats["tags"] == 2 and stats["media"] == 5 and stats["requests"] == 4
    finally:
        server.close()
    found = inbox.call("get", "/api/listening/items?source=instagram_hashtag")[1]["items"]
    assert {i["sentiment"]["language"] for i in found} >= {"en"}
    assert any(i["sentiment"]["label"] == "negative" for i in found)
    assert all(i["url"].startswith("https://www.instagram.com/p/") for i in found)


def test_make_run_reads_the_demo_hashtag_from_the_sandbox_and_the_loud_angry_post_is_high(inbox, monkeypatch):
    from chalicelib.local import sandbox
    from chalicelib.local.seed import seed

    inbox.login_admin()
    seed()
    server, env = sandbox.start(None)
    try:
        monkeypatch.setenv("META_GRAPH_BASE_URL", env["META_GRAPH_BASE_URL"])
        assert ig_hashtags.poll()["media"] == 2  # #acmefail of the demo "Refunds" topic
    finally:
        server.close()
    found = inbox.call("get", "/api/listening/items?source=instagram_hashtag")[1]["items"]
    loud = next(i for i in found if "Charged twice" in i["text"])
    assert loud["sentiment"]["label"] == "negative" and loud["priority"] == "high"  # 5,100 likes
