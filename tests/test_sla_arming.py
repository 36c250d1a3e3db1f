"""Warnings armed shortly before they are due (chalicelib.sla.flow, chalicelib.sla.timers): a turn
whose warning is far ahead queues nothing at its start; the per-minute sweeper's run whose window
holds the warning queues it, with the delay a turn's start would have used; a turn answered
before that run costs no timer message at all. Turns the sweeper cannot see in time (warning too
soon) or at all (deadline too far after the warning) are armed at their start, as before.

Everything runs on the runtime's clock (runtime.use_clock): turns through the store, sweeps
through the app's `sla_sweeper` handler with EventBridge's scheduled event, timer messages
through the app's `sla_timers` handler; SQS sends are seen on the way out (tests/helpers.py)."""
from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chalicelib.channels.base import ContactRef, MessageEvent
from tests.helpers import sla_timer_sends

PAGE = "1234567890"
MINUTE = 60_000
BASE = 1_900_000_020_000 // MINUTE * MINUTE  # a whole minute, far from the wall clock
_users = itertools.count()


@pytest.fixture
def arming(inbox, monkeypatch):
    """The inbox on a clock the test sets (`arming.at(ms)`), with the SLA timer sends recorded."""
    from chalicelib.runtime import runtime

    monkeypatch.delenv("DEFAULT_REPLY_SLA_SECONDS", raising=False)  # the built-in policy: 15 min, 80 %
    monkeypatch.delenv("SLA_SQS_BREACH_MAX_SECONDS", raising=False)
    inbox.add_account("messenger", PAGE)
    clock = [BASE]
    runtime.use_clock(lambda: clock[0] / 1000)

    def at(ms):
        clock[0] = int(ms)

    inbox.at = at
    with sla_timer_sends() as sent:
        inbox.sent = sent
        yield inbox
    runtime.use_clock(None)


def _customer(at_ms, user=None, team=None):
    """A customer's message with platform time `at_ms` (written at the runtime clock's now), as
    the processor records it (with the account's team)."""
    from chalicelib.inbox import store

    user = user or f"u{next(_users)}"
    _, (cid, _) = store.record_message(MessageEvent(
        channel="messenger", account_id=PAGE, platform_message_id=f"m_{user}_{at_ms}", thread_key=user,
        contact=ContactRef(user), direction="in", sent_at_ms=int(at_ms), text="hi", raw={}), team)
    return cid, user


def _reply(user, at_ms):
    from chalicelib.inbox import store

    store.record_message(MessageEvent(
        channel="messenger", account_id=PAGE, platform_message_id=f"r_{user}_{at_ms}", thread_key=user,
        contact=ContactRef(user), direction="out", sent_at_ms=int(at_ms), text="on it", raw={}))


def _sweep(inbox, scheduled_ms, run_at_ms):
    """The app's sweeper, fired by EventBridge for `scheduled_ms`, running at `run_at_ms`."""
    from chalicelib.local.runners import scheduled_event

    inbox.at(run_at_ms)
    when = dt.datetime.fromtimestamp(scheduled_ms / 1000, tz=dt.timezone.utc)
    return inbox.app.sla_sweeper(scheduled_event("sla_sweeper", when), None)


def _deliver(inbox, send, receive_count=1):
    """One timer message handed to the app's consumer when it is due (SQS's delay)."""
    inbox.at(send["at"] + send["delay"] * 1000)
    body = json.dumps({"kind": send["kind"], "conversation_id": send["conversation_id"], "turn": send["turn"]})
    record = {"messageId": f"m{len(inbox.sent)}-{receive_count}", "receiptHandle": "", "body": body,
              "attributes": {"ApproximateReceiveCount": str(receive_count)}}
    return inbox.app.sla_timers({"Records": [record]}, None)


def _of(inbox, cid, kind="warning"):
    return [s for s in inbox.sent if s["conversation_id"] == cid and s["kind"] == kind]


def _state(cid):
    from chalicelib.inbox import store

    return store.get(cid)


# --- the built-in policy: armed by the sweeper --------------------------------------------------


def test_a_turn_under_the_built_in_policy_queues_nothing_at_its_start_and_its_window_s_sweep_queues_one(arming):
    from chalicelib.sla import flow

    start = BASE + 17_250
    arming.at(start)
    cid, _ = _customer(start)
    warn_at = int(_state(cid)["warn_at"])
    assert warn_at == start + 720_000 and arming.sent == []  # 12 minutes ahead: nothing at the start
    window_minute = flow.arming_minute(warn_at)
    for minute in range(start // MINUTE * MINUTE, window_minute, MINUTE):  # the runs before its window
        assert _sweep(arming, minute, minute + 4_000)["armed"] == 0
    assert arming.sent == []
    run_at = window_minute + 9_400  # its window's run, 9.4 s late
    assert _sweep(arming, window_minute, run_at)["armed"] == 1
    [send] = arming.sent
    assert (send["kind"], send["conversation_id"], send["turn"], send["operation"]) == (
        "warning", cid, 1, "SendMessageBatch")
    assert send["delay"] == -(-(warn_at - run_at) // 1000)  # rounded up: due in [warn_at, warn_at + 1 s)
    assert 60 < send["delay"] <= 180
    assert _sweep(arming, window_minute + MINUTE, window_minute + MINUTE + 1_000)["armed"] == 0  # once
    assert _deliver(arming, send) == {"warning recorded": 1}
    assert _state(cid)["sla_state"] == "warning"
    [breach] = _of(arming, cid, "breach")  # the deadline 3 minutes on: one more delayed message
    assert breach["at"] + breach["delay"] * 1000 >= int(_state(cid)["reply_due_at"])


def test_a_turn_answered_before_its_window_s_sweep_never_produces_a_timer_message(arming):
    from chalicelib.sla import flow

    start = BASE + 41_000
    arming.at(start)
    cid, user = _customer(start)
    warn_at = int(_state(cid)["warn_at"])
    window_minute = flow.arming_minute(warn_at)
    for minute in range(start // MINUTE * MINUTE, window_minute, MINUTE):
        _sweep(arming, minute, minute + 2_000)
    arming.at(window_minute + 500)
    _reply(user, window_minute + 500)  # answered just before its window's run
    for minute in range(window_minute, window_minute + 20 * MINUTE, MINUTE):  # past warning and deadline
        assert _sweep(arming, minute, minute + 1_000) == {"armed": 0, "warnings": 0, "breaches": 0}
    assert arming.sent == []
    assert _state(cid).get("reply_due_at") is None


def test_a_rerun_of_a_scheduled_minute_arms_its_window_again_and_the_duplicate_queues_no_second_breach(arming):
    """EventBridge may invoke a run twice (a retry): the same scheduled time, the same window, a
    second warning message. It is dropped as stale on its first delivery and queues no second
    breach message; a REdelivery of a warned turn's warning does (its consumer may have died after
    recording it, before queueing the breach)."""
    from chalicelib.sla import flow

    start = BASE + 3_000
    arming.at(start)
    cid, _ = _customer(start)
    minute = flow.arming_minute(int(_state(cid)["warn_at"]))
    assert _sweep(arming, minute, minute + 1_000)["armed"] == 1
    assert _sweep(arming, minute, minute + 55_000)["armed"] == 1  # the rerun, later in the minute
    first, second = _of(arming, cid)
    assert _deliver(arming, first) == {"warning recorded": 1}
    assert _deliver(arming, second) == {"warning stale": 1}
    assert len(_of(arming, cid, "breach")) == 1
    assert _deliver(arming, second, receive_count=2) == {"warning stale": 1}  # a redelivery
    assert len(_of(arming, cid, "breach")) == 2  # re-queued (the breach is recorded once either way)


def test_a_sweep_invoked_without_a_scheduled_time_arms_the_window_of_its_own_minute(arming):
    from chalicelib.sla import flow

    arming.at(BASE)
    cid, _ = _customer(BASE)
    minute = flow.arming_minute(int(_state(cid)["warn_at"]))
    arming.at(minute + 30_000)
    assert arming.app.sla_sweeper({"version": "0", "id": "manual", "detail-type": "Scheduled Event",
                                   "source": "aws.events", "account": "123456789012", "time": "not a time",
                                   "region": "us-east-1", "resources": [], "detail": {}}, None)["armed"] == 1
    [send] = arming.sent
    assert send["delay"] == -(-(int(_state(cid)["warn_at"]) - (minute + 30_000)) // 1000)


@pytest.mark.parametrize("time_field, armed", [
    ("0001-01-01T00:00:00Z", 0), ("9999-12-31T23:59:59Z", 0),  # a window of another age: nothing due there
    (12345, 1), (None, 1), ("2026-12-05T10:00:00+05:00", 1), ("\ud800", 1), ("2026-12-05T10:00:00Z\x00", 1),
    (["2026-12-05T10:00:00Z"], 1), ("9" * 10_000, 1),  # unreadable: the run's own minute
])
def test_a_sweep_with_an_extreme_or_malformed_scheduled_time_never_fails(arming, time_field, armed):
    from chalicelib.sla import flow

    arming.at(BASE)
    cid, _ = _customer(BASE)
    minute = flow.arming_minute(int(_state(cid)["warn_at"]))
    arming.at(minute + 30_000)
    outcome = arming.app.sla_sweeper({"version": "0", "id": "odd", "detail-type": "Scheduled Event",
                                      "source": "aws.events", "account": "123456789012", "time": time_field,
                                      "region": "us-east-1", "resources": [], "detail": {}}, None)
    assert outcome["armed"] == armed and len(arming.sent) == armed


def test_a_warning_sqs_refuses_in_a_batch_is_logged_and_recorded_by_the_safety_net(arming, caplog):
    """SendMessageBatch can refuse single entries: those are logged, the others are queued, and
    the refused turn's warning is recorded by the sweeper's safety net once its point has passed."""
    from chalicelib.runtime import runtime
    from chalicelib.sla import flow

    arming.at(BASE)
    first, _ = _customer(BASE)
    second, _ = _customer(BASE)
    minute = flow.arming_minute(int(_state(first)["warn_at"]))

    def refuse_second(params, **_kwargs):
        for entry in params["Entries"]:
            if json.loads(entry["MessageBody"])["conversation_id"] == second:
                entry["DelaySeconds"] = 901  # beyond SQS's limit: this entry alone fails

    events = runtime.client("sqs").meta.events
    events.register_first("provide-client-params.sqs.SendMessageBatch", refuse_second)
    try:
        assert _sweep(arming, minute, minute + 1_000)["armed"] == 1
    finally:
        events.unregister("provide-client-params.sqs.SendMessageBatch", refuse_second)
    [refused] = [r for r in caplog.records if r.getMessage() == "sla timer: warning not queued"]
    assert refused.conversation_id == second and refused.turn == 1
    [queued] = _of(arming, first)
    assert _deliver(arming, queued) == {"warning recorded": 1} and queued["conversation_id"] == first
    warn_at = int(_state(second)["warn_at"])
    after = (warn_at // MINUTE + 1) * MINUTE
    assert _sweep(arming, after, after + 2_000)["warnings"] == 1  # the safety net
    assert _state(second)["sla_state"] == "warning"


# --- turns the sweeper cannot arm in time, or at all: queued at their start, as before ---------


def test_a_short_policy_turn_is_armed_at_its_start(arming, monkeypatch):
    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "60")  # warning after 48 s
    arming.at(BASE + 5_000)
    cid, _ = _customer(BASE + 5_000)
    [send] = arming.sent
    assert (send["operation"], send["delay"], send["at"]) == ("SendMessage", 48, BASE + 5_000)
    assert _sweep(arming, BASE + MINUTE, BASE + MINUTE + 1_000)["armed"] == 0  # its window's run is past


def test_a_late_delivered_message_whose_warning_is_close_is_armed_at_its_start(arming):
    arming.at(BASE + 10_000)
    cid, _ = _customer(BASE + 10_000 - 600_000)  # ten minutes old: its warning in 2 minutes
    [send] = arming.sent
    assert send["operation"] == "SendMessage" and send["delay"] == 120


def test_a_wait_longer_than_the_sweeper_reaches_is_armed_at_its_start_and_never_by_the_sweeper(arming, monkeypatch):
    from chalicelib.sla import flow

    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "7200")  # warning at 96 min, deadline 24 min later
    arming.at(BASE)
    cid, _ = _customer(BASE)
    [send] = arming.sent
    assert send["delay"] == flow.MAX_DELAY_SECONDS  # the first hop, as before
    minute = flow.arming_minute(int(_state(cid)["warn_at"]))
    assert _sweep(arming, minute, minute + 1_000)["armed"] == 0


def test_a_business_hours_turn_whose_deadline_is_after_the_weekend_is_armed_at_its_start(arming, monkeypatch):
    """Friday 16:46 under 09:00-17:00 on weekdays: the warning at 16:58, the deadline on Monday
    (far beyond the sweeper's reach): the turn's start queues the warning, as before."""
    from chalicelib.sla import flow, policies

    friday = int(dt.datetime(2030, 3, 22, 16, 46, tzinfo=dt.timezone.utc).timestamp() * 1000)
    arming.at(friday)
    week = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    policies.create_policy({"name": "office hours", "first_response_seconds": 900, "next_response_seconds": 900,
                            "warn_at_percent": 80, "business_hours": {"timezone": "UTC", "week": week}}, friday)
    policies.forget()
    try:
        cid, _ = _customer(friday)
        state = _state(cid)
        assert int(state["warn_at"]) == friday + 720_000 and int(state["reply_due_at"]) - int(state["warn_at"]) > 60 * MINUTE
        [send] = arming.sent
        assert send["operation"] == "SendMessage" and send["delay"] == 720
        minute = flow.arming_minute(int(state["warn_at"]))
        assert _sweep(arming, minute, minute + 1_000)["armed"] == 0
    finally:
        policies.forget()


def test_a_turn_of_a_team_its_account_has_left_is_armed_at_its_start(arming):
    """The sweeper queries the default team and the current accounts' teams; a conversation keeps
    the team its account had when it was created, so after the account moved on, its turns are
    armed at their start (before, the sweeper would never see them)."""
    from chalicelib.accounts import update_account

    update_account("messenger", PAGE, team="sales")
    arming.at(BASE)
    cid, user = _customer(BASE, team="sales")
    assert _state(cid)["team"] == "sales" and arming.sent == []  # the sweeper queries "sales"
    _reply(user, BASE + 1_000)
    update_account("messenger", PAGE, team="support")
    arming.at(BASE + 2_000)
    _customer(BASE + 2_000, user, team="support")  # the next turn: the conversation stays in "sales"
    [send] = arming.sent
    assert (send["conversation_id"], send["turn"], send["delay"]) == (cid, 2, 720)


# --- the horizon argument, as a property -----------------------------------------------------------

_examples = itertools.count()


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(warn_in_window=st.integers(1, MINUTE),  # where in its sweep's window the warning falls
       written=st.one_of(st.integers(-MINUTE, MINUTE), st.integers(-15 * MINUTE, 2 * MINUTE)),  # vs. that sweep's minute
       target_seconds=st.sampled_from([60, 300, 900, 1125]),  # the warning 12 s .. 225 s before the deadline
       lateness=st.lists(st.integers(0, MINUTE - 1), min_size=20, max_size=20),
       answered_share=st.one_of(st.none(), st.floats(0.0, 0.999)))
def test_every_turn_open_at_its_warning_is_armed_and_one_answered_before_its_window_s_sweep_costs_nothing(
        arming, monkeypatch, warn_in_window, written, target_seconds, lateness, answered_share):
    """Random turn starts, warning leads (targets of 1-19 minutes; a message may arrive up to a
    whole lead late) and sweep runs up to 59.999 s late: a turn still open at its warning has at
    least one warning message due in [warn_at, warn_at + 1 s); a turn its start did not arm and
    that was answered before its window's sweep ran has none; a turn its start armed had its
    warning within the horizon."""
    from chalicelib.sla import flow

    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", str(target_seconds))
    window_minute = BASE + next(_examples) * 120 * MINUTE + 30 * MINUTE  # each example on its own stretch of time
    warn_at = window_minute + flow.ARM_LEAD_MS + warn_in_window
    full_lead = target_seconds * 800  # 80 %
    written = warn_at - min(max(warn_at - (window_minute + written), 0), full_lead)
    arming.at(written)
    sent_before = len(arming.sent)
    cid, user = _customer(warn_at - full_lead)  # the customer wrote (full_lead - lead) before `written`
    assert int(_state(cid)["warn_at"]) == warn_at and flow.arming_minute(warn_at) == window_minute
    at_start = [s for s in arming.sent[sent_before:] if s["conversation_id"] == cid]
    window_run = window_minute + lateness[-1]
    answered = None if answered_share is None else written + int((warn_at - written) * answered_share)
    runs = [(m, m + lateness[i % len(lateness)]) for i, m in enumerate(
        range(written // MINUTE * MINUTE - 2 * MINUTE, window_minute, MINUTE))] + [(window_minute, window_run)]
    events = sorted([(run_at, "sweep", minute) for minute, run_at in runs if run_at >= written]
                    + ([(answered, "answer", None)] if answered is not None else []),
                    key=lambda e: (e[0], e[1] != "answer"))
    for when, what, minute in events:
        if what == "answer":
            arming.at(when)
            _reply(user, when)
        else:
            _sweep(arming, minute, when)
    mine = [s for s in arming.sent if s["conversation_id"] == cid]
    assert all(s["kind"] == "warning" and s["turn"] == 1 for s in mine)
    assert all(warn_at <= s["at"] + s["delay"] * 1000 < warn_at + 1000 for s in mine), (mine, warn_at)  # on time
    if at_start:
        assert warn_at - written <= flow.ARM_LEAD_MS + flow.SWEEP_PERIOD_MS + flow.GSI_MARGIN_MS  # the horizon
    if answered is None:
        assert 1 <= len(mine) <= 2, (mine, warn_at, written)  # armed, at least once
    elif not at_start and answered < window_run:
        assert mine == []
    assert len(mine) <= 2
    arming.at(warn_at - 1)
    if _state(cid).get("reply_due_at") is not None:
        _reply(user, warn_at - 1)  # leaves the deadline index: later examples' sweeps never see it


@pytest.mark.parametrize("before_its_sweep_ms, at_start", [(30_000, False), (29_999, True), (0, True)])
def test_a_turn_is_left_to_its_window_s_sweep_only_when_written_the_margin_before_it(arming, before_its_sweep_ms,
                                                                                       at_start):
    """The margin (GSI_MARGIN_MS) stands for the deadline index's propagation lag, which the
    property above cannot show (moto has none): a turn written closer to its sweep's scheduled
    time than that queues its warning itself."""
    from chalicelib.sla import flow

    assert flow.GSI_MARGIN_MS == 30_000
    minute = BASE + 40 * MINUTE
    written = minute - before_its_sweep_ms
    arming.at(written)
    cid, _ = _customer(minute + flow.ARM_LEAD_MS + 1 - 720_000)  # its warning: the first ms of the window
    assert flow.arming_minute(int(_state(cid)["warn_at"])) == minute
    assert bool(_of(arming, cid)) is at_start
