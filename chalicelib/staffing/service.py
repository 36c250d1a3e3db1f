"""Staffing's reads: what the plan needs, from where the product already keeps it.

- Arrivals: conversation cycles started (a new conversation, or one reopened after it was
  resolved), per 15-minute bucket, from the reports' counters (`cycles_<kind>`, by thread kind),
  summed into 30-minute intervals: the unit handle time is measured in (focus per cycle).
- Agents online: the presence samples (chalicelib.staffing.presence).
- Handle time: the measured focus per cycle (chalicelib.staffing.focus) once MIN_SAMPLE cycles
  were measured, else the settings' assumed value, and the answer says which.
- Targets and shrinkage: the team's staffing settings (admin), the reply target from the SLA
  policy unless a setting overrides it; public holidays from the SLA policy's calendar.
Reads per plan: one Query page per reports day for 6 weeks of history (~2 items per day with
day items, or 96 quarter items per day), one per presence day range, one for handle time.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Dict, List, Mapping, Optional

from chalicelib import config
from chalicelib.staffing import focus, plan, presence

HISTORY_WEEKS = 6
MIN_SAMPLE = 20
DAY_MS = 86_400_000
INTERVAL_MS = 30 * 60_000

DEFAULTS: Dict[str, float] = {"target_pct": 80.0, "max_occupancy_pct": 85.0, "shrinkage_pct": 30.0,
                              "handle_seconds": 240.0, "concurrency": 1.0}
#: Settings an admin may store per team and group, with their bounds (inclusive).
SETTING_BOUNDS: Dict[str, tuple] = {"target_pct": (1, 99.9), "max_occupancy_pct": (10, 100),
                                    "shrinkage_pct": (0, 90), "handle_seconds": (1, 86_400),
                                    "concurrency": (1, 20), "target_seconds": (1, 30 * 86_400)}


def _client() -> Any:
    from chalicelib.runtime import runtime

    return runtime.client("dynamodb")


def settings_key(group: str, team: Optional[str]) -> Dict[str, Any]:
    return {"pk": {"S": "settings"}, "sk": {"S": f"{group}#{team or '*'}"}}


def settings(group: str, team: Optional[str]) -> Dict[str, float]:
    """The stored settings of a group (a team's own, else every team's), over the defaults."""
    found = dict(DEFAULTS)
    for scope in ([None, team] if team else [None]):
        item = _client().get_item(TableName=config.table_name("staffing"), Key=settings_key(group, scope)).get("Item")
        for name in SETTING_BOUNDS:
            if item and name in item:
                found[name] = float(item[name]["N"])
    return found


def save_settings(group: str, team: Optional[str], values: Mapping[str, Any]) -> Dict[str, float]:
    """Validate and store (ValueError names the field); answers the settings now in force."""
    clean: Dict[str, float] = {}
    for name, value in values.items():
        if name not in SETTING_BOUNDS:
            raise ValueError(f"unknown setting: {name}")
        low, high = SETTING_BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"{name} must be a number from {low:g} to {high:g}")
        clean[name] = float(value)
    if not clean:
        raise ValueError(f"send at least one of: {', '.join(SETTING_BOUNDS)}")
    names = {f"#{k}": k for k in clean}
    _client().update_item(TableName=config.table_name("staffing"), Key=settings_key(group, team),
                          UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in clean),
                          ExpressionAttributeNames=names,
                          ExpressionAttributeValues={f":{k}": {"N": repr(v)} for k, v in clean.items()})
    return settings(group, team)


def arrivals(group: str, team: Optional[str], from_ms: int, to_ms: int) -> Dict[int, float]:
    """Cycles started per 30-minute interval (epoch seconds) of the group's thread kinds."""
    from chalicelib.reports import aggregates

    kinds = plan.GROUPS[group]["kinds"]
    scope = f"team#{team}" if team else "all"
    found: Dict[int, float] = {}
    for item in aggregates.quarters(scope, from_ms, to_ms):
        count = sum(item.get(f"cycles_{kind}", 0) for kind in kinds)
        start = (item["_at"] - item["_at"] % INTERVAL_MS) // 1000
        found[start] = found.get(start, 0.0) + count
    # Quiet intervals are zeros, not gaps: the counters only exist where something happened.
    first = from_ms - from_ms % INTERVAL_MS
    for start_ms in range(first, to_ms, INTERVAL_MS):
        found.setdefault(start_ms // 1000, 0.0)
    return found


def _policy_target_seconds(group: str) -> float:
    """The default SLA policy's first-response target (what the group is held to)."""
    from chalicelib.sla import policies

    return policies.default_policy().first_response_ms / 1000


def _holidays(now_ms: int, days: int) -> List[date]:
    from chalicelib.sla import policies

    calendar = policies.default_policy().calendar
    start = date.fromtimestamp(now_ms // 1000 - HISTORY_WEEKS * 7 * 86_400)
    return [start + timedelta(days=i) for i in range(HISTORY_WEEKS * 7 + days + 1)
            if calendar.is_holiday(start + timedelta(days=i))]


def staffing_plan(group: str, team: Optional[str], now_ms: int, days: int = 14,
                  teams: Optional[List[str]] = None) -> Dict[str, Any]:
    """The Staffing screen's plan of a group (one team, or all teams when `team` is None)."""
    values = settings(group, team)
    measured = focus.handle_time(group, now_ms - 28 * DAY_MS, now_ms + 1, team)
    use_measured = measured["cycles"] >= MIN_SAMPLE and measured["mean_seconds"]
    handle = float(measured["mean_seconds"]) if use_measured else values["handle_seconds"]
    target = values.get("target_seconds") or _policy_target_seconds(group)
    targets = plan.Targets(target_seconds=target, target_share=values["target_pct"] / 100,
                           handle_seconds=handle, concurrency=values["concurrency"],
                           max_occupancy=values["max_occupancy_pct"] / 100, shrinkage=values["shrinkage_pct"] / 100)
    history_from = now_ms - now_ms % INTERVAL_MS - HISTORY_WEEKS * 7 * DAY_MS
    demand = arrivals(group, team, history_from, now_ms - now_ms % INTERVAL_MS)
    present = presence.history(teams if teams is not None else [team or "default"], now_ms - 8 * DAY_MS,
                               now_ms + days * DAY_MS)
    from chalicelib.sla import policies

    built = plan.build(demand, present["online"], now_ms // 1000, targets, days=days,
                       zone=policies.default_policy().calendar.zone, holidays=_holidays(now_ms, days))
    built.update({"group": group, "group_label": plan.GROUPS[group]["label"], "team": team,
                  "handle_time": {"seconds": handle, "source": "measured" if use_measured else "setting",
                                  "measured": measured},
                  "shrinkage": {"setting_pct": values["shrinkage_pct"],
                                "measured_away_pct": None if present["away_share"] is None
                                else round(100 * present["away_share"], 1)}})
    return built
