"""Routing per team: presence with a grace period, per-agent capacity, round robin or least
loaded, a backlog that drains oldest deadline first, and hand-offs when an agent leaves.

Public interface (the store's hook, the API and the sweeper use only these):
- `assign_next(conversation_id, state=None) -> Optional[str]`
- `drain(team, limit=100) -> int`
- `agent_went_offline(agent_id, force=False) -> int`
- `on_conversation_event(entry_type, state, before=None, data=None) -> None`
- `reassign(conversation_id) -> Optional[str]` (escalations: to the next eligible teammate)
- `presence_changed(agent_id, status) -> dict` (PUT /api/me/presence)
- `sweep() -> dict` (scheduled)
Data access (profiles, teams, presence, load) is in `chalicelib.routing.directory`.
"""
from chalicelib.routing.engine import (agent_went_offline, assign_next, drain, on_conversation_event,
                                       presence_changed, reassign, sweep)

__all__ = ["agent_went_offline", "assign_next", "drain", "on_conversation_event", "on_logged_change",
           "presence_changed", "reassign", "sweep"]


def on_logged_change(conversation_id: str, before: dict, after: dict, entry: object) -> None:
    """Runtime listener: a logged conversation change (see on_conversation_event)."""
    on_conversation_event(getattr(entry, "type"), after, before=before, data=getattr(entry, "data", None))
