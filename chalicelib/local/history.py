"""A month of realistic inbox history for `make run`, through the real pipeline, so the Reports
screen has real charts on the first run (`make history`, or by itself on a fresh stack).

Nothing here writes a report: it plays customers and agents on a simulated clock through the
same store calls the webhooks, the API and the SLA flow make (messages recorded, conversations
assigned, replies stored and marked sent, notes, tags and priorities, breaches fired by the
flow's timer path at their deadlines, resolves and reopens). The event log those calls append to
reaches the reports' stream consumer like any other change, which builds the counters and the
cycle rows. Arrivals follow the staffing demo's day shape (busy weekday daytimes, quiet nights
and weekends); agents answer fast in office hours and next morning at night, sometimes too late,
sometimes never. Deterministic (seeded) and idempotent: every message and reply has a fixed id,
so a second run changes nothing.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.runtime import runtime

DAYS = 30
#: 1.0 is the staffing demo's rate (about 8,000 conversations a month); the default plays about
#: 500 (a small team's month) in a few minutes.
SCALE = 0.06
MIN = 60_000
HOUR = 60 * MIN
#: Channel, thread kind, share of arrivals.
MIX = (("messenger", "dm", 0.35), ("instagram", "comment", 0.25), ("whatsapp", "dm", 0.25), ("facebook", "comment", 0.15))
TAGS = ("refund", "delivery", "opening-hours", "praise", "order-status")
TEXTS = {"in": ("Hi, where is my order?", "Do you ship to Portugal?", "Love the new blend!", "My refund has not arrived",
                "Are you open on Sunday?", "The app will not let me pay"),
         "out": ("Thanks for writing! Let me check.", "Sorry about that, a refund is on its way.",
                 "Yes, we ship there in 3-5 days.", "Glad you like it!", "We open at 9 on Sundays.")}
MARKER_KEY = {"conversation_id": {"S": "demo#history"}, "start": {"N": "-1"}}


def _agents() -> List[str]:
    from chalicelib.local.seed import DEMO_AGENTS, stable_agent_id

    return [stable_agent_id(email) for email, _, role in DEMO_AGENTS if role != "admin"]


def _accounts() -> Dict[str, str]:
    from chalicelib.channels import adapter_names, get_adapter

    found: Dict[str, str] = {}
    for name in adapter_names():
        for channel, account_id, _ in get_adapter(name).demo_accounts:
            found.setdefault(channel, account_id)
    return found


def _office(at: int) -> bool:
    moment = datetime.fromtimestamp(at / 1000, timezone.utc)
    return moment.weekday() < 5 and 7 <= moment.hour < 18


def _next_office(at: int) -> int:
    """The next office-hours moment at or after `at` (UTC 07:00-18:00 on weekdays)."""
    while not _office(at):
        at += 15 * MIN
    return at


def _answer_after(rng: random.Random, at: int, kind: str) -> int:
    """When an agent answers a customer who wrote at `at`: minutes in office hours (comments
    wait longer), the next morning otherwise, sometimes far too late."""
    median = 6 * MIN if kind == "dm" else 20 * MIN
    start = _next_office(at)
    wait = int(median * math.exp(rng.gauss(0, 0.9)))
    if rng.random() < 0.07:
        wait += rng.randrange(2 * HOUR, 8 * HOUR)
    return start + max(20_000, wait)


class Player:
    """Customers and agents acting at simulated instants (the runtime's clock set per step)."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.steps = 0

    def at(self, ms: int) -> bool:
        """Move the clock to `ms`; False when that is still in the future (the step is skipped)."""
        if ms >= self.now_ms:
            return False
        runtime.use_clock(lambda: ms / 1000)
        self.steps += 1
        return True

    def customer(self, channel: str, account: str, kind: str, user: str, mid: str, at: int, text: str) -> Optional[str]:
        from chalicelib.channels.base import ContactRef, MessageEvent
        from chalicelib.inbox import store

        if not self.at(at):
            return None
        thread = f"post-{user[-2:]}#{user}" if kind == "comment" else user
        event = MessageEvent(channel=channel, account_id=account, platform_message_id=mid, thread_key=thread,
                             contact=ContactRef(user, display_name=f"Customer {user[-4:]}"), direction="in",
                             sent_at_ms=at, text=text, thread_kind=kind,
                             subject="Our new autumn blend" if kind == "comment" else None)
        _, (conversation_id, _) = store.record_message(event)
        return conversation_id

    def reply(self, conversation_id: str, agent: str, client_id: str, at: int, text: str, kind: str = "reply") -> bool:
        from chalicelib.inbox import outbound, store

        if not self.at(at):
            return False
        self.breach_if_late(conversation_id, at)
        if not self.at(at):
            return False
        state = store.get(conversation_id) or {}
        draft = outbound.Draft(conversation_id=conversation_id, kind=kind, text=text, client_id=client_id,
                               author_id=agent)
        message, created = outbound.create(draft, state)
        if kind == "reply" and created:
            outbound.mark_sent(message, "sent-" + client_id)  # the platform accepted it
        return True

    def breach_if_late(self, conversation_id: str, before: int) -> None:
        """The SLA flow's breach timer, at the deadline of a wait still running then."""
        from chalicelib.inbox import store

        state = store.get(conversation_id) or {}
        due, turn = state.get("reply_due_at"), state.get("turn")
        if due is not None and turn is not None and int(due) < before and self.at(int(due) + 1000):
            store.record_sla_timer(conversation_id, int(turn), "breach")

    def act(self, at: int, call: Any, *args: Any) -> None:
        if self.at(at):
            call(*args)


def play_conversation(player: Player, rng: random.Random, number: int, arrival: int, accounts: Dict[str, str],
                      agents: List[str]) -> int:
    """One conversation's life: the customer writes, an agent is assigned, answers (maybe late,
    maybe never), the customer may write again, it is resolved, and sometimes reopened."""
    from chalicelib.inbox import store

    channel, kind = _pick(rng)
    account = accounts.get(channel)
    if account is None:
        return 0
    user, agent = f"hist{number:06d}", rng.choice(agents)
    cid = player.customer(channel, account, kind, user, f"hist-{number}-in1", arrival, rng.choice(TEXTS["in"]))
    if cid is None:
        return 0
    player.act(arrival + rng.randrange(20_000, 3 * MIN), store.assign, cid, agent, "routing")
    if rng.random() < 0.3:
        player.act(arrival + 4 * MIN, store.set_tags, cid, [rng.choice(TAGS)], f"agent:{agent}")
    if rng.random() < 0.1:
        player.act(arrival + 5 * MIN, store.set_priority, cid, "high", f"agent:{agent}")
    if rng.random() < 0.08:  # never answered: closed as spam two days later, or still waiting
        player.breach_if_late(cid, arrival + 2 * 24 * HOUR)
        player.act(arrival + 2 * 24 * HOUR, store.set_status, cid, "resolved", f"agent:{agent}")
        return 1
    replied = _answer_after(rng, arrival, kind)
    if rng.random() < 0.15:  # a note first: it never stops the clock
        player.reply(cid, agent, f"hist-{number}-note", replied - 30_000, "Checking with the warehouse", "note")
    if not player.reply(cid, agent, f"hist-{number}-r1", replied, rng.choice(TEXTS["out"])):
        player.breach_if_late(cid, player.now_ms)
        return 1
    last = replied
    if rng.random() < 0.4:  # the customer writes again: a next response
        again = replied + rng.randrange(2 * MIN, 40 * MIN)
        if player.customer(channel, account, kind, user, f"hist-{number}-in2", again, rng.choice(TEXTS["in"])):
            last = _answer_after(rng, again, kind)
            if not player.reply(cid, agent, f"hist-{number}-r2", last, rng.choice(TEXTS["out"])):
                player.breach_if_late(cid, player.now_ms)
                return 1
    resolved = last + rng.randrange(5 * MIN, 3 * HOUR)
    player.act(resolved, store.set_status, cid, "resolved", f"agent:{agent}")
    if rng.random() < 0.12:  # reopened: a new cycle
        back = resolved + rng.randrange(HOUR, 3 * 24 * HOUR)
        if player.customer(channel, account, kind, user, f"hist-{number}-in3", back, "One more thing…"):
            answer = _answer_after(rng, back, kind)
            if player.reply(cid, agent, f"hist-{number}-r3", answer, rng.choice(TEXTS["out"])):
                player.act(answer + rng.randrange(5 * MIN, HOUR), store.set_status, cid, "resolved", f"agent:{agent}")
            else:
                player.breach_if_late(cid, player.now_ms)
    return 1


def _pick(rng: random.Random) -> Tuple[str, str]:
    roll, total = rng.random(), 0.0
    for channel, kind, share in MIX:
        total += share
        if roll < total:
            return channel, kind
    return MIX[-1][0], MIX[-1][1]


def filled() -> bool:
    """Whether this stack has its history already (the marker `fill` leaves)."""
    from chalicelib.reports import export

    return bool(runtime.client("dynamodb").get_item(TableName=export.table(), Key=MARKER_KEY).get("Item"))


def fill(now_ms: int, days: int = DAYS, scale: float = SCALE) -> Dict[str, int]:
    """Play `days` of history ending at `now_ms` (once per stack: a marker item; the calls are
    idempotent anyway). Returns how many conversations were played and store steps taken."""
    from chalicelib.reports import export
    from chalicelib.staffing.demo import arrival_rate, poisson

    if filled():
        return {"conversations": 0, "steps": 0}
    rng = random.Random(20261205)
    accounts, agents = _accounts(), _agents()
    player = Player(now_ms)
    start = now_ms - now_ms % 86_400_000 - days * 86_400_000
    listeners = runtime.change_listeners()
    # The SLA flow's timers are played on the simulated clock here, and routing is the script's:
    # the other listeners (search index, change feeds) see every change as they would live.
    runtime.use_change_listeners([l for l in listeners if l.__module__ not in ("chalicelib.sla.flow", "chalicelib.routing")])
    played = 0
    try:
        for quarter in range(start, now_ms - now_ms % (15 * MIN), 15 * MIN):
            moment = datetime.fromtimestamp(quarter / 1000, timezone.utc)
            for _ in range(poisson(rng, arrival_rate(moment) * scale)):
                played += play_conversation(player, rng, played + 1, quarter + rng.randrange(15 * MIN), accounts,
                                            agents)
    finally:
        runtime.use_clock(None)
        runtime.use_change_listeners(None)
    runtime.client("dynamodb").put_item(TableName=export.table(), Item={**MARKER_KEY, "seq": {"N": "0"}, "at": {"N": str(now_ms)}})
    return {"conversations": played, "steps": player.steps}


def main(argv: Optional[List[str]] = None) -> int:
    """`make history`: fill the running `make run` stack (its moto on MOTO_PORT)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--scale", type=float, default=SCALE)
    args = parser.parse_args(argv)
    import os
    import time

    from chalicelib.ingest.dlq import use_local_stack

    if not use_local_stack():  # demo traffic never goes into a deployed stage
        print(f"history: only for the local stack (SOCIALINBOX_STAGE={os.environ.get('SOCIALINBOX_STAGE')})")
        return 2
    result = fill(int(time.time() * 1000), days=max(1, min(args.days, 400)), scale=max(0.01, min(args.scale, 2.0)))
    print(f"history: {result['conversations']} conversations played in {result['steps']} steps"
          + (" (already filled: nothing to do)" if not result["conversations"] else
             "; make run's stream consumer turns them into reports within a minute"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
