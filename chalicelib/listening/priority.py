"""Priority rules as data: a negative public message from an author with reach jumps the queue.

An admin keeps a short list of rules (`GET/PUT /api/listening/priority-rules`), each
`{"sentiment": <label>, "min_followers": N, "min_likes": N, "priority": "medium"|"high"|"urgent"}`
(at least one of the conditions; absent ones match anything). The highest priority of the
matching rules wins. They apply:
- inbound: the ingest annotator (chalicelib.listening.annotate) hands the priority to the store in
  its Annotations; ingest raises the conversation to at least that after recording the message
  (never lowers what an agent or an escalation set; chalicelib.inbox knows nothing of rules);
- found posts and mentions: the listening item carries `priority`, the Listening view sorts on it,
  and converting the item raises the new conversation the same way.

One document (`ListeningRecord` "priority_rules"/"all"), read at most once a minute per container.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from chalicelib.listening.sentiment import LABELS

PRIORITIES = ("medium", "high", "urgent")  # what a rule may set (chalicelib.inbox.rules.PRIORITIES)
CONDITIONS = ("sentiment", "min_followers", "min_likes")
MAX_RULES = 20
MAX_REACH = 10 ** 10
CACHE_SECONDS = 60.0
_CACHE_NAME = "listening_priority_rules"


def validate(body: Any) -> List[Dict[str, Any]]:
    """The rules of a `{"rules": [...]}` body, or ValueError naming what is wrong."""
    if not isinstance(body, dict) or set(body) != {"rules"} or not isinstance(body["rules"], list):
        raise ValueError('the body is {"rules": [{"sentiment", "min_followers", "min_likes", "priority"}, ...]}')
    if len(body["rules"]) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} rules")
    rules = []
    for index, rule in enumerate(body["rules"]):
        where = f"rules[{index}]"
        if not isinstance(rule, dict) or set(rule) - set(CONDITIONS) - {"priority"}:
            raise ValueError(f"{where}: the fields are {', '.join(CONDITIONS)}, priority")
        if rule.get("priority") not in PRIORITIES:
            raise ValueError(f"{where}.priority must be one of {', '.join(PRIORITIES)}")
        if not set(rule) & set(CONDITIONS):
            raise ValueError(f"{where}: a rule needs at least one of {', '.join(CONDITIONS)}")
        if "sentiment" in rule and rule["sentiment"] not in LABELS:
            raise ValueError(f"{where}.sentiment must be one of {', '.join(LABELS)}")
        for name in ("min_followers", "min_likes"):
            value = rule.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REACH:
                raise ValueError(f"{where}.{name} must be a whole number from 0 to {MAX_REACH}")
        rules.append({k: rule[k] for k in (*CONDITIONS, "priority") if k in rule})
    return rules


def priority_for(rules: List[Dict[str, Any]], sentiment: Optional[str], followers: Optional[int],
                 likes: Optional[int]) -> Optional[str]:
    """The highest priority of the rules the message matches, or None. Unknown reach never
    passes a minimum above 0 (no guess)."""
    best: Optional[str] = None
    for rule in rules:
        if "sentiment" in rule and rule["sentiment"] != sentiment:
            continue
        if rule.get("min_followers", 0) > (followers or 0) or rule.get("min_likes", 0) > (likes or 0):
            continue
        if best is None or PRIORITIES.index(rule["priority"]) > PRIORITIES.index(best):
            best = rule["priority"]
    return best


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def reach(raw: Any, followers: Optional[int] = None) -> Dict[str, Optional[int]]:
    """Followers (the adapter's, else the payload's `user.followers_count`) and likes when the
    platform's payload says (X `public_metrics.like_count`; Instagram, Facebook `like_count`)."""
    found = raw if isinstance(raw, dict) else {}
    user = found.get("user") if isinstance(found.get("user"), dict) else {}
    metrics = found.get("public_metrics") if isinstance(found.get("public_metrics"), dict) else {}
    return {"followers": _count(followers) if _count(followers) is not None else _count(user.get("followers_count")),
            "likes": _count(metrics.get("like_count", found.get("like_count")))}


def for_message(event: Any, label: Optional[str]) -> Optional[str]:
    """The rules' priority for an inbound public message (a direct message has no audience)."""
    if getattr(event, "thread_kind", "dm") == "dm":
        return None
    found = rules()
    if not found:
        return None
    known = reach(event.raw, getattr(event.contact, "followers", None))
    return priority_for(found, label, known["followers"], known["likes"])


def rules() -> List[Dict[str, Any]]:
    """The admin's rules (cached a minute per container)."""
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import ListeningRecord
    from chalicelib.runtime import runtime

    cached = runtime.cached(_CACHE_NAME)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    try:
        found = list((ListeningRecord.get("priority_rules", "all").data or {}).get("rules") or [])
    except DoesNotExist:
        found = []
    runtime.remember(_CACHE_NAME, (time.monotonic(), found))
    return found


def save(body: Any, now_ms: int) -> Dict[str, Any]:
    from chalicelib.models import ListeningRecord
    from chalicelib.runtime import runtime

    found = validate(body)
    ListeningRecord("priority_rules", "all", data={"rules": found}, at=now_ms).save()
    runtime.remember(_CACHE_NAME, None)
    return {"rules": found}
