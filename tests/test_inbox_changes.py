"""The page's one cheap poll, GET /api/changes: which parts (list, counts, the open thread, its
viewers) changed since a token, 304 when nothing did, in at most two DynamoDB requests; and the
change-feed stamps written after logged changes only (a follow-up pays nothing)."""
from __future__ import annotations

from typing import Any, Dict, List

import pytest

from tests.helpers import PAGE, messenger, page_delivery
from tests.test_workspace_contacts import _agent, _call, _now

BILLING_PAGE = "5550001111"


@pytest.fixture
def world(inbox: Any) -> Dict[str, Any]:
    from chalicelib.accounts import register_account

    inbox.add_account("messenger", PAGE)
    register_account("messenger", BILLING_PAGE, "Billing page", team="billing")
    now = _now()
    inbox.post_meta(page_delivery(messenger("m-1", "psid-1", now - 90_000, "first")))
    inbox.post_meta(page_delivery(messenger("m-2", "psid-2", now - 60_000, "second")))
    inbox.post_meta(page_delivery(messenger("m-b", "psid-b", now - 30_000, "billing"), page=BILLING_PAGE))
    inbox.process()
    inbox.login_admin()
    rows = {c["last_message_preview"]: c["id"] for c in inbox.conversations(team="default")}
    [billing] = inbox.conversations(team="billing")
    return {"inbox": inbox, "first": rows["first"], "second": rows["second"], "billing": billing["id"],
            "ana": _agent("ana@example.com", "Ana", "agent", ["default"]),
            "kim": _agent("kim@example.com", "Kim", "agent", ["default"])}


class Poll:
    """One agent's page polling, holding its token like the page does."""

    def __init__(self, world: Dict[str, Any], who: str, conversation: str = "", viewers: bool = False) -> None:
        self.inbox, self.token = world["inbox"], world[who]["token"]
        self.params = {"conversation": world.get(conversation, conversation)} if conversation else {}
        if viewers:
            self.params["viewers"] = "1"
        self.since = ""

    def __call__(self) -> Any:
        query = dict(self.params, **({"since": self.since} if self.since else {}))
        response = _call(self.inbox, "GET", "/api/changes?" + "&".join(f"{k}={v}" for k, v in query.items()),
                         self.token)
        if response.status_code == 200:
            self.since = response.json["token"]
        return response


def _changed(poll: Poll) -> Any:
    response = poll()
    return None if response.status_code == 304 else sorted(response.json["changed"])


def test_nothing_changed_is_304_and_costs_two_dynamodb_requests(world, monkeypatch):
    from botocore.client import BaseClient

    poll = Poll(world, "ana", "first")
    first = poll()
    assert first.status_code == 200 and sorted(first.json["changed"]) == ["counts", "list", "thread"]
    assert poll().status_code == 304  # warm: the agent and their teams are cached per container
    calls: List[str] = []
    original = BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    for _ in range(3):
        response = poll()
        assert response.status_code == 304 and response.body == b""
    assert calls == ["BatchGetItem", "Query"] * 3


def test_a_follow_up_moves_the_list_only_and_writes_no_stamp(world):
    from chalicelib.models import ChangeFeed

    poll = Poll(world, "ana", "first")
    poll()
    stamps = {f.feed: f.at for f in ChangeFeed.scan()}
    world["inbox"].post_meta(page_delivery(messenger("m-2b", "psid-2", _now(), "second again")))
    world["inbox"].process()
    assert {f.feed: f.at for f in ChangeFeed.scan()} == stamps  # the one-write fast path pays nothing more
    assert _changed(poll) == ["list"]
    assert _changed(poll) is None


def test_a_message_in_the_open_thread_moves_the_thread_and_the_list(world):
    poll = Poll(world, "ana", "second")
    poll()
    world["inbox"].post_meta(page_delivery(messenger("m-2c", "psid-2", _now(), "are you there?")))
    world["inbox"].process()
    assert _changed(poll) == ["list", "thread"]


def test_logged_changes_move_list_and_counts_and_the_thread_they_touch(world):
    inbox = world["inbox"]
    mine, other = Poll(world, "ana", "first"), Poll(world, "kim", "second")
    mine(), other()
    assert _call(inbox, "PATCH", f"/api/conversations/{world['first']}", world["kim"]["token"],
                 {"assignee": "me", "claim": True}).status_code == 200
    assert _changed(mine) == ["counts", "list", "thread"]
    assert _changed(other) == ["counts", "list"]  # Kim's own claim: her Mine count moved
    assert _changed(mine) is None and _changed(other) is None
    inbox.set_status(world["second"], "resolved")
    assert _changed(mine) == ["counts", "list"]
    assert _changed(other) == ["counts", "list", "thread"]


def test_another_teams_change_is_invisible_and_its_thread_looks_like_an_unknown_one(world):
    inbox = world["inbox"]
    poll = Poll(world, "ana", "billing")
    unknown = Poll(world, "ana", "c_unknown")
    assert poll().json["token"].split(".")[2] == unknown().json["token"].split(".")[2]
    inbox.set_status(world["billing"], "resolved")
    assert _changed(poll) is None


def test_viewers_are_answered_with_the_poll_when_asked_for(world):
    inbox = world["inbox"]
    poll = Poll(world, "ana", "first", viewers=True)
    first = poll()
    assert "viewers" in first.json["changed"] and first.json["viewers"] == []
    assert poll().status_code == 304
    assert _call(inbox, "PUT", f"/api/conversations/{world['first']}/viewing", world["kim"]["token"],
                 {"typing": True}).status_code == 200
    response = poll()
    assert response.json["changed"] == ["viewers"]
    assert [(v["name"], v["typing"], v["me"]) for v in response.json["viewers"]] == [("Kim", True, False)]
    # a poll that does not ask about viewers keeps the token's viewers part as it was
    plain = Poll(world, "ana", "first")
    plain.since = poll.since
    assert plain().status_code == 304


@pytest.mark.parametrize("query,status", [("since=garbage", 400), ("since=a.b", 400), ("team=billing", 403),
                                          ("conversation=" + "c" * 200, 400)])
def test_bad_polls_are_4xx(world, query, status):
    assert _call(world["inbox"], "GET", "/api/changes?" + query, world["ana"]["token"]).status_code == status


def test_a_token_of_another_view_reports_every_part_that_differs(world):
    poll = Poll(world, "ana", "first")
    poll()
    poll.params["conversation"] = world["second"]
    assert _changed(poll) == ["thread"]
    assert _call(world["inbox"], "GET", "/api/changes", "bad token").status_code == 401


def test_only_feeds_a_page_polls_are_stamped_and_a_page_that_starts_polling_rereads(world):
    """Issue 21: pages on the WebSocket never poll, so a logged change stamps only the feeds a
    polling page marked (a new conversation or a new turn then costs one write less); a page
    that falls back to polling re-reads its list and counts once, then hears every change."""
    from chalicelib.inbox import changes
    from chalicelib.models import ChangeFeed

    inbox = world["inbox"]
    inbox.set_status(world["second"], "resolved")  # nobody polls yet
    assert ChangeFeed.count("t#default") == 0 and ChangeFeed.count("a#" + world["kim"]["id"]) == 0
    poll = Poll(world, "kim", "first")
    poll.since = Poll(world, "kim", "first")().json["token"]  # a token the page held on the socket
    assert ChangeFeed.count(changes.POLLED + "t#default") == 1
    assert _changed(poll) is None  # marked since the token above: nothing went unstamped
    inbox.set_status(world["first"], "pending")
    assert ChangeFeed.count("t#default") == 1
    assert _changed(poll) == ["counts", "list", "thread"]
    billing = Poll(world, "ana", "billing")
    billing()
    inbox.set_status(world["billing"], "resolved")  # a team nobody of "billing" polls
    assert ChangeFeed.count("t#billing") == 0


def test_a_page_whose_marks_lapsed_rereads_the_changes_nobody_stamped(world):
    from chalicelib.inbox import changes
    from chalicelib.models import ChangeFeed
    from chalicelib.runtime import runtime

    inbox = world["inbox"]
    poll = Poll(world, "kim", "")
    poll()
    later = _now() + changes.MARK_MS + changes.SKEW_MS + 1000
    runtime.use_clock(lambda: later / 1000)  # the page stopped polling for a while
    try:
        stamps = {f.feed: f.at for f in ChangeFeed.scan() if not f.feed.startswith(changes.POLLED)}
        inbox.set_status(world["second"], "resolved")
        assert {f.feed: f.at for f in ChangeFeed.scan() if not f.feed.startswith(changes.POLLED)} == stamps
        assert _changed(poll) == ["counts", "list"]  # re-read, though no stamp moved
        assert _changed(poll) is None
        inbox.set_status(world["first"], "pending")
        assert _changed(poll) == ["counts", "list"]  # marked again: stamped
    finally:
        runtime.use_clock(None)
