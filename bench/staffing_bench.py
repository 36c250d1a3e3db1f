"""Staffing: what a Staffing screen load and the nightly forecast cost, and how accurate the
forecast is on the demo history.

    .venv/bin/python bench/staffing_bench.py

moto in this process; requests and read units priced by bench/wru.py. For about 1,000 and about
100,000 conversations a month, five weeks of demand (the demo history's shape, scaled), presence
samples and handle time are written, then:
- one screen load: GET /api/staffing/plan's work (service.staffing_plan) for the live group;
- one nightly forecast (alerts.refresh_forecast, both groups, forced);
- the forecast's backtest accuracy (WAPE per interval and per day) on that history.
Reads do not grow with conversations: the plan reads 15-minute counter items (at most 96 a day,
however busy), presence items (48 a day) and daily handle-time items. A measurement, not a test.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inprocess  # noqa: E402  (first: AWS settings before boto3, pynamodb or the app)
import moto  # noqa: E402

import wru  # noqa: E402

METER = inprocess.METER

NOW = 1_900_000_800_000  # a Sunday evening, UTC
#: The demo history is about 8,000 conversations a month at scale 1.
SCALES = ((1_000, 1_000 / 8_000), (100_000, 100_000 / 8_000))


def _calls(scope: wru.Scope) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(scope.requests.items()))


def main() -> None:
    for monthly, scale in SCALES:
        with moto.mock_aws():
            from chalicelib import runtime as wiring
            from chalicelib.local import stack
            from chalicelib.staffing import alerts, demo, service

            wiring.runtime.reset()
            wiring.runtime.use_clock(lambda: NOW / 1000)
            stack.create_all()
            with METER.paused():
                demo.seed_history(NOW, scale=scale)
            with METER.scope() as screen:
                started = time.process_time()
                plan = service.staffing_plan("live", None, NOW, days=14, teams=["default"])
                screen_cpu = time.process_time() - started
            with METER.scope() as nightly:
                started = time.process_time()
                alerts.refresh_forecast(NOW, force=True)
                nightly_cpu = time.process_time() - started
            arrivals = sum(i["arrivals"] for i in plan["intervals"] if i["kind"] == "history")
            accuracy = plan["accuracy"]
            print(f"~{monthly:,} conversations a month ({arrivals:,.0f} live arrivals in the last 7 days)")
            print(f"  screen load (plan, live):   {sum(screen.requests.values())} requests, {screen.rru:.1f} RRU, "
                  f"process CPU {screen_cpu * 1000:.0f} ms with moto's own work   [{_calls(screen)}]")
            print(f"  nightly forecast (2 groups): {sum(nightly.requests.values())} requests, {nightly.rru:.1f} RRU, "
                  f"{nightly.wru} WRU, process CPU {nightly_cpu * 1000:.0f} ms with moto's")
            print(f"  backtest (7 days): WAPE {100 * accuracy['interval_wape']:.1f} % per interval, "
                  f"{100 * accuracy['day_wape']:.1f} % per day; trend {plan['trend']}")
            wiring.runtime.use_clock(None)


if __name__ == "__main__":
    main()
