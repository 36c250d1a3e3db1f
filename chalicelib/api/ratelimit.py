"""Per-agent rate limits on the agent API: one script or stuck tab cannot take the API from
everyone else (a token polling /api/changes at 100 requests/s doubled everyone's list latency;
six concurrent 100-id bulks took seconds each).

A token bucket per agent (every token and tab of one agent shares it) and route class:
- "poll": GET /api/changes (the page polls every 2.5 s per tab);
- "read": other GETs; "write": everything else;
- "bulk": conversation ids changed through POST /api/conversations/bulk (one unit per id, on top
  of the call's "write" unit), so bulk work is bounded by ids, not by calls.
An empty bucket answers 429 with `Retry-After` (whole seconds until enough is back); nothing of
the request is done. The buckets live in this container's memory (runtime.rate_buckets): no
DynamoDB request, no network, a few microseconds. The price: the budget is per container, so an
agent whose requests land on N warm containers gets up to N times it; the fleet-wide ceiling is
API Gateway's stage throttling and the functions' reserved concurrency.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Dict, Optional

from chalice import Response

from chalicelib.runtime import runtime


@dataclass(frozen=True)
class Budget:
    """`burst` units when full, refilled at `per_second`."""

    burst: float
    per_second: float


BUDGETS: Dict[str, Budget] = {
    "poll": Budget(30, 4),  # 10 tabs polling every 2.5 s fit; 100/s does not
    "read": Budget(300, 20),
    "write": Budget(120, 10),
    "bulk": Budget(300, 10),  # three full 100-id bulks at once, then 10 ids a second
}
_LOCK = threading.Lock()


def route_class(method: str, path: str) -> str:
    if path == "/api/changes":
        return "poll"
    return "read" if method in ("GET", "HEAD") else "write"


def budget(kind: str) -> Budget:
    """The budget of a route class (runtime.rate_budgets replaces them: tests, the benchmark)."""
    return (runtime.rate_budgets or BUDGETS)[kind]


def wait_seconds(agent_id: str, kind: str, cost: float = 1.0) -> float:
    """Take `cost` units from the agent's `kind` bucket: 0.0 when they were there, else the
    seconds until they will be (and nothing is taken, so a refused request costs nothing)."""
    limit = budget(kind)
    cost = min(cost, limit.burst)
    now = runtime.now_ms() / 1000.0
    key = (agent_id, kind)
    with _LOCK:
        level, at = runtime.rate_buckets.get(key, (limit.burst, now))
        level = min(limit.burst, level + max(0.0, now - at) * limit.per_second)
        if level >= cost:
            runtime.rate_buckets[key] = (level - cost, now)
            return 0.0
        runtime.rate_buckets[key] = (level, now)
        return (cost - level) / limit.per_second


def refusal(agent_id: str, kind: str, cost: float = 1.0) -> Optional[Response]:
    """None when the request may go on, else the 429 answer."""
    seconds = wait_seconds(agent_id, kind, cost)
    if not seconds:
        return None
    retry = max(1, int(math.ceil(seconds)))
    return Response({"Code": "TooManyRequests", "Message": f"too many {kind} requests for your agent; "
                                                           f"try again in {retry} s"},
                    status_code=429, headers={"Content-Type": "application/json", "Retry-After": str(retry)})
