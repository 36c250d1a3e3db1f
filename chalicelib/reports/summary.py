"""Report answers from the counters: the period in a time zone, the scope, the numbers.

Periods are instants: `from` and `to` (ISO dates or date-times) are read in the IANA zone `tz`
(DST-correct; numeric offsets are refused as zones), rounded outwards to 15 minutes (every real
offset is a multiple of 15 minutes, so local midnights and hours fall on bucket edges), `to` is
exclusive. The counters of the period are read with bounded Queries (chalicelib.reports.aggregates)
and turned into the numbers here; percentiles come from the merged histograms (relative error
<= 2 %, chalicelib.reports.sketch).
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from chalicelib.reports import aggregates, cycles, sketch

MAX_DAYS = 400  # 13 months and a bit
MAX_QUARTER_DAYS = 92  # views that read 15-minute items one by one (intervals, heatmap)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")
_SCOPE_VALUE = re.compile(r"^[A-Za-z0-9_.:@\-]{1,128}$")


class BadQuery(ValueError):
    """A report query that makes no sense (answered as 400 with the message)."""


@dataclass(frozen=True)
class Period:
    from_ms: int
    to_ms: int
    tz: str

    def previous(self) -> "Period":
        length = self.to_ms - self.from_ms
        return Period(self.from_ms - length, self.from_ms, self.tz)

    def to_json(self, counts: str) -> Dict[str, Any]:
        return {"from": local_iso(self.from_ms, self.tz), "to": local_iso(self.to_ms, self.tz), "tz": self.tz,
                "counts": counts}


def zone(name: Optional[str]) -> Any:
    """The IANA zone `name` (default UTC); BadQuery for anything else, numeric offsets included."""
    from zoneinfo import ZoneInfo

    name = name or "UTC"
    if not isinstance(name, str) or len(name) > 64 or not _ZONE.match(name) or name[0] in "+-":
        raise BadQuery("tz must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        raise BadQuery("tz must be an IANA time zone name such as Europe/Berlin") from None


def _instant(value: Optional[str], name: str, tz: Any) -> int:
    if not value or not isinstance(value, str) or len(value) > 40:
        raise BadQuery(f"{name} is required: an ISO date (2026-11-01) or date-time")
    try:
        if _DATE.match(value):
            moment = _dt.datetime.combine(_dt.date.fromisoformat(value), _dt.time(), tzinfo=tz)
        else:
            moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
    except ValueError:
        raise BadQuery(f"{name} is not an ISO date or date-time") from None
    return int(moment.timestamp() * 1000)


def parse_period(from_text: Optional[str], to_text: Optional[str], tz_name: Optional[str],
                 max_days: int = MAX_DAYS) -> Period:
    """The period a report covers, checked: `to` after `from`, at most `max_days` long."""
    tz = zone(tz_name)
    start, end = _instant(from_text, "from", tz), _instant(to_text, "to", tz)
    start -= start % aggregates.QUARTER_MS
    end += -end % aggregates.QUARTER_MS
    if end <= start:
        raise BadQuery("to must be after from")
    if end - start > max_days * aggregates.DAY_MS:
        raise BadQuery(f"a report covers at most {max_days} days")
    return Period(start, end, tz_name or "UTC")


def local_iso(ms: int, tz_name: str) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, tz=zone(tz_name)).isoformat()


def scope_for(channel: Optional[str] = None, team: Optional[str] = None, agent: Optional[str] = None) -> str:
    """The one scope a filter reads: everything, a channel, a team, a team's channel, an agent."""
    for name, value in (("channel", channel), ("team", team), ("agent", agent)):
        if value is not None and not _SCOPE_VALUE.match(value):
            raise BadQuery(f"{name} is not a valid name")
    if agent is not None:
        if channel is not None or team is not None:
            raise BadQuery("agent cannot be combined with channel or team")
        return f"agent#{agent}"
    if team is not None and channel is not None:
        return f"tc#{team}#{channel}"
    if team is not None:
        return f"team#{team}"
    if channel is not None:
        return f"ch#{channel}"
    return "all"


# --- the numbers -----------------------------------------------------------------------------


def pct(part: int, whole: int) -> Optional[float]:
    return None if whole <= 0 else round(100.0 * part / whole, 1)


def _seconds(value: Optional[float]) -> Optional[int]:
    return None if value is None else int(round(value))


def durations(counters: Mapping[str, int], metric: str, with_target: bool = True) -> Dict[str, Any]:
    """count, median and p90 (seconds, from the histogram), % within the SLA target, and the same
    median/p90 in business time (the SLA policy's calendar, frozen in the log)."""
    histogram = sketch.histogram_of(counters, metric)
    count = int(counters.get(f"{metric}_n", 0))
    business = sketch.histogram_of(counters, f"{metric}b")
    return {
        "count": count,
        "median_s": _seconds(sketch.quantile(histogram, 0.5)),
        "p90_s": _seconds(sketch.quantile(histogram, 0.9)),
        "within_target_pct": pct(int(counters.get(f"{metric}_in", 0)), count) if with_target else None,
        "business_hours": {"median_s": _seconds(sketch.quantile(business, 0.5)),
                           "p90_s": _seconds(sketch.quantile(business, 0.9))},
    }


def attainment(counters: Mapping[str, int], target: str, with_pending: bool = True) -> Dict[str, Any]:
    met, missed = int(counters.get(f"sla_{target}_met", 0)), int(counters.get(f"sla_{target}_missed", 0))
    closed = int(counters.get(f"sla_{target}_closed", 0))
    pending = max(0, int(counters.get(f"sla_{target}_started", 0)) - met - missed - closed) if with_pending else None
    return {"met": met, "missed": missed, "pending": pending, "attainment_pct": pct(met, met + missed)}


def numbers(counters: Mapping[str, int], agent_scope: bool = False) -> Dict[str, Any]:
    """The summary's numbers out of one merged counter set (see the API's definitions)."""
    cycles_total, answered = int(counters.get("cycles", 0)), int(counters.get("answered", 0))
    by_type = {}
    for kind in cycles.KINDS:
        total, done = int(counters.get(f"cycles_{kind}", 0)), int(counters.get(f"answered_{kind}", 0))
        by_type[kind] = {"pct": pct(done, total), "answered": done, "total": total}
    unattributed = {"met": None, "missed": None, "pending": None, "attainment_pct": None}
    return {
        "first_response": durations(counters, "frt"),
        "next_response": durations(counters, "nrt"),
        "resolution": durations(counters, "res", with_target=False),
        "sla": {"first": attainment(counters, "first", not agent_scope),
                "next": attainment(counters, "next", not agent_scope),
                "resolution": unattributed},
        "volume": {"inbound": None, "outbound": None, "new_conversations": int(counters.get("new_conversations", 0)),
                   "unique_authors": None, "cycles": cycles_total, "customer_waits": int(counters.get("waits", 0)),
                   "replies": int(counters.get("replies", 0)),
                   "private_replies": int(counters.get("private_replies", 0)),
                   "resolved": int(counters.get("resolved", 0)), "breaches": int(counters.get("breaches", 0))},
        "response_rate": None if agent_scope else {"pct": pct(answered, cycles_total), "by_type": by_type},
        "unanswered": None if agent_scope else {"count": max(0, cycles_total - answered), "oldest_wait_s": None},
    }


def summary(period: Period, scope: str, compare: bool = False) -> Dict[str, Any]:
    """GET /api/reports/summary: the numbers of `scope` for the cycles that started in `period`."""
    agent_scope = scope.startswith("agent#")
    found = numbers(aggregates.merged(scope, period.from_ms, period.to_ms), agent_scope)
    found["period"] = period.to_json("cohort")
    if compare:
        before = period.previous()
        found["previous"] = numbers(aggregates.merged(scope, before.from_ms, before.to_ms), agent_scope)
        found["previous"]["period"] = before.to_json("cohort")
    return found


INTERVAL_METRICS = ("waits", "cycles", "breaches", "new_conversations")


def intervals(period: Period, scope: str) -> List[Dict[str, Any]]:
    """GET /api/reports/intervals: every 15-minute interval of the period with its arrivals
    (customer waits started, cycles started), breaches and new conversations; empty intervals
    included, so staffing reads a complete series."""
    by_start = {item["_at"]: item for item in aggregates.quarters(scope, period.from_ms, period.to_ms)}
    found = []
    for start in range(period.from_ms, period.to_ms, aggregates.QUARTER_MS):
        item = by_start.get(start, {})
        found.append({"start": local_iso(start, period.tz),
                      **{name: int(item.get(name, 0)) for name in INTERVAL_METRICS}})
    return found


def heatmap(period: Period, scope: str, metric: str) -> Dict[str, Any]:
    """GET /api/reports/heatmap: `metric` summed per local weekday (0 = Monday) and hour in the
    period's time zone (DST-correct: each 15-minute bucket is placed by its own local time)."""
    if metric not in INTERVAL_METRICS:
        raise BadQuery(f"metric must be one of {', '.join(INTERVAL_METRICS)}")
    tz = zone(period.tz)
    cells = [[0] * 24 for _ in range(7)]
    for item in aggregates.quarters(scope, period.from_ms, period.to_ms):
        local = _dt.datetime.fromtimestamp(item["_at"] / 1000, tz=tz)
        cells[local.weekday()][local.hour] += int(item.get(metric, 0))
    return {"metric": metric, "cells": cells, "period": period.to_json("activity" if metric != "cycles" else "cohort")}
