"""Who may see which conversations: team access for every conversation route.

- admins see every conversation;
- agents and supervisors see the conversations of their teams, plus any conversation assigned
  to them (an admin may hand one over across teams; its assignee must be able to answer it);
- anything else answers 404 exactly like an unknown id, so nobody learns that another team's
  conversation exists.

Team membership is the routing directory's (AgentRouting.teams, chalicelib.routing.directory):
there is one source of who is in which team. It is read once per agent and kept in this
container's runtime for TEAMS_CACHE_SECONDS (people changes forget it here at once; other
containers follow within that time).
"""
from __future__ import annotations

import time
from typing import Any, Dict, FrozenSet, Iterable, List, Optional

from chalice import ForbiddenError, NotFoundError

TEAMS_CACHE_SECONDS = 30.0
MAX_ID = 128
_CACHE_PREFIX = "access-teams|"


def teams_of(agent_id: str) -> FrozenSet[str]:
    """The agent's teams (routing profile), cached briefly in this container."""
    from chalicelib.routing import directory
    from chalicelib.runtime import runtime

    moment = time.monotonic()
    cached = runtime.cached(_CACHE_PREFIX + agent_id)
    if cached is not None and moment - cached[0] < TEAMS_CACHE_SECONDS:
        return cached[1]
    teams = frozenset(directory.profile(agent_id).teams)
    runtime.remember(_CACHE_PREFIX + agent_id, (moment, teams))
    return teams


def forget_teams(agent_id: str) -> None:
    """After changing an agent's teams: this container reads them again on the next request."""
    from chalicelib.runtime import runtime

    runtime.remember(_CACHE_PREFIX + agent_id, None)


def sees_everything(identity: Any) -> bool:
    return getattr(identity, "role", None) == "admin"


def may_see(identity: Any, state: Dict[str, Any]) -> bool:
    """Whether `identity` may see this conversation (a state dict or API JSON with `team`)."""
    if sees_everything(identity):
        return True
    if state.get("assignee") == identity.agent_id:
        return True
    from chalicelib.inbox.rules import DEFAULT_TEAM

    return (state.get("team") or DEFAULT_TEAM) in teams_of(identity.agent_id)


def require_conversation(identity: Any, conversation_id: str) -> Dict[str, Any]:
    """The conversation (strongly consistent state) if `identity` may see it; NotFoundError
    (404) when it does not exist or belongs to teams the caller is not in. Every conversation
    route calls this before doing anything else."""
    from chalicelib.inbox import store

    if not isinstance(conversation_id, str) or not 1 <= len(conversation_id) <= MAX_ID:
        raise NotFoundError("no such conversation")
    state = store.get(conversation_id)
    if state is None or not may_see(identity, state):
        raise NotFoundError("no such conversation")
    return state


def list_team(identity: Any, team: Optional[str]) -> str:
    """The team a list view reads. Omitted: the default team for admins and members of it, else
    the caller's first team. Another team is 403 (team names are not secrets the way
    conversation ids are: the refusal says "not your team" and reveals nothing about the team,
    the same answer whether or not it exists)."""
    from chalicelib.inbox.rules import DEFAULT_TEAM

    if sees_everything(identity):
        return team or DEFAULT_TEAM
    teams = teams_of(identity.agent_id)
    if not team:
        if not teams:
            raise ForbiddenError("you are not in any team yet; ask an admin to add you to one")
        return DEFAULT_TEAM if DEFAULT_TEAM in teams else sorted(teams)[0]
    if team not in teams:
        raise ForbiddenError("you can only list the conversations of your teams")
    return team


def check_assignee_view(identity: Any, assignee: Optional[str]) -> None:
    """Agents list their own assignments and their team's unassigned ones; another agent's list
    is for supervisors (rows outside their teams are left out) and admins."""
    if assignee is None or assignee == "none" or assignee == identity.agent_id:
        return
    if identity.role == "agent":
        raise ForbiddenError("agents can only list their own conversations (assignee=me) or unassigned ones")


def visible(identity: Any, rows: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows the caller may see (a last line of defence for views that are not one team's)."""
    return [row for row in rows if may_see(identity, row)]


def can_see(identity: Any, state: Optional[Dict[str, Any]]) -> bool:
    """`may_see` for callers that may hold no state (chalicelib.api.common.can_see uses it)."""
    return state is not None and may_see(identity, state)
