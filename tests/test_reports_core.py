"""Reports, the complete summary contract on a scripted history through the real inbox: two
channels, a reopened conversation, a follow-up that is not logged, a private reply to a comment, a
comment closed without a reply (moderation-only), a breach, a resolution target, a tag and a
priority changed midway and a relabel afterwards, an arrival just after a DST change. Both stream
consumers get the log and the messages as the streams deliver them; every number below is
computed by hand in the comments. Also: the rebuild equals the incremental path, a replay of both
streams counts nothing twice, the timeseries route (DST-correct groups, CSV)."""
from __future__ import annotations

import csv
import io
import json
import random

import pytest

from chalicelib.reports import distinct, rebuild, summary

MIN = 60_000
T = 1_774_692_000_000  # 2026-03-28T10:00Z, a Saturday; Europe/Berlin goes to summer time on the 29th
LATE = 1_774_823_400_000  # 2026-03-29T22:30Z = 2026-03-30T00:30+02:00 in Berlin (23:30 at a fixed +01:00)
READ_AT = T + 180 * MIN
PAGE, IG = "1234567890", "ig-1"


def event(channel, account, mid, at, user, kind="dm", thread=None):
    from chalicelib.channels.base import ContactRef, MessageEvent

    return MessageEvent(channel=channel, account_id=account, platform_message_id=mid, thread_key=thread or user,
                        contact=ContactRef(user), direction="in", sent_at_ms=at, text="hello", thread_kind=kind)


@pytest.fixture
def history(inbox):
    from chalicelib.inbox import outbound, store
    from chalicelib.runtime import runtime
    from chalicelib.sla import policies

    inbox.add_account("messenger", PAGE)
    inbox.add_account("instagram", IG)
    runtime.use_change_listeners([])
    clock = {"now": T}
    runtime.use_clock(lambda: clock["now"] / 1000)
    policies.create_policy({"name": "Everything", "first_response_seconds": 900, "next_response_seconds": 900,
                            "resolution_seconds": 3600}, T - MIN)
    policies.forget()

    def at(ms):
        clock["now"] = ms

    def reply(cid, agent, private=False):
        draft = outbound.Draft(cid, "reply", "thanks", f"c-{clock['now']}", agent, private_reply=private)
        outbound.create(draft, store.get(cid))

    ids = {}
    at(T)  # A: a Messenger DM (u1); cycle 1 starts, resolution due T+60
    ids["A"] = store.record_message(event("messenger", PAGE, "m1", T, "u1"))[1][0]
    at(T + MIN)
    store.record_message(event("messenger", PAGE, "m2", T + MIN, "u1"))  # a follow-up: not logged
    at(T + 3 * MIN)
    reply(ids["A"], "ana")  # FRT 3 min, within the 15-minute target
    at(T + 5 * MIN)
    store.set_tags(ids["A"], ["billing"], "agent:ana")
    at(T + 10 * MIN)
    store.set_status(ids["A"], "resolved", "agent:ana")  # resolution 10 min: met
    at(T + 20 * MIN)  # B: an Instagram comment (u2), closed without a reply after its deadline
    ids["B"] = store.record_message(event("instagram", IG, "c1", T + 20 * MIN, "u2", "comment", "post1:u2"))[1][0]
    at(T + 30 * MIN)  # C: a DM (u3) that never gets an answer; breached at T+45
    ids["C"] = store.record_message(event("messenger", PAGE, "m4", T + 30 * MIN, "u3"))[1][0]
    at(T + 40 * MIN)
    store.set_status(ids["B"], "resolved", "agent:ana")  # moderation-only; first SLA missed (due T+35)
    at(T + 45 * MIN)
    store.record_sla_timer(ids["C"], int(store.get(ids["C"])["turn"]), "breach")
    at(T + 50 * MIN)  # D: another comment of u2's (the same author), answered privately in 2 min
    ids["D"] = store.record_message(event("instagram", IG, "c2", T + 50 * MIN, "u2", "comment", "post2:u2"))[1][0]
    at(T + 51 * MIN)
    store.set_priority(ids["D"], "urgent", "agent:ana")
    at(T + 52 * MIN)
    reply(ids["D"], "ana", private=True)
    at(T + 60 * MIN)  # A again: cycle 2 (tagged billing by now), resolution due T+120, never resolved
    store.record_message(event("messenger", PAGE, "m3", T + 60 * MIN, "u1"))
    at(T + 90 * MIN)
    reply(ids["A"], "bob")  # FRT 30 min: past the target
    at(LATE)  # E: a DM just after local midnight on the 30th in Berlin
    ids["E"] = store.record_message(event("messenger", PAGE, "m5", LATE, "u4"))[1][0]
    at(READ_AT)
    yield inbox, ids, at
    runtime.use_clock(None)
    policies.forget()


def log_records():
    from chalicelib.models import ConversationEvent

    return [{"eventName": "INSERT", "dynamodb": {"NewImage": e.serialize()}} for e in ConversationEvent.scan()]


def message_records():
    from chalicelib.models import Message

    return [{"eventName": "INSERT", "dynamodb": {"NewImage": m.serialize()}} for m in Message.scan()]


def consume():
    from chalicelib.reports import consumer, messages

    consumer.handle_records(log_records())
    return messages.handle_records(message_records())


def saturday(scope="all"):
    return summary.summary(summary.parse_period("2026-03-28", "2026-03-29", "Europe/Berlin"), scope)


def test_the_summary_contract_by_hand(history):
    inbox, ids, at = history
    assert consume() == {"records": 10, "applied": 10, "ignored": 0}  # 7 customer messages, 3 replies
    found = saturday()
    # cycles: A1, A2, B, C, D (E is on the 30th)
    assert found["volume"] == {"inbound": 6, "outbound": 3, "new_conversations": 4, "unique_authors": 3,
                               "cycles": 5, "customer_waits": 5, "replies": 3, "private_replies": 1,
                               "resolved": 2, "breaches": 1}
    frt = found["first_response"]  # 180 s (A1), 1800 s (A2), 120 s (D): median 180, p90 1800; 2 of 3 in target
    assert frt["count"] == 3 and frt["within_target_pct"] == 66.7
    assert abs(frt["median_s"] - 180) <= 3.6 and abs(frt["p90_s"] - 1800) <= 36
    assert found["next_response"]["count"] == 0  # the follow-up m2 came while a reply was due
    resolution = found["resolution"]  # A1 600 s, B 1200 s, both by the 1-hour target
    assert resolution["count"] == 2 and resolution["within_target_pct"] == 100.0
    assert abs(resolution["median_s"] - 600) <= 12 and abs(resolution["p90_s"] - 1200) <= 24
    # first: met A1, D; missed A2 (late), B (closed after its deadline), C (breached)
    assert found["sla"]["first"] == {"met": 2, "missed": 3, "pending": 0, "attainment_pct": 40.0}
    # resolution: met A1, B; A2 (due T+120), C (T+90), D (T+110) still open at T+180: missed
    assert found["sla"]["resolution"] == {"met": 2, "missed": 3, "pending": 0, "attainment_pct": 40.0}
    rate = found["response_rate"]  # answered A1, A2 (public), D (private); B moderation-only, apart
    assert rate["by_type"] == {
        "dm": {"pct": 66.7, "answered": 2, "total": 3, "public": 2, "private": 0, "moderated": 0},
        "comment": {"pct": 100.0, "answered": 1, "total": 1, "public": 0, "private": 1, "moderated": 1},
        "mention": {"pct": None, "answered": 0, "total": 0, "public": 0, "private": 0, "moderated": 0}}
    assert (rate["pct"], rate["answered"], rate["total"], rate["moderated"]) == (75.0, 3, 4, 1)
    assert found["unanswered"] == {"count": 1, "oldest_wait_s": 150 * 60}  # C, waiting since T+30
    assert found["period"]["counts"] == "cohort" and "volume.inbound" in found["period"]["activity"]

    # the same summary earlier: at T+110 C's deadline (T+90) has passed, A2's (T+120) not, and D's
    # (T+110) is not counted past before its 15-minute bucket ends (T+120)
    at(T + 110 * MIN)
    assert saturday()["sla"]["resolution"] == {"met": 2, "missed": 1, "pending": 2, "attainment_pct": 66.7}
    at(READ_AT)

    # dimensions as they were at the event
    instagram = saturday(f"acct#instagram#{IG}")
    assert (instagram["volume"]["cycles"], instagram["volume"]["inbound"], instagram["volume"]["unique_authors"]) == (
        2, 2, 1)
    urgent = saturday("prio#urgent")  # D became urgent after it started: its reply counts there, its cycle not
    assert (urgent["first_response"]["count"], urgent["volume"]["cycles"], urgent["volume"]["outbound"]) == (1, 0, 1)
    ana, bob = saturday("agent#ana"), saturday("agent#bob")
    assert (ana["first_response"]["count"], ana["volume"]["outbound"]) == (2, 2)
    assert (bob["first_response"]["count"], bob["volume"]["outbound"]) == (1, 1)


def test_relabelling_never_rewrites_history(history):
    from chalicelib.inbox import store

    inbox, ids, at = history
    consume()
    billing = saturday("tag#billing")  # tagged at T+5: A1's resolve, A2's cycle, m3 and bob's reply
    assert (billing["volume"]["cycles"], billing["volume"]["resolved"], billing["first_response"]["count"],
            billing["volume"]["inbound"], billing["volume"]["outbound"]) == (1, 1, 1, 1, 1)
    assert billing["volume"]["new_conversations"] == 0  # created before the tag
    store.set_tags(ids["A"], ["vip"], "agent:ana")  # relabelled afterwards
    consume()
    assert saturday("tag#billing") == billing
    assert saturday("tag#vip")["volume"]["cycles"] == 0


def test_rebuild_equals_the_incremental_path_and_a_replay_counts_nothing(history):
    from chalicelib.reports import consumer, messages

    inbox, ids, at = history
    consume()
    start, end = summary.parse_period("2026-03-01", "2026-04-01", "UTC").from_ms, summary.parse_period(
        "2026-03-01", "2026-04-01", "UTC").to_ms
    incremental = rebuild.stored_items(start, end)
    assert incremental and rebuild.expected_items(start, end) == incremental
    # both streams again, shuffled and in pieces: nothing counts twice
    records = log_records() + message_records()
    random.Random(3).shuffle(records)
    for piece in (records[:7], records[7:], records):
        consumer.handle_records([r for r in piece if "seq" in r["dynamodb"]["NewImage"]])
        assert messages.handle_records([r for r in piece if "seq" not in r["dynamodb"]["NewImage"]])["applied"] == 0
    assert rebuild.stored_items(start, end) == incremental
    # damage the counters, rebuild the month: the incremental numbers are back, stale items gone
    client = rebuild.aggregates.client()
    client.put_item(TableName=rebuild.aggregates.table(),
                    Item={"pk": {"S": "all"}, "sk": {"S": rebuild.aggregates.day_key(T)}, "inbound": {"N": "99"}})
    client.put_item(TableName=rebuild.aggregates.table(),
                    Item={"pk": {"S": "ch#ghost"}, "sk": {"S": rebuild.aggregates.quarter_key(T)}, "x": {"N": "1"}})
    assert rebuild.main(["--from", "2026-03-01", "--to", "2026-04-01"]) == 0
    assert rebuild.stored_items(start, end) == incremental
    assert saturday()["volume"]["inbound"] == 6


def test_timeseries_route_dst_correct_and_csv(history):
    inbox, ids, at = history
    consume()
    admin = inbox.login_admin()

    def get(query):
        response = inbox.client.http.get("/api/reports/timeseries?" + query, headers={"Authorization": "Bearer " + admin})
        return response.status_code, response

    status, response = get("from=2026-03-28&to=2026-03-31&tz=Europe/Berlin&metric=inbound&group_by=day")
    body = json.loads(response.body)
    assert status == 200 and body["period"]["counts"] == "activity"
    # E (22:30 UTC on the 29th) is on the 30th in Berlin's summer time, not on the 29th
    assert body["points"] == [{"start": "2026-03-28T00:00:00+01:00", "value": 6},
                              {"start": "2026-03-29T00:00:00+01:00", "value": 0},
                              {"start": "2026-03-30T00:00:00+02:00", "value": 1}]
    status, response = get("from=2026-03-01&to=2026-05-01&tz=Europe/Berlin&metric=response_rate&group_by=month")
    assert [p["value"] for p in json.loads(response.body)["points"]] == [60.0, None]  # 3 of 5 (E unanswered)
    status, response = get("from=2026-03-23&to=2026-04-06&tz=Europe/Berlin&metric=first_response_p90&group_by=week")
    weeks = json.loads(response.body)["points"]
    assert [p["start"] for p in weeks] == ["2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]
    assert abs(weeks[0]["value"] - 1800) <= 36 and weeks[1]["value"] is None
    status, response = get("from=2026-03-28&to=2026-03-31&tz=Europe/Berlin&metric=inbound&group_by=day&format=csv")
    assert status == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.body.decode())))
    assert rows == [["start", "inbound"], ["2026-03-28T00:00:00+01:00", "6"], ["2026-03-29T00:00:00+01:00", "0"],
                    ["2026-03-30T00:00:00+02:00", "1"]]
    for bad in ("metric=nope&group_by=day", "metric=inbound&group_by=year", "metric=inbound&format=xml",
                "metric=inbound&tag=a%23b", "metric=inbound&priority=huge", "metric=inbound&account=1"):
        assert get(f"from=2026-03-28&to=2026-03-31&tz=Europe/Berlin&{bad}")[0] == 400, bad
    assert get("from=2026-01-01&to=2026-06-01&metric=inbound&group_by=day")[0] == 400  # > 92 days by day
    status, response = get("from=2026-03-28&to=2026-03-29&metric=cycles&group_by=day&channel=instagram"
                           f"&account={IG}")
    assert json.loads(response.body)["points"][0]["value"] == 2


def test_filters_by_role(history):
    from chalicelib.api import auth, people

    inbox, ids, at = history
    consume()
    sue, _ = people.create("sue@example.com", "sue", "supervisor", ["default"], None, "a long enough password")
    token = auth.issue_token(sue)
    day = "from=2026-03-28&to=2026-03-29&tz=Europe/Berlin"

    def get(query):
        response = inbox.client.http.get(f"/api/reports/summary?{day}&{query}", headers={"Authorization": "Bearer " + token})
        return response.status_code, json.loads(response.body)

    assert get("tag=billing")[0] == 403  # tags count across teams
    status, body = get("priority=urgent")  # within their team (default)
    assert status == 200 and body["first_response"]["count"] == 1
    status, body = get(f"channel=instagram&account={IG}")
    assert status == 200 and body["volume"]["unique_authors"] == 1


def test_unique_authors_estimate_is_mergeable_and_within_its_error():
    every = [distinct.register_value(f"author-{i}") for i in range(20_000)]
    halves = set(every[:12_000]) | set(every[8_000:])  # overlapping days merge by union
    assert abs(distinct.estimate(halves) - 20_000) <= 3 * distinct.STANDARD_ERROR * 20_000
    assert distinct.estimate({distinct.register_value(a) for a in ("a", "b", "c", "a")}) == 3
    assert distinct.estimate(()) == 0


def test_a_message_counts_under_the_conversation_its_first_entry_made_though_logged_a_moment_later():
    from chalicelib.reports import messages

    log = [{"seq": 1, "at": T + 7, "type": "created", "actor": "customer",
            "data": {"channel": "instagram", "team": "care", "account_id": IG, "thread_kind": "comment",
                     "message_id": "m-1", "awaiting_since": T, "due_at": T + 15 * MIN}},
           {"seq": 2, "at": T + 5 * MIN, "type": "tags_changed", "actor": "agent:ana",
            "data": {"added": ["later"], "removed": []}}]
    first = {"conversation_id": "c1", "message_id": "m-1", "direction": "in", "sent_at": T - 1000,
             "received_at": T, "author_id": "u1", "channel": "instagram", "account_id": IG}
    [counted] = messages.contributions_of([first], {"c1": log})
    assert counted.counters == {"inbound": 1, "inbound_comment": 1}
    assert {"team#care", f"acct#instagram#{IG}", f"t#care#acct#instagram#{IG}"} <= set(counted.scopes)
    assert "tag#later" not in counted.scopes  # tagged after it arrived
    [orphan] = messages.contributions_of([dict(first, conversation_id="c2")], {})  # no log yet: its own channel
    assert "ch#instagram" in orphan.scopes and "team#default" in orphan.scopes


def test_the_documented_timeseries_metrics_are_the_served_ones_and_filters_combine_as_documented():
    from chalicelib.api import openapi

    listed = openapi.REPORT_DEFINITIONS.split("Timeseries metrics: ", 1)[1].split(";", 1)[0].split(", ")
    assert listed == list(summary.SERIES)
    assert summary.scope_for(channel="instagram", account=IG) == f"acct#instagram#{IG}"
    assert summary.scope_for(team="care", channel="instagram", account=IG) == f"t#care#acct#instagram#{IG}"
    assert summary.scope_for(team="care", priority="high") == "t#care#prio#high"
    assert summary.scope_for(tag="late delivery") == "tag#late delivery"
    for bad in ({"tag": "x", "team": "care"}, {"priority": "high", "channel": "x"}, {"account": IG},
                {"agent": "a", "priority": "low"}, {"tag": "Upper"}):
        with pytest.raises(summary.BadQuery):
            summary.scope_for(**bad)


def test_a_relabel_midway_leaves_no_phantom_open_wait_or_unpaired_outcome_in_any_scope():
    from chalicelib.reports import cycles

    def entry(seq, at, kind, actor="customer", **data):
        return {"seq": seq, "at": at, "type": kind, "actor": actor, "data": data}

    log = [entry(1, T, "created", channel="instagram", team="care", thread_kind="comment", awaiting_since=T,
                 due_at=T + 15 * MIN, resolution_due_at=T + 60 * MIN),
           entry(2, T + MIN, "tags_changed", "agent:ana", added=["vip"], removed=[]),
           entry(3, T + 2 * MIN, "replied", "agent", response_ms=2 * MIN, within_target=True, agent="ana"),
           entry(4, T + 3 * MIN, "status_changed", "agent:ana", **{"from": "open", "to": "resolved"})]
    _, found = cycles.fold_all(log)
    for scope in ("all", "tag#vip", "team#care", "agent#ana"):
        counted = {}
        for c in found:
            if scope in c.scopes:
                for name, value in c.counters.items():
                    counted[name] = counted.get(name, 0) + value
        assert counted.get("waiting", 0) == 0 and counted.get(f"rd{(T + 60 * MIN) // (15 * MIN)}", 0) in (0, -1), scope
        if scope != "agent#ana":  # agents have no pending (they are credited with outcomes only)
            assert counted.get("sla_first_started", 0) == counted.get("sla_first_met", 0), scope
            assert counted.get("sla_resolution_started", 0) == counted.get("sla_resolution_met", 0), scope
    vip = [c for c in found if "tag#vip" in c.scopes]
    assert sum(c.counters.get("frt_n", 0) for c in vip) == 1  # the reply counts under the tag it had then


def test_one_entry_fits_one_transaction_whatever_the_tags():
    from chalicelib.reports import aggregates, cycles

    many = [f"t{i:02d}" for i in range(20)]
    log = [{"seq": 1, "at": T, "type": "created", "actor": "customer",
            "data": {"channel": "instagram", "team": "care", "account_id": IG, "awaiting_since": T,
                     "due_at": T + 15 * MIN, "resolution_due_at": T + 60 * MIN}},
           {"seq": 2, "at": T + MIN, "type": "tags_changed", "actor": "agent:a", "data": {"added": many[:10], "removed": []}},
           {"seq": 3, "at": T + 20 * MIN, "type": "awaiting_reply", "actor": "customer",
            "data": {"awaiting_since": T + 20 * MIN, "due_at": T + 35 * MIN}},
           {"seq": 4, "at": T + 21 * MIN, "type": "tags_changed", "actor": "agent:a",
            "data": {"added": many[10:], "removed": many[:10]}},
           {"seq": 5, "at": T + 50 * MIN, "type": "status_changed", "actor": "agent:a",
            "data": {"from": "open", "to": "resolved"}}]
    tracker = {}
    for entry in log:
        tracker, found = cycles.fold(tracker, entry)
        assert len(aggregates.writes_of(found)) <= aggregates.MAX_TRANSACTION_ITEMS, entry["type"]
