"""What every change does to a conversation, as pure functions over plain data.

A conversation's state is a plain dict shaped like its stored item. Each rule returns a
`Change`: attributes to set, remove and add to, the entry for the conversation event log (None
for changes that are not logged, e.g. a customer's follow-up while a reply is already due), and
`expect`: values of the state the decision depended on, which the store turns into write
conditions. No I/O here: the store reads, calls a rule and writes with the rule's conditions.

Index keys are derived here and only here (`derived_keys`), so a status, its index keys, the
counters and the reply deadline can never drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

STATUSES = ("open", "pending", "snoozed", "resolved")
DEFAULT_TEAM = "default"
# due_sort of a conversation with nothing due: after every real deadline (year 2255), kept in
# creation order so the index entry never moves while nothing is due.
NO_DEADLINE = 9_000_000_000_000
# What is due in each status (the `deadline` index key): the reply deadline of an open conversation,
# the wake-up of a snoozed one; nothing in the others.
DEADLINE_OF = {"open": "reply_due_at", "snoozed": "snoozed_until"}
PREVIEW_CHARS = 120

State = Mapping[str, Any]


class RuleError(ValueError):
    """A change that makes no sense for this conversation (answered as 400/422)."""


class Conflict(Exception):
    """Someone else changed the conversation first (e.g. claimed it): answered as 409."""

    def __init__(self, message: str, current: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.current = current or {}


@dataclass(frozen=True)
class SlaPolicy:
    """Reply targets. The SLA flow will choose a policy per conversation; until then one default."""

    first_response_ms: int = 15 * 60_000
    next_response_ms: int = 15 * 60_000
    warn_ratio: float = 0.8
    policy_id: Optional[str] = None

    def deadline(self, since: int, first: bool) -> Tuple[int, int]:
        """(warn_at, due_at) for a wait that started at `since`."""
        target = self.first_response_ms if first else self.next_response_ms
        return since + int(target * self.warn_ratio), since + target

    def pauses_on(self, status: Optional[str]) -> bool:
        """Whether the clock stops while the conversation has this status (policies may say so)."""
        return False

    def remaining_ms(self, now_ms: int, due_at_ms: int) -> int:
        return max(0, due_at_ms - now_ms)

    def business_ms_between(self, a_ms: int, b_ms: int) -> int:
        """Business time in [a, b): this default policy is open 24/7."""
        return max(0, int(b_ms) - int(a_ms))

    def resume(self, now_ms: int, remaining_ms: int, first: Optional[bool] = None) -> Tuple[int, int]:
        target = self.first_response_ms if first in (None, True) else self.next_response_ms
        warn_left = max(0, remaining_ms - int(target * (1 - self.warn_ratio)))
        return now_ms + warn_left, now_ms + remaining_ms


@dataclass(frozen=True)
class MessageFacts:
    """What the rules need to know about a message (not the message itself)."""

    message_id: str
    direction: str  # in (customer) | out (our side) | note (private, never sent)
    at: int  # platform time, ms
    preview: str
    contact_name: Optional[str] = None
    contact_handle: Optional[str] = None
    #: the customer's follower count when the delivery carries it (X): list rows show it
    contact_followers: Optional[int] = None
    #: Short labels an annotator gave a customer message (e.g. ("sentiment", "negative")): the
    #: conversation keeps those of its latest customer message as `inbound_labels` (list filters).
    labels: Tuple[Tuple[str, str], ...] = ()
    #: our side: the agent who wrote it (None: sent from the platform's own app, or a customer's)
    author: Optional[str] = None
    #: our side: a private reply (a DM answering a public comment)
    private_reply: bool = False


def inbound_labels(facts: MessageFacts) -> Dict[str, str]:
    """The conversation's `inbound_labels` for this customer message: whose labels they are."""
    return dict(facts.labels, of=facts.message_id)


@dataclass(frozen=True)
class LogEntry:
    type: str
    actor: str
    data: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Change:
    updates: Dict[str, Any] = field(default_factory=dict)
    removals: Set[str] = field(default_factory=set)
    increments: Dict[str, int] = field(default_factory=dict)
    log: Optional[LogEntry] = None
    #: attribute -> the value read (None: absent) that the decision depended on.
    expect: Dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.updates or self.removals or self.increments or self.log)


@dataclass(frozen=True)
class Guard:
    """One condition of a write prepared without reading (the follow-up fast path)."""

    attribute: str
    op: str  # "=", "<>", "<=", "<", "exists", "missing"
    value: Any = None
    or_missing: bool = False


def preview_of(text: Optional[str], msg_type: str, removed: bool = False) -> str:
    """One line for the list row: whitespace folded, cut to PREVIEW_CHARS."""
    if removed:
        return "[removed]"
    if text:
        flat = " ".join(text.split())
        return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"
    return f"[{msg_type}]"


def derived_keys(state: State) -> Dict[str, Any]:
    """The index keys that follow from team, status, assignee and deadline. `deadline` (the
    sparse `team-deadline` index's sort key) is None while nothing is due: the conversation then has
    no entry there, so a turn's start and end put and delete one entry instead of moving it
    (issue 21); `due_sort` (`owner-due`, which must list every conversation of an owner: loads,
    hand-offs) sorts the nothing-due ones last."""
    team = state.get("team") or DEFAULT_TEAM
    status = state.get("status") or "open"
    assignee = state.get("assignee")
    due = DEADLINE_OF.get(status)
    deadline = int(state[due]) if due is not None and state.get(due) is not None else None
    due_sort = deadline if deadline is not None else NO_DEADLINE + int(state.get("created_at") or 0)
    return {"queue": f"{team}#{status}", "owner": f"a#{assignee}#{status}" if assignee else f"u#{team}#{status}",
            "due_sort": due_sort, "deadline": deadline}


def deadlines_of(status: str, due_sort: Any) -> Dict[str, Optional[int]]:
    """What `derived_keys` folded into `due_sort`, unfolded: an open conversation's reply deadline
    and a snoozed one's wake-up (no other status keeps either). The recency index projects
    `due_sort` instead of both (models.LIST_FIELDS: DynamoDB projects at most 20 attributes per
    index), so its rows show what the full rows show."""
    due = int(due_sort) if due_sort is not None and int(due_sort) < NO_DEADLINE else None
    return {"reply_due_at": due if status == "open" else None,
            "snoozed_until": due if status == "snoozed" else None}


def apply(state: State, change: Change) -> Dict[str, Any]:
    """The state after a change (what the store's write leaves in DynamoDB)."""
    after = dict(state)
    for name in change.removals:
        after.pop(name, None)
    after.update(change.updates)
    for name, amount in change.increments.items():
        after[name] = int(after.get(name) or 0) + amount
    return after


def _finish(state: State, change: Change) -> Change:
    """Add the derived keys that moved, drop no-op sets, and bump the version if logged."""
    after = apply(state, change)
    for name, value in derived_keys(after).items():
        if value is None:
            change.updates.pop(name, None)
            change.removals.add(name)
        elif state.get(name) != value:
            change.updates[name] = value
    change.updates = {k: v for k, v in change.updates.items() if state.get(k) != v or k in ("version",)}
    change.removals = {k for k in change.removals if k in state and state.get(k) is not None}
    if change.log is not None:
        change.updates["version"] = int(state.get("version") or 0) + 1
        change.expect.setdefault("version", state.get("version"))
    return change


# --- messages ----------------------------------------------------------------------------------


def new_conversation(ids: Mapping[str, Any], facts: MessageFacts, team: str, policy: SlaPolicy,
                     now: int) -> Dict[str, Any]:
    """The whole item of a conversation that starts with `facts` (version 1), and its log entry
    is `created_entry`. `ids` holds conversation_id, channel, account_id, thread_key,
    thread_kind, subject, contact_id, contact_platform_id."""
    state: Dict[str, Any] = {k: v for k, v in ids.items() if v is not None}
    state.update({"status": "open", "status_changed_at": now, "team": team or DEFAULT_TEAM, "created_at": now,
                  "cycle_started_at": now, "message_count": 0, "unread_count": 0, "version": 0})
    change = message_arrived(state, facts, policy, now)
    created = apply(state, change)
    created.update({k: v for k, v in derived_keys(created).items() if v is not None})
    created["version"] = 1
    return created


def created_entry(state: State, facts: MessageFacts, policy: Optional[SlaPolicy] = None) -> LogEntry:
    data = {"channel": state.get("channel"), "team": state.get("team"), "message_id": facts.message_id,
            "account_id": state.get("account_id"), "thread_kind": state.get("thread_kind") or "dm"}
    data.update(resolution_target(policy, int(state.get("cycle_started_at") or state.get("created_at") or 0)))
    if state.get("reply_due_at") is not None:
        data.update({"awaiting_since": state.get("awaiting_reply_since"), "due_at": state.get("reply_due_at"),
                     "warn_at": state.get("warn_at"), "first": True})
    return LogEntry("created", "customer" if facts.direction == "in" else "system", data)


def message_arrived(state: State, facts: MessageFacts, policy: SlaPolicy, now: int) -> Change:
    """A message (customer's, ours, or a note) was stored in this conversation."""
    change = Change()
    if state.get("last_applied") == facts.message_id:
        return change  # a retry of what is already applied
    change.expect["last_applied"] = state.get("last_applied")
    change.updates["last_applied"] = facts.message_id
    at = facts.at
    if facts.direction == "note":
        change.log = LogEntry("note_added", "agent", {"message_id": facts.message_id})
        return _finish(state, change)
    change.increments["message_count"] = 1
    latest = state.get("last_message_at")
    if latest is None or latest <= at:
        change.updates.update({"last_message_at": at, "last_message_id": facts.message_id,
                           "last_message_preview": facts.preview, "last_message_direction": facts.direction})
    if facts.direction == "in":
        _customer_message(state, facts, policy, now, change)
    else:
        _our_message(state, facts, change, policy)
    return _finish(state, change)


def _customer_message(state: State, facts: MessageFacts, policy: SlaPolicy, now: int, change: Change) -> None:
    at = facts.at
    if state.get("last_inbound_at") is None or state["last_inbound_at"] < at:
        change.updates["last_inbound_at"] = at
    if facts.labels and (state.get("last_inbound_at") is None or state["last_inbound_at"] <= at):
        change.updates["inbound_labels"] = inbound_labels(facts)
    if state.get("read_at") is None or state["read_at"] < at:
        change.increments["unread_count"] = 1
    if facts.contact_name and state.get("contact_name") != facts.contact_name:
        change.updates["contact_name"] = facts.contact_name
    if facts.contact_handle and state.get("contact_handle") != facts.contact_handle:
        change.updates["contact_handle"] = facts.contact_handle
    if facts.contact_followers is not None and state.get("contact_followers") != facts.contact_followers:
        change.updates["contact_followers"] = facts.contact_followers
    status = state.get("status") or "open"
    if status != "open":
        if (state.get("status_changed_at") or 0) >= at:
            return  # written before the agent closed it: it does not reopen the thread
        change.updates.update({"status": "open", "status_changed_at": now})
        if status == "resolved":  # a new reopen cycle (what handle time and reports count per)
            change.updates["cycle_started_at"] = now
        change.removals.add("snoozed_until")
        _start_wait(state, at, policy, change)
        data = dict(_wait_data(change), previous=status, message_id=facts.message_id)
        if status == "resolved":
            data.update(resolution_target(policy, now))
        change.log = LogEntry("reopened", "customer", data)
        return
    since = state.get("awaiting_reply_since")
    answered_after = state.get("last_outbound_at") is not None and state["last_outbound_at"] >= at
    if answered_after or (since is not None and since <= at):
        return  # already answered after it, or already waiting since earlier: nothing to log
    _start_wait(state, at, policy, change)
    change.log = LogEntry("awaiting_reply", "customer", dict(_wait_data(change), message_id=facts.message_id))


def resolution_target(policy: Any, cycle_start: int) -> Dict[str, Any]:
    """The cycle's resolution deadline, frozen in the log entry that starts the cycle (reports
    count it met or missed), when the policy has a resolution target."""
    deadline = getattr(policy, "resolution_deadline", None)
    found = deadline(int(cycle_start)) if deadline is not None else None
    return {} if found is None else {"resolution_due_at": int(found[1])}


def _start_wait(state: State, since: int, policy: SlaPolicy, change: Change) -> None:
    """A new turn: the customer waits from `since`; its number lets the SLA flow's timers of an
    older turn be recognised as stale."""
    warn_at, due_at = policy.deadline(since, first=state.get("first_response_at") is None)
    paused = state.get("sla_paused_ms")
    if paused is not None and state.get("status") != "open":
        # the clock was paused (pending/snoozed under a pausing policy): it runs on from what was left
        warn_at, due_at = policy.resume(since, int(paused), first=state.get("first_response_at") is None)
        since = int(state.get("awaiting_reply_since") or since)
        change.removals.add("sla_paused_ms")
    turn = int(state.get("turn") or 0) + 1  # also when a late, older message moves the wait earlier
    change.updates.update({"awaiting_reply_since": since, "reply_due_at": due_at, "warn_at": warn_at, "turn": turn})
    if getattr(policy, "policy_id", None):
        change.updates["sla_policy_id"] = policy.policy_id
    change.removals.update({"sla_state", "breached_at"})


def _wait_data(change: Change) -> Dict[str, Any]:
    return {"awaiting_since": change.updates.get("awaiting_reply_since"), "due_at": change.updates.get("reply_due_at"),
            "warn_at": change.updates.get("warn_at")}


def _our_message(state: State, facts: MessageFacts, change: Change, policy: Optional[SlaPolicy] = None) -> None:
    at = facts.at
    if state.get("last_outbound_at") is None or state["last_outbound_at"] < at:
        change.updates["last_outbound_at"] = at
    since = state.get("awaiting_reply_since")
    if since is None or since > at:
        return  # nothing was waiting (or this is older than the wait): no turn ends
    change.removals.update({"awaiting_reply_since", "reply_due_at", "warn_at", "sla_state", "breached_at"})
    first = state.get("first_response_at") is None
    if first:
        change.updates["first_response_at"] = at
    due = state.get("reply_due_at")
    data: Dict[str, Any] = {"message_id": facts.message_id, "response_ms": at - since, "first": first,
                            "within_target": due is None or at <= due}
    # Facts for reports (chalicelib.reports), frozen now: who answered, how, and the wait in the
    # business time of the policy's own calendar (the one its deadline was counted in).
    business = getattr(policy or SlaPolicy(), "business_ms_between", None)
    if business is not None:
        data["business_ms"] = int(business(int(since), at))
    if facts.author:
        data["agent"] = facts.author
    if facts.private_reply:
        data["private_reply"] = True
    change.log = LogEntry("replied", "agent", data)


def follow_up(facts: MessageFacts) -> Tuple[Change, List[Guard]]:
    """The change of a message that does not change the conversation's state, prepared without
    reading, and the guards under which it is exactly what `message_arrived` would do: a
    customer's message while a reply is already due, or our message while nothing is due.
    When a guard fails the store falls back to read + `message_arrived`."""
    at = facts.at
    change = Change(updates={"last_applied": facts.message_id, "last_message_at": at,
                         "last_message_id": facts.message_id, "last_message_preview": facts.preview,
                         "last_message_direction": facts.direction},
                    increments={"message_count": 1})
    guards = [Guard("last_applied", "<>", facts.message_id, or_missing=True),
              Guard("last_message_at", "<=", at), Guard("status", "=", "open")]
    if facts.direction == "in":
        change.updates["last_inbound_at"] = at
        if facts.labels:
            change.updates["inbound_labels"] = inbound_labels(facts)
        change.increments["unread_count"] = 1
        guards += [Guard("awaiting_reply_since", "<=", at), Guard("last_inbound_at", "<=", at),
                   Guard("read_at", "<", at, or_missing=True)]
        for name, value in (("contact_name", facts.contact_name), ("contact_handle", facts.contact_handle)):
            if value:
                guards.append(Guard(name, "=", value))
        if facts.contact_followers is not None:
            change.updates["contact_followers"] = facts.contact_followers
    else:
        change.updates["last_outbound_at"] = at
        guards += [Guard("awaiting_reply_since", "missing"), Guard("last_outbound_at", "<=", at, or_missing=True)]
    return change, guards


def guards_hold(state: State, guards: List[Guard]) -> bool:
    """Whether a state satisfies the guards (the store's condition, evaluated in memory)."""
    for guard in guards:
        value = state.get(guard.attribute)
        if guard.op == "missing":
            ok = value is None
        elif guard.op == "exists":
            ok = value is not None
        elif value is None:
            ok = guard.or_missing
        elif guard.op == "=":
            ok = value == guard.value
        elif guard.op == "<>":
            ok = value != guard.value
        elif guard.op == "<=":
            ok = value <= guard.value
        elif guard.op == "<":
            ok = value < guard.value
        else:
            raise ValueError(guard.op)
        if not ok:
            return False
    return True


def echo_absorbed(state: State, duplicate_id: str, keep_id: str, keep_preview: str, total: int) -> Change:
    """A duplicate echo of our reply `keep_id` was removed: the count is the messages' own
    (`total`), and the list row shows our reply if it showed the duplicate. Not logged: the
    reply itself was."""
    change = Change(updates={"message_count": total})
    change.expect["message_count"] = state.get("message_count")
    if state.get("last_message_id") == duplicate_id:
        change.updates.update({"last_message_id": keep_id, "last_message_preview": keep_preview})
        change.expect["last_message_id"] = duplicate_id
    return _finish(state, change)


def message_changed(state: State, message_id: str, preview: str, kind: str, at: int) -> Change:
    """A message was edited or removed on the platform: the list row follows if it was the
    latest one; the change is logged either way (the audit trail shows removals)."""
    change = Change()
    if state.get("last_message_id") == message_id:
        change.updates["last_message_preview"] = preview
        change.expect["last_message_id"] = message_id
    change.log = LogEntry(kind, "customer", {"message_id": message_id, "at": at})
    return _finish(state, change)


# --- agent and flow actions --------------------------------------------------------------------

ANY = object()  # `expected` value meaning "whoever holds it"


def assign(state: State, agent_id: Optional[str], actor: str, now: int, expected: Any = ANY) -> Change:
    """Give the conversation to `agent_id` (None: unassign). With `expected`, only if the current
    assignee is that (None: nobody), else Conflict: a claim can be won by exactly one."""
    current = state.get("assignee")
    if expected is not ANY and current != expected:
        if current == agent_id:
            return Change()  # already ours: a repeated claim is not a conflict
        raise Conflict("the conversation was assigned to someone else first", {"assignee": current})
    if current == agent_id:
        return Change()
    change = Change(log=LogEntry("assigned", actor, {"from": current, "to": agent_id}))
    change.expect["assignee"] = current
    if agent_id is None:
        change.removals.add("assignee")
    else:
        change.updates["assignee"] = agent_id
    return _finish(state, change)


MAX_SNOOZE_MS = 366 * 24 * 3600 * 1000


def change_status(state: State, status: str, actor: str, now: int, until: Optional[int] = None,
                  policy: Optional[SlaPolicy] = None) -> Change:
    """open, pending, snoozed (until a time) or resolved. Nothing is due while not open; an
    agent reopening a thread whose last word was the customer's starts a fresh wait."""
    if status not in STATUSES:
        raise RuleError(f"status must be one of {', '.join(STATUSES)}")
    if status == "snoozed":
        if until is None or until <= now:
            raise RuleError("snoozed needs an 'until' time in the future")
        if until > now + MAX_SNOOZE_MS:
            raise RuleError("a conversation can be snoozed for at most a year")
    elif until is not None:
        raise RuleError("'until' is only for snoozed")
    previous = state.get("status") or "open"
    if previous == status and state.get("snoozed_until") == until:
        return Change()
    change = Change(updates={"status": status, "status_changed_at": now})
    change.expect["status"] = previous
    if previous == "resolved":
        change.updates["cycle_started_at"] = now
    data: Dict[str, Any] = {"from": previous, "to": status}
    if status == "snoozed":
        change.updates["snoozed_until"] = until
        data["until"] = until
    else:
        change.removals.add("snoozed_until")
    policy = policy or SlaPolicy()
    if status != "open":
        waiting = previous == "open" and state.get("reply_due_at") is not None
        if waiting and policy.pauses_on(status):
            # the clock stops; what is left is kept and runs on when the conversation reopens
            change.updates["sla_paused_ms"] = policy.remaining_ms(now, int(state["reply_due_at"]))
            data["sla_paused_ms"] = change.updates["sla_paused_ms"]
            change.removals.update({"reply_due_at", "warn_at", "sla_state", "breached_at"})
        elif previous == "open" or not policy.pauses_on(status):
            change.removals.update({"awaiting_reply_since", "reply_due_at", "warn_at", "sla_state", "breached_at",
                                    "sla_paused_ms"})
    elif previous != "open" and (state.get("sla_paused_ms") is not None or (
            state.get("last_message_direction") == "in" and state.get("last_inbound_at"))):
        _start_wait(state, now, policy, change)
        data.update(_wait_data(change))
    if previous == "resolved" and status == "open":
        data.update(resolution_target(policy, now))
    change.log = LogEntry("status_changed", actor, data)
    return _finish(state, change)


SLA_EARLY_TOLERANCE_MS = 0  # a timer before its time is not recorded (the consumer waits for it)


def sla_timer_fired(state: State, turn: int, kind: str, now: int) -> Change:
    """The SLA flow says a turn reached its warning point or its deadline. Recorded once per
    turn; a timer of an answered or older turn, or one that fired early, changes nothing."""
    if kind not in ("warning", "breach"):
        raise RuleError("kind must be warning or breach")
    due, warn = state.get("reply_due_at"), state.get("warn_at")
    if state.get("status") != "open" or due is None or int(state.get("turn") or 0) != int(turn):
        return Change()
    recorded = state.get("sla_state")
    if kind == "warning":
        if recorded in ("warning", "breached") or now < (warn or due) - SLA_EARLY_TOLERANCE_MS:
            return Change()
        change = Change(updates={"sla_state": "warning"},
                        log=LogEntry("sla_warning", "flow", {"turn": int(turn), "due_at": due, "warn_at": warn}))
    else:
        if recorded == "breached" or now < due - SLA_EARLY_TOLERANCE_MS:
            return Change()
        change = Change(updates={"sla_state": "breached", "breached_at": now},
                        log=LogEntry("sla_breached", "flow", {"turn": int(turn), "due_at": due,
                                                               "late_ms": max(0, now - due)}))
    change.expect["turn"] = state.get("turn")
    return _finish(state, change)


PRIORITIES = ("none", "low", "medium", "high", "urgent")
MAX_TAGS = 20


def set_priority(state: State, priority: str, actor: str) -> Change:
    if priority not in PRIORITIES:
        raise RuleError(f"priority must be one of {', '.join(PRIORITIES)}")
    previous = state.get("priority") or "none"
    if previous == priority:
        return Change()
    change = Change(log=LogEntry("priority_changed", actor, {"from": previous, "to": priority}))
    if priority == "none":
        change.removals.add("priority")
    else:
        change.updates["priority"] = priority
    return _finish(state, change)


def tag_name(tag: Any) -> Optional[str]:
    """A tag as stored (trimmed, lower-cased: 1 to 32 characters, no '#', clean text), or None
    when `tag` cannot be one. The one tag rule: PATCH, bulk, list filters and SLA policies."""
    from chalicelib.inputs import is_clean

    if not isinstance(tag, str) or not is_clean(tag) or "#" in tag:
        return None
    name = tag.strip().lower()
    return name if 1 <= len(name) <= 32 else None


def set_tags(state: State, tags: List[str], actor: str) -> Change:
    """Replace the tags (trimmed, lower-cased, unique, in the order given)."""
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise RuleError(f"tags must be a list of at most {MAX_TAGS} names")
    clean: List[str] = []
    for tag in tags:
        name = tag_name(tag)
        if name is None:
            raise RuleError("each tag is a name of 1 to 32 characters without '#' or control characters")
        if name not in clean:
            clean.append(name)
    previous = list(state.get("tags") or [])
    if previous == clean:
        return Change()
    change = Change(log=LogEntry("tags_changed", actor, {"added": [t for t in clean if t not in previous],
                                                          "removed": [t for t in previous if t not in clean]}))
    if clean:
        change.updates["tags"] = clean
    else:
        change.removals.add("tags")
    return _finish(state, change)


def mark_read(state: State, actor: str, now: int) -> Change:
    """The agent has seen everything up to now."""
    if not state.get("unread_count"):
        return Change()
    change = Change(updates={"unread_count": 0, "read_at": now}, log=LogEntry("read", actor, {}))
    change.expect["last_inbound_at"] = state.get("last_inbound_at")
    return _finish(state, change)
