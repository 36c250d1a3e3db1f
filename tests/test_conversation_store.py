"""The conversation store (chalicelib.inbox.store) through its public functions and the API:
one owner for every write, the event log, races, exactly-once counting, and write cost."""
from __future__ import annotations

import json
import threading
from collections import Counter

import pytest

from tests.helpers import days_ahead, serialise_moto_requests

from chalicelib.channels.base import ContactRef, EditEvent, MessageEvent, RemoveEvent

PAGE = "1234567890"
T0 = 1_700_000_000_000


def dm(mid, at, text="hi", user="u1", direction="in", name=None, raw=None):
    return MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=mid, thread_key=user,
                        contact=ContactRef(user, display_name=name), direction=direction, sent_at_ms=at, text=text,
                        raw=raw if raw is not None else {"mid": mid})


@pytest.fixture
def page(inbox):
    inbox.add_account("messenger", PAGE)
    return inbox


class Requests:
    """Counts DynamoDB operations per table as moto receives them (every client, every model)."""

    def __init__(self, monkeypatch):
        self.calls = Counter()
        self.monkeypatch = monkeypatch

    def __enter__(self):
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        calls = self.calls

        def counting(stubber, request):
            target = (request.headers.get("X-Amz-Target") or b"")
            target = target.decode() if isinstance(target, bytes) else target
            if target.startswith("DynamoDB_"):
                body = json.loads(request.body or b"{}")
                tables = [body.get("TableName", "")]
                if "TransactItems" in body:
                    tables = sorted({next(iter(i.values()))["TableName"] for i in body["TransactItems"]})
                for table in tables:
                    calls[(target.split(".")[1], table.replace("socialinbox-test-", ""))] += 1
            return original(stubber, request)

        self.monkeypatch.setattr(BotocoreStubber, "process_request", counting)
        return self

    def __exit__(self, *exc):
        self.monkeypatch.undo()

    def writes(self):
        return {k: v for k, v in self.calls.items()
                if k[0] in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")}


def _events(conversation_id):
    from chalicelib.inbox import store

    return store.events(conversation_id)


def test_the_event_log_records_each_change_in_order_with_contiguous_sequence_numbers(page):
    from chalicelib.inbox import store

    created, (cid, _) = store.record_message(dm("m1", T0, name="Ana"), "support")
    assert created
    store.record_message(dm("m2", T0 + 1000))  # a follow-up while waiting: not a logged change
    store.record_message(dm("r1", T0 + 60_000, direction="out"))
    store.assign(cid, "a1", "agent:a1")
    store.set_status(cid, "resolved", "agent:a1")
    log = _events(cid)
    assert [e["type"] for e in log] == ["created", "replied", "assigned", "status_changed"]
    assert [e["seq"] for e in log] == [1, 2, 3, 4]
    assert log[1]["data"]["response_ms"] == 60_000 and log[1]["data"]["first"] is True
    assert log[2]["actor"] == "agent:a1" and log[2]["data"] == {"from": None, "to": "a1"}
    state = store.get(cid)
    assert state["version"] == 4 and state["team"] == "support" and state["queue"] == "support#resolved"




def test_two_agents_claiming_at_once_exactly_one_wins_and_the_other_gets_a_conflict(page, monkeypatch):
    from chalicelib.inbox import rules, store

    serialise_moto_requests(monkeypatch)

    _, (cid, _) = store.record_message(dm("m1", T0))
    results, barrier = {}, threading.Barrier(6)

    def claim(agent):
        barrier.wait()
        try:
            store.assign(cid, agent, f"agent:{agent}", expected=None)
            results[agent] = "won"
        except rules.Conflict:
            results[agent] = "conflict"

    threads = [threading.Thread(target=claim, args=(f"a{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results.values()) == ["conflict"] * 5 + ["won"]
    winner = next(agent for agent, outcome in results.items() if outcome == "won")
    assert store.get(cid)["assignee"] == winner
    assert [e["type"] for e in _events(cid)].count("assigned") == 1


def test_claim_over_http_answers_409_to_the_loser_and_the_flow_cannot_steal_a_claimed_conversation(page):
    from chalicelib.inbox import rules, store

    _, (cid, _) = store.record_message(dm("m1", T0))
    token = page.login_admin()
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    store.assign(cid, "a_flow_pick", "flow", expected=None)
    response = page.client.http.patch(f"/api/conversations/{cid}", headers=headers,
                                      body=json.dumps({"assignee": "me", "claim": True}))
    assert response.status_code == 409, response.body
    assert json.loads(response.body)["current"] == {"assignee": "a_flow_pick", "assignee_name": "an unknown agent"}
    with pytest.raises(rules.Conflict):
        store.assign(cid, "a_other", "flow", expected=None)
    ok = page.client.http.patch(f"/api/conversations/{cid}", headers=headers, body=json.dumps({"assignee": "me"}))
    assert ok.status_code == 200 and json.loads(ok.body)["assignee"] != "a_flow_pick"


@pytest.mark.parametrize("body,status", [
    ({}, 400), ({"status": "closed"}, 422), ({"status": "snoozed"}, 422), ({"status": 5}, 400),
    ({"status": "snoozed", "snoozed_until": "tomorrow"}, 400), ({"status": "snoozed", "snoozed_until": "2026-01-01T00:00:00"}, 400),
    ({"assignee": ["x"]}, 400), ({"assignee": "a#b"}, 400), ({"assignee": "me", "claim": "yes"}, 400),
    ({"evil": 1, "status": "open"}, 400),
])
def test_bad_changes_are_4xx_and_change_nothing(page, body, status):
    from chalicelib.inbox import store

    _, (cid, _) = store.record_message(dm("m1", T0))
    before = store.get(cid)
    token = page.login_admin()
    response = page.client.http.patch(f"/api/conversations/{cid}", body=json.dumps(body),
                                      headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    assert response.status_code == status, response.body
    assert store.get(cid) == before
    missing = page.client.http.patch("/api/conversations/c_nope", body=json.dumps({"status": "resolved"}),
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    assert missing.status_code == 404


def test_snooze_resolve_read_and_the_events_endpoint(page):
    from chalicelib.inbox import store

    _, (cid, _) = store.record_message(dm("m1", T0))
    token = page.login_admin()
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    until, until_ms = days_ahead(30)
    snoozed = page.client.http.patch(f"/api/conversations/{cid}", headers=headers,
                                     body=json.dumps({"status": "snoozed", "snoozed_until": until}))
    assert snoozed.status_code == 200 and json.loads(snoozed.body)["status"] == "snoozed"
    assert [c["id"] for c in page.conversations(status="snoozed", sort="due")] == [cid]
    read = page.client.http.post(f"/api/conversations/{cid}/read", headers=headers)
    assert json.loads(read.body)["unread_count"] == 0
    log = page.get(f"/api/conversations/{cid}/events")["items"]
    assert [e["type"] for e in log] == ["created", "status_changed", "read"]
    assert log[1]["data"]["until"] == until_ms and log[1]["at"].endswith("Z")


def test_a_duplicate_delivery_writes_nothing(page, monkeypatch):
    from chalicelib.inbox import store

    store.record_message(dm("m1", T0))
    with Requests(monkeypatch) as requests:
        created, _ = store.record_message(dm("m1", T0))
    assert not created
    assert requests.writes() == {}
    assert requests.calls == Counter({("GetItem", "message-refs"): 1})


def test_a_follow_up_is_one_conditional_conversation_update_and_no_transaction(page, monkeypatch):
    from chalicelib.inbox import store

    store.record_message(dm("m1", T0))
    with Requests(monkeypatch) as requests:
        store.record_message(dm("m2", T0 + 1000))
    assert requests.writes() == {("PutItem", "messages"): 1, ("UpdateItem", "conversations"): 1,
                                 ("PutItem", "message-refs"): 1}  # the raw payload rides on the ref
    assert requests.calls[("GetItem", "conversations")] == 1  # read first: 1 RRU, never a failed write


def test_a_turn_start_or_a_new_conversation_writes_no_transaction_and_tries_no_write_that_fails(page, monkeypatch):
    """Issue 21: a logged change is one conditional update carrying its entry plus one put of the
    entry (a transaction bills every item twice); the conversation is read before deciding, so a
    message that starts a turn never pays for a failed follow-up write."""
    from chalicelib.inbox import store

    with Requests(monkeypatch) as requests:
        _, (cid, _) = store.record_message(dm("m1", T0))
    assert {k: v for k, v in requests.writes().items() if k[0] != "BatchWriteItem"} == {
        ("PutItem", "messages"): 1, ("PutItem", "conversations"): 1,
        ("PutItem", "conversation-events"): 1, ("UpdateItem", "contacts"): 1, ("PutItem", "message-refs"): 1}
    store.record_message(dm("r1", T0 + 60_000, direction="out"))
    with Requests(monkeypatch) as requests:
        store.record_message(dm("m2", T0 + 120_000))  # after our reply: a new turn, logged
    writes = requests.writes()
    assert ("TransactWriteItems", "conversation-events") not in writes and \
        not any(op == "TransactWriteItems" for op, _ in writes)
    assert writes[("UpdateItem", "conversations")] == 1 and writes[("PutItem", "conversation-events")] == 1
    assert [e["seq"] for e in _events(cid)] == [1, 2, 3]


def test_a_retry_after_a_crash_before_the_ref_recounts_instead_of_counting_twice(page):
    from chalicelib.inbox import store
    from chalicelib.inbox.ids import message_ref
    from chalicelib.models import MessageRef

    _, (cid, _) = store.record_message(dm("m1", T0))
    store.record_message(dm("m2", T0 + 1000))
    MessageRef(message_ref("messenger", PAGE, "m2")).delete()  # as if the ref write never happened
    store.record_message(dm("m3", T0 + 2000))  # another message lands before the retry
    store.record_message(dm("m2", T0 + 1000))  # the retry
    state = store.get(cid)
    assert state["message_count"] == 3 and state["unread_count"] == 3
    assert state["last_message_preview"] == "hi" and state["last_message_at"] == T0 + 2000


def test_a_new_customer_name_updates_the_conversation_and_the_contact(page):
    from chalicelib.inbox import store
    from chalicelib.models import Contact

    _, (cid, _) = store.record_message(dm("m1", T0, name="Ana"))
    store.record_message(dm("m2", T0 + 1, name="Ana Lima"))
    assert store.get(cid)["contact_name"] == "Ana Lima"
    assert Contact.get(store.get(cid)["contact_id"]).display_name == "Ana Lima"


def test_edits_and_removals_refresh_the_preview_of_the_latest_message_and_are_logged(page):
    from chalicelib.inbox import store

    _, (cid, _) = store.record_message(dm("m1", T0, text="first"))
    store.record_message(dm("m2", T0 + 1000, text="secret number 1234"))
    assert store.apply_edit(EditEvent(dm("m2", T0 + 1000, text="fixed text"), T0 + 5000)) == "edited"
    assert store.get(cid)["last_message_preview"] == "fixed text"
    removal = RemoveEvent("messenger", PAGE, "m2", T0 + 9000)
    assert store.apply_removal(removal) == "removed"
    assert store.get(cid)["last_message_preview"] == "[removed]"
    assert [e["type"] for e in _events(cid)][-2:] == ["message_edited", "message_removed"]
    store.apply_edit(EditEvent(dm("m1", T0, text="first, edited"), T0 + 6000))
    assert store.get(cid)["last_message_preview"] == "[removed]"  # not the latest: row unchanged


def test_raw_payloads_are_kept_apart_compressed_and_capped_in_bytes(page):
    from chalicelib.inbox import store
    from chalicelib.inbox.ids import message_ref
    from chalicelib.models import Message, MessageRef, RawPayload

    import random

    noise = random.Random(7)
    huge = {"text": "ü€😀" + "".join(chr(noise.randint(0x4E00, 0x9FFF)) for _ in range(300_000))}  # ~900 KB UTF-8
    _, (cid, sort_key) = store.record_message(dm("m1", T0, raw=huge))
    kept = RawPayload.get(message_ref("messenger", PAGE, "m1"))
    assert kept.truncated and len(kept.data) <= store.RAW_MAX_BYTES
    assert kept.expires_at > T0 // 1000
    assert store.raw_payload(message_ref("messenger", PAGE, "m1")).startswith('{"text":"ü€😀')
    assert "raw" not in Message.get(cid, sort_key).attribute_values
    assert MessageRef.get(message_ref("messenger", PAGE, "m1")).raw is None


def test_a_small_raw_payload_rides_on_the_ref_within_one_write_unit(page):
    """Issue 21: a realistic payload fits on the message's ref (one put fewer per message); it is
    read back the same way and, like a payload kept apart, no longer shown after RAW_PAYLOAD_DAYS."""
    from chalicelib.inbox import store
    from chalicelib.inbox.ids import message_ref
    from chalicelib.models import MessageRef, RawPayload
    from chalicelib.runtime import runtime

    payload = {"sender": {"id": "psid"}, "message": {"mid": "m2", "text": "where is my parcel " * 12}}
    store.record_message(dm("m2", T0 + 1, raw=payload))
    ref = message_ref("messenger", PAGE, "m2")
    assert RawPayload.count(ref) == 0
    item = MessageRef.get(ref)
    assert item.raw is not None and len(item.raw) < 1024
    assert json.loads(store.raw_payload(ref)) == payload
    stored_at = int(item.created_at)
    runtime.use_clock(lambda: (stored_at + 31 * 86_400_000) / 1000)
    try:
        assert store.raw_payload(ref) is None
    finally:
        runtime.use_clock(None)
    assert store.raw_payload(message_ref("messenger", PAGE, "never")) is None


def test_views_are_queries_on_their_own_index(page, monkeypatch):
    from chalicelib.inbox import store

    _, (c1, _) = store.record_message(dm("m1", T0, user="u1"))
    _, (c2, _) = store.record_message(dm("m2", T0 + 10, user="u2"))
    store.assign(c1, "a_me", "flow")
    with Requests(monkeypatch) as requests:
        page.conversations(assignee="a_me")
    assert requests.calls[("Query", "conversations")] == 1 and requests.calls[("Scan", "conversations")] == 0
    breached = page.conversations(sla="breached")  # platform times in 2023: long overdue
    assert [c["id"] for c in breached] == [c1, c2]
    assert all(c["sla"]["state"] == "breached" for c in breached)
    assert page.conversations(sla="at_risk") == []


def test_cursors_are_tamper_evident_and_bound_to_their_view(page):
    from chalicelib.inbox import store

    for i in range(3):
        store.record_message(dm(f"m{i}", T0 + i, user=f"u{i}"))
    due_page = page.get("/api/conversations?sort=due&limit=1")
    token = page.login_admin()
    headers = {"Authorization": "Bearer " + token}
    reused = page.client.http.get(f"/api/conversations?sort=recent&limit=1&cursor={due_page['next']}", headers=headers)
    assert reused.status_code == 400 and b"another view" in reused.body
    body, mac = due_page["next"].split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    assert page.client.http.get(f"/api/conversations?sort=due&cursor={forged}", headers=headers).status_code == 400
    assert page.get(f"/api/conversations?sort=due&limit=1&cursor={due_page['next']}")["items"]


def test_unknown_account_events_are_replayed_exactly_once_after_registration(inbox):
    from chalicelib.ingest import pipeline

    for mid in ("q1", "q2"):
        assert pipeline.handle(dm(mid, T0 + int(mid[1]))) == "quarantined"
    pipeline.handle(MessageEvent("whatsapp", "999", "w1", "x", ContactRef("x"), "in", T0))
    assert {q["reason"] for q in inbox.quarantine()} == {"unknown account"}
    token = inbox.login_admin()
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    early = inbox.client.http.post("/api/admin/quarantine/replay", headers=headers, body=json.dumps({}))
    assert json.loads(early.body)["replayed"] == 0
    inbox.add_account("messenger", PAGE)
    replay = lambda: json.loads(inbox.client.http.post(  # noqa: E731
        "/api/admin/quarantine/replay", headers=headers, body=json.dumps({"channel": "messenger"})).body)
    assert replay()["replayed"] == 2
    assert replay()["replayed"] == 0
    [conversation] = inbox.conversations()
    assert conversation["message_count"] == 2
    assert [q["channel"] for q in inbox.quarantine()] == ["whatsapp"]
    bad = inbox.client.http.post("/api/admin/quarantine/replay", headers=headers, body=json.dumps({"channel": "aol"}))
    assert bad.status_code == 400


def test_concurrent_quarantine_replays_each_report_only_what_they_replayed(inbox, monkeypatch):
    """Issue 16 item 15: five concurrent replays of five items reported 25; each call must report
    the items it replayed, so the reports add up to five (and each item lands once)."""
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.ingest import pipeline, replay

    serialise_moto_requests(monkeypatch)  # DynamoDB applies each request atomically; in-process moto does not
    for i in range(5):
        assert pipeline.handle(dm(f"q{i}", T0 + i, user=f"u{i}")) == "quarantined"
    inbox.add_account("messenger", PAGE)
    barrier = threading.Barrier(5)

    def one_call(_: int):
        barrier.wait()
        return replay.replay("messenger")

    with ThreadPoolExecutor(5) as pool:
        reports = list(pool.map(one_call, range(5)))
    assert sum(report["replayed"] for report in reports) == 5, reports
    assert all(report["failed"] == 0 for report in reports)
    assert sorted(c["message_count"] for c in inbox.conversations()) == [1] * 5
    assert inbox.quarantine() == []


def test_quarantine_is_newest_first_and_paged(inbox):
    from chalicelib.ingest import quarantine
    from chalicelib.runtime import runtime

    for i in range(5):
        runtime.use_clock(lambda i=i: 1_700_000_000 + i)
        quarantine.quarantine("unreadable: test", "messenger", PAGE, {"n": i})
    runtime.use_clock(None)
    seen, cursor = [], None
    while True:
        page = inbox.get("/api/admin/quarantine?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += [json.loads(q["preview"])["n"] for q in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [4, 3, 2, 1, 0]
    one = inbox.get("/api/admin/quarantine")["items"][0]
    assert json.loads(inbox.get(f"/api/admin/quarantine/{one['id']}")["raw"]) == {"n": 4}


def test_priority_and_tags_are_logged_changes_shown_in_the_list(page):
    from chalicelib.inbox import store

    _, (cid, _) = store.record_message(dm("m1", T0))
    token = page.login_admin()
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    ok = page.client.http.patch(f"/api/conversations/{cid}", headers=headers,
                                body=json.dumps({"priority": "urgent", "tags": [" VIP ", "refund", "vip"]}))
    assert ok.status_code == 200, ok.body
    [row] = page.conversations()
    assert row["priority"] == "urgent" and row["tags"] == ["vip", "refund"]
    assert [e["type"] for e in _events(cid)][-2:] == ["priority_changed", "tags_changed"]
    for bad in ({"priority": "asap"}, {"tags": "vip"}, {"tags": ["x" * 33]}, {"tags": ["a#b"]}, {"tags": ["t"] * 21}):
        response = page.client.http.patch(f"/api/conversations/{cid}", headers=headers, body=json.dumps(bad))
        assert response.status_code == 422, (bad, response.body)


def test_a_matching_policy_sets_the_deadline_and_a_pausing_policy_keeps_the_time_left(page):
    from chalicelib.inbox import store
    from chalicelib.runtime import runtime
    from chalicelib.sla import policies

    now = T0 + 1_000
    runtime.use_clock(lambda: now / 1000)
    created = policies.create_policy({"name": "Messenger fast", "channels": ["messenger"],
                                      "first_response_seconds": 600, "next_response_seconds": 300,
                                      "warn_at_percent": 50, "pause_on": ["pending"]}, now)
    _, (cid, _) = store.record_message(dm("m1", T0))
    state = store.get(cid)
    assert (state["reply_due_at"], state["warn_at"]) == (T0 + 600_000, T0 + 300_000)
    assert state["sla_policy_id"] == created["id"]
    assert page.get(f"/api/conversations/{cid}")["sla"]["policy_id"] == created["id"]

    now = T0 + 100_000
    paused = store.set_status(cid, "pending", "agent:a1")
    assert paused["sla_paused_ms"] == 500_000 and "reply_due_at" not in paused
    assert _events(cid)[-1]["data"]["sla_paused_ms"] == 500_000
    shown = page.get(f"/api/conversations/{cid}")["sla"]
    assert shown["state"] == "paused" and shown["remaining_ms"] == 500_000 and shown["due_at"] is None
    now = T0 + 4_000_000
    resumed = store.set_status(cid, "open", "agent:a1")
    assert resumed["reply_due_at"] == now + 500_000  # the clock runs on from what was left
    assert "sla_paused_ms" not in resumed and resumed["turn"] == 2
    assert resumed["awaiting_reply_since"] == T0  # still the same customer waiting
    runtime.use_clock(None)


def test_without_a_pausing_policy_pending_stops_the_clock_and_a_customer_message_starts_afresh(page):
    from chalicelib.inbox import store
    from chalicelib.runtime import runtime

    runtime.use_clock(lambda: (T0 + 10_000) / 1000)
    _, (cid, _) = store.record_message(dm("m1", T0))
    store.set_status(cid, "pending", "agent:a1")
    assert "reply_due_at" not in store.get(cid) and "sla_paused_ms" not in store.get(cid)
    store.record_message(dm("m2", T0 + 20_000))
    state = store.get(cid)
    assert state["status"] == "open" and state["reply_due_at"] == T0 + 20_000 + 15 * 60_000
    runtime.use_clock(None)


@pytest.mark.parametrize("path", ["/api/conversations/{cid}/events?after=abc", "/api/conversations/{cid}/events?after=-1",
                                  "/api/conversations/{cid}/events?limit=0", "/api/me/notifications?limit=1000",
                                  "/api/admin/quarantine?cursor=forged.AAAA", "/api/admin/quarantine?limit=x"])
def test_hostile_query_parameters_are_400(page, path):
    from chalicelib.inbox import store

    _, (cid, _) = store.record_message(dm("m1", T0))
    token = page.login_admin()
    response = page.client.http.get(path.format(cid=cid), headers={"Authorization": "Bearer " + token})
    assert response.status_code == 400, response.body


@pytest.mark.parametrize("path", ["/api/conversations/c_nope/events", "/api/admin/quarantine/q_nope",
                                  "/api/admin/quarantine/" + "x" * 3000, "/api/conversations/%F0%9F%98%80/events"])
def test_unknown_ids_are_404(page, path):
    token = page.login_admin()
    response = page.client.http.get(path, headers={"Authorization": "Bearer " + token})
    assert response.status_code == 404, response.body


# --- the event log without transactions: crash between the update and the put (issue 21) ------


class _Crash(RuntimeError):
    """The Lambda dies right after the conversation update, before the log entry is put."""


def _crash_next_log_puts(monkeypatch):
    """Arm with `crashes[0] = n`: the next n puts into the event log raise (nothing written)."""
    from pynamodb.connection.base import Connection

    real_call = Connection._make_api_call
    crashes = [0]

    def call(connection, operation_name, operation_kwargs):
        if operation_name == "PutItem" and operation_kwargs.get("TableName", "").endswith("-conversation-events") \
                and crashes[0] > 0:
            crashes[0] -= 1
            raise _Crash("process died")
        return real_call(connection, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", call)
    return crashes


def test_a_crash_between_the_update_and_the_log_put_is_repaired_by_the_retry(page, monkeypatch):
    from chalicelib.inbox import store

    crashes = _crash_next_log_puts(monkeypatch)
    _, (cid, _) = store.record_message(dm("m1", T0))
    store.record_message(dm("r1", T0 + 60_000, direction="out"))
    crashes[0] = 1
    with pytest.raises(_Crash):
        store.record_message(dm("m2", T0 + 120_000))  # the turn start: updated, entry not yet put
    assert [e["seq"] for e in _events(cid)] == [1, 2] and store.get(cid)["version"] == 3
    store.record_message(dm("m2", T0 + 120_000))  # SQS delivers it again
    log = _events(cid)
    assert [e["seq"] for e in log] == [1, 2, 3] and log[2]["actor"] == "customer"
    assert store.get(cid)["message_count"] == 3


def test_a_crash_before_the_log_put_is_repaired_by_the_next_change_before_its_own_entry(page, monkeypatch):
    from chalicelib.inbox import store

    crashes = _crash_next_log_puts(monkeypatch)
    _, (cid, _) = store.record_message(dm("m1", T0))
    crashes[0] = 1
    with pytest.raises(_Crash):
        store.assign(cid, "a1", "agent:a1")  # nobody retries this one
    store.set_status(cid, "resolved", "agent:a1")
    log = _events(cid)
    assert [(e["seq"], e["type"]) for e in log] == [(1, "created"), (2, "assigned"), (3, "status_changed")]
    assert log[1]["data"] == {"from": None, "to": "a1"}


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_STEPS = st.lists(st.tuples(st.sampled_from(["in", "out", "assign", "resolve", "reopen", "read"]), st.booleans(),
                            st.booleans()), min_size=1, max_size=12)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS)
def test_property_the_log_holds_every_version_once_and_in_order_whatever_crashes(page, monkeypatch, steps):
    """Any mix of changes, each possibly dying between its update and its log put, each possibly
    retried: entries are 1..version (the newest may wait on the item until the next change), no
    gap, none twice; after one more change the log is complete."""
    from chalicelib.inbox import rules, store
    from chalicelib.inbox.pending import unpack
    from chalicelib.models import ConversationEvent

    crashes = _crash_next_log_puts(monkeypatch)
    user = f"u{abs(hash(tuple(steps))) % 10**9}"
    at = [T0]
    _, (cid, _) = store.record_message(dm(f"{user}-0", at[0], user=user))

    def run(kind, n):
        at[0] += 1000
        if kind in ("in", "out"):
            event = dm(f"{user}-{n}", at[0], user=user, direction=kind)
            return lambda: store.record_message(event)
        action = {"assign": lambda: store.assign(cid, f"a{n % 2}", "agent:a"),
                  "resolve": lambda: store.set_status(cid, "resolved", "agent:a"),
                  "reopen": lambda: store.set_status(cid, "open", "agent:a"),
                  "read": lambda: store.mark_read(cid, "agent:a")}[kind]
        return action

    for n, (kind, crash, retry) in enumerate(steps, start=1):
        step = run(kind, n)
        crashes[0] = 1 if crash else 0
        try:
            step()
        except _Crash:
            if retry:
                step()
        except rules.Conflict:
            pass
        crashes[0] = 0
        state = store.get(cid)
        seqs = [int(e.seq) for e in ConversationEvent.query(cid)]
        pending = [unpack(state["log_pending"])["seq"]] if state.get("log_pending") else []
        complete = sorted(set(seqs) | set(pending))
        assert len(seqs) == len(set(seqs)) and complete == list(range(1, int(state["version"]) + 1))
    store.assign(cid, "closer", "agent:closer")
    state = store.get(cid)
    assert [e["seq"] for e in store.events(cid, limit=200)] == list(range(1, int(state["version"]) + 1))


@settings(max_examples=50)
@given(entry=st.tuples(st.integers(1, 10**6), st.integers(0, 10**13), st.text(max_size=30), st.text(max_size=30),
                       st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=40) | st.none(),
                                       max_size=6)))
def test_property_a_packed_log_entry_unpacks_to_itself(entry):
    from chalicelib.inbox.pending import pack, unpack

    seq, at, entry_type, actor, data = entry
    assert unpack(pack(seq, at, entry_type, actor, data)) == {"seq": seq, "at": at, "type": entry_type,
                                                               "actor": actor, "data": data or None}


def test_a_packed_entry_keeps_the_conversation_within_one_write_unit():
    from chalicelib.inbox.pending import pack

    created = pack(1, 1733100000000, "created", "customer", {
        "channel": "messenger", "team": "support", "message_id": "m_f5b25d30bd2b8a52036cbcf4",
        "account_id": "1234567890", "thread_kind": "dm", "awaiting_since": 1733100000000,
        "due_at": 1733100900000, "warn_at": 1733100720000, "first": True})
    assert len(created) <= 100  # the item is ~810 bytes with a 120-character preview
