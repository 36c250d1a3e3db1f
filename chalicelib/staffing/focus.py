"""Handle time, measured: the agent's focus time per conversation cycle, from the workspace.

The page's viewing heartbeat (PUT /api/conversations/{id}/viewing, every ~15 s while a thread is
open and the page visible) reports `focus_ms`: how long the thread was open in a visible page
since its previous heartbeat. The server trusts no more than it can see: at most FOCUS_CAP_MS,
and at most the time since this agent's previous heartbeat on this conversation (the viewer
item's old `seen_at`, returned by the write the heartbeat makes anyway); a first heartbeat
counts nothing. Never derived from reply times.

Items (table `staffing`):
- `pk` = "focus#<conversation id>", `sk` = "c#<cycle start ms>": that cycle's focus (ADD);
- `pk` = "ht#<group>" or "ht#<group>#team#<team>", `sk` = "d#<UTC day ms>": per channel group and
  day of the cycle's first focus: `cycles`, `focus_ms` (sum) and `focus_sq` (sum of each
  cycle's squared total, in seconds², kept exact as cycles grow: (t+d)² − t² = 2td + d²), so
  the mean, spread and sample size of handle time per cycle come from a few Query pages;
  `span_ms` adds each cycle's working span (time between its heartbeats, pauses over 10 minutes
  left out): span / focus is the concurrency agents actually work at (1 = one conversation at a
  time). The plan uses focus time as handle time, so that concurrency is already in it (shown,
  not applied twice).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

from chalicelib import config

FOCUS_CAP_MS = 20_000
#: A cycle untouched longer than this was parked: the pause is not part of its working span.
SPAN_GAP_MS = 10 * 60_000
DAY_MS = 86_400_000
#: Thread kinds of the live group; everything else (comments, mentions) is public.
LIVE_KINDS = ("dm",)


def table() -> str:
    return config.table_name("staffing")


def group_of(state: Mapping[str, Any]) -> str:
    return "live" if (state.get("thread_kind") or "dm") in LIVE_KINDS else "public"


def bounded(claimed: Any, previous_seen_ms: Optional[int], now_ms: int) -> int:
    """The focus a heartbeat may add: what the page claims, within what the server saw."""
    if previous_seen_ms is None or isinstance(claimed, bool) or not isinstance(claimed, int) or claimed <= 0:
        return 0
    return max(0, min(claimed, FOCUS_CAP_MS, now_ms - int(previous_seen_ms)))


def _client() -> Any:
    from chalicelib.runtime import runtime

    return runtime.client("dynamodb")


def record(state: Mapping[str, Any], focus_ms: int, now_ms: int, previous_ms: Optional[int] = None) -> None:
    """Add `focus_ms` of focus to the conversation's current cycle and its group's day
    (`previous_ms`: this agent's previous heartbeat on it, where the cycle's first span starts)."""
    if focus_ms <= 0:
        return
    cycle = int(state.get("cycle_started_at") or state.get("created_at") or now_ms)
    group = group_of(state)
    old = _client().update_item(
        TableName=table(),
        Key={"pk": {"S": f"focus#{state['conversation_id']}"}, "sk": {"S": f"c#{cycle:013d}"}},
        UpdateExpression="ADD focus_ms :d SET #day = if_not_exists(#day, :day), #group = if_not_exists(#group, :g), "
                         "last_at = :now",
        ExpressionAttributeNames={"#day": "day", "#group": "group"},
        ExpressionAttributeValues={":d": {"N": str(focus_ms)}, ":day": {"N": str(now_ms - now_ms % DAY_MS)},
                                   ":g": {"S": group}, ":now": {"N": str(now_ms)}},
        ReturnValues="UPDATED_OLD").get("Attributes", {})
    before = int(old["focus_ms"]["N"]) / 1000 if "focus_ms" in old else None
    # The cycle's working span grows by the time since its previous focus (a pause over
    # SPAN_GAP_MS is a parked conversation, not work): span / focus is the concurrency worked.
    since = int(old["last_at"]["N"]) if "last_at" in old else previous_ms
    gap = now_ms - since if since is not None else focus_ms
    span = max(focus_ms, gap) if gap <= SPAN_GAP_MS else focus_ms
    day = int(old["day"]["N"]) if "day" in old else now_ms - now_ms % DAY_MS
    seconds = focus_ms / 1000
    square = 2 * (before or 0.0) * seconds + seconds * seconds
    values = {":ms": {"N": str(focus_ms)}, ":sq": {"N": f"{square:.6f}"}, ":c": {"N": "0" if before else "1"},
              ":span": {"N": str(span)}}
    team = state.get("team") or "default"
    for scope in (f"ht#{group}", f"ht#{group}#team#{team}"):
        _client().update_item(TableName=table(), Key={"pk": {"S": scope}, "sk": {"S": f"d#{day:013d}"}},
                              UpdateExpression="ADD focus_ms :ms, focus_sq :sq, cycles :c, span_ms :span",
                              ExpressionAttributeValues=values)


def handle_time(group: str, from_ms: int, to_ms: int, team: Optional[str] = None) -> Dict[str, Any]:
    """Mean handle time per cycle of a group over [from, to) (days of first focus), with its
    spread (standard deviation) and sample size; None figures when nothing was measured."""
    scope = f"ht#{group}" + (f"#team#{team}" if team else "")
    cycles = focus_ms = span_ms = 0
    focus_sq = 0.0
    query: Dict[str, Any] = {
        "TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":pk": {"S": scope}, ":a": {"S": f"d#{from_ms - from_ms % DAY_MS:013d}"},
                                      ":b": {"S": f"d#{max(from_ms, to_ms - 1):013d}"}}}
    while True:
        page = _client().query(**query)
        for item in page.get("Items", []):
            cycles += int(item.get("cycles", {}).get("N", "0"))
            focus_ms += int(item.get("focus_ms", {}).get("N", "0"))
            focus_sq += float(item.get("focus_sq", {}).get("N", "0"))
            span_ms += int(item.get("span_ms", {}).get("N", "0"))
        if not page.get("LastEvaluatedKey"):
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if not cycles:
        return {"cycles": 0, "mean_seconds": None, "stdev_seconds": None, "concurrency": None}
    mean = focus_ms / 1000 / cycles
    variance = max(0.0, focus_sq / cycles - mean * mean)
    return {"cycles": cycles, "mean_seconds": round(mean, 1), "stdev_seconds": round(math.sqrt(variance), 1),
            "concurrency": round(max(1.0, span_ms / focus_ms), 2) if focus_ms and span_ms else None}
