"""A month of demo history for `make run`, so the Staffing screen means something on the first run.

Writes what the product would have gathered over DEMO_DAYS days of a small team (synthetic,
seeded, so every fresh stack shows the same): the reports' 15-minute arrival counters (cycles
started, by thread kind, with busy weekday daytimes, quiet nights and weekends, and noise),
presence samples (agents online and away per 30 minutes) and measured handle time per day.
Only the counters staffing reads are written, into empty tables (puts in batches of 25: about
350 requests); it runs once per data directory (a marker item).
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from typing import Any, Dict, List, Tuple

from chalicelib import config

DEMO_DAYS = 35
QUARTER_MS = 15 * 60_000
DAY_MS = 86_400_000
MARKER = {"pk": {"S": "settings"}, "sk": {"S": "demo-history"}}


def _client() -> Any:
    from chalicelib.runtime import runtime

    return runtime.client("dynamodb")


def arrival_rate(moment: datetime) -> float:
    """Expected new conversation cycles per 15 minutes at a UTC moment (both kinds together)."""
    hour = moment.hour + moment.minute / 60
    weekday = moment.weekday() < 5
    daytime = math.exp(-((hour - 11.5) ** 2) / 18) + 0.8 * math.exp(-((hour - 17) ** 2) / 8)
    return (6.0 if weekday else 2.5) * daytime + 0.3


def seed_history(now_ms: int, team: str = "default", days: int = DEMO_DAYS, scale: float = 1.0,
                 demand: bool = True) -> Dict[str, int]:
    """Write the demo history ending at `now_ms` (once: later calls find the marker); `scale`
    multiplies the arrival rate (1.0: about 8,000 conversations a month; the bench varies it).
    The live group gets a 2-minute reply target (the built-in SLA default is an hour).
    `demand=False` leaves the reports' arrival counters alone: `make run` gets its demand from
    conversations played through the real pipeline (chalicelib.local.history) instead."""
    staffing, reports = config.table_name("staffing"), config.table_name("reports")
    if _client().get_item(TableName=staffing, Key=MARKER).get("Item"):
        return {"quarters": 0, "items": 0}
    rng = random.Random(20261205)
    start = now_ms - now_ms % DAY_MS - days * DAY_MS
    items: Dict[Tuple[str, str, str], Dict[str, float]] = {}

    def add(table: str, pk: str, sk: str, counters: Dict[str, float]) -> None:
        found = items.setdefault((table, pk, sk), {})
        for name, value in counters.items():
            found[name] = found.get(name, 0) + value

    written = 0
    for at in range(start, now_ms - now_ms % QUARTER_MS, QUARTER_MS):
        moment = datetime.fromtimestamp(at / 1000, timezone.utc)
        expected = arrival_rate(moment) * scale
        dm = poisson(rng, expected * 0.7)
        comment = poisson(rng, expected * 0.3)
        if demand and dm + comment:
            counters = {"cycles": dm + comment, "cycles_dm": dm, "cycles_comment": comment, "waits": dm + comment}
            for scope in ("all", f"team#{team}"):
                add(reports, scope, f"q#{at:013d}", counters)
                add(reports, scope, f"d#{at - at % DAY_MS:013d}", counters)
            written += 1
        if at % (30 * 60_000) == 0:
            on_shift = moment.weekday() < 5 and 8 <= moment.hour < 19
            online = rng.choice((2, 3, 3, 4)) if on_shift else rng.choice((0, 0, 1))
            add(staffing, f"presence#{team}", f"i#{at:013d}",
                {"samples": 6, "online": 6 * online, "away": 6 * (1 if on_shift and rng.random() < 0.3 else 0)})
    for day in range(start, now_ms, DAY_MS):
        cycles = 40 + rng.randrange(20)
        for group, mean in (("live", 200.0), ("public", 110.0)):
            samples = [max(20.0, rng.gauss(mean, mean / 2)) for _ in range(cycles)]
            for scope in (f"ht#{group}", f"ht#{group}#team#{team}"):
                add(staffing, scope, f"d#{day:013d}", {"cycles": cycles, "focus_ms": int(sum(samples) * 1000),
                                                      "focus_sq": round(sum(x * x for x in samples), 3),
                                                      "span_ms": int(sum(samples) * 1000 * 1.6)})
    add(staffing, "settings", "live#*", {"target_seconds": 120})
    _write(items)
    _client().put_item(TableName=staffing, Item={**MARKER, "at": {"N": str(now_ms)}})
    return {"quarters": written, "items": len(items)}


def poisson(rng: random.Random, mean: float) -> int:
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _write(items: Dict[Tuple[str, str, str], Dict[str, float]]) -> None:
    """Put every item (the tables are empty: a put is the ADD), 25 to a batch."""
    by_table: Dict[str, List[Dict[str, Any]]] = {}
    for (table, pk, sk), counters in items.items():
        item = {"pk": {"S": pk}, "sk": {"S": sk}}
        item.update({name: {"N": str(round(value, 3))} for name, value in counters.items()})
        by_table.setdefault(table, []).append({"PutRequest": {"Item": item}})
    for table, requests in by_table.items():
        for first in range(0, len(requests), 25):
            pending: Dict[str, Any] = {table: requests[first:first + 25]}
            while pending:
                pending = _client().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
