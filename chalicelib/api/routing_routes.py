"""HTTP routes of routing (a Chalice blueprint): presence, agents' teams and capacity, team modes.
Views stay thin: parse and validate, call chalicelib.routing, shape."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from chalicelib.api.common import json_body
from chalicelib.api.routes import admin_only, authenticated
from chalice import BadRequestError, Blueprint, NotFoundError

routing_api = Blueprint(__name__)


def _body() -> Dict[str, Any]:
    return json_body(routing_api.current_request)


def _team_name(team: str) -> str:
    from chalicelib.routing import directory

    if not directory.valid_team(team):
        raise BadRequestError("team names are 1-64 letters, digits, '.', '_' or '-'")
    return team


@routing_api.route("/api/me/presence", methods=["PUT"])
@authenticated
def put_presence(identity: Any) -> Any:
    """The inbox reports presence every ~30 s; online lasts the grace period past the last one."""
    from chalicelib import routing
    from chalicelib.routing import directory

    status = _body().get("status")
    if not isinstance(status, str) or status not in directory.PRESENCE:
        raise BadRequestError(f"status must be one of {', '.join(directory.PRESENCE)}")
    return routing.presence_changed(identity.agent_id, status)


@routing_api.route("/api/agents/{agent_id}/routing", methods=["PUT"])
@admin_only
def put_agent_routing(agent_id: str, identity: Any) -> Any:
    """{"teams": [..], "capacity": N}: either or both."""
    from chalicelib import routing
    from chalicelib.routing import directory

    body = _body()
    teams: Optional[List[str]] = None
    capacity: Optional[int] = None
    if "teams" not in body and "capacity" not in body:
        raise BadRequestError("give teams and/or capacity")
    if "teams" in body:
        raw = body["teams"]
        if not isinstance(raw, list) or len(raw) > directory.MAX_TEAMS \
                or not all(directory.valid_team(t) for t in raw):
            raise BadRequestError(f"teams must be a list of at most {directory.MAX_TEAMS} team names "
                                  "(1-64 letters, digits, '.', '_' or '-')")
        teams = sorted(set(raw))
    if "capacity" in body:
        raw = body["capacity"]
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= directory.MAX_CAPACITY:
            raise BadRequestError(f"capacity must be an integer from 0 to {directory.MAX_CAPACITY}")
        capacity = raw
    if len(agent_id) > 128 or directory.agent_exists(agent_id) is None:
        raise NotFoundError("no such agent")
    profile = directory.set_routing(agent_id, teams, capacity)
    from chalicelib.runtime import runtime

    result = profile.json(runtime.now_ms())
    result["assigned"] = sum(routing.drain(team) for team in profile.teams)  # capacity may have grown
    return result


@routing_api.route("/api/teams/{team}", methods=["PUT"])
@admin_only
def put_team(team: str, identity: Any) -> Any:
    """{"mode": "round_robin" | "least_loaded"}"""
    from chalicelib.routing import directory

    name = _team_name(team)
    mode = _body().get("mode")
    if not isinstance(mode, str) or mode not in directory.MODES:
        raise BadRequestError(f"mode must be one of {', '.join(directory.MODES)}")
    found = directory.set_mode(name, mode)
    return {"team": found.name, "mode": found.mode, "members": len(found.members)}


@routing_api.route("/api/teams", methods=["GET"])
@authenticated
def teams(identity: Any) -> Any:
    """The teams whose agents the caller may assign to (the assign picker's choice): every team
    for admins (one Query), the caller's own teams for agents and supervisors."""
    from chalicelib.api import access
    from chalicelib.routing import directory

    found = directory.all_teams() if access.sees_everything(identity) else access.teams_of(identity.agent_id)
    return {"items": sorted(found)}


@routing_api.route("/api/teams/{team}/agents", methods=["GET"])
@authenticated
def team_agents(team: str, identity: Any) -> Any:
    """The team's agents with their names, presence, capacity and current load (open assigned
    conversations); `active` is false for a deactivated agent. For the team's own members and
    supervisors, and admins (access.require_team; 403 otherwise)."""
    from chalicelib.api import access, names
    from chalicelib.routing import directory
    from chalicelib.runtime import runtime

    found = directory.team(access.require_team(identity, _team_name(team)))
    now = runtime.now_ms()
    agents = []
    for agent_id, profile in sorted((directory.profiles(found.members) if found.members else {}).items()):
        row = profile.json(now)
        row.pop("teams", None)
        row.update(name=names.label(agent_id), active=names.active(agent_id), load=directory.load(agent_id))
        agents.append(row)
    return {"team": found.name, "mode": found.mode, "agents": agents}
