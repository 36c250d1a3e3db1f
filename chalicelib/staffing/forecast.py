"""Demand forecast per 30-minute interval: weighted same-slot history, a trend, holidays.

Pure: history in, forecast out; the nightly job feeds it the report counters and stores what it
answers. The method, in the order it is applied:
1. Baseline for a slot (weekday and time of day in the team's time zone): the mean of the same
   slot over the last WEEKS weeks, recent weeks weighing more (weights WEEKS, WEEKS-1, ..., 1);
   weeks whose day was a holiday, or that are missing, are left out.
2. Trend: the last 7 days' arrivals over what step 1 would have forecast for them from the
   weeks before, clipped to [TREND_LOW, TREND_HIGH] (one viral day cannot double next week).
3. Holidays: a day in the holiday calendar is scaled by the median ratio actual / baseline seen
   on past holidays in the history; with no past holiday to learn from it keeps the baseline
   and says so (`holiday_unlearned`), never a guessed factor.
Accuracy is a backtest: each of the last BACKTEST_DAYS days forecast from what came before it,
scored by WAPE (sum |actual - forecast| / sum actual) per interval and per day.
"""
from __future__ import annotations

import statistics
from collections import ChainMap
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from typing import Dict, Iterable, List, Mapping, Optional, Set, Tuple

INTERVAL_SECONDS = 1800
WEEK_SECONDS = 7 * 24 * 3600
WEEKS = 6
TREND_LOW, TREND_HIGH = 0.5, 2.0
BACKTEST_DAYS = 7


@dataclass(frozen=True)
class Forecast:
    """Expected arrivals per interval start (epoch seconds), with how they were made."""

    arrivals: Dict[int, float]
    trend: float
    holiday_ratio: Optional[float]
    holiday_unlearned: bool = False
    holiday_days: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Accuracy:
    """Backtest WAPE (0 is perfect; None when there was nothing to score)."""

    interval_wape: Optional[float]
    day_wape: Optional[float]
    days: int


def _local_day(start: int, zone: tzinfo) -> date:
    return datetime.fromtimestamp(start, zone).date()


def _weekly_baseline(history: Mapping[int, float], start: int, zone: tzinfo, holidays: Set[date],
                     weeks: int = WEEKS) -> Optional[float]:
    """Weighted mean of the same slot in earlier weeks (None when no usable week)."""
    total = weight_sum = 0.0
    for back in range(1, weeks + 1):
        earlier = start - back * WEEK_SECONDS
        if earlier not in history or _local_day(earlier, zone) in holidays:
            continue
        weight = float(weeks - back + 1)
        total += weight * history[earlier]
        weight_sum += weight
    return total / weight_sum if weight_sum else None


def _trend(history: Mapping[int, float], now: int, zone: tzinfo, holidays: Set[date]) -> float:
    actual = expected = 0.0
    for start in range(now - WEEK_SECONDS, now, INTERVAL_SECONDS):
        if start not in history or _local_day(start, zone) in holidays:
            continue
        baseline = _weekly_baseline(history, start, zone, holidays)
        if baseline is None:
            continue
        actual += history[start]
        expected += baseline
    if expected <= 0:
        return 1.0
    return min(TREND_HIGH, max(TREND_LOW, actual / expected))


def _holiday_ratio(history: Mapping[int, float], zone: tzinfo, holidays: Set[date]) -> Optional[float]:
    per_day: Dict[date, Tuple[float, float]] = {}
    for start, count in history.items():
        day = _local_day(start, zone)
        if day not in holidays:
            continue
        baseline = _weekly_baseline(history, start, zone, holidays)
        if baseline is None:
            continue
        actual, expected = per_day.get(day, (0.0, 0.0))
        per_day[day] = (actual + count, expected + baseline)
    ratios = [actual / expected for actual, expected in per_day.values() if expected > 0]
    return statistics.median(ratios) if ratios else None


def align(moment: int) -> int:
    """The start of the 30-minute interval holding `moment` (epoch seconds, UTC-aligned)."""
    return moment - moment % INTERVAL_SECONDS


def forecast(history: Mapping[int, float], now: int, days: int = 14, zone: tzinfo = timezone.utc,
             holidays: Iterable[date] = ()) -> Forecast:
    """Arrivals for every interval from `now` (aligned down) for `days` days. `history` maps
    interval starts before `now` to arrivals; absent intervals had none recorded (gaps, not
    zeros, when the counter did not exist yet: pass zeros explicitly for quiet intervals)."""
    holiday_set = set(holidays)
    first = align(now)
    past = {start: count for start, count in history.items() if start < first}
    trend = _trend(past, first, zone, holiday_set)
    ratio = _holiday_ratio(past, zone, holiday_set)
    arrivals: Dict[int, float] = {}
    unlearned = False
    holiday_days: Set[str] = set()
    for step in range(days * 24 * 3600 // INTERVAL_SECONDS):
        start = first + step * INTERVAL_SECONDS
        # Same slot in past weeks, reaching into what this forecast already produced when the
        # horizon runs past a week (so week two repeats week one's shape, not nothing).
        known = ChainMap(arrivals, past) if start - WEEK_SECONDS >= first else past
        baseline = _weekly_baseline(known, start, zone, holiday_set)
        value = (baseline or 0.0) * (trend if start - WEEK_SECONDS < first else 1.0)
        day = _local_day(start, zone)
        if day in holiday_set:
            holiday_days.add(day.isoformat())
            if ratio is None:
                unlearned = True
            else:
                value *= ratio
        arrivals[start] = value
    return Forecast(arrivals, trend, ratio, unlearned, sorted(holiday_days))


def backtest(history: Mapping[int, float], now: int, zone: tzinfo = timezone.utc,
             holidays: Iterable[date] = (), days: int = BACKTEST_DAYS) -> Accuracy:
    """Forecast each of the last `days` days from only what came before it; WAPE per interval
    and per day (daily totals, where errors within a day may cancel)."""
    holiday_list = list(holidays)
    end = align(now)
    interval_error = interval_actual = day_error = day_actual = 0.0
    scored = 0
    for back in range(days, 0, -1):
        day_start = end - back * 24 * 3600
        made = forecast(history, day_start, days=1, zone=zone, holidays=holiday_list)
        actual_total = forecast_total = 0.0
        any_actual = False
        for start, predicted in made.arrivals.items():
            if start not in history:
                continue
            any_actual = True
            actual = history[start]
            interval_error += abs(actual - predicted)
            interval_actual += actual
            actual_total += actual
            forecast_total += predicted
        if any_actual:
            scored += 1
            day_error += abs(actual_total - forecast_total)
            day_actual += actual_total
    return Accuracy(interval_error / interval_actual if interval_actual else None,
                    day_error / day_actual if day_actual else None, scored)
