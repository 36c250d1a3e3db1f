"""From a conversation's log entries to what they add to the reports, as pure functions.

`fold(tracker, entry)` takes what reports remember about one conversation (a plain dict: its
channel, team, thread kind, assignee, the open reopen cycle and the customer's running wait) and
one log entry, and returns the tracker after it and the `Contribution`s it makes: counters to add
in the 15-minute UTC bucket of an instant, for a few scopes. No I/O: the consumer folds entries
as the stream delivers them, a rebuild folds the same log from the start, and both get the same
numbers because they run this same code.

Definitions (README "Reports"; the API documents them too):
- A **cycle** runs from the customer message that opens a conversation, or that comes after it
  was resolved, up to its resolution; every time is measured within one cycle, never across.
- A **wait** runs from the first unanswered customer message to the reply that ends it (the log's
  `awaiting_since` -> `replied`). The first wait of a cycle gives the **first response time**,
  later ones the **next response time**. Notes and platform events never end a wait (the inbox
  rules log no reply for them).
- **SLA** per wait, against the deadline the SLA engine set (`due_at`, counted on its calendar):
  met when the reply came by the deadline; missed when it came later, or when the deadline passed
  without one (the flow's `sla_breached`), or when the conversation was closed after the deadline
  unanswered; "closed" when it was closed before the deadline unanswered; else still pending.
- **Resolution SLA**: the policy's resolution deadline for the cycle is frozen in the entry that
  starts it (`resolution_due_at`); met when resolved by it, missed when resolved later. A cycle
  still open is "pending" until its deadline passes, then missed: the counter `rd<quarter index of
  the deadline>` (+1 at the start, -1 at the resolve) lets a read see which open deadlines passed.
- **Response rate**: a cycle counts as answered when its first wait ended with our reply, public or
  private (a DM answering a comment: `answered_private`). A cycle resolved without any reply is
  **moderation-only** (`moderated`: hidden, liked, archived, or closed as needing none): counted
  apart, never as answered nor as needing a response.
- **Unanswered gauge**: `waiting` is +1 in the bucket of a wait's start and -1 in that same bucket
  when it ends (reply, close, pause), so a bucket holding a positive `waiting` still has a customer
  waiting since then (the oldest wait of a period is read from it).
- **Dimensions** (`scopes_of`): channel, channel account, team, priority, tags (the first
  MAX_TAG_SCOPES alphabetically) and the credited agent, as the tracker held them when the entry
  was logged: a later relabel changes later entries only, never what was already counted. What
  must pair with its start (the `waiting` and `rd` gauges, an SLA outcome and its `started`) counts
  under the scopes the wait or cycle started with (`frozen`), so no scope keeps a phantom open item.
- Attribution ("cohort"): everything about a cycle counts in the bucket of the cycle's start, so a
  period's numbers describe the cycles that started in it. Activity counters count at their own
  instant: `waits` (customer waits started: the staffing arrivals), `breaches`, and the messages'
  `inbound`/`outbound`/authors (chalicelib.reports.messages).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from chalicelib.reports import sketch

Tracker = Dict[str, Any]
#: Thread kinds reports count apart (anything else counts as "dm").
KINDS = ("dm", "comment", "mention")
#: Tags a contribution counts under (alphabetical). Why 5: one log entry's writes must fit one
#: DynamoDB transaction of 100 items: up to 2 instants x 2 buckets x (7 fixed scopes + agent +
#: current tags + the tags its wait and cycle started with) = 4 x 23 = 92 at most.
MAX_TAG_SCOPES = 5
QUARTER_MS = 15 * 60_000


@dataclass(frozen=True)
class Contribution:
    """Counters to add, in the 15-minute UTC bucket (and UTC day) of `at`, to each scope, and
    distinct-count register values (chalicelib.reports.distinct) to add to its sets."""

    at: int
    scopes: Tuple[str, ...]
    counters: Dict[str, int] = field(default_factory=dict)
    registers: Tuple[int, ...] = ()


def scopes_of(tracker: Mapping[str, Any], agent: Optional[str] = None) -> Tuple[str, ...]:
    """Where a contribution counts, as the tracker holds the labels at the event: everything, the
    channel, the channel account, the priority, each tag; the team, and the team's channel,
    account and priority (what supervisors read); the agent it is credited to, if any."""
    channel, team = tracker.get("channel") or "unknown", tracker.get("team") or "default"
    found = ["all", f"ch#{channel}", f"team#{team}", f"tc#{team}#{channel}"]
    team_dims = [f"prio#{tracker.get('priority') or 'none'}"]
    if tracker.get("account"):
        team_dims.append(f"acct#{channel}#{tracker['account']}")
    found += team_dims + [f"t#{team}#{dim}" for dim in team_dims]
    found += [f"tag#{tag}" for tag in sorted(tracker.get("tags") or ())[:MAX_TAG_SCOPES]]
    return tuple(found) + ((f"agent#{agent}",) if agent else ())


def duration(metric: str, ms: int) -> Dict[str, int]:
    """The counters one duration sample adds: count, sum (ms, for means) and its histogram bucket."""
    ms = max(0, int(ms))
    return {f"{metric}_n": 1, f"{metric}_sum": ms, f"{metric}_h{sketch.bucket_of(ms / 1000)}": 1}


def fold(tracker: Optional[Mapping[str, Any]], entry: Mapping[str, Any]) -> Tuple[Tracker, List[Contribution]]:
    """The tracker after one log entry and what the entry contributes (entries in seq order)."""
    after: Tracker = copy.deepcopy(dict(tracker or {}))
    found: List[Contribution] = []
    handler = _HANDLERS.get(str(entry.get("type")))
    if handler is not None:
        handler(after, dict(entry.get("data") or {}), int(entry["at"]), str(entry.get("actor") or ""), found)
    return after, found


def fold_all(entries: List[Mapping[str, Any]], tracker: Optional[Mapping[str, Any]] = None
             ) -> Tuple[Tracker, List[Contribution]]:
    """Fold a whole run of entries (a rebuild, or a test's scripted history)."""
    state: Tracker = dict(tracker or {})
    every: List[Contribution] = []
    for entry in entries:
        state, found = fold(state, entry)
        every.extend(found)
    return state, every


# --- the entries -----------------------------------------------------------------------------


def _created(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    t["channel"] = data.get("channel") or t.get("channel") or "unknown"
    t["team"] = data.get("team") or t.get("team") or "default"
    if data.get("account_id"):
        t["account"] = str(data["account_id"])
    kind = data.get("thread_kind")
    t["kind"] = kind if kind in KINDS else "dm"
    t["res_due"] = data.get("resolution_due_at")
    out.append(Contribution(at, scopes_of(t), {"new_conversations": 1}))
    if actor == "customer":
        _wait_started(t, data, at, out)


def _reopened(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    if data.get("previous") == "resolved":
        _new_cycle(t, data)
    _wait_started(t, data, at, out)


def _new_cycle(t: Tracker, data: Mapping[str, Any]) -> None:
    """The next customer message opens a new cycle (after a resolve), with its own resolution target."""
    t["cycle"] = None
    t["res_due"] = data.get("resolution_due_at")


def _awaiting(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    _wait_started(t, data, at, out)


def _wait_started(t: Tracker, data: Dict[str, Any], at: int, out: List[Contribution]) -> None:
    since = int(data["awaiting_since"]) if data.get("awaiting_since") is not None else at
    due = int(data["due_at"]) if data.get("due_at") is not None else None
    wait = t.get("wait")
    if wait:  # the same wait goes on: resumed after a pause, or moved earlier by a late message
        if wait.get("paused"):
            out.append(Contribution(int(wait["gauge"]), frozen(wait, t), {"waiting": 1}))
        wait.update(since=min(int(wait["since"]), since), due=due, paused=False)
        return
    cycle = t.get("cycle")
    scopes = scopes_of(t)
    if not cycle:
        cycle = t["cycle"] = {"start": since, "answered": False}
        kind = t.get("kind") or "dm"
        out.append(Contribution(since, scopes, {"cycles": 1, f"cycles_{kind}": 1}))
        if t.get("res_due") is not None:
            cycle.update(res_due=int(t["res_due"]), scopes=list(scopes))
            out.append(Contribution(since, scopes, {"sla_resolution_started": 1, _due_key(cycle["res_due"]): 1}))
    first = not cycle["answered"]
    t["wait"] = {"since": since, "due": due, "first": first, "missed": False, "paused": False, "gauge": since,
                 "scopes": list(scopes)}
    out.append(Contribution(int(cycle["start"]), scopes, {f"sla_{_target(first)}_started": 1}))
    out.append(Contribution(since, scopes, {"waits": 1, "waiting": 1}))


def frozen(holder: Mapping[str, Any], t: Mapping[str, Any], agent: Optional[str] = None) -> Tuple[str, ...]:
    """The scopes a wait or cycle started under (kept in the tracker), plus the agent credited
    now: a gauge or an SLA outcome must land where its start was counted, or a relabel in
    between would leave a wait open (or an outcome without a start) in the old scope."""
    found = tuple(holder.get("scopes") or scopes_of(t))
    return found + ((f"agent#{agent}",) if agent and f"agent#{agent}" not in found else ())


def _due_key(due_ms: int) -> str:
    return f"rd{int(due_ms) // QUARTER_MS}"


def _wait_ended(t: Tracker, out: List[Contribution]) -> None:
    """The customer no longer waits (a reply, a close, a paused clock): the gauge goes down in
    the bucket where it went up."""
    wait = t.get("wait")
    if wait and not wait.get("paused"):
        out.append(Contribution(int(wait.get("gauge", wait["since"])), frozen(wait, t), {"waiting": -1}))


def _replied(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    wait, cycle = t.get("wait"), t.get("cycle")
    if not wait or not cycle:
        return  # the log began before reports did: nothing to measure this reply against
    first = bool(wait["first"])
    metric = "frt" if first else "nrt"
    within = bool(data.get("within_target", True))
    counters = duration(metric, int(data.get("response_ms", 0)))
    if within:
        counters[f"{metric}_in"] = 1
    if data.get("business_ms") is not None:
        counters.update(duration(f"{metric}b", int(data["business_ms"])))
    counters["replies"] = 1
    if data.get("private_reply"):
        counters["private_replies"] = 1
    if first:
        kind = t.get("kind") or "dm"
        counters.update({"answered": 1, f"answered_{kind}": 1})
        if data.get("private_reply"):
            counters.update({"answered_private": 1, f"answered_{kind}_private": 1})
        cycle["answered"] = True
    agent = data.get("agent") or t.get("assignee")
    _wait_ended(t, out)
    out.append(Contribution(int(cycle["start"]), scopes_of(t, agent), counters))
    if not wait["missed"]:
        out.append(Contribution(int(cycle["start"]), frozen(wait, t, agent),
                                {f"sla_{_target(first)}_{'met' if within else 'missed'}": 1}))
    t["wait"] = None


def _breached(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    wait, cycle = t.get("wait"), t.get("cycle")
    out.append(Contribution(at, scopes_of(t, t.get("assignee")), {"breaches": 1}))
    if wait and cycle and not wait["missed"]:
        wait["missed"] = True
        out.append(Contribution(int(cycle["start"]), frozen(wait, t, t.get("assignee")),
                                {f"sla_{_target(wait['first'])}_missed": 1}))


def _status_changed(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    to, previous = data.get("to"), data.get("from")
    agent = actor.split(":", 1)[1] if actor.startswith("agent:") else t.get("assignee")
    if to == "resolved":
        _close_wait(t, at, agent, out)
        cycle = t.get("cycle")
        if cycle:
            counters = duration("res", at - int(cycle["start"]))
            counters["resolved"] = 1
            if not cycle.get("answered"):
                kind = t.get("kind") or "dm"
                counters.update({"moderated": 1, f"moderated_{kind}": 1})
            out.append(Contribution(int(cycle["start"]), scopes_of(t, agent), counters))
            if cycle.get("res_due") is not None:
                met = at <= int(cycle["res_due"])
                out.append(Contribution(int(cycle["start"]), frozen(cycle, t, agent), {
                    f"sla_resolution_{'met' if met else 'missed'}": 1, _due_key(cycle["res_due"]): -1}))
        t["cycle"] = None
    elif to in ("pending", "snoozed"):
        if data.get("sla_paused_ms") is not None and t.get("wait"):
            _wait_ended(t, out)
            t["wait"]["paused"] = True  # the clock stopped; the same wait runs on when reopened
        elif previous == "open":
            _close_wait(t, at, agent, out)
    elif to == "open" and previous == "resolved":
        _new_cycle(t, data)
        if data.get("awaiting_since") is not None:
            _wait_started(t, data, at, out)
    elif to == "open" and data.get("awaiting_since") is not None:
        _wait_started(t, data, at, out)


def _close_wait(t: Tracker, at: int, agent: Optional[str], out: List[Contribution]) -> None:
    """The conversation stopped waiting without a reply: missed if past the deadline (unless the
    breach already counted it), else closed, neither met nor missed."""
    wait, cycle = t.get("wait"), t.get("cycle")
    _wait_ended(t, out)
    t["wait"] = None
    if not wait or not cycle or wait["missed"]:
        return
    late = wait.get("due") is not None and at > int(wait["due"]) and not wait.get("paused")
    outcome = "missed" if late else "closed"
    out.append(Contribution(int(cycle["start"]), frozen(wait, t, agent), {f"sla_{_target(wait['first'])}_{outcome}": 1}))


def _assigned(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    t["assignee"] = data.get("to")


def _tags_changed(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    """Later entries count under the new tags; what was counted stays where it was."""
    removed = set(data.get("removed") or ())
    tags = [tag for tag in (t.get("tags") or []) if tag not in removed]
    tags += [tag for tag in (data.get("added") or []) if isinstance(tag, str) and tag not in tags]
    t["tags"] = tags


def _priority_changed(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    t["priority"] = data.get("to") if data.get("to") not in (None, "none") else None


def _target(first: bool) -> str:
    return "first" if first else "next"


_HANDLERS: Dict[str, Callable[[Tracker, Dict[str, Any], int, str, List[Contribution]], None]] = {
    "created": _created, "reopened": _reopened, "awaiting_reply": _awaiting, "replied": _replied,
    "sla_breached": _breached, "status_changed": _status_changed, "assigned": _assigned,
    "tags_changed": _tags_changed, "priority_changed": _priority_changed,
}
