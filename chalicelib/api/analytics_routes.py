"""HTTP route of the attention report (a Chalice blueprint): platform analytics next to the
inbox's numbers per day and channel (chalicelib.analytics.attention). Thin: check the query,
decide the scopes the caller may read, answer JSON or CSV.

Who sees what: admins every channel; supervisors their team's conversations on each channel (the
same rule as the other reports: no `team` means their first team) next to the channel's platform
numbers; agents nothing (403: platform analytics are the brand's, not one agent's).
"""
from __future__ import annotations

from typing import Any, Dict

from chalice import BadRequestError, Blueprint, ForbiddenError

from chalicelib.api.routes import authenticated

analytics_api = Blueprint(__name__)
QUERY = ("from", "to", "tz", "channel", "team", "format")


@analytics_api.route("/api/reports/attention", methods=["GET"])
@authenticated
def report_attention(identity: Any) -> Any:
    from chalicelib.analytics import attention, catalogue
    from chalicelib.api.report_routes import allowed_scope
    from chalicelib.reports import summary

    query: Dict[str, str] = dict(analytics_api.current_request.query_params or {})
    if getattr(identity, "role", "agent") not in ("supervisor", "admin"):
        raise ForbiddenError("the attention report is for supervisors and admins")
    try:
        unknown = sorted(set(query) - set(QUERY))
        if unknown:
            raise summary.BadQuery(f"unknown parameter {unknown[0][:32]!r}" if unknown[0].isprintable()
                                   else "unknown parameter")
        form = query.get("format", "json")
        if form not in ("json", "csv"):
            raise summary.BadQuery("format must be json or csv")
        period = summary.parse_period(query.get("from"), query.get("to"), query.get("tz"), attention.MAX_DAYS)
        known = catalogue.load()
        channel = query.get("channel")
        if channel is not None and channel not in known:
            raise summary.BadQuery("channel must be one of " + ", ".join(sorted(known)))
        team = query.get("team")
        scopes = {name: allowed_scope(identity, {k: v for k, v in (("channel", name), ("team", team)) if v is not None})
                  for name in ([channel] if channel else sorted(known))}
        answer = attention.report(period, scopes, known)
    except summary.BadQuery as error:
        raise BadRequestError(str(error))
    if form == "csv":
        return _csv(attention.csv_rows(answer))
    return answer


def _csv(rows: Any) -> Any:
    """The screen's table as a spreadsheet: days, channel names, numbers and labels from the
    catalogue only (no cell starts with a formula character)."""
    import csv
    import io

    from chalice import Response

    from chalicelib.analytics.attention import COLUMNS

    out = io.StringIO()
    fields = list(rows[0]) if rows else list(COLUMNS)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": 'attachment; filename="attention.csv"'})
