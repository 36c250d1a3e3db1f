"""Who is who: agent ids to the names the page shows ("Kim Care", "Kim Care (deactivated)").

The API keeps answering ids (filters, PATCH bodies and the event log are keyed by them) and adds
the names beside them, so the page never shows an id and never asks once per row. The agents
table holds people, not traffic (tens to a few thousand items), so the whole directory is one
Scan (projected to id, name and active), kept in this container's runtime for
NAMES_CACHE_SECONDS: an inbox page, an event log or a notification list then costs no DynamoDB
request for its names. An id the cached directory does not know (an agent created in another
container a moment ago) reads it again, at most once per NAMES_RECHECK_SECONDS, so ids that
belong to nobody cannot turn into a Scan per request. People changes made in this container
forget the directory at once (chalicelib.api.people); other containers follow within
NAMES_CACHE_SECONDS.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Iterable, Optional

NAMES_CACHE_SECONDS = 60.0
NAMES_RECHECK_SECONDS = 5.0
#: What the page shows for an id the directory does not know (a deleted agent, a typo stored
#: before assignees were checked): never the id itself.
UNKNOWN = "an unknown agent"
_KEY = "agent-names"


def _directory(unknown: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """agent id -> {"name", "active"}; read again when stale, or when `unknown` is missing and
    the last read is older than NAMES_RECHECK_SECONDS."""
    from chalicelib.runtime import runtime

    moment = time.monotonic()
    cached = runtime.cached(_KEY)
    if cached is not None:
        read_at, found = cached
        age = moment - read_at
        if age < NAMES_CACHE_SECONDS and (unknown is None or unknown in found or age < NAMES_RECHECK_SECONDS):
            return found
    found = _scan()
    runtime.remember(_KEY, (moment, found))
    return found


def _scan() -> Dict[str, Dict[str, Any]]:
    from chalicelib.models import Agent

    return {a.agent_id: {"name": a.name, "active": a.active is not False}
            for a in Agent.scan(attributes_to_get=["email", "agent_id", "name", "active"]) if a.agent_id}


def forget() -> None:
    """After creating, renaming or (de)activating an agent: this container reads the names again."""
    from chalicelib.runtime import runtime

    runtime.remember(_KEY, None)


def label(agent_id: Optional[str]) -> Optional[str]:
    """The agent's name as the page shows it; "(deactivated)" after a deactivated agent's name;
    UNKNOWN for an id nobody has. None for no agent."""
    if not agent_id:
        return None
    found = _directory(agent_id).get(agent_id)
    if found is None:
        return UNKNOWN
    return found["name"] if found["active"] else f"{found['name']} (deactivated)"


def active(agent_id: str) -> bool:
    """Whether the directory knows this agent as active (the assign picker offers only them)."""
    found = _directory(agent_id).get(agent_id)
    return found is not None and found["active"]


def labels(agent_ids: Iterable[Optional[str]]) -> Dict[str, str]:
    """{id: label} for every distinct id given (what list answers carry as `agents`)."""
    return {agent_id: label(agent_id) or UNKNOWN for agent_id in dict.fromkeys(i for i in agent_ids if i)}


def with_name(current: Dict[str, Any]) -> Dict[str, Any]:
    """A conflict's `current` ({"assignee": id}) with the holder's name beside the id."""
    return dict(current, assignee_name=label(current.get("assignee"))) if current.get("assignee") else current


def actor_agent(actor: Any) -> Optional[str]:
    """The agent id in an event actor ("agent:<id>"), else None ("flow", "routing", "customer")."""
    return actor[6:] if isinstance(actor, str) and actor.startswith("agent:") and len(actor) > 6 else None
