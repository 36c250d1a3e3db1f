"""HTTP routes of staffing (a Chalice blueprint, supervisors and admins): thin, the work is in
chalicelib.staffing. Bad input is 400 naming the field."""
from __future__ import annotations

from typing import Any

from chalice import BadRequestError, Blueprint, ForbiddenError

from chalicelib.api.common import json_body
from chalicelib.api.routes import authenticated

staffing_api = Blueprint(__name__)

MAX_BODY_BYTES = 4 * 1024
MANAGERS = ("admin", "supervisor")


def _managers_only(identity: Any) -> None:
    if identity.role not in MANAGERS:
        raise ForbiddenError("only admins and supervisors may use staffing")


@staffing_api.route("/api/staffing/calculate", methods=["POST"])
@authenticated
def calculate(identity: Any) -> Any:
    """Agents one interval needs (Erlang C, Erlang A or the asynchronous workload model)."""
    _managers_only(identity)
    from chalicelib.staffing import calculator

    body = json_body(staffing_api.current_request, MAX_BODY_BYTES)
    try:
        return calculator.calculate(body)
    except ValueError as error:
        raise BadRequestError(str(error))


MAX_DAYS = 90


def _query() -> dict:
    return dict(staffing_api.current_request.query_params or {})


def _group(query: dict) -> str:
    from chalicelib.staffing.plan import GROUPS

    group = query.get("group", "live")
    if group not in GROUPS:
        raise BadRequestError(f"group must be one of {', '.join(GROUPS)}")
    return group


def _days(query: dict, default: int, high: int = MAX_DAYS) -> int:
    text = query.get("days", str(default))
    if not text.isdigit() or not 1 <= int(text) <= high:
        raise BadRequestError(f"days must be a whole number from 1 to {high}")
    return int(text)


def _team(identity: Any, query: dict) -> Any:
    """A supervisor sees their own teams' figures only; admins any team or all of them."""
    from chalicelib.api import access
    from chalicelib.api.common import plausible_id

    team = query.get("team")
    if team is not None and not plausible_id(team, 64):
        raise BadRequestError("team is not a team name")
    if identity.role != "admin":
        mine = sorted(access.teams_of(identity.agent_id))
        if team is None:
            if len(mine) != 1:
                raise BadRequestError("name one of your teams: team=" + "|".join(mine))
            team = mine[0]
        elif team not in mine:
            raise ForbiddenError("you can only see the figures of your own teams")
    return team


@staffing_api.route("/api/staffing/handle-time", methods=["GET"])
@authenticated
def handle_time(identity: Any) -> Any:
    """Measured handle time (agents' focus per conversation cycle) of a channel group: mean,
    spread and sample size over the last `days` days."""
    _managers_only(identity)
    from chalicelib.runtime import runtime
    from chalicelib.staffing import focus

    query = _query()
    group, days, team = _group(query), _days(query, 28), _team(identity, query)
    now = runtime.now_ms()
    return {"group": group, "team": team, "days": days,
            **focus.handle_time(group, now - days * 86_400_000, now + 1, team)}


@staffing_api.route("/api/staffing/plan", methods=["GET"])
@authenticated
def staffing_plan(identity: Any) -> Any:
    """A channel group's plan: the last week as it was (arrivals, agents required, agents
    online), the next `days` days forecast, the forecast's accuracy, handle time and shrinkage."""
    _managers_only(identity)
    from chalicelib.runtime import runtime
    from chalicelib.staffing import service

    query = _query()
    group, days, team = _group(query), _days(query, 14, 28), _team(identity, query)
    teams = None
    if team is None:  # an admin's whole floor (the default team exists before anyone configures it)
        from chalicelib.inbox.rules import DEFAULT_TEAM
        from chalicelib.routing import directory

        teams = sorted(set(directory.all_teams()) | {DEFAULT_TEAM})
    return service.staffing_plan(group, team, runtime.now_ms(), days=days, teams=teams)


@staffing_api.route("/api/staffing/settings", methods=["GET", "PUT"])
@authenticated
def staffing_settings(identity: Any) -> Any:
    """A group's staffing settings (target share, occupancy cap, shrinkage, assumed handle time,
    concurrency, an optional reply target): team leads read theirs, admins set them."""
    _managers_only(identity)
    from chalicelib.staffing import service

    query = _query()
    group, team = _group(query), _team(identity, query)
    if staffing_api.current_request.method == "GET":
        return {"group": group, "team": team, "settings": service.settings(group, team)}
    if identity.role != "admin":
        raise ForbiddenError("only admins change staffing settings")
    body = json_body(staffing_api.current_request, MAX_BODY_BYTES)
    try:
        return {"group": group, "team": team, "settings": service.save_settings(group, team, body)}
    except ValueError as error:
        raise BadRequestError(str(error))
