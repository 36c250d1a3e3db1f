"""The reply-deadline timers end to end: a turn's warning is a delayed message on the real SLA
timer queue (moto's SQS honours DelaySeconds), a recorded warning starts the real ASL
(infra/sla-flow.asl.json) in moto's Step Functions interpreter, deadlines are seconds, every
timer message goes to the real `sla_timers` handler, and the conversation records the warning
and the breach."""
from __future__ import annotations

import copy
import json
import os
import time

import pytest

from chalicelib.channels.base import ContactRef, MessageEvent
from tests.helpers import sla_timer_sends

PAGE = "1234567890"


@pytest.fixture
def flow(inbox, monkeypatch):
    """Step Functions really executing (moto's parser backend), in UTC, with a 3 s reply target."""
    from moto.core.config import default_user_config

    from chalicelib.local import stack
    from chalicelib.runtime import runtime

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "3")
    # Seconds-long deadlines stand for long waits here: the flow's own path. The short-wait path
    # (a breach message, no execution) unsets it (tests below "deadline within SQS's delay").
    monkeypatch.setenv("SLA_SQS_BREACH_MAX_SECONDS", "0")
    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    runtime.reset()
    stack.create_state_machines()
    inbox.add_account("messenger", PAGE)
    yield inbox
    _stop_all_executions()
    runtime.reset()


def _stop_all_executions():
    from chalicelib.runtime import runtime

    sfn = runtime.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"],
                                             statusFilter="RUNNING")["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"])


def _message(mid, user="u1", direction="in", at=None):
    return MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=mid, thread_key=user,
                        contact=ContactRef(user), direction=direction, sent_at_ms=at or int(time.time() * 1000),
                        text="hi", raw={"mid": mid})


def _pump_timers(inbox, seconds, expect=None, until=None):
    """Deliver the flow's SQS messages to the real handler for a while (or until `expect`
    kinds arrived); returns the kinds delivered."""
    from chalicelib import config
    from chalicelib.local.pump import pump_once

    outcome = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        handled = pump_once(lambda event, context: outcome.extend(
            json.loads(r["body"])["kind"] for r in event["Records"]) or inbox.app.sla_timers(event, context),
            queue=config.SLA_TIMER_QUEUE)
        if expect is not None and outcome[-len(expect):] == expect:
            break
        if until is not None and until():
            break
        if not handled:
            time.sleep(0.1)
    return outcome


def _execution(conversation_id, turn=1):
    from chalicelib.runtime import runtime
    from chalicelib.sla import flow

    sfn = runtime.client("stepfunctions")
    arn = flow.state_machine_arn().replace(":stateMachine:", ":execution:") + ":" + flow.execution_name(
        conversation_id, turn)
    return sfn.describe_execution(executionArn=arn), sfn.get_execution_history(executionArn=arn)["events"]


def _billed_transitions(history):
    return sum(1 for e in history if e["type"].endswith("StateEntered"))


def _types(conversation_id):
    from chalicelib.inbox import store

    return [e["type"] for e in store.events(conversation_id)]


def _executions():
    from chalicelib.runtime import runtime
    from chalicelib.sla import flow

    return runtime.client("stepfunctions").list_executions(stateMachineArn=flow.state_machine_arn())["executions"]


class _SfnRequests:
    """Every Step Functions request the app makes (botocore's public event hook on the shared
    client), by operation."""

    def __init__(self):
        from chalicelib.runtime import runtime

        self.calls = []
        runtime.client("stepfunctions").meta.events.register("before-call", self._seen)

    def _seen(self, model, **_kwargs):
        self.calls.append(model.name)


def _early_warning_policy(first_response_seconds=60, warn_at_percent=5):
    """A catch-all policy whose warning comes long before its deadline (here 3 s and 60 s): what
    happens after the warning is then checked far from the test's own timing."""
    from chalicelib.runtime import runtime
    from chalicelib.sla import policies

    policies.create_policy({"name": "early warning", "first_response_seconds": first_response_seconds,
                            "next_response_seconds": first_response_seconds,
                            "warn_at_percent": warn_at_percent}, runtime.now_ms())
    policies.forget()


def _event(cid, kind):
    from chalicelib.inbox import store

    [found] = [e for e in store.events(cid) if e["type"] == kind]
    return found


def test_an_unanswered_turn_is_warned_at_its_warning_point_then_breached_in_two_transitions(flow):
    from chalicelib.inbox import store

    _, (cid, _) = store.record_message(_message("m1"))
    state = store.get(cid)
    assert state["turn"] == 1
    assert _executions() == []  # a new turn is one delayed SQS message, no execution
    kinds = _pump_timers(flow, 30, expect=["warning", "breach"])  # bounded; ends when both came
    assert kinds == ["warning", "breach"]
    after = store.get(cid)
    assert after["sla_state"] == "breached"
    assert _event(cid, "sla_warning")["at"] >= state["warn_at"]  # never before the warning point
    assert after["breached_at"] >= after["reply_due_at"]  # nor before the deadline (delay: see the bench)
    assert _types(cid) == ["created", "sla_warning", "sla_breached", "priority_changed"]  # escalated
    described, history = _execution(cid)
    assert described["status"] == "SUCCEEDED"
    assert _billed_transitions(history) == 2  # WaitForDeadline, SendBreach
    assert described["startDate"].timestamp() * 1000 >= state["warn_at"] - 1000  # started by the warning
    from chalicelib.sla import flow as sla_flow

    assert json.loads(described["input"])["due_at"] == sla_flow.iso(state["reply_due_at"])
    row = flow.get(f"/api/conversations/{cid}")
    assert row["sla"]["state"] == "breached"


def test_a_turn_answered_before_its_warning_makes_no_step_functions_request(flow):
    from chalicelib.inbox import store

    requests = _SfnRequests()
    _, (cid, _) = store.record_message(_message("m1"))
    store.record_message(_message("r1", at=int(time.time() * 1000), direction="out"))  # our reply (e.g. the echo)
    assert store.get(cid).get("reply_due_at") is None and _types(cid) == ["created", "replied"]
    # The turn's warning timer still arrives (SQS cannot take it back) and is dropped as stale.
    assert _pump_timers(flow, 5.0, expect=["warning"]) == ["warning"]
    assert _pump_timers(flow, 1.0) == []  # nothing hops, nothing else comes
    assert _types(cid) == ["created", "replied"]
    assert requests.calls == [] and _executions() == []


def test_a_turn_answered_after_its_warning_stops_its_flow_after_one_transition(flow):
    from chalicelib.inbox import store

    _early_warning_policy()  # warning after 3 s, deadline after 60 s
    _, (cid, _) = store.record_message(_message("m1"))
    _pump_timers(flow, 20, until=lambda: store.get(cid).get("sla_state") == "warning")
    assert _types(cid) == ["created", "sla_warning"]
    # moto can lose a StopExecution sent before the execution reached its Wait (AWS does not):
    # wait (bounded) until the interpreter is in it.
    deadline = time.monotonic() + 20
    while (not any(e["type"] == "WaitStateEntered" for e in _execution(cid)[1])
           and time.monotonic() < deadline):
        time.sleep(0.05)
    time.sleep(0.2)
    requests = _SfnRequests()
    store.record_message(_message("r1", at=int(time.time() * 1000), direction="out"))
    assert requests.calls == ["StopExecution"]
    described, history = _execution(cid)
    deadline = time.monotonic() + 20  # moto marks the stop when its interpreter thread wakes (AWS at once)
    while described["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
        described, history = _execution(cid)
    assert described["status"] == "ABORTED"
    assert _billed_transitions(history) == 1  # WaitForDeadline
    assert _types(cid) == ["created", "sla_warning", "replied"]


def test_a_new_customer_message_after_our_reply_starts_the_next_turn(flow):
    from chalicelib.inbox import store

    _, (cid, _) = store.record_message(_message("m1"))
    now = int(time.time() * 1000)
    store.record_message(_message("r1", direction="out", at=now + 1))
    store.record_message(_message("m2", at=now + 2))
    assert store.get(cid)["turn"] == 2
    _pump_timers(flow, 30, until=lambda: "sla_breached" in _types(cid))
    log = store.events(cid)
    # Turn 2's warning and breach are recorded once each; turn 1's warning timer is dropped as
    # stale, and turn 1 never started a flow.
    assert [(e["type"], e["data"].get("turn")) for e in log if e["type"].startswith("sla_")] == [
        ("sla_warning", 2), ("sla_breached", 2)]
    assert _types(cid)[-3:] == ["sla_warning", "sla_breached", "priority_changed"]
    from chalicelib.sla import flow as sla_flow

    assert [e["name"] for e in _executions()] == [sla_flow.execution_name(cid, 2)]


def test_a_wait_longer_than_sqs_can_delay_hops_until_its_warning_point(flow, monkeypatch):
    """SQS delays a message 15 minutes at most: the consumer sends an early warning on with the
    rest of the wait. Here the longest delay is 1 s, so an 8 s warning point takes hops (how many
    depends on the pump's timing: a warning less than 2 s early is waited out, not sent on)."""
    from chalicelib.inbox import store
    from chalicelib.sla import flow as sla_flow

    monkeypatch.setattr(sla_flow, "MAX_DELAY_SECONDS", 1)
    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "10")  # warning at 8 s
    _, (cid, _) = store.record_message(_message("m1"))
    warn_at = store.get(cid)["warn_at"]
    kinds = _pump_timers(flow, 30, until=lambda: store.get(cid).get("sla_state") == "warning")
    assert kinds.count("warning") >= 2  # the first delivery (~1 s, 7 s early) was sent on at least once
    assert _event(cid, "sla_warning")["at"] >= warn_at
    assert _types(cid) == ["created", "sla_warning"]
    assert [e["name"] for e in _executions()] == [sla_flow.execution_name(cid, 1)]


def _delayed_timers():
    from chalicelib import aws, config

    return int(aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(config.SLA_TIMER_QUEUE),
        AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]["ApproximateNumberOfMessagesDelayed"])


def test_a_two_hour_wait_hops_every_15_minutes_and_stops_hopping_once_answered(flow, monkeypatch):
    """Its deadline is 24 minutes after its warning, beyond the sweeper's reach (15 minutes): the
    turn's start queues the warning, as before the sweeper armed warnings (an hour-long wait, 12
    minutes from warning to deadline, is armed by the sweeper instead: tests/test_sla_arming.py)."""
    from chalicelib.inbox import store
    from chalicelib.runtime import runtime
    from chalicelib.sla import flow as sla_flow, timers

    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "7200")  # warning after 96 minutes
    started = time.time()
    _, (cid, _) = store.record_message(_message("m1"))
    assert _delayed_timers() == 1  # the turn's warning, delayed 15 minutes
    warning = json.dumps({"kind": "warning", "conversation_id": cid, "turn": 1})
    for minutes in (15, 30, 45, 60, 75, 90):  # each delivery is sent on, never recorded
        runtime.use_clock(lambda: time.time() + minutes * 60)
        assert timers.handle_body(warning) == "warning hopped"
    assert _delayed_timers() == 7 and _types(cid) == ["created"] and _executions() == []
    runtime.use_clock(lambda: started + 96 * 60 + 1)
    assert timers.handle_body(warning) == "warning recorded"
    [execution] = _executions()
    assert execution["name"] == sla_flow.execution_name(cid, 1)
    runtime.use_clock(None)
    store.record_message(_message("r1", at=int(time.time() * 1000), direction="out"))
    assert timers.handle_body(warning) == "warning stale"  # answered: no hop
    assert _delayed_timers() == 7


def test_the_delay_of_a_timer_is_rounded_up_and_bounded_by_sqs():
    from chalicelib.sla import flow

    assert flow.delay_seconds(10_001, 0) == 11  # never early
    assert flow.delay_seconds(10_000, 0) == 10
    assert flow.delay_seconds(0, 5_000) == 0  # overdue: at once
    assert flow.delay_seconds(3_600_000, 0) == flow.MAX_DELAY_SECONDS == 900


def test_repeated_timers_are_harmless(flow, monkeypatch):
    """A warning delivered twice (SQS is at-least-once) or recorded by the sweeper first: one
    warning recorded, one flow; the repeat re-starts nothing (same execution name)."""
    from chalicelib.inbox import store
    from chalicelib.runtime import runtime
    from chalicelib.sla import flow as sla_flow, timers

    _early_warning_policy()
    _, (cid, _) = store.record_message(_message("m1"))
    warning = json.dumps({"kind": "warning", "conversation_id": cid, "turn": 1})
    runtime.use_clock(lambda: time.time() + 4)
    assert timers.sweep() == {"armed": 0, "warnings": 1, "breaches": 0}  # the sweeper got there first ...
    assert [e["name"] for e in _executions()] == [sla_flow.execution_name(cid, 1)]  # ... and started the flow
    assert timers.handle_body(warning) == "warning stale"
    assert timers.handle_body(warning) == "warning stale"
    runtime.use_clock(None)
    assert [e["name"] for e in _executions()] == [sla_flow.execution_name(cid, 1)]
    assert _types(cid) == ["created", "sla_warning"]
    assert len([e for e in _executions() if e["status"] == "RUNNING"]) == 1


def test_stale_timers_are_dropped(flow, monkeypatch):
    from chalicelib.inbox import store
    from chalicelib.sla import timers

    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "60")  # a timer now is a minute early
    _, (cid, _) = store.record_message(_message("m1"))
    assert timers.handle_body(json.dumps({"kind": "breach", "conversation_id": cid, "turn": 7})) == "breach stale"
    assert timers.handle_body(json.dumps({"kind": "breach", "conversation_id": cid, "turn": 1})) == "breach stale"  # early
    assert timers.handle_body("not json") == "unreadable"
    assert timers.handle_body(json.dumps({"kind": "explode", "conversation_id": cid, "turn": 1})) == "unreadable"
    assert timers.handle_body(json.dumps({"kind": "breach", "conversation_id": "c_gone", "turn": 1})) == "breach stale"
    assert _types(cid) == ["created"]


def test_the_sweeper_records_what_a_lost_timer_missed(inbox, monkeypatch):
    """No flow runs here (executions are canned): the sweeper alone finds the overdue wait."""
    from chalicelib.inbox import store
    from chalicelib.sla import timers

    inbox.add_account("messenger", PAGE)
    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "60")
    _, (cid, _) = store.record_message(_message("m1", at=int(time.time() * 1000) - 120_000))
    _, (fresh, _) = store.record_message(_message("m2", user="u2"))
    assert timers.sweep() == {"armed": 0, "warnings": 0, "breaches": 1}
    assert timers.sweep() == {"armed": 0, "warnings": 0, "breaches": 0}  # recorded once
    assert _types(cid) == ["created", "sla_breached", "priority_changed"]
    assert store.get(fresh).get("sla_state") is None
    from chalicelib.runtime import runtime

    runtime.use_clock(lambda: time.time() + 50)  # 50 s later: past the fresh one's warning point (48 s)
    assert timers.sweep() == {"armed": 0, "warnings": 1, "breaches": 0}
    runtime.use_clock(None)
    assert store.get(fresh)["sla_state"] == "warning"


def _asl_without_breach(original):
    definition = copy.deepcopy(original())
    del definition["States"]["SendBreach"]
    definition["States"]["WaitForDeadline"] = {"Type": "Wait", "TimestampPath": "$.due_at", "End": True}
    return definition


def test_the_flow_is_the_asl_file_removing_its_breach_state_loses_the_breach(flow, monkeypatch):
    """Proof that the end-to-end test runs the ASL file, not a Python copy of the flow."""
    from chalicelib.inbox import store
    from chalicelib.local import stack
    from chalicelib.runtime import runtime

    original = stack.asl
    monkeypatch.setattr(stack, "asl", lambda: _asl_without_breach(original))
    stack.create_state_machines()
    runtime.reset()
    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "2")
    _, (cid, _) = store.record_message(_message("m1"))
    assert _pump_timers(flow, 3.2) == ["warning"]
    assert "sla_breached" not in _types(cid)


def test_the_asl_file_is_well_formed():
    from chalicelib.local import stack

    definition = stack.asl()
    states = definition["States"]
    assert definition["StartAt"] in states
    for name, state in states.items():
        for key in ("Next", "Default"):
            if key in state:
                assert state[key] in states, (name, state[key])
        assert state.get("End") or "Next" in state, name
    assert [s for s in states if states[s]["Type"] == "Task"] == ["SendBreach"]  # the warning is SQS's
    assert states[definition["StartAt"]] == {"Type": "Wait", "TimestampPath": "$.due_at", "Next": "SendBreach"}
    assert os.path.basename(stack.ASL_PATH) == "sla-flow.asl.json"


def test_a_breach_notifies_the_assignee_and_admins_and_raises_priority(inbox):
    from chalicelib.api.auth import create_agent
    from chalicelib.inbox import store
    from chalicelib.sla import timers

    inbox.add_account("messenger", PAGE)
    inbox.login_admin()
    create_agent("sup@example.com", "correct horse battery staple", "Sue", role="supervisor", agent_id="a_sup")
    _, (cid, _) = store.record_message(_message("m1", at=int(time.time() * 1000) - 3_600_000))
    store.assign(cid, "a_agent1", "flow")
    assert timers.handle_body(json.dumps({"kind": "breach", "conversation_id": cid, "turn": 1})) == "breach recorded"
    state = store.get(cid)
    assert state["priority"] == "high" and state["sla_state"] == "breached"
    assert _types(cid)[-2:] == ["sla_breached", "priority_changed"]
    from chalicelib.sla.escalation import notifications_for

    assert [n["kind"] for n in notifications_for("a_agent1")] == ["sla_breached"]
    assert [n["conversation_id"] for n in notifications_for("a_sup")] == [cid]
    mine = inbox.get("/api/me/notifications")["items"]  # the admin is notified too
    assert mine[0]["kind"] == "sla_breached" and mine[0]["at"].endswith("Z")
    row = inbox.get(f"/api/conversations/{cid}")
    assert row["sla"]["state"] == "breached" and row["sla"]["target"] == "first_response"
    assert row["sla"]["breached_at"] is not None
    assert timers.handle_body(json.dumps({"kind": "breach", "conversation_id": cid, "turn": 1})) == "breach stale"
    assert len(notifications_for("a_agent1")) == 1  # recorded and escalated once


def test_with_sla_reassign_on_breach_the_conversation_moves_to_an_eligible_teammate(inbox, monkeypatch):
    from chalicelib.inbox import store
    from chalicelib.routing import directory
    from chalicelib.sla import timers

    inbox.add_account("messenger", PAGE)
    monkeypatch.setenv("SLA_REASSIGN_ON", "breach")
    _, (cid, _) = store.record_message(_message("m1", at=int(time.time() * 1000) - 3_600_000))
    store.assign(cid, "a_slow", "flow")
    for agent_id in ("a_slow", "a_ready"):
        directory.set_routing(agent_id, ["default"], 5)
    directory.set_presence("a_ready", "online")
    assert timers.handle_body(json.dumps({"kind": "breach", "conversation_id": cid, "turn": 1})) == "breach recorded"
    assert store.get(cid)["assignee"] == "a_ready"
    from chalicelib.sla.escalation import notifications_for

    assert [n["kind"] for n in notifications_for("a_ready")] == ["sla_breached"]  # the new holder is told


@pytest.mark.parametrize("body", [
    "", "null", "[]", '"warning"', "{}", "x" * 300_000,
    json.dumps({"kind": "warning", "conversation_id": "c_x", "turn": "1e999"}),
    json.dumps({"kind": "warning", "conversation_id": "c_x", "turn": "9" * 5000}),
    json.dumps({"kind": "warning", "conversation_id": "c_x", "turn": [1]}),
    json.dumps({"kind": "warning", "conversation_id": "c_x", "turn": None}),
    json.dumps({"kind": "warning", "conversation_id": 42, "turn": 1}),
    json.dumps({"kind": "warning", "conversation_id": None, "turn": 1}),
    json.dumps({"kind": ["warning"], "conversation_id": "c_x", "turn": 1}),
    '{"kind": "warning", "conversation_id": "c_\\ud800", "turn": 1}',
    json.dumps({"kind": "breach", "conversation_id": "c_\u0000\u202e", "turn": 1}),
    json.dumps({"kind": "breach", "conversation_id": "c_" + "x" * 5000, "turn": 1}),
    json.dumps({"kind": "warning", "conversation_id": "", "turn": -1}),
])
def test_a_hostile_timer_message_is_dropped_never_raised_and_records_nothing(flow, body):
    """The timer queue is ours, but a message that can never be handled must not come back
    forever: it is dropped as unreadable or stale, and no conversation changes."""
    from chalicelib.inbox import store
    from chalicelib.sla import timers

    _, (cid, _) = store.record_message(_message("m1"))
    before = store.get(cid)
    assert timers.handle_body(body) in ("unreadable", "warning stale", "breach stale")
    assert store.get(cid) == before
    assert _executions() == []


# --- a deadline within SQS's delay of its warning: a second delayed message, no execution -------


def test_a_deadline_within_sqs_delay_of_its_warning_is_breached_by_a_second_message_without_an_execution(
        flow, monkeypatch):
    from chalicelib.inbox import store

    monkeypatch.delenv("SLA_SQS_BREACH_MAX_SECONDS")  # the built-in: the flow only past 15 minutes
    requests = _SfnRequests()
    _, (cid, _) = store.record_message(_message("m1"))
    state = store.get(cid)
    assert _pump_timers(flow, 30, expect=["warning", "breach"]) == ["warning", "breach"]
    after = store.get(cid)
    assert after["sla_state"] == "breached" and after["breached_at"] >= after["reply_due_at"]
    assert _event(cid, "sla_warning")["at"] >= state["warn_at"]
    assert _types(cid) == ["created", "sla_warning", "sla_breached", "priority_changed"]
    assert requests.calls == [] and _executions() == []  # no transition, no Step Functions request


def test_a_short_wait_answered_after_its_warning_needs_no_stop_and_its_breach_arrives_stale(flow, monkeypatch):
    from chalicelib.inbox import store

    monkeypatch.delenv("SLA_SQS_BREACH_MAX_SECONDS")
    _early_warning_policy(first_response_seconds=8, warn_at_percent=25)  # warning after 2 s, deadline 8 s
    requests = _SfnRequests()
    _, (cid, _) = store.record_message(_message("m1"))
    _pump_timers(flow, 20, until=lambda: store.get(cid).get("sla_state") == "warning")
    store.record_message(_message("r1", at=int(time.time() * 1000), direction="out"))
    assert _pump_timers(flow, 20, expect=["breach"]) == ["breach"]  # dropped: the turn was answered
    assert _types(cid) == ["created", "sla_warning", "replied"]
    assert requests.calls == [] and _executions() == []


@pytest.mark.parametrize("recorded_late_ms", [0, 999, 1000, 60_000, 179_999])
def test_on_virtual_time_the_breach_message_is_never_early_and_at_most_a_second_late(inbox, monkeypatch,
                                                                                     recorded_late_ms):
    """The warning recorded `recorded_late_ms` after its point (by its own message or the sweeper):
    the breach message's delay lands it in [deadline, deadline + 1 s); the warning's own delay (the
    sweep of its window queues it, 2-3 minutes ahead) lands it in [warning point, warning point +
    1 s) (the consumer adds at most EARLY_WAIT_MS of sleep, well inside the 5 s a warning may be
    late)."""
    from chalicelib.runtime import runtime

    inbox.add_account("messenger", PAGE)
    start = 1_800_000_000_123
    clock = [start / 1000]
    runtime.use_clock(lambda: clock[0])
    try:
        with sla_timer_sends() as sent:
            _check_breach_delay(sent, cid_clock=clock, start=start, recorded_late_ms=recorded_late_ms)
    finally:
        runtime.use_clock(None)


def _check_breach_delay(sent, cid_clock, start, recorded_late_ms):
    from chalicelib.inbox import store
    from chalicelib.sla import timers

    clock = cid_clock
    _, (cid, _) = store.record_message(_message("m1", at=start))
    state = store.get(cid)
    warn_at, due_at = int(state["warn_at"]), int(state["reply_due_at"])
    assert due_at - warn_at <= 900_000  # the built-in policy: 15 min target, warning at 80 %
    assert sent == []  # 12 minutes ahead: the sweeper arms it
    from chalicelib.sla import flow

    swept_at = flow.arming_minute(warn_at) + 7_123  # the run of its window, 7 s late
    clock[0] = swept_at / 1000
    assert timers.sweep(scheduled=flow.arming_minute(warn_at))["armed"] == 1
    [(kind, delay)] = [(s["kind"], s["delay"]) for s in sent]
    assert kind == "warning" and warn_at <= swept_at + delay * 1000 < warn_at + 1000
    clock[0] = (warn_at + recorded_late_ms) / 1000
    assert timers.handle_body(json.dumps({"kind": "warning", "conversation_id": cid, "turn": state["turn"]})) \
        == "warning recorded"
    kind, delay = sent[-1]["kind"], sent[-1]["delay"]
    sent_at = warn_at + recorded_late_ms
    assert kind == "breach" and due_at <= sent_at + delay * 1000 < due_at + 1000
