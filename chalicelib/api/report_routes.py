"""HTTP routes of reports (a Chalice blueprint). Thin: parse and check the query, decide the
scope the caller may read, call chalicelib.reports.summary.

Who sees what: admins everything; supervisors their teams (no `team`: their first team; a
channel, account or priority is read within that team; an agent only if the agent shares one of
their teams; tags are counted across teams, so tag reports are the admins'); agents only their
own numbers (`agent` omitted or themselves, no other filter). Bad input is 400, someone else's
numbers 403.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from chalice import BadRequestError, Blueprint, ForbiddenError

from chalicelib.api.routes import authenticated

reports_api = Blueprint(__name__)


def _query() -> Dict[str, str]:
    return dict(reports_api.current_request.query_params or {})


def allowed_scope(identity: Any, query: Dict[str, str]) -> str:
    """The counter scope the caller asked for, if they may read it (ForbiddenError otherwise)."""
    from chalicelib.api import access
    from chalicelib.reports import summary

    channel, team, agent = query.get("channel"), query.get("team"), query.get("agent")
    tag, priority, account = query.get("tag"), query.get("priority"), query.get("account")
    role = getattr(identity, "role", "agent")
    if role == "admin":
        return summary.scope_for(channel, team, agent, tag, priority, account)
    others = (channel, team, tag, priority, account)
    if role != "supervisor":
        if any(value is not None for value in others) or agent not in (None, identity.agent_id):
            raise ForbiddenError("agents see their own numbers only")
        return summary.scope_for(agent=identity.agent_id)
    if tag is not None:
        summary.scope_for(tag=tag)  # validates it first
        raise ForbiddenError("tag reports count across teams: admins only")
    mine = access.teams_of(identity.agent_id)
    if agent is not None:
        summary.scope_for(agent=agent)  # validates the name first
        if agent != identity.agent_id and not (mine & access.teams_of(agent)):
            raise ForbiddenError("that agent is not in your teams")
        return summary.scope_for(channel, team, agent, priority=priority, account=account)
    if team is None:
        if not mine:
            raise ForbiddenError("you are in no team")
        team = sorted(mine)[0]
    elif team not in mine:
        raise ForbiddenError("not your team")
    return summary.scope_for(channel, team, priority=priority, account=account)


def _period(query: Dict[str, str], max_days: Optional[int] = None) -> Any:
    from chalicelib.reports import summary

    return summary.parse_period(query.get("from"), query.get("to"), query.get("tz"),
                                max_days or summary.MAX_DAYS)


@reports_api.route("/api/reports/summary", methods=["GET"])
@authenticated
def report_summary(identity: Any) -> Any:
    from chalicelib.reports import summary

    query = _query()
    try:
        compare = query.get("compare")
        if compare not in (None, "previous"):
            raise summary.BadQuery("compare must be 'previous'")
        form = _format(query)
        period = _period(query)
        scope = allowed_scope(identity, query)
        found = summary.summary(period, scope, compare=compare == "previous")
    except summary.BadQuery as error:
        raise BadRequestError(str(error))
    if form == "csv":
        return _csv(_flattened(found), "summary")
    return found


def _flattened(found: Any, prefix: str = "") -> List[Dict[str, Any]]:
    """The summary as (metric, value) rows, one per number the JSON holds ("first_response.median_s",
    "response_rate.by_type.dm.pct", "previous.volume.inbound"...): what the screen shows, in the
    order the API answers it. Names are ours, values numbers, times or enums: no formula cell."""
    rows: List[Dict[str, Any]] = []
    if isinstance(found, dict):
        for key, value in found.items():
            rows.extend(_flattened(value, f"{prefix}{key}."))
    elif isinstance(found, list):
        rows.append({"metric": prefix[:-1], "value": " ".join(str(v) for v in found)})
    else:
        rows.append({"metric": prefix[:-1], "value": "" if found is None else found})
    return rows


@reports_api.route("/api/reports/intervals", methods=["GET"])
@authenticated
def report_intervals(identity: Any) -> Any:
    from chalicelib.reports import summary

    query = _query()
    try:
        form = _format(query)
        period = _period(query, summary.MAX_QUARTER_DAYS)
        scope = allowed_scope(identity, query)
        items = summary.intervals(period, scope)
    except summary.BadQuery as error:
        raise BadRequestError(str(error))
    if form == "csv":
        return _csv(items, "intervals")
    return {"items": items, "period": period.to_json("activity")}


@reports_api.route("/api/reports/timeseries", methods=["GET"])
@authenticated
def report_timeseries(identity: Any) -> Any:
    """One metric per local day, week or month (`format=csv`: the same points as a spreadsheet)."""
    from chalicelib.reports import summary

    query = _query()
    try:
        form = _format(query)
        period = _period(query)
        scope = allowed_scope(identity, query)
        found = summary.timeseries(period, scope, query.get("metric") or "", query.get("group_by") or "day")
    except summary.BadQuery as error:
        raise BadRequestError(str(error))
    if form == "csv":
        return _csv([{"start": p["start"], found["metric"]: "" if p["value"] is None else p["value"]}
                     for p in found["points"]], f"{found['metric']}-by-{found['group_by']}")
    return found


def _format(query: Dict[str, str]) -> str:
    from chalicelib.reports import summary

    form = query.get("format", "json")
    if form not in ("json", "csv"):
        raise summary.BadQuery("format must be json or csv")
    return form


def _csv(items: Any, name: str) -> Any:
    """A spreadsheet's download of rows of local times and counts (no cell starts with a formula
    character: times and integers only)."""
    import csv
    import io

    from chalice import Response

    out = io.StringIO()
    fields = list(items[0]) if items else ["start"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(items)
    return Response(out.getvalue(), status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{name}.csv"'})


@reports_api.route("/api/reports/heatmap", methods=["GET"])
@authenticated
def report_heatmap(identity: Any) -> Any:
    from chalicelib.reports import summary

    query = _query()
    try:
        form = _format(query)
        period = _period(query, summary.MAX_QUARTER_DAYS)
        scope = allowed_scope(identity, query)
        found = summary.heatmap(period, scope, query.get("metric") or "waits")
    except summary.BadQuery as error:
        raise BadRequestError(str(error))
    if form == "csv":  # a row per local weekday, a column per local hour: the screen's grid
        days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        return _csv([dict({"weekday": day}, **{f"{hour:02d}": row[hour] for hour in range(24)})
                     for day, row in zip(days, found["cells"])], "heatmap")
    return found
