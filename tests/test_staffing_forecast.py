"""The demand forecast on scripted histories with known answers: weekly seasonality, a holiday,
a trend; and its backtest."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import random

import pytest

from chalicelib.staffing.forecast import INTERVAL_SECONDS, WEEK_SECONDS, backtest, forecast

DAY = 24 * 3600
#: Monday 2026-11-02 00:00 UTC: six weeks of history before NOW.
NOW = int(datetime(2026, 12, 14, tzinfo=timezone.utc).timestamp())
START = NOW - 6 * WEEK_SECONDS


def pattern(start: int, zone=timezone.utc) -> float:
    """Busy weekday daytimes, quiet nights and weekends."""
    moment = datetime.fromtimestamp(start, zone)
    daytime = 8 <= moment.hour < 20
    return (12.0 if moment.weekday() < 5 else 4.0) if daytime else 1.0


def history(value=pattern, zone=timezone.utc, begin: int = START, end: int = NOW):
    return {start: value(start, zone) if value is pattern else value(start)
            for start in range(begin, end, INTERVAL_SECONDS)}


def test_weekly_seasonality_is_reproduced_exactly():
    made = forecast(history(), NOW, days=14)
    assert len(made.arrivals) == 14 * 48
    assert made.trend == pytest.approx(1.0)
    for start, value in made.arrivals.items():
        assert value == pytest.approx(pattern(start)), datetime.fromtimestamp(start, timezone.utc)
    accuracy = backtest(history(), NOW)
    assert accuracy.days == 7 and accuracy.interval_wape == pytest.approx(0.0)


def test_slots_follow_the_team_time_zone():
    zone = ZoneInfo("America/New_York")
    made = forecast(history(zone=zone), NOW, days=7, zone=zone)
    for start, value in made.arrivals.items():
        assert value == pytest.approx(pattern(start, zone))


def test_a_holiday_is_scaled_by_what_past_holidays_showed():
    past_holiday = date(2026, 11, 26)  # a Thursday in the history: 30 % of the usual
    coming_holiday = date(2026, 12, 17)  # the Thursday after NOW

    def with_holiday(start: int) -> float:
        day = datetime.fromtimestamp(start, timezone.utc).date()
        return pattern(start) * (0.3 if day == past_holiday else 1.0)

    made = forecast(history(with_holiday), NOW, days=7, holidays=[past_holiday, coming_holiday])
    assert made.holiday_ratio == pytest.approx(0.3)
    assert made.holiday_days == ["2026-12-17"] and not made.holiday_unlearned
    for start, value in made.arrivals.items():
        day = datetime.fromtimestamp(start, timezone.utc).date()
        # The low holiday week never drags an ordinary Thursday down.
        assert value == pytest.approx(pattern(start) * (0.3 if day == coming_holiday else 1.0))


def test_a_holiday_without_history_keeps_the_baseline_and_says_so():
    made = forecast(history(), NOW, days=7, holidays=[date(2026, 12, 17)])
    assert made.holiday_unlearned and made.holiday_ratio is None
    assert sum(made.arrivals.values()) == pytest.approx(sum(pattern(s) for s in made.arrivals))


def test_a_growing_trend_lifts_the_next_week():
    growth = 1.05  # 5 % more every week

    def growing(start: int) -> float:
        return pattern(start) * growth ** ((start - START) // WEEK_SECONDS)

    made = forecast(history(growing), NOW, days=7)
    # The weighted baseline lags a growing series by about two weeks: the trend makes that up.
    assert 1.05 < made.trend < 1.2
    actual_next_week = sum(growing(s) for s in made.arrivals)
    error = abs(sum(made.arrivals.values()) - actual_next_week) / actual_next_week
    baseline_only = sum(made.arrivals.values()) / made.trend
    assert error < abs(baseline_only - actual_next_week) / actual_next_week
    assert error < 0.03


def test_one_viral_day_cannot_more_than_double_the_forecast():
    def viral(start: int) -> float:
        return pattern(start) * (50 if start >= NOW - DAY else 1)

    assert forecast(history(viral), NOW, days=1).trend == 2.0


def test_backtest_scores_a_noisy_history():
    noise = random.Random(3)

    def noisy(start: int) -> float:
        return pattern(start) * noise.uniform(0.5, 1.5)

    accuracy = backtest(history(noisy), NOW)
    assert accuracy.days == 7
    assert 0.1 < accuracy.interval_wape < 0.4
    assert accuracy.day_wape < accuracy.interval_wape / 2  # errors within a day mostly cancel


def test_no_history_forecasts_zero():
    made = forecast({}, NOW, days=1)
    assert set(made.arrivals.values()) == {0.0}
    assert backtest({}, NOW).interval_wape is None
