"""What happens when a turn reaches its warning point or its deadline (after the SLA consumer
recorded it): the assignee is notified at the warning; at the breach the assignee and the
supervisors and admins are notified and the conversation's priority is raised to at least
high (a logged change by the flow). Notifications expire after NOTIFICATION_DAYS."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional

from chalicelib import config
from chalicelib.inbox import rules, store
from chalicelib.logs import logger
from chalicelib.models import Agent, Notification
from chalicelib.runtime import runtime

NOTIFICATION_DAYS = 30
SUPERVISOR_ROLES = ("supervisor", "admin")
ESCALATED_PRIORITY = "high"
_RANK = {p: i for i, p in enumerate(rules.PRIORITIES)}
SUPERVISORS_CACHE_SECONDS = 60.0


def escalate(kind: str, state: Mapping[str, Any]) -> List[str]:
    """Notify and raise priority for a recorded warning ("warning") or breach ("breach");
    returns the agent ids notified."""
    conversation_id = state["conversation_id"]
    if kind in _reassign_on():
        moved_to = _reassign(conversation_id, state)
        if moved_to:
            state = dict(state, assignee=moved_to)  # the new holder is the one to tell
    recipients: List[str] = []
    if state.get("assignee"):
        recipients.append(str(state["assignee"]))
    if kind == "breach":
        recipients += [a for a in supervisors() if a not in recipients]
        if _RANK.get(state.get("priority") or "none", 0) < _RANK[ESCALATED_PRIORITY]:
            try:
                store.set_priority(conversation_id, ESCALATED_PRIORITY, "flow")
            except (store.NotFound, store.Busy) as error:
                logger.warning("escalation: priority not raised", extra={"conversation_id": conversation_id,
                                                                         "error": type(error).__name__})
    data = {"due_at": state.get("reply_due_at"), "turn": state.get("turn"), "team": state.get("team"),
            "channel": state.get("channel"), "contact": state.get("contact_name") or state.get("contact_handle"),
            "assignee": state.get("assignee")}
    notify(recipients, conversation_id, "sla_warning" if kind == "warning" else "sla_breached", data)
    return recipients


def _reassign_on() -> List[str]:
    """SLA_REASSIGN_ON: "warning", "breach" or both (comma-separated); empty (default): never.
    An assigned conversation then moves to the next eligible teammate (never the same agent)."""
    import os

    return [k.strip() for k in os.environ.get("SLA_REASSIGN_ON", "").split(",") if k.strip()]


def _reassign(conversation_id: str, state: Mapping[str, Any]) -> Optional[str]:
    if not state.get("assignee"):
        return None
    from chalicelib import routing

    moved_to = routing.reassign(conversation_id)
    if moved_to:
        logger.info("escalation reassigned", extra={"conversation_id": conversation_id, "to": moved_to})
    return moved_to


def notify(agent_ids: List[str], conversation_id: str, kind: str, data: Optional[Dict[str, Any]] = None) -> None:
    now = runtime.now_ms()
    expires = now // 1000 + config.int_setting("NOTIFICATION_DAYS", NOTIFICATION_DAYS) * 86400
    for agent_id in agent_ids:
        Notification(agent_id, f"{now:013d}#{conversation_id}#{kind}", conversation_id=conversation_id, kind=kind,
                     at=now, data={k: v for k, v in (data or {}).items() if v is not None} or None,
                     expires_at=expires).save()


def supervisors() -> List[str]:
    """Active supervisors and admins (the agents table is small: one Scan a minute per container)."""
    cached = runtime.cached("supervisors")
    if cached and time.monotonic() - cached[0] < SUPERVISORS_CACHE_SECONDS:
        return cached[1]
    found = sorted(a.agent_id for a in Agent.scan(Agent.role.is_in(*SUPERVISOR_ROLES) & (Agent.active == True)))  # noqa: E712
    runtime.remember("supervisors", (time.monotonic(), found))
    return found


def notifications_for(agent_id: str, limit: int = 50) -> List[Dict[str, Any]]:
    """An agent's notifications, newest first."""
    items = Notification.query(agent_id, scan_index_forward=False, limit=limit, page_size=limit)
    return [{"conversation_id": n.conversation_id, "kind": n.kind, "at": int(n.at), "data": n.data or {}}
            for n in items]
