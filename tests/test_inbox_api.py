"""The agent's inbox views through GET /api/conversations and /messages: filters, order,
pagination and conversation bookkeeping (reply deadline, reopening) under out-of-order delivery."""
from __future__ import annotations

import json
import time

import pytest

PAGE = "1234567890"
PHONE = "106540352242922"


def messenger(mid, psid, ts, text="hi", echo=False):
    message = {"mid": mid, "text": text}
    if echo:
        message["is_echo"] = True
        return {"sender": {"id": PAGE}, "recipient": {"id": psid}, "timestamp": ts, "message": message}
    return {"sender": {"id": psid}, "recipient": {"id": PAGE}, "timestamp": ts, "message": message}


def page_delivery(*items):
    return {"object": "page", "entry": [{"id": PAGE, "time": 1700000000000, "messaging": list(items)}]}


def whatsapp_delivery(wamid, wa_id, seconds, text):
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100", "phone_number_id": PHONE},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(seconds), "type": "text", "text": {"body": text}}]}}]}]}


@pytest.fixture
def accounts(inbox):
    inbox.add_account("messenger", PAGE)
    inbox.add_account("whatsapp", PHONE)
    return inbox


def _deliver(inbox, *payloads):
    for payload in payloads:
        assert inbox.post_meta(payload).status_code == 200
    inbox.process()


def test_list_is_newest_first_and_paginates_with_a_cursor(accounts):
    inbox = accounts
    _deliver(inbox, page_delivery(*[messenger(f"m{i}", f"psid{i}", 1700000000000 + i * 1000) for i in range(7)]))
    seen, cursor, pages = [], None, 0
    while True:
        path = "/api/conversations?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = inbox.get(path)
        seen.extend(item["contact"]["platform_id"] for item in page["items"])
        cursor, pages = page["next"], pages + 1
        if not cursor:
            break
    assert seen == [f"psid{i}" for i in reversed(range(7))]
    assert pages >= 3


@pytest.mark.parametrize("query", ["status=closed", "channel=myspace", "sort=oldest", "limit=0", "limit=1000",
                                   "limit=abc", "cursor=%%%", "cursor=eyJ4IjoxfQ", "sort=recent&assignee=me",
                                   "sla=late", "sla=breached&sort=recent", "sla=at_risk&status=pending",
                                   "team=a%23b", "assignee=a%23b", "cursor=eyJ2IjoiIiwiayI6e319.AAAA"])
def test_bad_filters_and_cursors_are_400(accounts, query):
    token = accounts.login_admin()
    response = accounts.client.http.get("/api/conversations?" + query, headers={"Authorization": "Bearer " + token})
    assert response.status_code == 400, response.body
    assert "Message" in json.loads(response.body)


def test_unknown_conversation_is_404(accounts):
    token = accounts.login_admin()
    headers = {"Authorization": "Bearer " + token}
    assert accounts.client.http.get("/api/conversations/c_nope", headers=headers).status_code == 404
    assert accounts.client.http.get("/api/conversations/c_nope/messages", headers=headers).status_code == 404


def test_filters_by_channel_status_and_assignee_are_index_queries(accounts):
    from chalicelib.inbox import store

    inbox = accounts
    _deliver(inbox, page_delivery(messenger("m1", "p1", 1700000000000), messenger("m2", "p2", 1700000001000)),
             whatsapp_delivery("wamid.1", "351910000001", 1700000002, "olá"))
    assert {c["channel"] for c in inbox.conversations()} == {"messenger", "whatsapp"}
    assert [c["channel"] for c in inbox.conversations(channel="whatsapp")] == ["whatsapp"]
    assert [c["channel"] for c in inbox.conversations(channel="whatsapp", status="open")] == ["whatsapp"]
    assert inbox.conversations(channel="whatsapp", status="resolved") == []

    p1 = next(c for c in inbox.conversations(channel="messenger") if c["contact"]["platform_id"] == "p1")
    store.assign(p1["id"], "a_agent7", "agent:a_agent7")
    store.set_status(p1["id"], "pending", "agent:a_agent7")
    assert [c["id"] for c in inbox.conversations(status="pending")] == [p1["id"]]
    assert p1["id"] not in [c["id"] for c in inbox.conversations(status="open")]
    assert [c["id"] for c in inbox.conversations(assignee="a_agent7", status="pending")] == [p1["id"]]
    assert inbox.conversations(assignee="a_agent7", status="open") == []
    # Nobody's conversations are a view of their own (not a missing attribute).
    unassigned = {c["id"] for c in inbox.conversations(assignee="none")}
    assert len(unassigned) == 2 and p1["id"] not in unassigned
    assert [c["channel"] for c in inbox.conversations(assignee="none", channel="whatsapp")] == ["whatsapp"]


def test_thread_reads_in_platform_time_order_even_when_delivered_out_of_order(accounts):
    inbox = accounts
    _deliver(inbox, page_delivery(messenger("m3", "p1", 1700000030000, "third")))
    _deliver(inbox, page_delivery(messenger("m1", "p1", 1700000010000, "first")))
    _deliver(inbox, page_delivery(messenger("m2", "p1", 1700000020000, "second")))
    [conversation] = inbox.conversations()
    assert [m["text"] for m in inbox.messages(conversation["id"])] == ["first", "second", "third"]
    # The late, older messages did not overwrite the preview of the newest one.
    assert conversation["last_message_preview"] == "third"
    assert conversation["last_message_at"] == "2023-11-14T22:13:50.000Z"
    assert conversation["message_count"] == 3


def test_reply_deadline_starts_at_the_oldest_unanswered_message_and_clears_on_reply(accounts):
    inbox = accounts
    _deliver(inbox, page_delivery(messenger("m2", "p1", 1700000020000, "anyone?")))
    _deliver(inbox, page_delivery(messenger("m1", "p1", 1700000010000, "hello")))  # older, arrives late
    [conversation] = inbox.conversations()
    assert conversation["awaiting_reply_since"] == "2023-11-14T22:13:30.000Z"
    assert conversation["reply_due_at"] == "2023-11-14T22:28:30.000Z"  # default 15 min target
    assert [c["id"] for c in inbox.conversations(sort="due")] == [conversation["id"]]

    _deliver(inbox, page_delivery(messenger("m3", "p1", 1700000040000, "On it!", echo=True)))
    [conversation] = inbox.conversations()
    assert conversation["awaiting_reply_since"] is None and conversation["reply_due_at"] is None
    detail = inbox.get(f"/api/conversations/{conversation['id']}")  # the list row carries list fields only
    assert detail["first_response_at"] == "2023-11-14T22:14:00.000Z"
    assert conversation["last_message_direction"] == "out"
    # Still in the deadline view, after everything that has a deadline, with nothing due.
    [listed] = inbox.conversations(sort="due")
    assert listed["reply_due_at"] is None and listed["sla"] is None
    assert [m["direction"] for m in inbox.messages(conversation["id"])] == ["in", "in", "out"]


def test_sort_due_lists_the_most_urgent_first(accounts):
    inbox = accounts
    _deliver(inbox, page_delivery(messenger("m1", "late", 1700000050000), messenger("m2", "early", 1700000000000)))
    assert [c["contact"]["platform_id"] for c in inbox.conversations(sort="due")] == ["early", "late"]


def test_the_due_view_lists_what_is_due_then_the_rest_across_pages_from_a_sparse_index(accounts):
    """Issue 21: only conversations with something due have an entry in `team-deadline` (a turn's start
    puts it, its end deletes it: no index moves); the deadline view and the team's count still
    show every open conversation of the queue, those with nothing due after the others, each once
    across pages, also with a channel filter."""
    from chalicelib.models import Conversation

    inbox = accounts
    t0 = int(time.time() * 1000) - 600_000
    _deliver(inbox, page_delivery(*[messenger(f"d{i}", f"due{i}", t0 + i * 1000) for i in range(3)],
                                  *[messenger(f"a{i}", f"done{i}", t0 + 10_000 + i * 1000) for i in range(2)]))
    _deliver(inbox, page_delivery(*[messenger(f"r{i}", f"done{i}", t0 + 20_000 + i * 1000, "Sorted!", echo=True)
                                    for i in range(2)]))

    def due_entries():
        return sorted(row.conversation_id for row in Conversation.by_team_due.query("default#open"))

    ids = {c["contact"]["platform_id"]: c["id"] for c in inbox.conversations()}
    assert due_entries() == sorted(ids[f"due{i}"] for i in range(3))  # the answered ones have none

    def listed(query):
        seen, cursor = [], None
        while True:
            page = inbox.get("/api/conversations?sort=due&limit=2" + query + (f"&cursor={cursor}" if cursor else ""))
            seen.extend(item["contact"]["platform_id"] for item in page["items"])
            cursor = page["next"]
            if not cursor:
                return seen

    assert listed("") == ["due0", "due1", "due2", "done0", "done1"]
    assert listed("&channel=messenger") == ["due0", "due1", "due2", "done0", "done1"]
    assert listed("&channel=whatsapp") == []
    assert [c["contact"]["platform_id"] for c in inbox.conversations(sort="due", sla="breached")] == []
    assert inbox.get("/api/counts")["counts"]["team"] == 5
    _deliver(inbox, page_delivery(messenger("a9", "done1", t0 + 30_000, "One more thing")))  # a new turn: an entry
    _deliver(inbox, page_delivery(messenger("r9", "due0", t0 + 40_000, "Here you go", echo=True)))  # answered: none
    assert due_entries() == sorted([ids["due1"], ids["due2"], ids["done1"]])
    assert listed("") == ["due1", "due2", "done1", "done0", "due0"]
    assert inbox.get("/api/counts")["counts"]["team"] == 5


def test_a_new_message_reopens_a_resolved_conversation_but_an_old_one_does_not(accounts):
    from chalicelib.inbox import store
    from chalicelib.runtime import runtime

    inbox = accounts
    _deliver(inbox, page_delivery(messenger("m1", "p1", 1700000000000)))
    [conversation] = inbox.conversations()
    runtime.use_clock(lambda: 1700000100.0)  # the agent resolves it at this time
    store.set_status(conversation["id"], "resolved", "agent:a1")
    runtime.use_clock(None)
    _deliver(inbox, page_delivery(messenger("m0", "p1", 1700000050000, "sent before resolving, arrived late")))
    assert [c["status"] for c in inbox.conversations(status="resolved")] == ["resolved"]
    _deliver(inbox, page_delivery(messenger("m2", "p1", 1700000200000, "one more thing")))
    assert inbox.conversations(status="resolved") == []
    [reopened] = inbox.conversations(status="open")
    assert reopened["id"] == conversation["id"]
    assert reopened["last_message_preview"] == "one more thing"


def test_whatsapp_contact_name_and_number_are_shown(accounts):
    inbox = accounts
    _deliver(inbox, whatsapp_delivery("wamid.9", "351910000009", 1700000000, "café?"))
    [conversation] = inbox.conversations(channel="whatsapp")
    assert conversation["contact"]["display_name"] == "Ana"
    assert conversation["contact"]["handle"] == "+351910000009"
    assert conversation["unread_count"] == 1


def test_the_tag_filter_works_in_every_view_with_the_other_filters(accounts):
    from chalicelib.inbox import store

    inbox = accounts
    _deliver(inbox, page_delivery(*[messenger(f"t{i}", f"tp{i}", 1700000000000 + i * 1000) for i in range(4)]),
             whatsapp_delivery("wamid.t", "351910000077", 1700000005, "olá"))
    ids = {c["contact"]["platform_id"]: c["id"] for c in inbox.conversations()}
    store.set_tags(ids["tp1"], ["VIP", "billing"], "agent:a1")
    store.set_tags(ids["tp3"], ["vip"], "agent:a1")
    store.set_tags(ids["351910000077"], ["vip"], "agent:a1")
    store.assign(ids["tp3"], "a_agent7", "agent:a1")

    def tagged(**params):
        return [c["contact"]["platform_id"] for c in inbox.conversations(**params)]

    assert tagged(tag="vip") == ["351910000077", "tp3", "tp1"]  # latest first, the tag as stored (lower case)
    assert tagged(tag="%20VIP%20") == ["351910000077", "tp3", "tp1"]
    assert tagged(tag="vip", sort="due") == ["tp1", "tp3", "351910000077"]  # deadline views filter their rows
    assert tagged(tag="vip", channel="messenger") == ["tp3", "tp1"]
    assert tagged(tag="vip", assignee="a_agent7") == ["tp3"]
    assert tagged(tag="vip", assignee="none") == ["tp1", "351910000077"]
    assert tagged(tag="billing") == ["tp1"]
    assert tagged(tag="nothing") == []
    # a page of a tag view goes on with its cursor even when the filter left rows out
    seen, cursor = [], None
    while True:
        page = inbox.get("/api/conversations?tag=vip&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += [c["contact"]["platform_id"] for c in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == ["351910000077", "tp3", "tp1"]


@pytest.mark.parametrize("query", ["tag=a%23b", "tag=" + "x" * 33, "tag=%20", "tag=a%01"])
def test_bad_tag_filters_are_400(accounts, query):
    token = accounts.login_admin()
    response = accounts.client.http.get("/api/conversations?" + query, headers={"Authorization": "Bearer " + token})
    assert response.status_code in (200, 400)
    if query != "tag=%20":  # only spaces: no filter at all
        assert response.status_code == 400, response.body


def test_counts_of_every_view_in_one_answer(accounts):
    from chalicelib.inbox import store
    from chalicelib.runtime import runtime

    inbox = accounts
    now = int(time.time() * 1000)
    _deliver(inbox, page_delivery(messenger("c1", "cp1", now - 60 * 60_000), messenger("c2", "cp2", now - 13 * 60_000),
                                  messenger("c3", "cp3", now - 60_000), messenger("c4", "cp4", now - 30_000)),
             whatsapp_delivery("wamid.c", "351910000055", now // 1000 - 10, "olá"))
    me = inbox.get("/api/me")["id"]
    ids = {c["contact"]["platform_id"]: c["id"] for c in inbox.conversations()}
    store.assign(ids["cp3"], me, "agent:" + me)
    store.assign(ids["cp4"], me, "agent:" + me)
    store.set_status(ids["cp4"], "pending", "agent:" + me)
    answer = inbox.get("/api/counts")
    # open: 4; cp1 breached (60 min > 15), cp2 past its warning (13 min > 12); mine: cp3 only (cp4 is pending)
    assert answer == {"team": "default", "capped": [],
                      "counts": {"mine": 1, "unassigned": 3, "team": 4, "at_risk": 1, "breached": 1}}
    assert inbox.get("/api/counts?channel=whatsapp")["counts"] == {"mine": 0, "unassigned": 1, "team": 1,
                                                                    "at_risk": 0, "breached": 0}
    runtime.use_clock(lambda: now / 1000 + 3600)  # an hour later, every open deadline has passed
    try:
        assert inbox.get("/api/counts")["counts"]["breached"] == 4
    finally:
        runtime.use_clock(None)
    token = inbox.login_admin()
    assert inbox.client.http.get("/api/counts?channel=myspace",
                                 headers={"Authorization": "Bearer " + token}).status_code == 400


def test_counts_read_one_bounded_page_per_view_whatever_the_queue_size(accounts, monkeypatch):
    from pynamodb.connection.base import Connection

    from chalicelib.api import views

    inbox = accounts
    now = int(time.time() * 1000)
    _deliver(inbox, page_delivery(*[messenger(f"q{i}", f"qp{i}", now - 60_000 - i) for i in range(5)]))
    calls = []
    original = Connection.dispatch

    def counting(self, operation, kwargs):
        calls.append((operation, kwargs.get("Limit"), kwargs.get("Select")))
        return original(self, operation, kwargs)

    monkeypatch.setattr(Connection, "dispatch", counting)
    monkeypatch.setattr(views, "COUNT_PAGE", 3)
    answer = inbox.get("/api/counts")
    assert answer["counts"] == {"mine": 0, "unassigned": 3, "team": 3, "at_risk": 0, "breached": 0}
    # shown as "3+"; at risk read 3 of the 5 upcoming deadlines, none past its warning yet: "0+"
    assert answer["capped"] == ["unassigned", "team", "at_risk"]
    assert [c for c in calls if c[0] == "Query"] == [("Query", 3, "COUNT")] * 5
    assert not [c for c in calls if c[0] == "Scan"]


def _window(inbox, conversation_id):
    return inbox.get(f"/api/conversations/{conversation_id}")["reply_window"]


def test_the_detail_says_whether_and_until_when_a_reply_can_be_sent(accounts):
    from chalicelib.runtime import runtime

    inbox = accounts
    start = 1700000000000
    _deliver(inbox, page_delivery(messenger("w1", "wp1", start)), whatsapp_delivery("wamid.w", "351910000066",
                                                                                    start // 1000, "olá"))
    rows = {c["channel"]: c["id"] for c in inbox.conversations()}
    hour = 3600_000
    try:
        runtime.use_clock(lambda: (start + hour) / 1000)
        assert _window(inbox, rows["messenger"]) == {
            "can_reply": True, "mode": "open", "tag": None, "code": None, "reason": None,
            "until": "2023-11-15T22:13:20.000Z", "then": {"mode": "tagged", "tag": "HUMAN_AGENT", "code": None}}
        assert _window(inbox, rows["whatsapp"]) == {
            "can_reply": True, "mode": "open", "tag": None, "code": None, "reason": None,
            "until": "2023-11-15T22:13:20.000Z", "then": {"mode": "closed", "tag": None, "code": "template_required"}}
        runtime.use_clock(lambda: (start + 30 * hour) / 1000)
        assert _window(inbox, rows["messenger"]) == {
            "can_reply": True, "mode": "tagged", "tag": "HUMAN_AGENT", "code": None, "reason": None,
            "until": "2023-11-21T22:13:20.000Z", "then": {"mode": "closed", "tag": None, "code": "window_closed"}}
        closed = _window(inbox, rows["whatsapp"])
        assert closed["can_reply"] is False and closed["code"] == "template_required" and closed["then"] is None
        assert "closed at 2023-11-15T22:13Z" in closed["reason"] and "template" in closed["reason"]
        runtime.use_clock(lambda: (start + 8 * 24 * hour) / 1000)
        late = _window(inbox, rows["messenger"])
        assert late["can_reply"] is False and late["code"] == "window_closed" and late["until"] is None
    finally:
        runtime.use_clock(None)


def test_channels_without_a_window_say_so(inbox):
    from tests.helpers import TELEGRAM_TOKEN  # noqa: F401 - the fixture's telegram secret

    inbox.add_account("telegram", "default")
    update = {"update_id": 1, "message": {"message_id": 5, "date": 1700000000, "text": "hi",
                                          "chat": {"id": 42, "type": "private"}, "from": {"id": 42, "first_name": "T"}}}
    assert inbox.post_telegram(update).status_code == 200
    inbox.process()
    [row] = inbox.conversations()
    assert _window(inbox, row["id"]) == {"can_reply": True, "mode": "open", "tag": None, "code": None,
                                         "reason": None, "until": None, "then": None}


def test_conversations_stored_before_the_sparse_deadline_index_get_their_deadline_once(accounts):
    """The deploy's registered backfill (infra/backfills.py, docs/DEPLOY.md "Upgrades that change
    indexes"): a conversation stored without `deadline` is missing from the deadline view until it
    is written; a re-run writes nothing."""
    from chalicelib import aws
    from chalicelib.models import Conversation
    from infra import backfills

    inbox = accounts
    t0 = int(time.time() * 1000) - 60_000
    _deliver(inbox, page_delivery(messenger("u1", "old1", t0), messenger("u2", "old2", t0 + 1000)))
    for row in Conversation.scan():
        row.update(actions=[Conversation.deadline.remove()])  # as stored before the index existed
    assert inbox.conversations(sort="due") == [] and list(Conversation.by_team_due.query("default#open")) == []
    [deadline] = [b for b in backfills.BACKFILLS if b.name == "conversations.deadline"]
    client, lines = aws.client("dynamodb"), []
    assert backfills.run(client, "test", deadline, page_size=1, report=lines.append).updated == 2
    assert len(list(Conversation.by_team_due.query("default#open"))) == 2
    assert [c["contact"]["platform_id"] for c in inbox.conversations(sort="due")] == ["old1", "old2"]
    assert backfills.run(client, "test", deadline, report=lines.append).updated == 0  # idempotent
