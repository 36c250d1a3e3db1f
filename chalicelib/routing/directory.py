"""Who can take work: agents' routing profiles and presence, team membership and settings,
and an agent's current load. The only module that reads or writes AgentRouting / TeamRouting.

Layout (chalicelib.models):
- `AgentRouting` (one item per agent): teams, capacity, presence and `last_seen`. An agent is
  online while presence is "online" and `last_seen` is within the grace period
  (PRESENCE_GRACE_SECONDS, default 90 s): the inbox refreshes every ~30 s, so two missed
  refreshes (a flapping mobile connection) change nothing. A heartbeat is one small write to
  one item, whatever the number of teams.
- `TeamRouting`: one item per (team, agent), so a team's members are ONE Query (never a Scan of
  agents); the team's `#settings` item (mode, round-robin cursor) sits in the same partition and
  comes back with that Query; partition `#teams` lists every team (the sweeper's Query).
Eligibility for a team = one Query (members + settings) + one BatchGetItem (their profiles).
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import config
from chalicelib.models import Agent, AgentRouting, Conversation, TeamRouting
from chalicelib.runtime import runtime

PRESENCE = ("online", "away", "offline")
MODES = ("round_robin", "least_loaded")
DEFAULT_MODE = "round_robin"
DEFAULT_CAPACITY = 10
MAX_CAPACITY = 1000
MAX_TEAMS = 20
SETTINGS = "#settings"
TEAMS = "#teams"
TEAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The assignment lease: while one assigner counts an agent's load and claims for them, no other
# can (so capacity is never exceeded by a race); it expires by itself if its holder dies.
LEASE_MS = 5000
LEASE_WAIT_S = 2.0
# Claims stay remembered this long on the profile: a claim the owner-due index (eventually
# consistent) does not show yet is still counted.
CLAIM_MEMORY_MS = 10_000


def grace_ms() -> int:
    return max(0, config.int_setting("PRESENCE_GRACE_SECONDS", 90)) * 1000


def valid_team(name: Any) -> bool:
    return isinstance(name, str) and bool(TEAM_NAME.fullmatch(name))


@dataclass
class Profile:
    agent_id: str
    teams: List[str] = field(default_factory=list)
    capacity: int = DEFAULT_CAPACITY
    presence: str = "offline"
    last_seen: Optional[int] = None
    last_assigned_at: int = 0
    handed_off: bool = True

    def online(self, now: int) -> bool:
        return self.presence == "online" and self.last_seen is not None and now - self.last_seen <= grace_ms()

    def gone(self, now: int) -> bool:
        """Signed off, or silent past the grace period ("away" but refreshing is still here)."""
        return self.presence == "offline" or self.last_seen is None or now - self.last_seen > grace_ms()

    def expires_at(self) -> Optional[int]:
        return None if self.last_seen is None else self.last_seen + grace_ms()

    def json(self, now: int) -> Dict[str, Any]:
        return {"agent_id": self.agent_id, "teams": list(self.teams), "capacity": self.capacity,
                "presence": self.presence, "online": self.online(now), "last_seen": self.last_seen,
                "expires_at": self.expires_at() if self.presence == "online" else None,
                "last_assigned_at": self.last_assigned_at or None}


def _profile_of(item: AgentRouting) -> Profile:
    return Profile(agent_id=item.agent_id, teams=list(item.teams or []),
                   capacity=DEFAULT_CAPACITY if item.capacity is None else int(item.capacity),
                   presence=item.presence or "offline",
                   last_seen=None if item.last_seen is None else int(item.last_seen),
                   last_assigned_at=int(item.last_assigned_at or 0),
                   handed_off=item.went_offline_handled is not False)


def profile(agent_id: str) -> Profile:
    """The agent's profile (defaults when nothing was ever set)."""
    try:
        return _profile_of(AgentRouting.get(agent_id, consistent_read=True))
    except DoesNotExist:
        return Profile(agent_id)


def profiles(agent_ids: Iterable[str]) -> Dict[str, Profile]:
    """Several profiles in one BatchGetItem (agents without one get defaults)."""
    ids = sorted(set(agent_ids))
    found = {item.agent_id: _profile_of(item) for item in AgentRouting.batch_get(ids, consistent_read=True)}
    return {agent_id: found.get(agent_id) or Profile(agent_id) for agent_id in ids}


def agent_exists(agent_id: str) -> Optional[Dict[str, Any]]:
    """{"agent_id", "name", "role", "active"} of an agent, by id (the agents' agent-id index)."""
    for row in Agent.by_id.query(agent_id, limit=1):
        return {"agent_id": row.agent_id, "name": row.name, "role": row.role, "active": row.active}
    return None


# --- presence ---------------------------------------------------------------------------------------


def set_presence(agent_id: str, status: str, now: Optional[int] = None) -> Tuple[Profile, bool]:
    """Record a presence report (a heartbeat when it repeats). Returns (profile after, came
    online: True when the agent was not counted online before this report)."""
    if status not in PRESENCE:
        raise ValueError(f"status must be one of {', '.join(PRESENCE)}")
    now = runtime.now_ms() if now is None else now
    was_online = profile(agent_id).online(now)
    actions = [AgentRouting.presence.set(status), AgentRouting.last_seen.set(now),
               AgentRouting.presence_expires_at.set(now + grace_ms()), AgentRouting.updated_at.set(now)]
    if status == "online":
        actions.append(AgentRouting.went_offline_handled.set(False))
    item = AgentRouting(agent_id)
    item.update(actions=actions)
    return _profile_of(item), status == "online" and not was_online


def mark_handed_off(agent_id: str, last_seen: Optional[int]) -> None:
    """Their conversations were handed on: the sweeper need not look again (unless they came
    back meanwhile: only if `last_seen` is still what was seen)."""
    condition = (AgentRouting.last_seen.does_not_exist() if last_seen is None
                 else AgentRouting.last_seen == last_seen)
    _conditional(AgentRouting(agent_id), [AgentRouting.went_offline_handled.set(True)], condition)


# --- membership and team settings -----------------------------------------------------------------


def set_routing(agent_id: str, teams: Optional[List[str]], capacity: Optional[int]) -> Profile:
    """Set an agent's teams and/or capacity; membership items follow the teams."""
    now = runtime.now_ms()
    before = profile(agent_id)
    actions = [AgentRouting.updated_at.set(now)]
    if teams is not None:
        actions.append(AgentRouting.teams.set(list(teams)))
    if capacity is not None:
        actions.append(AgentRouting.capacity.set(int(capacity)))
    item = AgentRouting(agent_id)
    item.update(actions=actions)
    if teams is not None:
        for team in set(before.teams) - set(teams):
            TeamRouting(team, agent_id).delete()
        for team in teams:
            TeamRouting(team, agent_id, updated_at=now).save()
            TeamRouting(TEAMS, team, updated_at=now).save()
    return _profile_of(item)


@dataclass
class Team:
    name: str
    mode: str = DEFAULT_MODE
    cursor: Optional[str] = None
    members: List[str] = field(default_factory=list)


def team(name: str) -> Team:
    """The team's settings and member ids: one Query."""
    found = Team(name)
    for item in TeamRouting.query(name, consistent_read=True):
        if item.member == SETTINGS:
            found.mode = item.mode or DEFAULT_MODE
            found.cursor = item.cursor
        else:
            found.members.append(item.member)
    return found


def set_mode(name: str, mode: str) -> Team:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    now = runtime.now_ms()
    TeamRouting(name, SETTINGS).update(actions=[TeamRouting.mode.set(mode), TeamRouting.updated_at.set(now)])
    TeamRouting(TEAMS, name, updated_at=now).save()
    return team(name)


def all_teams() -> List[str]:
    return [item.member for item in TeamRouting.query(TEAMS, consistent_read=True)]


def advance_cursor(name: str, seen: Optional[str], to: str) -> bool:
    """Move the team's round-robin cursor from what was read to `to`; False if someone else
    moved it first (the caller reads again)."""
    condition = TeamRouting.cursor.does_not_exist() if seen is None else TeamRouting.cursor == seen
    return _conditional(TeamRouting(name, SETTINGS), [TeamRouting.cursor.set(to)], condition)


# --- load and the assignment lease -----------------------------------------------------------------


def load(agent_id: str) -> int:
    """Open conversations assigned to the agent: one Query (Select COUNT) on owner-due."""
    return Conversation.by_owner_due.count(f"a#{agent_id}#open")


class Lease:
    """Exclusive right to count and claim for one agent for a moment (context manager).
    `acquired` is False when another assigner kept it for LEASE_WAIT_S."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.token = uuid.uuid4().hex
        self.acquired = False
        self.claims: Dict[str, int] = {}
        self.claimed: Optional[str] = None

    def __enter__(self) -> "Lease":
        deadline = time.monotonic() + LEASE_WAIT_S
        pause = 0.005
        while True:
            now = runtime.now_ms()
            item = AgentRouting(self.agent_id)
            if _conditional(item, [AgentRouting.lease_owner.set(self.token), AgentRouting.lease_until.set(now + LEASE_MS)],
                            AgentRouting.lease_until.does_not_exist() | (AgentRouting.lease_until < now)):
                self.acquired = True
                self.claims = {k: int(v) for k, v in (item.recent_claims or {}).items()
                               if isinstance(v, (int, float)) and now - int(v) < CLAIM_MEMORY_MS}
                return self
            if time.monotonic() >= deadline:
                return self
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def load(self) -> int:
        """Open assigned conversations now: the index's, plus recent claims it does not show yet
        (read strongly consistent; those no longer open and ours are forgotten)."""
        listed = {row.conversation_id for row in Conversation.by_owner_due.query(
            f"a#{self.agent_id}#open", attributes_to_get=["conversation_id"])}
        unlisted = set(self.claims) - listed
        if unlisted:
            held = {item.conversation_id for item in Conversation.batch_get(
                sorted(unlisted), consistent_read=True, attributes_to_get=["conversation_id", "assignee", "status"])
                if item.assignee == self.agent_id and (item.status or "open") == "open"}
            for gone in unlisted - held:
                self.claims.pop(gone, None)
            listed |= held
        return len(listed)

    def __exit__(self, *exc: Any) -> None:
        if not self.acquired:
            return
        now = runtime.now_ms()
        actions = [AgentRouting.lease_until.remove(), AgentRouting.lease_owner.remove()]
        if self.claimed:
            self.claims[self.claimed] = now
            actions += [AgentRouting.last_assigned_at.set(now)]
        actions.append(AgentRouting.recent_claims.set(self.claims or None) if self.claims
                       else AgentRouting.recent_claims.remove())
        if not _conditional(AgentRouting(self.agent_id), actions, AgentRouting.lease_owner == self.token) \
                and self.claimed:
            # Our lease ran out under us: still note the assignment time (the claim itself is done).
            _conditional(AgentRouting(self.agent_id), [AgentRouting.last_assigned_at.set(now)],
                         AgentRouting.agent_id.exists())


def _conditional(item: Any, actions: List[Any], condition: Any) -> bool:
    try:
        item.update(actions=actions, condition=condition)
        return True
    except UpdateError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
