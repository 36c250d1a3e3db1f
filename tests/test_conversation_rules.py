"""The conversation rules as pure functions: no AWS, no moto (chalicelib.inbox.rules)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.inbox import rules
from chalicelib.inbox.rules import MessageFacts, SlaPolicy

POLICY = SlaPolicy(first_response_ms=600_000, next_response_ms=300_000, warn_ratio=0.8)
T0 = 1_700_000_000_000
IDS = {"conversation_id": "c_1", "channel": "messenger", "account_id": "p", "thread_key": "u",
       "thread_kind": "dm", "contact_id": "k_1", "contact_platform_id": "u"}


def inbound(mid, at, name=None):
    return MessageFacts(mid, "in", at, f"text {mid}", contact_name=name)


def outbound(mid, at):
    return MessageFacts(mid, "out", at, f"reply {mid}")


def started(at=T0, team="support"):
    return rules.new_conversation(IDS, inbound("m1", at, "Ana"), team, POLICY, now=at + 5)


def step(state, change):
    return rules.apply(state, change)


def test_a_new_conversation_waits_for_the_first_reply_with_a_warning_point():
    state = started()
    assert state["status"] == "open" and state["version"] == 1
    assert state["awaiting_reply_since"] == T0
    assert state["reply_due_at"] == T0 + 600_000 and state["warn_at"] == T0 + 480_000
    assert state["queue"] == "support#open" and state["owner"] == "u#support#open"
    assert state["due_sort"] == T0 + 600_000
    assert state["unread_count"] == 1 and state["message_count"] == 1
    entry = rules.created_entry(state, inbound("m1", T0))
    assert entry.type == "created" and entry.data["due_at"] == T0 + 600_000


def test_a_follow_up_while_waiting_changes_no_state_and_is_not_logged():
    state = started()
    change = rules.message_arrived(state, inbound("m2", T0 + 1000), POLICY, T0 + 2000)
    assert change.log is None
    after = step(state, change)
    assert after["reply_due_at"] == state["reply_due_at"] and after["due_sort"] == state["due_sort"]
    assert after["unread_count"] == 2 and after["last_message_preview"] == "text m2"
    assert "queue" not in change.updates and "owner" not in change.updates


def test_our_reply_ends_the_wait_and_records_the_first_response():
    state = started()
    change = rules.message_arrived(state, outbound("r1", T0 + 60_000), POLICY, T0 + 61_000)
    assert change.log.type == "replied"
    assert change.log.data == {"message_id": "r1", "response_ms": 60_000, "first": True, "within_target": True,
                               "business_ms": 60_000}
    after = step(state, change)
    assert "reply_due_at" not in after and "awaiting_reply_since" not in after
    assert after["first_response_at"] == T0 + 60_000
    assert after["due_sort"] >= rules.NO_DEADLINE and after["version"] == 2


def test_the_next_customer_message_starts_a_next_response_wait():
    state = step(started(), rules.message_arrived(started(), outbound("r1", T0 + 60_000), POLICY, T0))
    change = rules.message_arrived(state, inbound("m2", T0 + 120_000), POLICY, T0 + 121_000)
    assert change.log.type == "awaiting_reply"
    assert change.updates["reply_due_at"] == T0 + 120_000 + 300_000  # next-response target


def test_a_late_customer_message_older_than_our_reply_starts_no_wait():
    state = step(started(), rules.message_arrived(started(), outbound("r1", T0 + 60_000), POLICY, T0))
    change = rules.message_arrived(state, inbound("old", T0 + 30_000), POLICY, T0 + 200_000)
    assert change.log is None
    after = step(state, change)
    assert "reply_due_at" not in after
    assert after["last_message_id"] == "r1"  # the latest message stays the latest


def test_a_customer_message_reopens_a_resolved_conversation_with_a_fresh_wait():
    state = step(started(), rules.change_status(started(), "resolved", "agent:a1", T0 + 10_000))
    assert "reply_due_at" not in state and state["queue"] == "support#resolved"
    change = rules.message_arrived(state, inbound("m9", T0 + 50_000), POLICY, T0 + 50_500)
    assert change.log.type == "reopened" and change.log.data["previous"] == "resolved"
    after = step(state, change)
    assert after["status"] == "open" and after["queue"] == "support#open"
    assert after["reply_due_at"] == T0 + 50_000 + 600_000  # never answered: still the first-response target


def test_a_message_written_before_the_resolve_does_not_reopen():
    state = step(started(), rules.change_status(started(), "resolved", "agent:a1", T0 + 10_000))
    change = rules.message_arrived(state, inbound("m0", T0 + 9_000), POLICY, T0 + 20_000)
    assert step(state, change)["status"] == "resolved"


def test_a_repeated_message_is_a_no_op():
    state = started()
    after = step(state, rules.message_arrived(state, inbound("m2", T0 + 1), POLICY, T0))
    assert rules.message_arrived(after, inbound("m2", T0 + 1), POLICY, T0).empty


def test_claims_race_exactly_one_wins():
    state = started()
    first = rules.assign(state, "a1", "agent:a1", T0, expected=None)
    after = step(state, first)
    assert after["owner"] == "a#a1#open" and first.log.data == {"from": None, "to": "a1"}
    with pytest.raises(rules.Conflict) as lost:
        rules.assign(after, "a2", "agent:a2", T0, expected=None)
    assert lost.value.current == {"assignee": "a1"}
    assert rules.assign(after, "a1", "agent:a1", T0, expected=None).empty  # repeating a won claim


def test_unassigning_puts_it_back_in_the_team_queue_of_nobody():
    state = step(started(), rules.assign(started(), "a1", "flow", T0))
    after = step(state, rules.assign(state, None, "agent:a1", T0))
    assert "assignee" not in after and after["owner"] == "u#support#open"


def test_snooze_needs_a_future_time_and_orders_by_wake_up():
    state = started()
    with pytest.raises(rules.RuleError):
        rules.change_status(state, "snoozed", "agent:a1", T0)
    with pytest.raises(rules.RuleError):
        rules.change_status(state, "closed", "agent:a1", T0)
    after = step(state, rules.change_status(state, "snoozed", "agent:a1", T0, until=T0 + 3_600_000))
    assert after["due_sort"] == T0 + 3_600_000 and after["queue"] == "support#snoozed"


def test_an_agent_reopening_a_thread_the_customer_spoke_last_in_starts_a_wait():
    state = step(started(), rules.change_status(started(), "pending", "agent:a1", T0 + 1))
    change = rules.change_status(state, "open", "agent:a1", T0 + 100, policy=POLICY)
    assert change.updates["reply_due_at"] == T0 + 100 + 600_000
    assert change.log.type == "status_changed" and change.log.data["due_at"] == T0 + 100 + 600_000


def test_read_clears_unread_and_is_logged_once():
    state = started()
    change = rules.mark_read(state, "agent:a1", T0 + 10)
    after = step(state, change)
    assert after["unread_count"] == 0 and change.log.type == "read"
    assert rules.mark_read(after, "agent:a1", T0 + 20).empty


def test_an_edit_of_the_latest_message_refreshes_the_preview():
    state = started()
    change = rules.message_changed(state, "m1", "new text", "message_edited", T0 + 5)
    assert change.updates["last_message_preview"] == "new text" and change.log.type == "message_edited"
    other = rules.message_changed(state, "m0", "x", "message_removed", T0 + 5)
    assert "last_message_preview" not in other.updates


@settings(max_examples=200, deadline=None)
@given(direction=st.sampled_from(["in", "out"]), offsets=st.lists(st.integers(-50, 50), min_size=0, max_size=6),
       at_offset=st.integers(-100, 100), replied=st.booleans(), read=st.booleans(), name=st.sampled_from([None, "Ana", "Bo"]))
def test_the_follow_up_fast_path_does_exactly_what_the_full_rule_does(direction, offsets, at_offset, replied, read,
                                                                      name):
    """Whenever the fast path's guards hold, its write leaves the same state as read + rule,
    and the rule would log nothing (so skipping the log is right)."""
    state = started(T0)
    clock = T0
    for i, offset in enumerate(offsets):
        clock += 1000 + offset
        facts = outbound(f"r{i}", clock) if (replied and i % 2 == 0) else inbound(f"m{i + 2}", clock, "Ana")
        state = step(state, rules.message_arrived(state, facts, POLICY, clock))
    if read:
        state = step(state, rules.mark_read(state, "agent:a", clock + 10))
    at = clock + 20 + at_offset
    facts = MessageFacts("new", direction, at, "p", contact_name=name if direction == "in" else None,
                         labels=(("sentiment", "negative"),) if direction == "in" else ())
    fast, guards = rules.follow_up(facts)
    if not rules.guards_hold(state, guards):
        return
    full = rules.message_arrived(state, facts, POLICY, at)
    assert full.log is None
    assert step(state, fast) == step(state, full)


def test_a_reply_logs_its_author_and_the_wait_in_the_policys_business_time():
    """Reports read these facts from the log: the calendar is the SLA engine's, frozen now."""
    from chalicelib.sla import calendar, policies

    hours = calendar.calendar_for({"timezone": "UTC", "week": {d: [["09:00", "17:00"]] for d in
                                                                ("mon", "tue", "wed", "thu", "fri")}})
    office = policies.Policy("p1", "Office", 3600_000, 3600_000, calendar=hours)
    import datetime as dt

    def utc(*args):
        return int(dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp() * 1000)

    friday = utc(2023, 11, 17, 15, 50)
    state = rules.new_conversation({"conversation_id": "c1", "channel": "messenger", "account_id": "p",
                                    "thread_key": "u", "contact_id": "k"}, inbound("m1", friday), "default",
                                   office, friday)
    monday = utc(2023, 11, 20, 9, 10)
    reply = rules.MessageFacts("r1", "out", monday, "hi", author="a7", private_reply=True)
    change = rules.message_arrived(state, reply, office, monday)
    assert change.log.data["business_ms"] == (70 + 10) * 60_000  # Fri 15:50-17:00 and Mon 09:00-09:10
    assert change.log.data["agent"] == "a7" and change.log.data["private_reply"] is True
    assert rules.created_entry(state, inbound("m1", friday)).data["thread_kind"] == "dm"
