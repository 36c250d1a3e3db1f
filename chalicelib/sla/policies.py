"""SLA policies: validation, storage (the `sla-policies` table), matching and the per-container cache.

The flow asks `policy_for(conversation_state)` for every turn; the answer is a `Policy`, which is
duck-type compatible with `chalicelib.inbox.rules.SlaPolicy` (`first_response_ms`,
`next_response_ms`, `warn_ratio`, `deadline(since, first)`) and adds business hours, pause and
resume. Matching, most specific first: a policy names channels, priorities, tags, listening topics
and sentiments (each "one of"; absent means any); one that names more of them wins
(channel+priority+tags > channel > a stored catch-all), ties go to topics, then sentiments, then
tags, then priorities, then channels, then the oldest policy. Topics and sentiment are those of the
conversation's latest customer message (its `inbound_labels`, which the listening annotator
writes: `sentiment`, and `topics` as names joined by a newline), so a negative "Refunds" message
can be held to a shorter target than a neutral one.
Nothing matching: the built-in default (DEFAULT_REPLY_SLA_SECONDS, else
DEFAULT_REPLY_SLA_MINUTES, for first and next response; warning at 80 %; 24/7; no pause).

Cost: the table is read whole (one Scan, it holds a few policies) at most once per
POLICY_CACHE_SECONDS per container, kept on `runtime.sla_policies`; a write through the API
forgets this container's copy at once, other containers within the minute.

Names are unique (case and spacing folded): each policy owns a claim item `name#<folded name>`
in the same table, written in the same transaction as the policy.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from chalicelib import config
from chalicelib.sla.calendar import BusinessHours, Calendar, parse_business_hours

POLICY_CACHE_SECONDS = 60.0
MAX_POLICIES = 100
MAX_NAME_CHARS = 100
MAX_TARGET_SECONDS = 365 * 86_400  # a Step Functions execution lasts at most a year
#: With business hours, a target may need at most this many weeks of opening time.
MAX_TARGET_WEEKS = 40
MAX_TAGS = 20
MAX_TOPIC_NAMES = 20
PAUSABLE = ("pending", "snoozed")
DEFAULT_WARN_PERCENT = 80
DEFAULT_POLICY_ID = "default"
#: The message sentiments a policy may target (chalicelib.listening.sentiment.LABELS).
SENTIMENTS = ("positive", "neutral", "negative", "unscored")

_READ_ONLY = {"id", "policy_id", "created_at", "updated_at", "builtin"}
_FIELDS = {"name", "channels", "priorities", "tags", "topics", "sentiments", "first_response_seconds",
           "next_response_seconds",
           "resolution_seconds", "warn_at_percent", "business_hours", "pause_on"}


class NotFound(LookupError):
    """No policy with that id (404)."""


class DuplicateName(Exception):
    """Another policy has that name (409)."""


# --- the runtime object ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """One SLA policy as the flow uses it. Times in ms; deadlines in business time."""

    policy_id: str
    name: str
    first_response_ms: int
    next_response_ms: int
    warn_ratio: float = DEFAULT_WARN_PERCENT / 100
    resolution_ms: Optional[int] = None
    calendar: Calendar = field(default_factory=Calendar, compare=False, repr=False)
    pause_on: FrozenSet[str] = frozenset()
    channels: Optional[FrozenSet[str]] = None
    priorities: Optional[FrozenSet[str]] = None
    tags: Optional[FrozenSet[str]] = None
    topics: Optional[FrozenSet[str]] = None  # case-folded topic names
    sentiments: Optional[FrozenSet[str]] = None
    created_at: int = 0
    builtin: bool = False

    # --- the interface the flow uses (rules.SlaPolicy compatible) ---
    def target_ms(self, first: bool) -> int:
        return self.first_response_ms if first else self.next_response_ms

    def deadline(self, since: int, first: bool) -> Tuple[int, int]:
        """(warn_at, due_at) for a wait that started at `since` (ms), counted in business time."""
        return self._deadline_for(since, self.target_ms(first))

    def resolution_deadline(self, since: int) -> Optional[Tuple[int, int]]:
        """(warn_at, due_at) of the resolution target counted from `since`, or None when unset."""
        return None if self.resolution_ms is None else self._deadline_for(since, self.resolution_ms)

    def _deadline_for(self, since: int, target: int) -> Tuple[int, int]:
        since = int(since)
        warn = self.calendar.add_business_ms(since, int(target * self.warn_ratio))
        return warn, self.calendar.add_business_ms(since, target)

    def pauses_on(self, status: Optional[str]) -> bool:
        """Does the clock stop while the conversation has this status?"""
        return status in self.pause_on

    def remaining_ms(self, now_ms: int, due_at_ms: int) -> int:
        """Business time left until the deadline (0 when it has passed): kept while paused."""
        return self.calendar.business_ms_between(now_ms, due_at_ms)

    def business_ms_between(self, a_ms: int, b_ms: int) -> int:
        """Business time in [a, b) on this policy's calendar (reports freeze it into the log)."""
        return self.calendar.business_ms_between(a_ms, b_ms)

    def resume(self, now_ms: int, remaining_ms: int, first: Optional[bool] = None) -> Tuple[int, int]:
        """(warn_at, due_at) when a paused clock restarts at `now_ms` with `remaining_ms` left.

        With `first` (which target was running) the warning stays at its place in the target:
        at warn_ratio of the whole target, or now if that point was already passed before the
        pause. Without it the warning comes at warn_ratio of what is left."""
        remaining_ms = max(0, int(remaining_ms))
        due = self.calendar.add_business_ms(now_ms, remaining_ms)
        if first is None:
            warn_left = int(remaining_ms * self.warn_ratio)
        else:
            target = self.target_ms(first)
            warn_left = remaining_ms - (target - int(target * self.warn_ratio))
        warn = self.calendar.add_business_ms(now_ms, max(0, warn_left))
        return min(warn, due), due

    # --- matching ---
    def matches(self, state: Mapping[str, Any]) -> bool:
        if self.channels is not None and state.get("channel") not in self.channels:
            return False
        if self.priorities is not None and (state.get("priority") or "none") not in self.priorities:
            return False
        if self.tags is not None and not self.tags.intersection(state.get("tags") or ()):
            return False
        if self.topics is not None or self.sentiments is not None:
            sentiment, topics = message_labels(state)
            if self.sentiments is not None and sentiment not in self.sentiments:
                return False
            if self.topics is not None and not self.topics.intersection(topics):
                return False
        return True

    def specificity(self) -> Tuple[int, ...]:
        """Sort key, most specific first when sorted ascending."""
        named = [self.topics is not None, self.sentiments is not None, self.tags is not None,
                 self.priorities is not None, self.channels is not None]
        return (-sum(named), *(-int(n) for n in named), self.created_at)

    def to_json(self) -> Dict[str, Any]:
        hours = self.calendar.hours
        return {
            "id": self.policy_id, "name": self.name,
            "channels": sorted(self.channels) if self.channels is not None else None,
            "priorities": sorted(self.priorities) if self.priorities is not None else None,
            "tags": sorted(self.tags) if self.tags is not None else None,
            "topics": sorted(self.topics) if self.topics is not None else None,
            "sentiments": sorted(self.sentiments) if self.sentiments is not None else None,
            "first_response_seconds": self.first_response_ms // 1000,
            "next_response_seconds": self.next_response_ms // 1000,
            "resolution_seconds": None if self.resolution_ms is None else self.resolution_ms // 1000,
            "warn_at_percent": round(self.warn_ratio * 100),
            "business_hours": hours.to_json() if hours is not None else None,
            "pause_on": sorted(self.pause_on),
        }


def message_labels(state: Mapping[str, Any]) -> Tuple[Optional[str], FrozenSet[str]]:
    """(sentiment label, case-folded topic names) of a conversation's latest customer message."""
    labels = state.get("inbound_labels")
    if hasattr(labels, "as_dict"):
        labels = labels.as_dict()
    if not isinstance(labels, Mapping):
        return None, frozenset()
    topics = labels.get("topics")
    names = frozenset(n.casefold() for n in topics.split("\n") if n) if isinstance(topics, str) else frozenset()
    sentiment = labels.get("sentiment")
    return (sentiment if isinstance(sentiment, str) else None), names


def default_policy() -> Policy:
    """The built-in policy: what applies when no stored policy matches (read from env each time)."""
    seconds = config.int_setting("DEFAULT_REPLY_SLA_SECONDS", 0) or 60 * config.int_setting(
        "DEFAULT_REPLY_SLA_MINUTES", config.DEFAULT_REPLY_SLA_MINUTES)
    return Policy(DEFAULT_POLICY_ID, "Default", seconds * 1000, seconds * 1000, builtin=True)


# --- validation -----------------------------------------------------------------------------------


def _seconds(body: Mapping[str, Any], name: str, required: bool) -> Optional[int]:
    value = body.get(name)
    if value is None:
        if required:
            raise ValueError(f"{name} is required (whole seconds)")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number of seconds")
    if not 1 <= value <= MAX_TARGET_SECONDS:
        raise ValueError(f"{name} must be between 1 and {MAX_TARGET_SECONDS} seconds (one year)")
    return value


def _names(body: Mapping[str, Any], name: str, allowed: Optional[Sequence[str]], limit: int,
           fold: bool = False) -> Optional[List[str]]:
    """An optional non-empty list of unique names (absent or null: any)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list (or absent for all)")
    if not value:
        raise ValueError(f"{name} must not be empty: leave it out to match all")
    if len(value) > limit:
        raise ValueError(f"{name} has more than {limit} entries")
    from chalicelib.inbox.rules import tag_name

    found: List[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"{name}[{index}] must be a string")
        if fold:
            tag = tag_name(item)
            if tag is None:
                raise ValueError(f"{name}[{index}] must be a tag of 1 to 32 characters without '#' or "
                                 "control characters")
            item = tag
        elif allowed is None:
            item = " ".join(item.split())
            if not 1 <= len(item) <= 80 or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in item):
                raise ValueError(f"{name}[{index}] must be a topic name of 1 to 80 printable characters")
        elif item not in allowed:
            raise ValueError(f"{name}[{index}] must be one of {', '.join(allowed)}")
        if item not in found:
            found.append(item)
    return sorted(found)


def validate(body: Any) -> Dict[str, Any]:
    """The API body as a clean policy document; ValueError names the first problem (400)."""
    from chalicelib.api.views import CHANNELS
    from chalicelib.inbox.rules import PRIORITIES
    from chalicelib.documents import named_document

    name = named_document(body, _FIELDS | _READ_ONLY, MAX_NAME_CHARS)
    doc: Dict[str, Any] = {
        "name": name,
        "channels": _names(body, "channels", CHANNELS, len(CHANNELS)),
        "priorities": _names(body, "priorities", PRIORITIES, len(PRIORITIES)),
        "tags": _names(body, "tags", None, MAX_TAGS, fold=True),
        "topics": _names(body, "topics", None, MAX_TOPIC_NAMES),
        "sentiments": _names(body, "sentiments", SENTIMENTS, len(SENTIMENTS)),
        "first_response_seconds": _seconds(body, "first_response_seconds", True),
        "next_response_seconds": _seconds(body, "next_response_seconds", True),
        "resolution_seconds": _seconds(body, "resolution_seconds", False),
    }
    percent = body.get("warn_at_percent", DEFAULT_WARN_PERCENT)
    if percent is None:
        percent = DEFAULT_WARN_PERCENT
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
        raise ValueError("warn_at_percent must be a whole number from 1 to 100")
    doc["warn_at_percent"] = percent
    hours = parse_business_hours(body.get("business_hours"))
    if hours is not None:
        longest = max(s for s in (doc["first_response_seconds"], doc["next_response_seconds"],
                                  doc["resolution_seconds"]) if s is not None)
        if longest * 1000 > hours.weekly_open_ms() * MAX_TARGET_WEEKS:
            raise ValueError(f"a target of {longest} s needs more than {MAX_TARGET_WEEKS} weeks of these "
                             "business hours: shorten it or open longer")
    doc["business_hours"] = hours.to_json() if hours is not None else None
    pause_on = body.get("pause_on")
    if pause_on is None:
        doc["pause_on"] = []
    else:
        if not isinstance(pause_on, list) or len(pause_on) > len(PAUSABLE) * 2:
            raise ValueError(f"pause_on must be a list of statuses from {', '.join(PAUSABLE)}")
        for index, status in enumerate(pause_on):
            if status not in PAUSABLE:
                raise ValueError(f"pause_on[{index}] must be one of {', '.join(PAUSABLE)}")
        doc["pause_on"] = sorted(set(pause_on))
    return doc


def policy_from(doc: Mapping[str, Any], policy_id: str, created_at: int = 0,
                hours: Optional[BusinessHours] = None) -> Policy:
    """A runtime policy from a validated document."""
    def optional(name: str) -> Optional[FrozenSet[str]]:
        return frozenset(doc[name]) if doc.get(name) is not None else None

    if hours is None and doc.get("business_hours") is not None:
        hours = parse_business_hours(doc["business_hours"])
    resolution = doc.get("resolution_seconds")
    return Policy(
        policy_id=policy_id, name=doc["name"],
        first_response_ms=int(doc["first_response_seconds"]) * 1000,
        next_response_ms=int(doc["next_response_seconds"]) * 1000,
        warn_ratio=int(doc.get("warn_at_percent") or DEFAULT_WARN_PERCENT) / 100,
        resolution_ms=int(resolution) * 1000 if resolution is not None else None,
        calendar=Calendar(hours), pause_on=frozenset(doc.get("pause_on") or ()),
        channels=optional("channels"), priorities=optional("priorities"), tags=optional("tags"),
        topics=frozenset(t.casefold() for t in doc["topics"]) if doc.get("topics") is not None else None,
        sentiments=optional("sentiments"), created_at=int(created_at or 0))


# --- storage --------------------------------------------------------------------------------------


def _claim_key(name: str) -> str:
    return "name#" + " ".join(name.split()).casefold()


def _doc_of(item: Any) -> Dict[str, Any]:
    def listed(value: Any) -> Optional[List[str]]:
        return list(value) if value is not None else None

    return {
        "name": item.name, "channels": listed(item.channels), "priorities": listed(item.priorities),
        "tags": listed(item.tags), "topics": listed(item.topics), "sentiments": listed(item.sentiments),
        "first_response_seconds": int(item.first_response_seconds),
        "next_response_seconds": int(item.next_response_seconds),
        "resolution_seconds": int(item.resolution_seconds) if item.resolution_seconds is not None else None,
        "warn_at_percent": int(item.warn_at_percent if item.warn_at_percent is not None else DEFAULT_WARN_PERCENT),
        "business_hours": item.business_hours, "pause_on": list(item.pause_on or []),
    }


def _json_of(item: Any) -> Dict[str, Any]:
    body = {"id": item.policy_id}
    body.update(_doc_of(item))
    body["created_at"] = int(item.created_at or 0)
    body["updated_at"] = int(item.updated_at or 0)
    return body


def _item(policy_id: str, doc: Mapping[str, Any], created_at: int, updated_at: int) -> Any:
    from chalicelib.models import SlaPolicy

    return SlaPolicy(policy_id, kind="policy", created_at=created_at, updated_at=updated_at, **doc)


def _policy_items() -> List[Any]:
    from chalicelib.models import SlaPolicy

    return [item for item in SlaPolicy.scan(consistent_read=True) if item.kind == "policy"]


def _get(policy_id: str) -> Any:
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import SlaPolicy

    if not isinstance(policy_id, str) or not 1 <= len(policy_id) <= 64 or policy_id.startswith("name#"):
        raise NotFound(policy_id)
    try:
        item = SlaPolicy.get(policy_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(policy_id) from None
    if item.kind != "policy":
        raise NotFound(policy_id)
    return item


def _claim_holder(name: str) -> Optional[str]:
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import SlaPolicy

    try:
        return SlaPolicy.get(_claim_key(name), consistent_read=True).claimed_by
    except DoesNotExist:
        return None


def list_policies() -> List[Dict[str, Any]]:
    """Every stored policy (fresh read), most specific first: the order matching tries them."""
    items = _policy_items()
    order = {p.policy_id: p.specificity() for p in (policy_from(_doc_of(i), i.policy_id, i.created_at)
                                                     for i in items)}
    return [_json_of(item) for item in sorted(items, key=lambda i: (order[i.policy_id], i.policy_id))]


def get_policy(policy_id: str) -> Dict[str, Any]:
    return _json_of(_get(policy_id))


def create_policy(body: Any, now_ms: int) -> Dict[str, Any]:
    """Validate and store a new policy. ValueError (400), DuplicateName (409)."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    from chalicelib.models import SlaPolicy
    from chalicelib.runtime import runtime

    doc = validate(body)
    if _claim_holder(doc["name"]) is not None:
        raise DuplicateName(doc["name"])
    if len(_policy_items()) >= MAX_POLICIES:
        raise ValueError(f"at most {MAX_POLICIES} policies: delete one first")
    policy_id = "sla_" + uuid.uuid4().hex[:20]
    item = _item(policy_id, doc, now_ms, now_ms)
    try:
        with TransactWrite(connection=runtime.connection()) as transaction:
            transaction.save(SlaPolicy(_claim_key(doc["name"]), kind="name", claimed_by=policy_id),
                             condition=SlaPolicy.policy_id.does_not_exist())
            transaction.save(item, condition=SlaPolicy.policy_id.does_not_exist())
    except TransactWriteError:
        if _claim_holder(doc["name"]) not in (None, policy_id):
            raise DuplicateName(doc["name"]) from None
        raise
    forget()
    return _json_of(item)


def replace_policy(policy_id: str, body: Any, now_ms: int) -> Dict[str, Any]:
    """Replace a policy whole (PUT). NotFound (404), ValueError (400), DuplicateName (409)."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    from chalicelib.models import SlaPolicy
    from chalicelib.runtime import runtime

    current = _get(policy_id)
    doc = validate(body)
    holder = _claim_holder(doc["name"])
    if holder is not None and holder != policy_id:
        raise DuplicateName(doc["name"])
    item = _item(policy_id, doc, int(current.created_at or now_ms), now_ms)
    old_key, new_key = _claim_key(current.name), _claim_key(doc["name"])
    try:
        with TransactWrite(connection=runtime.connection()) as transaction:
            if old_key != new_key:
                transaction.save(SlaPolicy(new_key, kind="name", claimed_by=policy_id),
                                 condition=SlaPolicy.policy_id.does_not_exist())
                transaction.delete(SlaPolicy(old_key), condition=SlaPolicy.claimed_by == policy_id)
            transaction.save(item, condition=SlaPolicy.policy_id.exists())
    except TransactWriteError:
        forget()
        if _claim_holder(doc["name"]) not in (None, policy_id):
            raise DuplicateName(doc["name"]) from None
        _get(policy_id)  # NotFound if it was deleted meanwhile
        raise
    forget()
    return _json_of(item)


def delete_policy(policy_id: str) -> None:
    """Delete a policy and its name claim. NotFound (404)."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    from chalicelib.models import SlaPolicy
    from chalicelib.runtime import runtime

    current = _get(policy_id)
    try:
        with TransactWrite(connection=runtime.connection()) as transaction:
            transaction.delete(SlaPolicy(policy_id), condition=SlaPolicy.policy_id.exists())
            transaction.delete(SlaPolicy(_claim_key(current.name)), condition=SlaPolicy.claimed_by == policy_id)
    except TransactWriteError:
        forget()
        _get(policy_id)  # NotFound when a concurrent delete won
        raise
    forget()


# --- matching with the per-container cache --------------------------------------------------------


def _monotonic() -> float:
    return time.monotonic()


def forget() -> None:
    """Drop this container's cached policies (after a write through the API)."""
    from chalicelib.runtime import runtime

    runtime.sla_policies.clear()


def stored_policies() -> Tuple[Policy, ...]:
    """Stored policies, most specific first: one Scan per POLICY_CACHE_SECONDS per container.
    An item that no longer validates (hand-edited) is skipped and logged, never fatal."""
    from chalicelib.runtime import runtime

    cached = runtime.sla_policies.get("all")
    now = _monotonic()
    if cached is not None and now - cached[0] < POLICY_CACHE_SECONDS:
        return cached[1]
    found: List[Policy] = []
    for item in _policy_items():
        try:
            found.append(policy_from(validate(_doc_of(item)), item.policy_id, item.created_at or 0))
        except (ValueError, TypeError) as error:
            from chalicelib.logs import logger

            logger.warning("sla policy skipped", extra={"policy_id": item.policy_id, "reason": str(error)[:200]})
    policies = tuple(sorted(found, key=lambda p: (p.specificity(), p.policy_id)))
    runtime.sla_policies["all"] = (now, policies)
    return policies


def policy_for(conversation_state: Mapping[str, Any]) -> Policy:
    """The policy that governs a conversation (its `channel`, `priority`, `tags`): the most
    specific stored policy that matches, else the built-in default."""
    for policy in stored_policies():
        if policy.matches(conversation_state):
            return policy
    return default_policy()
