"""Assignment: who gets a conversation, when the backlog drains, and hand-offs.

Every claim goes through the conversation store (`store.assign(..., actor="routing")`) with the
assignee we expect (nobody for a new claim, the departing agent for a hand-off), so a human or
another assigner who got there first wins and we give up quietly (rules.Conflict).

Capacity is race-safe: an agent's load is counted and the claim made under that agent's short
lease (directory.Lease), and claims made in the last seconds are counted even when the
owner-due index (eventually consistent) does not show them yet.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from chalicelib.inbox import rules, store
from chalicelib.logs import logger
from chalicelib.models import Conversation
from chalicelib.routing import directory
from chalicelib.runtime import runtime

DRAIN_BATCH = 100  # unassigned conversations looked at per drain (the sweeper comes back)
CURSOR_ROUNDS = 5

GIVEN, TAKEN, NOBODY = "given", "taken", "nobody"
#: The event log's actor of routing's own assignments and hand-offs ("routing" on the page).
ACTOR = "routing"

_local = threading.local()


class _Routing:
    """Marks this thread as inside a routing operation: the store's hook calls that our own
    claims cause are skipped (the operation itself drains what it freed)."""

    def __enter__(self) -> None:
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc: Any) -> None:
        _local.depth -= 1


def _inside() -> bool:
    return getattr(_local, "depth", 0) > 0


@dataclass
class _Candidates:
    """A team's agents who may take work now, and what we know of their load."""

    team: directory.Team
    eligible: Dict[str, directory.Profile]
    loads: Dict[str, int] = field(default_factory=dict)
    full: Set[str] = field(default_factory=set)

    @classmethod
    def of(cls, team_name: str, exclude: Iterable[str] = ()) -> "_Candidates":
        team = directory.team(team_name)
        now = runtime.now_ms()
        skip = set(exclude)
        found = directory.profiles(team.members) if team.members else {}
        eligible = {a: p for a, p in found.items() if a not in skip and team_name in p.teams and p.online(now)
                    and p.capacity > 0}
        return cls(team, eligible)

    def order(self) -> List[str]:
        """Preference order for the next conversation."""
        ids = sorted(a for a in self.eligible if a not in self.full)
        if self.team.mode == "least_loaded":
            for agent_id in ids:
                if agent_id not in self.loads:
                    self.loads[agent_id] = directory.load(agent_id)
            ids = [a for a in ids if self.loads[a] < self.eligible[a].capacity]
            return sorted(ids, key=lambda a: (self.loads[a], self.eligible[a].last_assigned_at, a))
        cursor = self.team.cursor
        if cursor is None:
            return ids
        return [a for a in ids if a > cursor] + [a for a in ids if a <= cursor]


def _try_give(conversation_id: str, agent_id: str, capacity: int, expected: Optional[str]) -> str:
    """Claim for one agent under their lease: GIVEN, "full", "busy" or TAKEN (someone else holds
    the conversation now, or it is gone)."""
    with directory.Lease(agent_id) as lease:
        if not lease.acquired:
            return "busy"
        # Claims for one agent are serialised by the lease: a racing assigner that chose the
        # same agent sees the conversation taken here (the store would call its repeat a no-op).
        current = store.get(conversation_id)
        if current is None or current.get("assignee") != expected or (current.get("status") or "open") != "open":
            return TAKEN
        if lease.load() >= capacity:
            return "full"
        try:
            store.assign(conversation_id, agent_id, ACTOR, expected=expected)
        except (rules.Conflict, store.NotFound):
            return TAKEN
        lease.claimed = conversation_id
        return GIVEN


def _place(conversation_id: str, candidates: _Candidates, expected: Optional[str]) -> Tuple[str, Optional[str]]:
    """Give the conversation to the best eligible agent: (GIVEN, agent), (TAKEN, None) or
    (NOBODY, None) when nobody eligible has capacity."""
    round_robin = candidates.team.mode != "least_loaded"
    for _ in range(CURSOR_ROUNDS):
        moved_under_us = False
        for agent_id in candidates.order():
            if round_robin:
                if not directory.advance_cursor(candidates.team.name, candidates.team.cursor, agent_id):
                    candidates.team = directory.team(candidates.team.name)  # another assigner moved it
                    moved_under_us = True
                    break
                candidates.team.cursor = agent_id
            outcome = _try_give(conversation_id, agent_id, candidates.eligible[agent_id].capacity, expected)
            if outcome == GIVEN:
                candidates.loads[agent_id] = candidates.loads.get(agent_id, 0) + 1
                logger.info("conversation routed", extra={"conversation_id": conversation_id, "agent_id": agent_id,
                                                          "team": candidates.team.name, "mode": candidates.team.mode})
                return GIVEN, agent_id
            if outcome == TAKEN:
                return TAKEN, None
            if outcome == "full":
                candidates.full.add(agent_id)
        if not moved_under_us:
            break
    return NOBODY, None


# --- the public operations ----------------------------------------------------------------------


def assign_next(conversation_id: str, state: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """Give an open, unassigned conversation to an eligible agent of its team; the agent, or
    None (nobody eligible with capacity: it waits in the team queue; or someone claimed it)."""
    with _Routing():
        state = state if state is not None else store.get(conversation_id)
        if not state or (state.get("status") or "open") != "open" or state.get("assignee"):
            return None
        _, agent_id = _place(conversation_id, _Candidates.of(state.get("team") or rules.DEFAULT_TEAM), None)
        return agent_id


def drain(team: str, limit: int = DRAIN_BATCH) -> int:
    """Assign the team's unassigned open conversations, oldest deadline first, while someone
    eligible has capacity. Returns how many were assigned."""
    with _Routing():
        candidates = _Candidates.of(team)
        if not candidates.eligible:
            return 0
        assigned = 0
        for row in Conversation.by_owner_due.query(f"u#{team}#open", scan_index_forward=True, limit=limit,
                                                   page_size=min(limit, 25)):
            outcome, _ = _place(row.conversation_id, candidates, None)
            if outcome == NOBODY:
                break
            assigned += outcome == GIVEN
        if assigned:
            logger.info("team backlog drained", extra={"team": team, "assigned": assigned})
        return assigned


def agent_went_offline(agent_id: str, force: bool = False) -> int:
    """Hand the agent's open conversations to eligible teammates (each conversation's own team),
    or back to the team queue when nobody can take them. Nothing happens while the agent is still
    around (online or away, refreshed within the grace period), unless `force`. Returns how many moved."""
    with _Routing():
        seen = directory.profile(agent_id)
        if not seen.gone(runtime.now_ms()) and not force:
            return 0
        moved = 0
        teams: Dict[str, _Candidates] = {}
        for row in list(Conversation.by_owner_due.query(f"a#{agent_id}#open", scan_index_forward=True)):
            team = row.team or rules.DEFAULT_TEAM
            if team not in teams:
                teams[team] = _Candidates.of(team, exclude=[agent_id])
            outcome, _ = _place(row.conversation_id, teams[team], agent_id)
            if outcome == NOBODY:
                try:
                    store.assign(row.conversation_id, None, ACTOR, expected=agent_id)
                except (rules.Conflict, store.NotFound):
                    continue
                outcome = GIVEN
            moved += outcome == GIVEN
        directory.mark_handed_off(agent_id, seen.last_seen)
        if moved:
            logger.info("conversations handed off", extra={"agent_id": agent_id, "moved": moved})
        return moved


def reassign(conversation_id: str) -> Optional[str]:
    """Escalation (warning/breach, no first reply in N minutes): move an open conversation from
    its assignee to the next eligible teammate (never back to the same agent). The new agent, or
    None (nobody else eligible with capacity, or someone changed the assignee meanwhile: it stays)."""
    with _Routing():
        state = store.get(conversation_id)
        if not state or (state.get("status") or "open") != "open":
            return None
        holder = state.get("assignee")
        team = state.get("team") or rules.DEFAULT_TEAM
        _, agent_id = _place(conversation_id, _Candidates.of(team, exclude=[holder] if holder else []), holder)
        return agent_id


def presence_changed(agent_id: str, status: str) -> Dict[str, Any]:
    """PUT /api/me/presence: record it; coming online drains the agent's teams, an explicit
    "offline" hands their open conversations on at once (a missed refresh only after the grace
    period, through the sweeper)."""
    profile, came_online = directory.set_presence(agent_id, status)
    result = profile.json(runtime.now_ms())
    if came_online:
        result["assigned"] = sum(drain(team) for team in profile.teams)
    elif status == "offline":
        result["handed_off"] = agent_went_offline(agent_id)
    return result


def on_conversation_event(entry_type: str, state: Dict[str, Any], before: Optional[Dict[str, Any]] = None,
                          data: Optional[Dict[str, Any]] = None) -> None:
    """The store's hook after a committed, logged change (`state` is the conversation after it).

    - created / reopened / status_changed to open: unassigned -> assign_next; assigned to
      someone who is no longer online (a returning customer, #4158) -> handed to a teammate;
    - status_changed away from open with an assignee, or assigned away from an agent: capacity
      freed -> drain(team).
    Never raises: the change is committed whatever routing does; the sweeper retries."""
    if _inside():
        return
    try:
        team = state.get("team") or rules.DEFAULT_TEAM
        status = state.get("status") or "open"
        data = data or {}
        if entry_type in ("created", "reopened") or (entry_type == "status_changed" and status == "open"):
            if status != "open":
                return
            assignee = state.get("assignee")
            if not assignee:
                assign_next(state["conversation_id"], state)
            elif directory.profile(assignee).gone(runtime.now_ms()):
                with _Routing():
                    _place(state["conversation_id"], _Candidates.of(team, exclude=[assignee]), assignee)
        elif entry_type == "status_changed":
            if state.get("assignee") and data.get("from", (before or {}).get("status")) == "open":
                drain(team)
        elif entry_type == "assigned":
            previous = data.get("from", (before or {}).get("assignee"))
            if previous and status == "open":
                drain(team)
    except Exception as error:  # noqa: BLE001 - a routing failure must not fail a committed change
        logger.warning("routing hook failed", extra={"entry_type": entry_type, "error": str(error)[:300],
                                                     "conversation_id": state.get("conversation_id")})


def sweep() -> Dict[str, int]:
    """Scheduled safety net: hand on the conversations of agents whose presence expired (or who
    went offline) and were not handed off yet, then drain every team's backlog."""
    outcome = {"handed_off": 0, "assigned": 0, "teams": 0}
    now = runtime.now_ms()
    for team in directory.all_teams():
        outcome["teams"] += 1
        members = directory.team(team).members
        for agent_id, profile in (directory.profiles(members) if members else {}).items():
            if not profile.handed_off and profile.last_seen is not None and profile.gone(now):
                outcome["handed_off"] += agent_went_offline(agent_id)
        outcome["assigned"] += drain(team)
    return outcome
