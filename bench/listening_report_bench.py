"""The listening report (`GET /api/reports/topics`, chalicelib/listening/trends.py): what one report
costs to read, at a quiet and at a loud month of found posts.

    .venv/bin/python bench/listening_report_bench.py            # ~1 min, moto in this process
    .venv/bin/python bench/listening_report_bench.py --quick    # smaller counts

N listening items (spread over 30 days, 3 topics, 4 sentiments, 500 authors, realistic text and
author sizes) are written straight to the table (one put each; what writes them in production is
measured by bench/listening_bench.py). Then a 30-day report in Europe/Berlin: Query calls, RRU
(bench/wru.py pricing, eventually consistent) and wall time in this process. Reads grow with the
period's items up to the cap (20,000 items = 40 pages), then stop and say `truncated`.

A measurement, not a test: nothing asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inprocess  # noqa: E402  (first: AWS settings before boto3, pynamodb or the app)
import moto  # noqa: E402

METER = inprocess.METER
T0 = 1_793_491_200_000  # 2026-11-01T00:00Z
DAY = 86_400_000


def _seed(n: int) -> None:
    from chalicelib import runtime as wiring
    from chalicelib.listening import items
    from chalicelib.local import stack
    from chalicelib.models import ListeningRecord

    wiring.runtime.reset()
    stack.create_all()
    rng = random.Random(7)
    with METER.paused(), ListeningRecord.batch_write() as batch:
        for i in range(n):
            at = T0 + rng.randrange(30 * DAY)
            label = rng.choice(("positive", "neutral", "negative", "unscored"))
            topics = rng.sample(["Acme", "Globex", "Outage"], rng.choice((1, 1, 2)))
            handle = f"user_{rng.randrange(500)}"
            batch.save(ListeningRecord(items.PK, items.item_id("x", str(i), at), source="x_search", label=label,
                                       topics=topics, status="new", at=at, data={
                "source": "x_search", "platform": "x", "platform_post_id": str(i), "account_id": "1",
                "author": {"name": handle.title(), "handle": handle, "followers": rng.randrange(100_000)},
                "text": "@acme " + "the app is down again and support does not answer " * 3, "url": None,
                "created_at": at, "sentiment": {"label": label, "score": -0.5, "language": "en"},
                "replyable": False, "not_replyable_reason": "X: open it on X", "priority": None}))


def _report() -> None:
    from chalicelib.listening import trends
    from chalicelib.reports import summary

    period = summary.parse_period("2026-11-01", "2026-12-01", "Europe/Berlin")
    with METER.scope() as scope:
        started = time.perf_counter()
        found = trends.report(period.from_ms, period.to_ms, summary.zone(period.tz), ["Acme", "Globex"])
        took = time.perf_counter() - started
    print(f"    30 days: Query calls {sum(scope.requests.values())}, RRU {scope.rru:.0f}, {took * 1000:.0f} ms, "
          f"items read {found['items_read']}, truncated {found['truncated']}, answer "
          f"{len(json.dumps(found)) // 1024} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for n in ((500, 3_000) if args.quick else (1_000, 25_000)):
        with moto.mock_aws():
            _seed(n)
            print(f"report reads at {n} items in the month")
            _report()


if __name__ == "__main__":
    main()
