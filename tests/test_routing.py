"""Routing per team (chalicelib.routing): presence with a grace period, capacity, round robin,
least loaded, one winner under concurrency, backlog drained oldest deadline first, hand-offs."""
from __future__ import annotations

import threading
import time

import pytest

from tests.helpers import serialise_moto_requests

from chalicelib.channels.base import ContactRef, MessageEvent

PAGE = "1234567890"
TEAM = "support"


@pytest.fixture
def clock(aws_backend):
    """A controllable clock (ms) shared by the store and routing."""
    from chalicelib.runtime import runtime

    now = {"ms": int(time.time() * 1000)}
    runtime.use_clock(lambda: now["ms"] / 1000.0)
    return now


@pytest.fixture
def page(inbox, clock):
    inbox.add_account("messenger", PAGE)
    return inbox


def conversation(user, at_ms, team=TEAM):
    """A new conversation from customer `user` whose reply deadline follows from `at_ms`."""
    from chalicelib.inbox import store

    event = MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=f"m-{user}-{at_ms}",
                         thread_key=user, contact=ContactRef(user), direction="in", sent_at_ms=at_ms, text="hi",
                         raw={"mid": user})
    _, (cid, _) = store.record_message(event, team)
    return cid


def agent(agent_id, teams=(TEAM,), capacity=10, presence="online"):
    from chalicelib.routing import directory

    directory.set_routing(agent_id, list(teams), capacity)
    if presence:
        directory.set_presence(agent_id, presence)


def assignee(cid):
    from chalicelib.inbox import store

    return store.get(cid).get("assignee")


def assigned_events(cid):
    from chalicelib.inbox import store

    return [e for e in store.events(cid) if e["type"] == "assigned"]


def test_capacity_is_respected_and_the_rest_waits_in_the_team_queue(page, clock):
    from chalicelib import routing
    from chalicelib.routing import directory

    agent("a1", capacity=2)
    cids = [conversation(f"u{i}", clock["ms"] + i) for i in range(3)]
    # The store's hook assigns each new conversation as it is created; the third finds no room.
    assert [assignee(cid) for cid in cids] == ["a1", "a1", None]
    assert routing.assign_next(cids[2]) is None
    assert assignee(cids[2]) is None
    assert directory.load("a1") == 2
    assert assigned_events(cids[0])[0]["actor"] == "routing"


def test_offline_away_expired_and_unconfigured_agents_are_not_eligible(page, clock):
    from chalicelib import routing
    from chalicelib.routing import directory

    agent("off", presence="offline")
    agent("away", presence="away")
    agent("full", capacity=0)
    agent("stale")
    directory.set_routing("other-team", ["sales"], 10)
    directory.set_presence("other-team", "online")
    clock["ms"] += 91_000  # stale's last refresh is past the 90 s grace period
    for name in ("off", "away", "full", "other-team"):
        directory.set_presence(name, directory.profile(name).presence)  # they keep refreshing
    cid = conversation("u1", clock["ms"])
    assert routing.assign_next(cid) is None
    assert assignee(cid) is None


def test_the_grace_period_keeps_a_flapping_agent_eligible_and_their_conversations_theirs(page, clock, monkeypatch):
    from chalicelib import routing

    monkeypatch.setenv("PRESENCE_GRACE_SECONDS", "90")
    agent("a1")
    agent("a2")
    mine = conversation("u1", clock["ms"])
    from chalicelib.inbox import store

    store.assign(mine, "a1", "agent:a1")
    clock["ms"] += 85_000  # a1 missed two refreshes; a2 kept refreshing
    from chalicelib.routing import directory

    directory.set_presence("a2", "online")
    assert routing.agent_went_offline("a1") == 0
    assert routing.sweep()["handed_off"] == 0
    assert assignee(mine) == "a1"
    assert directory.profile("a1").online(clock["ms"])
    clock["ms"] += 10_000  # 95 s of silence: gone
    directory.set_presence("a2", "online")
    assert not directory.profile("a1").online(clock["ms"])
    assert routing.sweep()["handed_off"] == 1
    assert assignee(mine) == "a2"


def test_round_robin_rotates_through_the_online_agents(page, clock):
    from chalicelib import routing
    from chalicelib.routing import directory

    for name in ("a1", "a2", "a3"):
        agent(name)
    directory.set_mode(TEAM, "round_robin")
    cids = [conversation(f"u{i}", clock["ms"] + i) for i in range(6)]
    assert [assignee(cid) for cid in cids] == ["a1", "a2", "a3", "a1", "a2", "a3"]  # assigned on creation
    directory.set_presence("a2", "away")  # skipped while away, the rotation goes on
    more = [conversation(f"v{i}", clock["ms"] + i) for i in range(3)]
    assert [assignee(cid) for cid in more] == ["a1", "a3", "a1"]


def test_least_loaded_picks_the_lowest_load_then_the_longest_since_last_assignment(page, clock):
    from chalicelib import routing
    from chalicelib.inbox import store
    from chalicelib.routing import directory

    earlier = [conversation(f"pre{i}", clock["ms"] + i) for i in range(3)]  # before anyone is on duty
    for name in ("a1", "a2", "a3"):
        agent(name)
    directory.set_mode(TEAM, "least_loaded")
    for cid, name in zip(earlier, ["a1", "a1", "a2"]):
        store.assign(cid, name, f"agent:{name}")
    picks = []
    for i in range(4):  # each new conversation is routed by the store's hook as it is created
        clock["ms"] += 1000
        picks.append(assignee(conversation(f"u{i}", clock["ms"])))
    # loads 2/1/0 -> a3; 2/1/1 -> a2 (a3 just had one); 2/2/1 -> a3; 2/2/2 -> a1 (longest ago: never)
    assert picks == ["a3", "a2", "a3", "a1"]
    assert {name: directory.load(name) for name in ("a1", "a2", "a3")} == {"a1": 3, "a2": 2, "a3": 2}




def _together(count, work):
    barrier, results, errors = threading.Barrier(count), {}, []

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_concurrent_assignment_of_one_conversation_has_exactly_one_winner(page, clock, monkeypatch):
    from chalicelib import routing

    cid = conversation("u1", clock["ms"])  # created while nobody is on duty: unassigned
    for name in ("a1", "a2", "a3"):
        agent(name)
    serialise_moto_requests(monkeypatch)
    results = _together(6, lambda i: routing.assign_next(cid))
    winners = [r for r in results.values() if r is not None]
    assert len(winners) == 1
    assert assignee(cid) == winners[0]
    assert len(assigned_events(cid)) == 1


def test_concurrent_assignments_never_push_an_agent_past_capacity(page, clock, monkeypatch):
    from chalicelib import routing
    from chalicelib.routing import directory

    cids = [conversation(f"u{i}", clock["ms"] + i) for i in range(5)]  # nobody on duty yet
    agent("a1", capacity=2)  # on duty now (setting a profile does not drain: the racing claims below do)
    serialise_moto_requests(monkeypatch)
    results = _together(5, lambda i: routing.assign_next(cids[i]))
    assert sorted(r for r in results.values() if r) == ["a1", "a1"]
    assert directory.load("a1") == 2


def test_the_backlog_drains_oldest_deadline_first_when_someone_comes_online(page, clock):
    from chalicelib import routing
    from chalicelib.routing import directory

    agent("a1", capacity=2, presence=None)
    base = clock["ms"]
    newest = conversation("late", base + 30_000)
    oldest = conversation("early", base)
    middle = conversation("mid", base + 10_000)
    assert [routing.assign_next(c) for c in (newest, oldest, middle)] == [None, None, None]
    result = routing.presence_changed("a1", "online")
    assert result["assigned"] == 2
    assert (assignee(oldest), assignee(middle), assignee(newest)) == ("a1", "a1", None)
    # a heartbeat while online drains nothing more; freeing capacity does
    assert "assigned" not in routing.presence_changed("a1", "online")
    from chalicelib.inbox import store

    after = store.set_status(oldest, "resolved", "agent:a1")
    routing.on_conversation_event("status_changed", after, data={"from": "open", "to": "resolved"})
    assert assignee(newest) == "a1"


def test_a_new_or_reopened_conversation_is_routed_by_the_hook_and_a_returning_customer_leaves_an_offline_agent(
        page, clock):
    from chalicelib import routing
    from chalicelib.inbox import store

    agent("a1")
    cid = conversation("u1", clock["ms"])
    routing.on_conversation_event("created", store.get(cid))
    assert assignee(cid) == "a1"
    store.set_status(cid, "resolved", "agent:a1")
    agent("a2")
    routing.presence_changed("a1", "offline")
    reopened = store.set_status(cid, "open", "agent:a2")
    routing.on_conversation_event("reopened", reopened)
    assert assignee(cid) == "a2"


def test_an_agent_going_offline_hands_their_conversations_to_a_teammate_or_back_to_the_queue(page, clock):
    from chalicelib import routing
    from chalicelib.inbox import store

    agent("a1")
    agent("a2", capacity=1)
    cids = [conversation(f"u{i}", clock["ms"] + i) for i in range(3)]
    for cid in cids:
        store.assign(cid, "a1", "agent:a1")
    result = routing.presence_changed("a1", "offline")
    assert result["handed_off"] == 3
    # the oldest deadline goes to the teammate with room, the rest back to the team queue
    assert [assignee(c) for c in cids] == ["a2", None, None]
    assert assigned_events(cids[0])[-1]["data"] == {"from": "a1", "to": "a2"}
    assert routing.agent_went_offline("a1") == 0  # nothing left


def test_hooks_never_raise(page, clock, monkeypatch):
    from chalicelib import routing
    from chalicelib.routing import directory

    def broken(*args, **kwargs):
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(directory, "team", broken)
    cid = conversation("u1", clock["ms"])
    from chalicelib.inbox import store

    routing.on_conversation_event("created", store.get(cid))  # logged, not raised
    assert assignee(cid) is None


def test_escalation_reassigns_to_the_next_eligible_teammate_never_the_same_agent(page, clock):
    from chalicelib import routing
    from chalicelib.inbox import store

    agent("a1")
    cid = conversation("u1", clock["ms"])
    store.assign(cid, "a1", "agent:a1")
    assert routing.reassign(cid) is None  # nobody else: it stays with a1
    assert assignee(cid) == "a1"
    agent("a2")
    assert routing.reassign(cid) == "a2"
    assert assigned_events(cid)[-1] == {**assigned_events(cid)[-1], "actor": "routing", "data": {"from": "a1", "to": "a2"}}
    store.set_status(cid, "resolved", "agent:a2")
    assert routing.reassign(cid) is None  # only open conversations move
