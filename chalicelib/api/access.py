"""Who may see which conversations: team access for every conversation route.

- admins see every conversation;
- agents and supervisors see the conversations of their teams, plus any conversation assigned
  to them (an admin may hand one over across teams; its assignee must be able to answer it);
- anything else answers 404 exactly like an unknown id, so nobody learns that another team's
  conversation exists.

Who may be given a conversation is one pure rule, `assign_refusal` (with `assignable`, the same
rule over a list of candidates, for an assign picker): the API enforces it on PATCH and bulk
assignments; `person`, `assignee_of` and `check_assignment` only read what it needs.

Team membership is the routing directory's (AgentRouting.teams, chalicelib.routing.directory):
there is one source of who is in which team. It is read once per agent and kept in this
container's runtime for TEAMS_CACHE_SECONDS (people changes forget it here at once; other
containers follow within that time).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, List, NamedTuple, Optional

from chalice import BadRequestError, ForbiddenError, NotFoundError, UnprocessableEntityError

TEAMS_CACHE_SECONDS = 30.0
MAX_ID = 128
MAX_AGENT_ID = 64
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


def require_team(identity: Any, team: str) -> str:
    """A team-scoped read other than conversations (its agents, presence and load): admins any
    team, supervisors and agents only their own teams; 403 otherwise (the same answer whether or
    not the team exists)."""
    if not sees_everything(identity) and team not in teams_of(identity.agent_id):
        raise ForbiddenError("you can only see the agents of your own teams")
    return team


# --- who may be given a conversation ---------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """What the assignment rule knows about someone: id, role, teams, and whether active."""

    agent_id: str
    role: str
    teams: FrozenSet[str]
    active: bool = True


class Refusal(NamedTuple):
    """Why an assignment is refused: 422 for an assignee who cannot hold work (unknown or
    deactivated), 403 for a hand-over the actor's role does not allow."""

    status: int
    message: str


def assign_refusal(actor: Person, conversation_team: str, candidate: Optional[Person],
                   current: Optional[str] = None) -> Optional[Refusal]:
    """Why `actor` may not give a conversation of `conversation_team` (currently assigned to
    `current`) to `candidate`; None when they may. Pure: no reads, so the API and an assign
    picker apply the very same rule.

    - Nobody can be given work who does not exist (candidate None) or is deactivated: the
      conversation would leave Unassigned and belong to nobody.
    - Keeping the current assignee changes nothing and is always allowed.
    - Anyone who may see the conversation may give it to a member of its own team: no other
      team gains access to it.
    - Handing it to another team (the assignee then sees its thread and the contact) is an
      admin's decision, or a supervisor's when both the conversation's team and one of the
      assignee's teams are teams of theirs.
    Unassigning (no candidate at all) is not an assignment: callers skip this rule for it.
    """
    if candidate is None:
        return Refusal(422, "no agent has this id")
    if current is not None and candidate.agent_id == current:
        return None
    if not candidate.active:
        return Refusal(422, "this agent is deactivated and cannot be given conversations")
    if actor.role == "admin" or conversation_team in candidate.teams:
        return None
    if actor.role == "supervisor" and conversation_team in actor.teams and candidate.teams & actor.teams:
        return None
    if actor.role == "supervisor":
        return Refusal(403, f"this agent is not in team {conversation_team} nor in a team you supervise with "
                            "it; only admins hand conversations to other teams")
    return Refusal(403, f"this agent is not in team {conversation_team}; handing a conversation to another "
                        "team is for admins, and supervisors of both teams")


def assignable(actor: Person, conversation_team: str, candidates: Iterable[Person],
               current: Optional[str] = None) -> List[Person]:
    """The candidates `actor` may give the conversation to (assign_refusal over a list)."""
    return [c for c in candidates if assign_refusal(actor, conversation_team, c, current) is None]


def parse_assignee(value: Any, my_id: str) -> Optional[str]:
    """An assignee field of a request: "me" (the caller), an agent id, or None (unassign);
    400 for anything else (wrong type, too long, '#', control characters, lone surrogates)."""
    from chalicelib.api.common import plausible_id

    if value == "me":
        return my_id
    if value is not None and (not plausible_id(value, MAX_AGENT_ID) or "#" in value):
        raise BadRequestError("assignee must be 'me', an agent id or null")
    return value


def person(agent_id: str) -> Optional[Person]:
    """The agent with this id as the assignment rule sees them (None: no such agent)."""
    from chalicelib.api import people
    from chalicelib.routing import directory

    agent = people.find(agent_id)
    if agent is None:
        return None
    return Person(agent.agent_id, agent.role or "agent", frozenset(directory.profile(agent.agent_id).teams),
                  bool(agent.active))


def actor_of(identity: Any) -> Person:
    return Person(identity.agent_id, identity.role, teams_of(identity.agent_id))


def assignee_of(identity: Any, agent_id: Optional[str]) -> Optional[Person]:
    """The person a request assigns to (None for unassigning); 422 when nobody can be given work
    under this id: such an assignee is refused before any conversation is read or changed."""
    if agent_id is None:
        return None
    if agent_id == identity.agent_id:
        return actor_of(identity)  # the caller: active, or their token would not work
    found = person(agent_id)
    if found is None or not found.active:
        refusal = assign_refusal(actor_of(identity), "", found)
        raise UnprocessableEntityError(refusal.message if refusal else "no agent has this id")
    return found


def check_assignment(identity: Any, state: Dict[str, Any], candidate: Optional[Person]) -> Optional[Refusal]:
    """assign_refusal for this caller and conversation (None: allowed; unassigning always is)."""
    from chalicelib.inbox.rules import DEFAULT_TEAM

    if candidate is None:
        return None
    return assign_refusal(actor_of(identity), state.get("team") or DEFAULT_TEAM, candidate, state.get("assignee"))


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
