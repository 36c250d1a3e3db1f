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
- Attribution ("cohort"): everything about a cycle counts in the bucket of the cycle's start, so a
  period's numbers describe the cycles that started in it. Two activity counters count at their
  own instant: `waits` (customer waits started: the staffing arrivals) and `breaches`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from chalicelib.reports import sketch

Tracker = Dict[str, Any]
#: Thread kinds reports count apart (anything else counts as "dm").
KINDS = ("dm", "comment", "mention")


@dataclass(frozen=True)
class Contribution:
    """Counters to add, in the 15-minute UTC bucket (and UTC day) of `at`, to each scope."""

    at: int
    scopes: Tuple[str, ...]
    counters: Dict[str, int] = field(default_factory=dict)


def scopes_of(tracker: Mapping[str, Any], agent: Optional[str] = None) -> Tuple[str, ...]:
    """Where a contribution counts: everything, its channel, its team, the team's channel (as
    they were at the event), and the agent it is credited to, if any."""
    channel, team = tracker.get("channel") or "unknown", tracker.get("team") or "default"
    found = ("all", f"ch#{channel}", f"team#{team}", f"tc#{team}#{channel}")
    return found + ((f"agent#{agent}",) if agent else ())


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
    kind = data.get("thread_kind")
    t["kind"] = kind if kind in KINDS else "dm"
    out.append(Contribution(at, scopes_of(t), {"new_conversations": 1}))
    if actor == "customer":
        _wait_started(t, data, at, out)


def _reopened(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    if data.get("previous") == "resolved":
        t["cycle"] = None
    _wait_started(t, data, at, out)


def _awaiting(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    _wait_started(t, data, at, out)


def _wait_started(t: Tracker, data: Dict[str, Any], at: int, out: List[Contribution]) -> None:
    since = int(data["awaiting_since"]) if data.get("awaiting_since") is not None else at
    due = int(data["due_at"]) if data.get("due_at") is not None else None
    wait = t.get("wait")
    if wait:  # the same wait goes on: resumed after a pause, or moved earlier by a late message
        wait.update(since=min(int(wait["since"]), since), due=due, paused=False)
        return
    cycle = t.get("cycle")
    if not cycle:
        cycle = t["cycle"] = {"start": since, "answered": False}
        kind = t.get("kind") or "dm"
        out.append(Contribution(since, scopes_of(t), {"cycles": 1, f"cycles_{kind}": 1}))
    first = not cycle["answered"]
    t["wait"] = {"since": since, "due": due, "first": first, "missed": False, "paused": False}
    out.append(Contribution(int(cycle["start"]), scopes_of(t), {f"sla_{_target(first)}_started": 1}))
    out.append(Contribution(since, scopes_of(t), {"waits": 1}))


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
    if not wait["missed"]:
        counters[f"sla_{_target(first)}_{'met' if within else 'missed'}"] = 1
    counters["replies"] = 1
    if data.get("private_reply"):
        counters["private_replies"] = 1
    if first:
        kind = t.get("kind") or "dm"
        counters.update({"answered": 1, f"answered_{kind}": 1})
        cycle["answered"] = True
    agent = data.get("agent") or t.get("assignee")
    out.append(Contribution(int(cycle["start"]), scopes_of(t, agent), counters))
    t["wait"] = None


def _breached(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    wait, cycle = t.get("wait"), t.get("cycle")
    scopes = scopes_of(t, t.get("assignee"))
    out.append(Contribution(at, scopes, {"breaches": 1}))
    if wait and cycle and not wait["missed"]:
        wait["missed"] = True
        out.append(Contribution(int(cycle["start"]), scopes, {f"sla_{_target(wait['first'])}_missed": 1}))


def _status_changed(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    to, previous = data.get("to"), data.get("from")
    agent = actor.split(":", 1)[1] if actor.startswith("agent:") else t.get("assignee")
    if to == "resolved":
        _close_wait(t, at, agent, out)
        cycle = t.get("cycle")
        if cycle:
            counters = duration("res", at - int(cycle["start"]))
            counters["resolved"] = 1
            out.append(Contribution(int(cycle["start"]), scopes_of(t, agent), counters))
        t["cycle"] = None
    elif to in ("pending", "snoozed"):
        if data.get("sla_paused_ms") is not None and t.get("wait"):
            t["wait"]["paused"] = True  # the clock stopped; the same wait runs on when reopened
        elif previous == "open":
            _close_wait(t, at, agent, out)
    elif to == "open" and data.get("awaiting_since") is not None:
        if previous == "resolved":
            t["cycle"] = None
        _wait_started(t, data, at, out)


def _close_wait(t: Tracker, at: int, agent: Optional[str], out: List[Contribution]) -> None:
    """The conversation stopped waiting without a reply: missed if past the deadline (unless the
    breach already counted it), else closed, neither met nor missed."""
    wait, cycle = t.get("wait"), t.get("cycle")
    t["wait"] = None
    if not wait or not cycle or wait["missed"]:
        return
    late = wait.get("due") is not None and at > int(wait["due"]) and not wait.get("paused")
    outcome = "missed" if late else "closed"
    out.append(Contribution(int(cycle["start"]), scopes_of(t, agent), {f"sla_{_target(wait['first'])}_{outcome}": 1}))


def _assigned(t: Tracker, data: Dict[str, Any], at: int, actor: str, out: List[Contribution]) -> None:
    t["assignee"] = data.get("to")


def _target(first: bool) -> str:
    return "first" if first else "next"


_HANDLERS: Dict[str, Callable[[Tracker, Dict[str, Any], int, str, List[Contribution]], None]] = {
    "created": _created, "reopened": _reopened, "awaiting_reply": _awaiting, "replied": _replied,
    "sla_breached": _breached, "status_changed": _status_changed, "assigned": _assigned,
}
