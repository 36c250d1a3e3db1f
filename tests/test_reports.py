"""Reports (chalicelib.reports): the metric math as pure functions, the stream consumer fed
stream-shaped records of a real event log (redelivered, out of order, with gaps), and the
routes through chalice.test.Client (numbers, validation, who sees what)."""
from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from chalicelib.reports import aggregates, cycles, sketch, summary

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
MIN = 60_000


def entry(seq, at, kind, actor="customer", **data):
    return {"seq": seq, "at": at, "type": kind, "actor": actor, "data": data}


def totals(contributions, scope="all"):
    """All counters of one scope added up (what a report over every bucket reads)."""
    found = {}
    for contribution in contributions:
        if scope in contribution.scopes:
            for name, value in contribution.counters.items():
                found[name] = found.get(name, 0) + value
    return found


# --- the histogram -------------------------------------------------------------------------------


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1, max_value=40 * 86400), min_size=1, max_size=200),
       st.sampled_from([0.5, 0.9, 0.99]))
def test_quantiles_are_within_two_percent(values, q):
    histogram = {}
    for value in values:
        histogram[sketch.bucket_of(value)] = histogram.get(sketch.bucket_of(value), 0) + 1
    exact = nearest_rank(values, q)
    assert abs(sketch.quantile(histogram, q) - exact) <= sketch.RELATIVE_ERROR * exact + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**9), max_size=50),
       st.lists(st.integers(min_value=0, max_value=10**9), max_size=50))
def test_histograms_merge_by_adding(left, right):
    def counters(samples):
        return totals([cycles.Contribution(0, ("all",), cycles.duration("frt", ms)) for ms in samples])

    merged = counters(left)
    for name, value in counters(right).items():
        merged[name] = merged.get(name, 0) + value
    assert merged == counters(left + right)


def test_sub_second_waits_count_as_zero_and_empty_is_none():
    assert sketch.quantile({}, 0.5) is None
    assert sketch.quantile({sketch.bucket_of(0.2): 3}, 0.5) == 0


# --- the cycles ----------------------------------------------------------------------------------

CREATED = dict(channel="instagram", team="sales", thread_kind="comment", awaiting_since=T0, due_at=T0 + 15 * MIN)


def test_first_response_per_reopen_cycle_never_from_the_creation():
    log = [
        entry(1, T0, "created", **CREATED),
        entry(2, T0 + MIN, "note_added", "agent", message_id="n1"),  # a note does not stop the clock
        entry(3, T0 + 2 * MIN, "replied", "agent", response_ms=2 * MIN, within_target=True, agent="a1",
              business_ms=2 * MIN),
        entry(4, T0 + 5 * MIN, "status_changed", "agent:a1", **{"from": "open", "to": "resolved"}),
        entry(5, T0 + 60 * MIN, "reopened", awaiting_since=T0 + 60 * MIN, due_at=T0 + 75 * MIN, previous="resolved"),
        entry(6, T0 + 90 * MIN, "replied", "agent", response_ms=30 * MIN, within_target=False, agent="a2"),
        entry(7, T0 + 91 * MIN, "awaiting_reply", awaiting_since=T0 + 91 * MIN, due_at=T0 + 106 * MIN),
        entry(8, T0 + 95 * MIN, "replied", "agent", response_ms=4 * MIN, within_target=True, agent="a2"),
    ]
    tracker, found = cycles.fold_all(log)
    every = totals(found)
    assert every["frt_n"] == 2 and every["frt_sum"] == 32 * MIN  # 2 min and 30 min, not 90 min
    assert every["nrt_n"] == 1 and every["nrt_sum"] == 4 * MIN
    assert (every["sla_first_met"], every["sla_first_missed"], every["sla_next_met"]) == (1, 1, 1)
    assert every["res_n"] == 1 and every["res_sum"] == 5 * MIN
    assert (every["new_conversations"], every["cycles"], every["cycles_comment"], every["answered"]) == (1, 2, 2, 2)
    assert every["frtb_n"] == 1  # business time is what the log froze, only where it did
    assert totals(found, "agent#a2")["frt_n"] == 1 and totals(found, "agent#a1")["res_n"] == 1
    assert tracker["cycle"] == {"start": T0 + 60 * MIN, "answered": True}
    # the second cycle's numbers count where it started (cohort), not at the creation
    later = [c for c in found if c.at == T0 + 60 * MIN]
    assert totals(later)["frt_sum"] == 30 * MIN


def test_open_within_target_is_pending_and_past_target_is_missed():
    log = [entry(1, T0, "created", **CREATED)]
    _, found = cycles.fold_all(log)
    numbers = summary.numbers(totals(found))
    assert numbers["sla"]["first"] == {"met": 0, "missed": 0, "pending": 1, "attainment_pct": None}
    _, found = cycles.fold_all(log + [entry(2, T0 + 16 * MIN, "sla_breached", "flow", turn=1, late_ms=MIN),
                                      entry(3, T0 + 20 * MIN, "replied", "agent", response_ms=20 * MIN,
                                            within_target=False)])
    numbers = summary.numbers(totals(found))
    assert numbers["sla"]["first"] == {"met": 0, "missed": 1, "pending": 0, "attainment_pct": 0.0}
    assert numbers["volume"]["breaches"] == 1  # the late reply does not count the miss again


def test_closed_unanswered_before_the_deadline_is_neither_and_after_it_is_missed():
    early = [entry(1, T0, "created", **CREATED),
             entry(2, T0 + 5 * MIN, "status_changed", "agent:a1", **{"from": "open", "to": "resolved"})]
    late = [entry(1, T0, "created", **CREATED),
            entry(2, T0 + 20 * MIN, "status_changed", "agent:a1", **{"from": "open", "to": "resolved"})]
    assert summary.numbers(totals(cycles.fold_all(early)[1]))["sla"]["first"] == {
        "met": 0, "missed": 0, "pending": 0, "attainment_pct": None}
    assert summary.numbers(totals(cycles.fold_all(late)[1]))["sla"]["first"]["missed"] == 1
    # closed without a reply: moderation-only, counted apart, neither answered nor unanswered
    closed = summary.numbers(totals(cycles.fold_all(late)[1]))
    assert closed["unanswered"]["count"] == 0 and closed["response_rate"]["moderated"] == 1
    assert closed["response_rate"]["by_type"]["comment"] == {"pct": None, "answered": 0, "total": 0, "public": 0,
                                                             "private": 0, "moderated": 1}


def test_a_paused_wait_runs_on_as_the_same_wait():
    log = [entry(1, T0, "created", **CREATED),
           entry(2, T0 + MIN, "status_changed", "agent:a1", sla_paused_ms=14 * MIN, **{"from": "open", "to": "pending"}),
           entry(3, T0 + 60 * MIN, "reopened", awaiting_since=T0, due_at=T0 + 74 * MIN, previous="pending"),
           entry(4, T0 + 61 * MIN, "replied", "agent", response_ms=61 * MIN, within_target=True)]
    every = totals(cycles.fold_all(log)[1])
    assert (every["cycles"], every["sla_first_started"], every["sla_first_met"], every["waits"]) == (1, 1, 1, 1)


EVENTS = st.lists(st.sampled_from(["in", "reply", "breach", "pending", "resolve", "assign"]), max_size=40)


def scripted_log(steps):
    """A plausible log from a list of steps (what the inbox rules would log)."""
    log, now, waiting, status = [entry(1, T0, "created", **CREATED)], T0, True, "open"
    for step in steps:
        now += 7 * MIN
        seq = len(log) + 1
        if step == "in" and status != "open":
            log.append(entry(seq, now, "reopened", awaiting_since=now, due_at=now + 15 * MIN, previous=status))
            waiting, status = True, "open"
        elif step == "in" and not waiting:
            log.append(entry(seq, now, "awaiting_reply", awaiting_since=now, due_at=now + 15 * MIN))
            waiting = True
        elif step == "reply" and waiting and status == "open":
            log.append(entry(seq, now, "replied", "agent", response_ms=7 * MIN, within_target=True, agent="a1"))
            waiting = False
        elif step == "breach" and waiting and status == "open":
            log.append(entry(seq, now, "sla_breached", "flow", turn=1, late_ms=0))
        elif step in ("pending", "resolve") and status == "open":
            to = "pending" if step == "pending" else "resolved"
            log.append(entry(seq, now, "status_changed", "agent:a1", **{"from": "open", "to": to}))
            waiting, status = False, to
        elif step == "assign":
            log.append(entry(seq, now, "assigned", "system", **{"from": None, "to": "a1"}))
    return log


@settings(max_examples=80, deadline=None)
@given(EVENTS)
def test_every_wait_ends_exactly_once(steps):
    every = totals(cycles.fold_all(scripted_log(steps))[1])
    for target in ("first", "next"):
        outcomes = sum(every.get(f"sla_{target}_{o}", 0) for o in ("met", "missed", "closed"))
        assert outcomes <= every.get(f"sla_{target}_started", 0)
        pending = every.get(f"sla_{target}_started", 0) - outcomes
        assert pending in (0, 1)  # at most the wait still running
    assert every.get("frt_n", 0) == every.get("answered", 0) <= every.get("cycles", 0)
    assert every.get("resolved", 0) == every.get("res_n", 0) <= every.get("cycles", 0)


@settings(max_examples=40, deadline=None)
@given(EVENTS, st.integers(min_value=0, max_value=40))
def test_folding_in_two_runs_equals_one(steps, cut):
    log = scripted_log(steps)
    tracker, first = cycles.fold_all(log[:cut])
    _, second = cycles.fold_all(log[cut:], json.loads(json.dumps(tracker)))  # as stored
    assert totals(first + second) == totals(cycles.fold_all(log)[1])


# --- periods -------------------------------------------------------------------------------------


def test_periods_are_dst_correct_local_days_on_quarter_boundaries():
    period = summary.parse_period("2026-03-29", "2026-03-30", "Europe/Berlin")  # a 23-hour day
    assert period.to_ms - period.from_ms == 23 * 3600_000
    india = summary.parse_period("2026-01-01", "2026-01-02", "Asia/Kolkata")
    assert india.from_ms % aggregates.QUARTER_MS == 0
    spans = aggregates.spans(india.from_ms, india.to_ms)
    assert spans == [(aggregates.quarter_key(india.from_ms), aggregates.quarter_key(india.to_ms - 1))]  # no whole UTC day


@pytest.mark.parametrize("args", [("2026-01-02", "2026-01-01", "UTC"), ("2026-01-01", "2027-03-01", "UTC"),
                                  ("2026-01-01", "2026-01-02", "+05:00"), ("2026-01-01", "2026-01-02", "Mars/Base"),
                                  ("yesterday", "2026-01-02", "UTC"), (None, "2026-01-02", "UTC"),
                                  ("2026-01-01", "2026-01-02", "../../etc/passwd")])
def test_bad_periods_are_refused(args):
    with pytest.raises(summary.BadQuery):
        summary.parse_period(*args)


def test_spans_cover_the_period_with_whole_days_inside():
    start, end = T0 - T0 % aggregates.QUARTER_MS, T0 - T0 % aggregates.QUARTER_MS + 3 * aggregates.DAY_MS
    kinds = sorted(low[:2] for low, _ in aggregates.spans(start, end))
    assert kinds == ["d#", "q#", "q#"]


# --- the consumer, on a real event log --------------------------------------------------------------

PAGE = "1234567890"


def dm(mid, at, user="u1"):
    from chalicelib.channels.base import ContactRef, MessageEvent

    return MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=mid, thread_key=user,
                        contact=ContactRef(user), direction="in", sent_at_ms=at, text="hello", raw={"mid": mid})


def stream_records(conversation_id):
    """The conversation's log entries as the stream delivers them (NEW_IMAGE, DynamoDB JSON)."""
    from chalicelib.models import ConversationEvent

    return [{"eventID": f"{conversation_id}-{e.seq}", "eventName": "INSERT", "eventSource": "aws:dynamodb",
             "dynamodb": {"Keys": {"conversation_id": {"S": conversation_id}, "seq": {"N": str(int(e.seq))}},
                          "NewImage": e.serialize(), "StreamViewType": "NEW_IMAGE"}}
            for e in ConversationEvent.query(conversation_id)]


@pytest.fixture
def history(inbox):
    """Two cycles of one Messenger conversation through the real inbox: the customer writes,
    a note, Ana answers in 2 minutes, resolves; the customer writes again an hour later, the
    reply comes after 30 minutes (past the 15-minute default target)."""
    from chalicelib.inbox import rules, store
    from chalicelib.runtime import runtime

    inbox.add_account("messenger", PAGE)
    runtime.use_change_listeners([])
    clock = {"now": T0}
    runtime.use_clock(lambda: clock["now"] / 1000)

    def at(ms):
        clock["now"] = ms

    at(T0)
    _, (cid, _) = store.record_message(dm("m1", T0))
    store.record_message(dm("m2", T0 + 10_000))  # a follow-up: not logged
    at(T0 + MIN)
    store.apply_message(cid, rules.MessageFacts("n1", "note", T0 + MIN, "note", author="ana"))
    at(T0 + 2 * MIN)
    store.apply_message(cid, rules.MessageFacts("r1", "out", T0 + 2 * MIN, "hi", author="ana"))
    at(T0 + 5 * MIN)
    store.set_status(cid, "resolved", "agent:ana")
    at(T0 + 60 * MIN)
    store.record_message(dm("m3", T0 + 60 * MIN))
    at(T0 + 90 * MIN)
    store.apply_message(cid, rules.MessageFacts("r2", "out", T0 + 90 * MIN, "sorry", author="bob"))
    runtime.use_clock(None)
    return inbox, cid


def day_period():
    start = T0 - T0 % aggregates.DAY_MS
    return summary.Period(start, start + aggregates.DAY_MS, "UTC")


def test_consumer_counts_a_real_log_once_whatever_the_stream_does(history):
    from chalicelib.inbox import store
    from chalicelib.reports import consumer

    inbox, cid = history
    records = stream_records(cid)
    assert [r["dynamodb"]["NewImage"]["type"]["S"] for r in records] == [
        "created", "note_added", "replied", "status_changed", "reopened", "replied"]
    replied = json.loads(records[2]["dynamodb"]["NewImage"]["data"]["S"])
    assert replied["agent"] == "ana" and replied["business_ms"] == 2 * MIN  # facts the rules now log

    shuffled = records[3:] + records[:3]
    random.Random(7).shuffle(shuffled)
    consumer.handle_records(records[4:5])  # a gap first: the consumer reads the log to fill it
    consumer.handle_records(shuffled)  # redelivered, out of order
    consumer.handle_records(records)  # and all of it again
    assert consumer.handle_records(records + [{"eventName": "REMOVE", "dynamodb": {}}]) == {
        "records": 7, "applied": 0, "dropped": 1}

    found = summary.summary(day_period(), "all")
    assert found["first_response"]["count"] == 2
    assert abs(found["first_response"]["p90_s"] - 1800) <= 36 and abs(found["first_response"]["median_s"] - 120) <= 3
    assert found["first_response"]["within_target_pct"] == 50.0
    assert found["sla"]["first"] == {"met": 1, "missed": 1, "pending": 0, "attainment_pct": 50.0}
    assert found["resolution"]["count"] == 1 and abs(found["resolution"]["median_s"] - 300) <= 6
    assert found["volume"]["new_conversations"] == 1 and found["volume"]["cycles"] == 2
    assert found["response_rate"]["by_type"]["dm"] == {"pct": 100.0, "answered": 2, "total": 2, "public": 2,
                                                       "private": 0, "moderated": 0}
    assert summary.summary(day_period(), "agent#bob")["first_response"]["count"] == 1

    # a rebuild from the log (the same fold, from scratch) gives exactly the incremental numbers
    _, rebuilt = cycles.fold_all(store.events(cid, limit=100))
    expected = {}
    for (scope, key), counters in aggregates.writes_of(rebuilt).items():
        if scope == "all" and key.startswith("d#"):
            for name, value in counters.items():
                expected[name] = expected.get(name, 0) + value
    assert aggregates.merged("all", day_period().from_ms, day_period().to_ms) == expected


def test_consumer_handler_takes_chalice_stream_events(history):
    import app

    inbox, cid = history
    records = stream_records(cid)
    for record in records:
        record["dynamodb"].update({"ApproximateCreationDateTime": T0 / 1000, "SequenceNumber": "1", "SizeBytes": 10})
        record.update({"awsRegion": "us-east-1", "eventSourceARN": app.config.stream_arn("conversation-events")})
    result = app.reports_consumer({"Records": records}, None)  # as Lambda calls it
    assert result == {"records": 6, "applied": 6, "dropped": 0}


# --- the routes ------------------------------------------------------------------------------------


def _token(email, role, teams):
    from chalicelib.api import auth, people

    agent, _ = people.create(email, email.split("@")[0], role, teams, None, "a long enough password")
    return auth.issue_token(agent), agent.agent_id


def _get(inbox, path, token):
    response = inbox.client.http.get(path, headers={"Authorization": "Bearer " + token})
    return response.status_code, json.loads(response.body or b"{}")


def test_summary_route_numbers_validation_and_access(history):
    from chalicelib.reports import consumer

    inbox, cid = history
    consumer.handle_records(stream_records(cid))
    admin = inbox.login_admin()
    day = "from=2023-11-14&to=2023-11-15&tz=UTC"
    status, body = _get(inbox, f"/api/reports/summary?{day}&compare=previous", admin)
    assert status == 200 and body["first_response"]["count"] == 2 and body["period"]["counts"] == "cohort"
    assert body["previous"]["first_response"]["count"] == 0
    status, body = _get(inbox, "/api/reports/summary?from=2023-11-14&to=2023-11-15&tz=Europe/Berlin", admin)
    assert status == 200 and body["period"]["from"] == "2023-11-14T00:00:00+01:00"
    assert _get(inbox, f"/api/reports/summary?{day}&channel=messenger", admin)[1]["volume"]["cycles"] == 2
    for bad in ("from=2023-11-15&to=2023-11-14", "from=2023-11-14&to=2023-11-15&tz=%2B05:00",
                f"{day}&compare=next", f"{day}&team=a%23b", "to=2023-11-15"):
        assert _get(inbox, f"/api/reports/summary?{bad}", admin)[0] == 400, bad

    supervisor, _ = _token("sue@example.com", "supervisor", ["default"])
    other, _ = _token("otto@example.com", "supervisor", ["billing"])
    agent, agent_id = _token("ann@example.com", "agent", ["default"])
    assert _get(inbox, f"/api/reports/summary?{day}", supervisor)[1]["volume"]["cycles"] == 2  # their team
    assert _get(inbox, f"/api/reports/summary?{day}", other)[1]["volume"]["cycles"] == 0
    assert _get(inbox, f"/api/reports/summary?{day}&team=default", other)[0] == 403
    assert _get(inbox, f"/api/reports/summary?{day}&team=default", agent)[0] == 403
    status, own = _get(inbox, f"/api/reports/summary?{day}", agent)
    assert status == 200 and own["sla"]["first"]["pending"] is None  # an agent's own scope
    assert inbox.client.http.get(f"/api/reports/summary?{day}").status_code == 401

    status, body = _get(inbox, "/api/reports/intervals?from=2023-11-14T22:00Z&to=2023-11-15T00:00Z&channel=messenger",
                        admin)
    assert status == 200 and len(body["items"]) == 8
    assert [i["waits"] for i in body["items"]][:2] == [1, 0] and sum(i["cycles"] for i in body["items"]) == 2
    csv_answer = inbox.client.http.get("/api/reports/intervals?from=2023-11-14T22:00Z&to=2023-11-15T00:00Z"
                                       "&channel=messenger&format=csv", headers={"Authorization": "Bearer " + admin})
    assert csv_answer.status_code == 200 and csv_answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = csv_answer.body.decode().split("\r\n")
    assert rows[0].split(",")[0] == "start" and "waits" in rows[0].split(",") and len([r for r in rows if r]) == 9
    assert rows[1].startswith("2023-11-14T22:00:00") and all(r[:1].isdigit() for r in rows[1:] if r)
    assert _get(inbox, "/api/reports/intervals?from=2023-11-14T22:00Z&to=2023-11-15T00:00Z&format=xml", admin)[0] == 400
    status, body = _get(inbox, f"/api/reports/heatmap?{day}&metric=waits", admin)
    assert status == 200 and body["cells"][1][22] == 1 and sum(map(sum, body["cells"])) == 2  # Tuesday 22:xx UTC
    assert _get(inbox, f"/api/reports/heatmap?{day}&metric=nope", admin)[0] == 400
    # the heatmap and the summary as CSV: the same numbers as their JSON
    heat = inbox.client.http.get(f"/api/reports/heatmap?{day}&metric=waits&format=csv",
                                 headers={"Authorization": "Bearer " + admin}).body.decode().split("\r\n")
    assert heat[0] == "weekday," + ",".join(f"{h:02d}" for h in range(24))
    assert [[int(v) for v in r.split(",")[1:]] for r in heat[1:8]] == body["cells"] and heat[2].startswith("Tue,")
    found = _get(inbox, f"/api/reports/summary?{day}&compare=previous", admin)[1]
    listed = inbox.client.http.get(f"/api/reports/summary?{day}&compare=previous&format=csv",
                                   headers={"Authorization": "Bearer " + admin})
    assert listed.status_code == 200 and listed.headers["Content-Type"] == "text/csv; charset=utf-8"
    values = dict(row.split(",", 1) for row in listed.body.decode().split("\r\n")[1:] if row)
    assert values["first_response.median_s"] == str(found["first_response"]["median_s"])
    assert values["volume.new_conversations"] == str(found["volume"]["new_conversations"])
    assert values["response_rate.by_type.dm.total"] == str(found["response_rate"]["by_type"]["dm"]["total"])
    assert values["previous.volume.inbound"] == str(found["previous"]["volume"]["inbound"])
    assert values["period.tz"] == found["period"]["tz"]
    assert _get(inbox, f"/api/reports/summary?{day}&format=xml", admin)[0] == 400
