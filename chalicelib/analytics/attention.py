"""GET /api/reports/attention: per day and channel, what the platform says about attention (reach,
followers, new followers, every configured metric) next to what reached the inbox (new conversations,
customer waits, replies, response rate, first response median and p90).

Inbox side: chalicelib.reports' own counters through its public functions (the UTC day items when
local days are UTC days, else the 15-minute items, of the channel's scope in one paged Query,
summed per local day of the period's IANA zone, turned into
numbers by `summary.numbers`: the same definitions as the summary, cohort of cycles started that
day). Platform side: the snapshot's items of the channel in one Query. Platform days are the
platform's own calendar dates (Meta: Pacific time; the others UTC) and are matched with the local
day of the same date. A metric the platform stopped serving reads "no_longer_available"; a day
without a snapshot reads "no_data" (null values): never an error.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List, Mapping, Optional

from chalicelib.analytics import catalogue as catalogue_module
from chalicelib.analytics.catalogue import ChannelAnalytics

MAX_DAYS = 92
INBOX_COLUMNS = ("new_conversations", "customer_waits", "replies", "response_rate_pct", "first_response_median_s",
                 "first_response_p90_s", "unanswered")
COLUMNS = ("day", "channel", "reach", "followers", "new_followers") + INBOX_COLUMNS


def local_days(period: Any) -> List[Any]:
    """[(date, start ms, end ms)] of the local days the period covers (DST-correct: a day is 23,
    24 or 25 hours; the first and last may be partial when the period is)."""
    from chalicelib.reports import summary

    tz = summary.zone(period.tz)
    found = []
    day = _dt.datetime.fromtimestamp(period.from_ms / 1000, tz=tz).date()
    while True:
        start = int(_dt.datetime.combine(day, _dt.time(), tzinfo=tz).timestamp() * 1000)
        end = int(_dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(), tzinfo=tz).timestamp() * 1000)
        if start >= period.to_ms:
            return found
        found.append((day, max(start, period.from_ms), min(end, period.to_ms)))
        day += _dt.timedelta(days=1)


def _inbox_by_day(scope: str, period: Any, days: List[Any]) -> Dict[str, Dict[str, Any]]:
    from chalicelib.reports import aggregates, summary

    sums: Dict[str, Dict[str, int]] = {day.isoformat(): {} for day, _s, _e in days}
    if all(start % aggregates.DAY_MS == 0 and end % aggregates.DAY_MS == 0 for _d, start, end in days):
        # local days are UTC days (UTC, or a whole-day period in a zone at +00:00): one item a day
        items = aggregates.items(scope, aggregates.day_key(period.from_ms), aggregates.day_key(period.to_ms - 1))
    else:
        items = aggregates.quarters(scope, period.from_ms, period.to_ms)
    index = 0
    for day, start, end in days:
        counters = sums[day.isoformat()]
        while index < len(items) and items[index]["_at"] < end:
            if items[index]["_at"] >= start:
                aggregates.add_up(counters, [items[index]])  # numbers added, author registers united
            index += 1
    found = {}
    for day, counters in sums.items():
        numbers = summary.numbers(counters)
        rate = numbers.get("response_rate") or {}
        volume = numbers.get("volume") or {}
        found[day] = {
            "active": bool(counters), "new_conversations": volume.get("new_conversations"),
            "customer_waits": volume.get("customer_waits"), "replies": volume.get("replies"),
            "inbound": volume.get("inbound"), "response_rate_pct": rate.get("pct"),
            "first_response_median_s": numbers["first_response"]["median_s"],
            "first_response_p90_s": numbers["first_response"]["p90_s"],
            "unanswered": (numbers.get("unanswered") or {}).get("count")}
    return found


def _platform_by_day(spec: ChannelAnalytics, first: str, last: str) -> Dict[str, Dict[str, Any]]:
    """{date: {"values": summed over the channel's accounts, "unavailable": set}} from one Query."""
    from chalicelib.analytics.snapshot import day_key
    from chalicelib.models import PlatformAnalytics

    found: Dict[str, Dict[str, Any]] = {}
    condition = PlatformAnalytics.sk.between(f"d#{first}", f"d#{last}#\uffff")
    for item in PlatformAnalytics.query(day_key(spec.channel), condition):
        day = item.sk[2:12]
        data = item.data if isinstance(item.data, dict) else {}
        entry = found.setdefault(day, {"values": {}, "unavailable": set()})
        for name, value in (data.get("values") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                entry["values"][name] = entry["values"].get(name, 0) + value
        entry["unavailable"].update(data.get("unavailable") or [])
    return found


def _role(spec: ChannelAnalytics, role: str, values: Mapping[str, Any]) -> Optional[float]:
    names = [n for n in spec.roles.get(role, ()) if n in values]
    return sum(values[n] for n in names) if names else None


def _metrics(spec: ChannelAnalytics, platform: Optional[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    found = {}
    for metric in spec.metrics:
        if platform and metric.name in platform["unavailable"]:
            found[metric.name] = {"label": metric.label, "value": None, "status": "no_longer_available"}
        elif platform and metric.name in platform["values"]:
            found[metric.name] = {"label": metric.label, "value": platform["values"][metric.name], "status": "ok"}
        else:
            found[metric.name] = {"label": metric.label, "value": None, "status": "no_data"}
    return found


def report(period: Any, scopes: Mapping[str, str],
           channels: Optional[Mapping[str, ChannelAnalytics]] = None) -> Dict[str, Any]:
    """The attention report of `period` for each channel of `scopes` ({channel: counter scope the
    caller may read}). Rows: every local day of a channel that has platform data or inbox activity."""
    channels = channels if channels is not None else catalogue_module.load()
    days = local_days(period)
    first, last = days[0][0].isoformat(), days[-1][0].isoformat()
    rows: List[Dict[str, Any]] = []
    for channel in sorted(scopes):
        spec = channels.get(channel) or ChannelAnalytics(channel, None, None, "no platform analytics are configured")
        inbox = _inbox_by_day(scopes[channel], period, days)
        platform = _platform_by_day(spec, first, last) if spec.available else {}
        for day, _start, _end in days:
            key = day.isoformat()
            seen = platform.get(key)
            if not seen and not inbox[key]["active"]:
                continue
            values = seen["values"] if seen else {}
            row: Dict[str, Any] = {"day": key, "channel": channel,
                                   **{role: _role(spec, role, values) for role in catalogue_module.ROLES}}
            row.update({k: v for k, v in inbox[key].items() if k != "active"})
            row["platform"] = _metrics(spec, seen)
            rows.append(row)
    rows.sort(key=lambda r: (r["day"], r["channel"]))
    return {"rows": rows, "channels": {c: (channels[c].to_json() if c in channels else
                                           {"available": False, "source": None, "note": "no platform analytics "
                                            "are configured", "metrics": [], "lookback_days": None,
                                            **{role: [] for role in catalogue_module.ROLES}}) for c in sorted(scopes)},
            "period": period.to_json("cohort")}


def csv_rows(answer: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The rows as the screen's table shows them: the fixed columns, then one column per platform
    metric ("<channel>: <label>"), "no longer available" where the platform stopped serving it."""
    metric_columns: Dict[str, None] = {}
    for row in answer["rows"]:
        for metric in row["platform"].values():
            metric_columns.setdefault(f"{row['channel']}: {metric['label']}", None)
    found = []
    for row in answer["rows"]:
        line: Dict[str, Any] = {name: ("" if row.get(name) is None else row.get(name)) for name in COLUMNS}
        line.update({column: "" for column in metric_columns})
        for metric in row["platform"].values():
            column = f"{row['channel']}: {metric['label']}"
            line[column] = ("no longer available" if metric["status"] == "no_longer_available"
                            else "" if metric["value"] is None else metric["value"])
        found.append(line)
    return found
