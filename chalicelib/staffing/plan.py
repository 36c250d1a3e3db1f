"""The staffing plan of one channel group: demand history -> forecast -> agents required per
30-minute interval, beside the agents who were (or are) online.

Pure: the caller reads the report counters and presence and hands them in. Which model a group
gets follows its reply target, as the SLA policy sets it: a first-response target under
LIVE_TARGET_LIMIT seconds is a live queue (Erlang C), anything longer is asynchronous work
(the workload model over the target window). Requirements stay fractional per interval
(`required_raw`); whole agents (`required`) are what one interval alone would need.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timezone, tzinfo
from typing import Any, Dict, Iterable, List, Mapping, Optional

from chalicelib.staffing import erlang
from chalicelib.staffing.forecast import INTERVAL_SECONDS, Accuracy, backtest, forecast

#: Reply targets below this are live queues (Erlang C); at or above, asynchronous workload.
LIVE_TARGET_LIMIT = 15 * 60

#: Channel groups, by thread kind: what customers expect of a private chat (minutes) differs
#: from a public comment or mention (hours), whichever network it is on.
GROUPS: Dict[str, Dict[str, Any]] = {
    "live": {"label": "Private messages (WhatsApp, Messenger, Instagram, Telegram, X DMs)", "kinds": ("dm",)},
    "public": {"label": "Comments and mentions", "kinds": ("comment", "mention")},
}


@dataclass(frozen=True)
class Targets:
    """What the group must achieve and how long its work takes."""

    target_seconds: float
    target_share: float
    handle_seconds: float
    concurrency: float = 1.0
    max_occupancy: float = 0.85
    shrinkage: float = 0.3

    @property
    def model(self) -> str:
        return "erlang_c" if self.target_seconds < LIVE_TARGET_LIMIT else "workload"


def required(arrivals: float, targets: Targets) -> Dict[str, float]:
    """Agents one interval's arrivals need under `targets` (fractional and whole)."""
    handle = targets.handle_seconds / targets.concurrency
    traffic = arrivals / INTERVAL_SECONDS * handle
    if traffic <= 0:
        return {"required_raw": 0.0, "required": 0}
    if targets.model == "erlang_c":
        need = erlang.required_agents(traffic, handle, targets.target_seconds, targets.target_share,
                                      targets.max_occupancy)
        return {"required_raw": round(need.agents_raw, 3), "required": need.agents}
    raw = erlang.workload_agents(arrivals / INTERVAL_SECONDS * targets.target_seconds, 0.0, handle,
                                 targets.target_seconds, targets.max_occupancy) * targets.target_share
    return {"required_raw": round(raw, 3), "required": math.ceil(raw - 1e-9)}


def predicted_share(arrivals: float, agents: Optional[float], targets: Targets) -> Optional[float]:
    """The share of arrivals answered within the target that `agents` (whole ones: a fraction of
    a person answers nobody) would give: Erlang C's service level for live queues, the share of
    the window's work they finish for asynchronous ones. None when nobody knows who was there."""
    if agents is None:
        return None
    handle = targets.handle_seconds / targets.concurrency
    traffic = arrivals / INTERVAL_SECONDS * handle
    if traffic <= 0:
        return 100.0
    whole = int(math.floor(agents + 1e-9))
    if targets.model == "erlang_c":
        return round(100 * erlang.erlang_c_performance(whole, traffic, handle, targets.target_seconds).service_level, 1)
    needed = erlang.workload_agents(arrivals / INTERVAL_SECONDS * targets.target_seconds, 0.0, handle,
                                    targets.target_seconds, targets.max_occupancy)
    return round(100 * min(1.0, whole / needed), 1)


def build(history: Mapping[int, float], online: Mapping[int, float], now: int, targets: Targets,
          days: int = 14, zone: tzinfo = timezone.utc, holidays: Iterable[date] = (),
          history_days: int = 7) -> Dict[str, Any]:
    """The plan: the last `history_days` as they were (arrivals, required, online), the next
    `days` as forecast (arrivals, required), and the forecast's backtest accuracy."""
    holiday_list = list(holidays)
    made = forecast(history, now, days=days, zone=zone, holidays=holiday_list)
    accuracy: Accuracy = backtest(history, now, zone=zone, holidays=holiday_list)
    first = min(made.arrivals) if made.arrivals else now - now % INTERVAL_SECONDS
    intervals: List[Dict[str, Any]] = []
    for start in range(first - history_days * 86_400, first, INTERVAL_SECONDS):
        arrivals = float(history.get(start, 0.0))
        intervals.append({"start": start, "kind": "history", "arrivals": arrivals, **required(arrivals, targets),
                          "online": online.get(start),
                          "predicted_sla_pct": predicted_share(arrivals, online.get(start), targets)})
    for start, arrivals in sorted(made.arrivals.items()):
        intervals.append({"start": start, "kind": "forecast", "arrivals": round(arrivals, 3),
                          **required(arrivals, targets), "online": online.get(start),
                          "predicted_sla_pct": predicted_share(arrivals, online.get(start), targets)})
    gap_hours = sum(max(0.0, i["required_raw"] - (i["online"] or 0.0)) for i in intervals
                    if i["kind"] == "history") * INTERVAL_SECONDS / 3600
    return {
        "model": targets.model,
        "targets": {"target_seconds": targets.target_seconds, "target_pct": round(100 * targets.target_share, 2),
                    "handle_seconds": targets.handle_seconds, "concurrency": targets.concurrency,
                    "max_occupancy_pct": round(100 * targets.max_occupancy, 2),
                    "shrinkage_pct": round(100 * targets.shrinkage, 2)},
        "trend": round(made.trend, 4),
        "holiday_ratio": made.holiday_ratio,
        "holiday_unlearned": made.holiday_unlearned,
        "holiday_days": made.holiday_days,
        "accuracy": {"interval_wape": _round(accuracy.interval_wape), "day_wape": _round(accuracy.day_wape),
                     "days": accuracy.days},
        "understaffed_agent_hours": round(gap_hours, 2),
        "intervals": intervals,
    }


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 4)


def burst(arrivals: float, expected: float, history_same_slot: List[float]) -> bool:
    """A burst: arrivals clearly above the usual for this interval (a viral post breaks every
    queueing model): above twice the forecast and above the highest of the same slot's history,
    with at least 10 arrivals so a quiet night's 3 instead of 1 is no alarm."""
    ceiling = max(history_same_slot) if history_same_slot else 0.0
    return arrivals >= 10 and arrivals > 2 * expected and arrivals > ceiling
