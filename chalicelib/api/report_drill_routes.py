"""HTTP route of the conversations behind the reports (a Chalice blueprint): one row per
conversation cycle, for a BI tool's export (format=csv, paged) and for the Reports screen's
drill-down (the same rows, narrowed to what one number or chart cell counts).

Who sees what is the summary's rule (report_routes.allowed_scope): admins everything,
supervisors their teams, agents the cycles they answered or resolved.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

from chalice import BadRequestError, Blueprint

from chalicelib.api.routes import authenticated

report_drill_api = Blueprint(__name__)
_INT = re.compile(r"^\d{1,4}$")


def _number(query: Dict[str, str], name: str, low: int, high: int, default: Optional[int] = None) -> Optional[int]:
    from chalicelib.reports import summary

    value = query.get(name)
    if value is None:
        return default
    if not _INT.match(value) or not low <= int(value) <= high:
        raise summary.BadQuery(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _filters(query: Dict[str, str], tz: Any) -> Dict[str, Any]:
    """The drill-down's narrowing, checked: a named number, a thread kind, a tag, a priority, a
    local weekday (0 = Monday) and hour."""
    from chalicelib.inbox import rules
    from chalicelib.reports import cycles, export, summary

    name = query.get("filter")
    if name is not None and name not in export.FILTERS:
        raise summary.BadQuery("filter must be one of " + ", ".join(export.FILTERS))
    kind = query.get("kind")
    if kind is not None and kind not in cycles.KINDS:
        raise summary.BadQuery("kind must be one of " + ", ".join(cycles.KINDS))
    tag = query.get("tag")
    if tag is not None and rules.tag_name(tag) is None:
        raise summary.BadQuery("tag is not a valid tag")
    priority = query.get("priority")
    if priority is not None and priority not in rules.PRIORITIES:
        raise summary.BadQuery("priority must be one of " + ", ".join(rules.PRIORITIES))
    weekday, hour = _number(query, "weekday", 0, 6), _number(query, "hour", 0, 23)
    if (weekday is None) != (hour is None):
        raise summary.BadQuery("weekday and hour go together")
    cell: Optional[Tuple[int, int, Any]] = None if weekday is None or hour is None else (weekday, hour, tz)
    return {"filter_name": name, "kind": kind, "tag": rules.tag_name(tag) if tag else None,
            "priority": priority, "weekday_hour": cell}


@report_drill_api.route("/api/reports/conversations", methods=["GET"])
@authenticated
def report_conversations(identity: Any) -> Any:
    from chalice import Response

    from chalicelib.api import names
    from chalicelib.api.report_routes import allowed_scope
    from chalicelib.reports import export, summary

    query = dict(report_drill_api.current_request.query_params or {})
    try:
        form = query.get("format", "json")
        if form not in ("json", "csv"):
            raise summary.BadQuery("format must be json or csv")
        period = summary.parse_period(query.get("from"), query.get("to"), query.get("tz"))
        tz = summary.zone(period.tz)
        limit = _number(query, "limit", 1, export.MAX_LIMIT, export.DEFAULT_LIMIT) or export.DEFAULT_LIMIT
        keep = export.test_of(allowed_scope(identity, query), **_filters(query, tz))
        rows, cursor = export.page(period.from_ms, period.to_ms, keep, limit, query.get("cursor"))
    except (summary.BadQuery, export.BadCursor) as error:
        raise BadRequestError(str(error))
    found = names.labels(a for row in rows for a in [row.get("assignee")] + list(row.get("agents") or []))
    items = [export.shown(row, tz, found) for row in rows]
    if form == "csv":
        headers = {"Content-Type": "text/csv; charset=utf-8",
                   "Content-Disposition": 'attachment; filename="conversations.csv"'}
        if cursor:
            headers["X-Next-Cursor"] = cursor
        return Response(export.csv_text(items, header=not query.get("cursor")), status_code=200, headers=headers)
    return {"items": items, "next_cursor": cursor, "period": period.to_json("cohort")}
