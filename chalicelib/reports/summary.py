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
from typing import Any, Dict, List, Mapping, Optional, Tuple

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


def scope_for(channel: Optional[str] = None, team: Optional[str] = None, agent: Optional[str] = None,
              tag: Optional[str] = None, priority: Optional[str] = None, account: Optional[str] = None) -> str:
    """The one scope a filter reads (chalicelib.reports.cycles.scopes_of): everything, a channel,
    a channel account (with its channel), a priority, a tag, a team (alone or with its channel,
    account or priority), an agent (alone), a tag (alone)."""
    from chalicelib.inbox import rules

    for name, value in (("channel", channel), ("team", team), ("agent", agent), ("account", account)):
        if value is not None and not _SCOPE_VALUE.match(value):
            raise BadQuery(f"{name} is not a valid name")
    if tag is not None and rules.tag_name(tag) != tag:
        raise BadQuery("tag is not a valid tag (lower-case, 1 to 32 characters, no '#')")
    if priority is not None and priority not in rules.PRIORITIES:
        raise BadQuery(f"priority must be one of {', '.join(rules.PRIORITIES)}")
    if account is not None and channel is None:
        raise BadQuery("account needs its channel")
    given = sum(value is not None for value in (channel, priority, tag))
    if agent is not None:
        if given or team is not None:
            raise BadQuery("agent cannot be combined with other filters")
        return f"agent#{agent}"
    if tag is not None:
        if given > 1 or team is not None:
            raise BadQuery("tag cannot be combined with other filters")
        return f"tag#{tag}"
    if given > 1:
        raise BadQuery("combine at most a team with one of channel (and account) or priority")
    dim = None
    if account is not None:
        dim = f"acct#{channel}#{account}"
    elif priority is not None:
        dim = f"prio#{priority}"
    if team is not None:
        if dim is not None:
            return f"t#{team}#{dim}"
        return f"tc#{team}#{channel}" if channel is not None else f"team#{team}"
    if dim is not None:
        return dim
    return f"ch#{channel}" if channel is not None else "all"


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


def attainment(counters: Mapping[str, Any], target: str, with_pending: bool = True,
               missed_open: int = 0) -> Dict[str, Any]:
    """met / (met + missed); `missed_open`: still open and already past the target (missed too)."""
    met = int(counters.get(f"sla_{target}_met", 0))
    missed = int(counters.get(f"sla_{target}_missed", 0)) + missed_open
    closed = int(counters.get(f"sla_{target}_closed", 0))
    pending = max(0, int(counters.get(f"sla_{target}_started", 0)) - met - missed - closed) if with_pending else None
    return {"met": met, "missed": missed, "pending": pending, "attainment_pct": pct(met, met + missed)}


def open_past_due(counters: Mapping[str, Any], now_ms: int) -> int:
    """Cycles still open whose resolution deadline's 15-minute bucket has ended by `now_ms`
    (the `rd<quarter index>` gauges, chalicelib.reports.cycles)."""
    found = 0
    for name, value in counters.items():
        if name.startswith("rd") and name[2:].isdigit() and (int(name[2:]) + 1) * aggregates.QUARTER_MS <= now_ms:
            found += max(0, int(value))
    return found


def _rate(counters: Mapping[str, Any], suffix: str = "") -> Dict[str, Any]:
    """Response rate of one item type (suffix "_dm"...) or all: answered / items needing a response
    (cycles less the moderation-only ones), public and private first replies apart."""
    cycles_n = int(counters.get(f"cycles{suffix}", 0))
    moderated = int(counters.get(f"moderated{suffix}", 0))
    answered = int(counters.get(f"answered{suffix}", 0))
    private = int(counters.get(f"answered{suffix}_private", 0)) if suffix else int(counters.get("answered_private", 0))
    total = max(0, cycles_n - moderated)
    return {"pct": pct(answered, total), "answered": answered, "total": total, "public": answered - private,
            "private": private, "moderated": moderated}


#: Which summary numbers count events in the period (activity); all others count the cycles
#: that started in it (cohort).
ACTIVITY_NUMBERS = ("volume.inbound", "volume.outbound", "volume.unique_authors", "volume.customer_waits",
                    "volume.breaches")


def numbers(counters: Mapping[str, Any], agent_scope: bool = False, now_ms: Optional[int] = None) -> Dict[str, Any]:
    """The summary's numbers out of one merged counter set (see the API's definitions)."""
    from chalicelib.reports import distinct

    cycles_total, answered = int(counters.get("cycles", 0)), int(counters.get("answered", 0))
    moderated = int(counters.get("moderated", 0))
    late_open = open_past_due(counters, now_ms) if now_ms is not None else 0
    resolution = durations(counters, "res", with_target=False)
    met, missed = int(counters.get("sla_resolution_met", 0)), int(counters.get("sla_resolution_missed", 0))
    resolution["within_target_pct"] = pct(met, met + missed)
    overall = _rate(counters)
    return {
        "first_response": durations(counters, "frt"),
        "next_response": durations(counters, "nrt"),
        "resolution": resolution,
        "sla": {"first": attainment(counters, "first", not agent_scope),
                "next": attainment(counters, "next", not agent_scope),
                "resolution": attainment(counters, "resolution", not agent_scope, late_open)},
        "volume": {"inbound": int(counters.get("inbound", 0)), "outbound": int(counters.get("outbound", 0)),
                   "new_conversations": int(counters.get("new_conversations", 0)),
                   "unique_authors": distinct.estimate(counters.get(distinct.ATTRIBUTE) or ()),
                   "cycles": cycles_total, "customer_waits": int(counters.get("waits", 0)),
                   "replies": int(counters.get("replies", 0)),
                   "private_replies": int(counters.get("private_replies", 0)),
                   "resolved": int(counters.get("resolved", 0)), "breaches": int(counters.get("breaches", 0))},
        "response_rate": None if agent_scope else dict(
            overall, by_type={kind: _rate(counters, f"_{kind}") for kind in cycles.KINDS}),
        "unanswered": None if agent_scope else {"count": max(0, cycles_total - answered - moderated),
                                                "oldest_wait_s": None},
    }


def summary(period: Period, scope: str, compare: bool = False) -> Dict[str, Any]:
    """GET /api/reports/summary: the numbers of `scope` for the cycles that started in `period`
    (the messages and waits that happened in it for the activity numbers)."""
    from chalicelib.runtime import runtime

    agent_scope = scope.startswith("agent#")
    now = runtime.now_ms()
    found = numbers(aggregates.merged(scope, period.from_ms, period.to_ms), agent_scope, now)
    if found["unanswered"] is not None:
        oldest = aggregates.earliest_positive(scope, period.from_ms, period.to_ms, "waiting")
        found["unanswered"]["oldest_wait_s"] = None if oldest is None else max(0, (now - oldest) // 1000)
    found["period"] = dict(period.to_json("cohort"), activity=list(ACTIVITY_NUMBERS))
    if compare:
        before = period.previous()
        found["previous"] = numbers(aggregates.merged(scope, before.from_ms, before.to_ms), agent_scope, now)
        found["previous"]["period"] = dict(before.to_json("cohort"), activity=list(ACTIVITY_NUMBERS))
    return found


#: Timeseries metrics: name -> (path in the summary's numbers, what it counts).
SERIES: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "inbound": (("volume", "inbound"), "activity"), "outbound": (("volume", "outbound"), "activity"),
    "unique_authors": (("volume", "unique_authors"), "activity"),
    "customer_waits": (("volume", "customer_waits"), "activity"), "breaches": (("volume", "breaches"), "activity"),
    "new_conversations": (("volume", "new_conversations"), "cohort"), "cycles": (("volume", "cycles"), "cohort"),
    "replies": (("volume", "replies"), "cohort"), "resolved": (("volume", "resolved"), "cohort"),
    "response_rate": (("response_rate", "pct"), "cohort"), "unanswered": (("unanswered", "count"), "cohort"),
    "first_response_median": (("first_response", "median_s"), "cohort"),
    "first_response_p90": (("first_response", "p90_s"), "cohort"),
    "first_response_within_target": (("first_response", "within_target_pct"), "cohort"),
    "next_response_median": (("next_response", "median_s"), "cohort"),
    "next_response_p90": (("next_response", "p90_s"), "cohort"),
    "resolution_median": (("resolution", "median_s"), "cohort"), "resolution_p90": (("resolution", "p90_s"), "cohort"),
    "sla_first_attainment": (("sla", "first", "attainment_pct"), "cohort"),
    "sla_next_attainment": (("sla", "next", "attainment_pct"), "cohort"),
    "sla_resolution_attainment": (("sla", "resolution", "attainment_pct"), "cohort"),
}
GROUPS = ("day", "week", "month")
MAX_DAY_GROUPS = 92


def group_starts(period: Period, group_by: str) -> List[int]:
    """The local starts of the day/week (Monday)/month groups covering the period, in its time
    zone (DST-correct: each start is that local midnight's own instant), the first one clipped to
    the period's start."""
    if group_by not in GROUPS:
        raise BadQuery("group_by must be day, week or month")
    tz = zone(period.tz)
    day = _dt.datetime.fromtimestamp(period.from_ms / 1000, tz=tz).date()
    if group_by == "week":
        day -= _dt.timedelta(days=day.weekday())
    elif group_by == "month":
        day = day.replace(day=1)
    starts = []
    while True:
        start = int(_dt.datetime.combine(day, _dt.time(), tzinfo=tz).timestamp() * 1000)
        start -= start % aggregates.QUARTER_MS
        if start >= period.to_ms:
            break
        starts.append(max(start, period.from_ms))
        if group_by == "day":
            day += _dt.timedelta(days=1)
        elif group_by == "week":
            day += _dt.timedelta(days=7)
        else:
            day = (day.replace(day=28) + _dt.timedelta(days=4)).replace(day=1)
    return sorted(set(starts))


def timeseries(period: Period, scope: str, metric: str, group_by: str) -> Dict[str, Any]:
    """GET /api/reports/timeseries: one metric per local day, week or month of the period, each
    group read like a summary (bounded reads per group, never a Scan)."""
    if metric not in SERIES:
        raise BadQuery(f"metric must be one of {', '.join(SERIES)}")
    starts = group_starts(period, group_by)
    if group_by == "day" and len(starts) > MAX_DAY_GROUPS:
        raise BadQuery(f"group_by=day covers at most {MAX_DAY_GROUPS} days; use week or month")
    from chalicelib.runtime import runtime

    path, counts = SERIES[metric]
    agent_scope, now = scope.startswith("agent#"), runtime.now_ms()
    points = []
    for start, end in zip(starts, starts[1:] + [period.to_ms]):
        value: Any = numbers(aggregates.merged(scope, start, end), agent_scope, now)
        for step in path:
            value = None if value is None else value.get(step)
        points.append({"start": local_iso(start, period.tz), "value": value})
    return {"metric": metric, "group_by": group_by, "points": points, "period": period.to_json(counts)}


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
