"""Staffing alerts, checked by the presence sampler every few minutes against the nightly forecast.

- The nightly forecast: once a day (the first sample after FORECAST_HOUR UTC) the plan of each
  channel group is computed for the next 14 days and stored (`pk` "forecast", `sk` the group) with
  its backtest accuracy; the alerts read it with one GetItem per group.
- Burst: the arrivals of the current 30-minute interval so far already exceed what the burst rule
  (chalicelib.staffing.plan.burst) allows for the whole interval: a viral post breaks every
  queueing model, so supervisors hear about it at once. Once per group and interval.
- Understaffed: fewer agents online than the interval requires (fractional requirement minus
  half an agent of slack) in two consecutive samples; then at most once per UNDERSTAFFED_COOLDOWN.
Notifications go to supervisors and admins in the app (GET /api/me/notifications), with kind
`staffing_burst` or `staffing_understaffed`, and to the escalation SNS topic in AWS; the
exactly-once guard is a conditional put.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from chalicelib import config
from chalicelib.logs import logger

FORECAST_HOUR = 2
DAY_MS = 86_400_000
INTERVAL_MS = 30 * 60_000
UNDERSTAFFED_COOLDOWN_MS = 2 * 3_600_000
SLACK_AGENTS = 0.5


def _client() -> Any:
    from chalicelib.runtime import runtime

    return runtime.client("dynamodb")


def _table() -> str:
    return config.table_name("staffing")


def stored_forecast(group: str) -> Optional[Dict[str, Any]]:
    found = _client().get_item(TableName=_table(), Key={"pk": {"S": "forecast"}, "sk": {"S": group}}).get("Item")
    return json.loads(found["plan"]["S"]) if found else None


def refresh_forecast(now_ms: int, force: bool = False) -> List[str]:
    """The nightly forecast of each group, when the stored one predates today's FORECAST_HOUR."""
    from chalicelib.inbox.rules import DEFAULT_TEAM
    from chalicelib.routing import directory
    from chalicelib.staffing import plan, service

    due = now_ms - now_ms % DAY_MS + FORECAST_HOUR * 3_600_000
    if now_ms < due:
        due -= DAY_MS
    refreshed = []
    for group in plan.GROUPS:
        current = stored_forecast(group)
        if current and current.get("computed_at", 0) >= due and not force:
            continue
        teams = sorted(set(directory.all_teams()) | {DEFAULT_TEAM})
        made = service.staffing_plan(group, None, now_ms, days=14, teams=teams)
        kept = {key: value for key, value in made.items() if key != "intervals"}
        kept["intervals"] = [{k: i[k] for k in ("start", "arrivals", "required_raw", "required")}
                             for i in made["intervals"] if i["kind"] == "forecast"]
        kept["ceilings"] = _slot_ceilings(made["intervals"])
        kept["computed_at"] = now_ms
        _client().put_item(TableName=_table(), Item={"pk": {"S": "forecast"}, "sk": {"S": group},
                                                      "plan": {"S": json.dumps(kept, separators=(",", ":"))}})
        refreshed.append(group)
        logger.info("staffing forecast stored", extra={"group": group, "accuracy": made["accuracy"]})
    return refreshed


def _slot_ceilings(intervals: List[Dict[str, Any]]) -> Dict[str, float]:
    """The highest arrivals each slot of the week (seconds into the week) saw in the history shown."""
    found: Dict[str, float] = {}
    for row in intervals:
        if row["kind"] == "history":
            slot = str(row["start"] % (7 * 86_400))
            found[slot] = max(found.get(slot, 0.0), float(row["arrivals"]))
    return found


def _once(key: str, now_ms: int) -> bool:
    """Claim an alert key (a conditional put): True for the one caller that may notify."""
    try:
        _client().put_item(TableName=_table(), Item={"pk": {"S": "alert"}, "sk": {"S": key},
                                                      "at": {"N": str(now_ms)}},
                           ConditionExpression="attribute_not_exists(pk)")
        return True
    except _client().exceptions.ConditionalCheckFailedException:
        return False


def _notify(kind: str, data: Dict[str, Any]) -> None:
    from chalicelib import escalation_topic
    from chalicelib.sla import escalation

    escalation.notify(escalation.supervisors(), "staffing", kind, data)
    subject = ("Burst" if kind == "staffing_burst" else "Understaffed") + f": {data.get('label')}"
    escalation_topic.publish(kind, subject, data)
    logger.warning("staffing alert", extra={"kind": kind, **{k: v for k, v in data.items() if k != "label"}})


def check(now_ms: int, online_now: float) -> List[str]:
    """Burst and understaffed checks for the current interval; returns the alerts sent."""
    from chalicelib.staffing import plan, service

    interval = now_ms - now_ms % INTERVAL_MS
    sent: List[str] = []
    for group in plan.GROUPS:
        stored = stored_forecast(group)
        if not stored:
            continue
        row = next((i for i in stored["intervals"] if i["start"] * 1000 == interval), None)
        if row is None:
            continue
        so_far = sum(service.arrivals(group, None, interval, now_ms + 1).values())
        ceiling = stored.get("ceilings", {}).get(str((interval // 1000) % (7 * 86_400)))
        label = plan.GROUPS[group]["label"]
        if plan.burst(so_far, row["arrivals"], [ceiling] if ceiling is not None else []) \
                and _once(f"burst#{group}#{interval}", now_ms):
            _notify("staffing_burst", {"group": group, "label": label, "arrivals": so_far,
                                       "expected": round(row["arrivals"], 1), "interval": interval})
            sent.append(f"burst:{group}")
        if online_now + SLACK_AGENTS < row["required_raw"]:
            if _short_again(group, now_ms) and _once(f"understaffed#{group}#{now_ms // UNDERSTAFFED_COOLDOWN_MS}",
                                                     now_ms):
                _notify("staffing_understaffed", {"group": group, "label": label, "online": online_now,
                                                  "required": round(row["required_raw"], 1), "interval": interval})
                sent.append(f"understaffed:{group}")
        else:
            _client().delete_item(TableName=_table(), Key={"pk": {"S": "short"}, "sk": {"S": group}})
    return sent


def _short_again(group: str, now_ms: int) -> bool:
    """Record a short sample; True when the previous sample (within 15 minutes) was short too."""
    old = _client().put_item(TableName=_table(), Item={"pk": {"S": "short"}, "sk": {"S": group},
                                                        "at": {"N": str(now_ms)}},
                             ReturnValues="ALL_OLD").get("Attributes")
    return bool(old) and now_ms - int(old["at"]["N"]) <= 15 * 60_000
