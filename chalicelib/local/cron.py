"""EventBridge schedule expressions, evaluated locally: `rate(N unit)` and the six-field
`cron(minutes hours day-of-month month day-of-week year)`, always in UTC as EventBridge does.

Cron fields take `*`, lists (`1,15`), ranges (`MON-FRI`), steps (`0/15`, `*/5`, `8-18/2`) and
names (JAN-DEC, SUN-SAT; day-of-week 1 is Sunday). One of day-of-month and day-of-week must be
`?`. Day-of-month also takes `L` (last day), `LW` (last weekday) and `15W` (the weekday nearest
the 15th, within the month); day-of-week takes `6L` (the month's last Friday) and `2#1` (its
first Monday). Years 1970-2199.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Callable, FrozenSet, List, Optional, Union

_UNIT_SECONDS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_MONTHS = {name: i + 1 for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_DAYS = {name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_MAX_YEAR = 2199

DayTest = Callable[[dt.date], bool]


def rate_seconds(expression: str) -> int:
    """Seconds between two runs of `rate(N minute[s]|hour[s]|day[s])`; ValueError otherwise."""
    match = re.fullmatch(r"\s*rate\(\s*(\d+)\s+([a-zA-Z]+)\s*\)\s*", expression)
    if not match or match.group(2).lower() not in _UNIT_SECONDS or int(match.group(1)) < 1:
        raise ValueError(f"not a rate expression: {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def _number(text: str, names: Optional[dict]) -> int:
    upper = text.upper()
    if names and upper in names:
        return names[upper]
    if not text.isdigit():
        raise ValueError(f"not a number: {text!r}")
    return int(text)


def _values(field: str, low: int, high: int, names: Optional[dict] = None) -> FrozenSet[int]:
    """The values a field of `*`, numbers, names, ranges, steps and lists allows."""
    found = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1 or (step_text and not step_text.isdigit()):
            raise ValueError(f"bad step in {field!r}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(base, names)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ValueError(f"{field!r} is outside {low}-{high}")
        found.update(range(start, end + 1, step))
    return frozenset(found)


def _aws_weekday(day: dt.date) -> int:
    """EventBridge's day-of-week: 1 is Sunday, 7 is Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, target: int) -> int:
    """The weekday nearest `target` within the month (W): Saturday -> Friday, Sunday -> Monday,
    never crossing into another month."""
    last = calendar.monthrange(year, month)[1]
    target = min(target, last)
    weekday = dt.date(year, month, target).weekday()
    if weekday == 5:
        return target - 1 if target > 1 else target + 2
    if weekday == 6:
        return target + 1 if target < last else target - 2
    return target


def _day_of_month_test(field: str) -> DayTest:
    upper = field.upper()
    if upper == "L":
        return lambda day: day.day == calendar.monthrange(day.year, day.month)[1]
    if upper == "LW":
        return lambda day: day.day == _nearest_weekday(day.year, day.month, 31)
    if upper.endswith("W"):
        target = _number(upper[:-1], None)
        if not 1 <= target <= 31:
            raise ValueError(f"bad day-of-month {field!r}")
        return lambda day: day.day == _nearest_weekday(day.year, day.month, target)
    days = _values(field, 1, 31)
    return lambda day: day.day in days


def _day_of_week_test(field: str) -> DayTest:
    upper = field.upper()
    if upper.endswith("L") and len(upper) > 1:
        weekday = _number(upper[:-1], _DAYS)
        if not 1 <= weekday <= 7:
            raise ValueError(f"bad day-of-week {field!r}")
        return lambda day: (_aws_weekday(day) == weekday
                            and day.day + 7 > calendar.monthrange(day.year, day.month)[1])
    if "#" in upper:
        weekday_text, _, nth_text = upper.partition("#")
        weekday, nth = _number(weekday_text, _DAYS), _number(nth_text, None)
        if not (1 <= weekday <= 7 and 1 <= nth <= 5):
            raise ValueError(f"bad day-of-week {field!r}")
        return lambda day: _aws_weekday(day) == weekday and (day.day - 1) // 7 + 1 == nth
    weekdays = _values(field, 1, 7, _DAYS)
    return lambda day: _aws_weekday(day) in weekdays


class Cron:
    """One `cron(...)` expression; `next_after(moment)` is the next UTC minute it fires."""

    def __init__(self, expression: str) -> None:
        match = re.fullmatch(r"\s*cron\((.*)\)\s*", expression)
        fields = match.group(1).split() if match else []
        if len(fields) != 6:
            raise ValueError(f"a cron expression has six fields: {expression!r}")
        minutes, hours, day_of_month, month, day_of_week, year = fields
        if (day_of_month == "?") == (day_of_week == "?"):
            raise ValueError(f"exactly one of day-of-month and day-of-week must be '?': {expression!r}")
        self.expression = expression.strip()
        self.minutes = sorted(_values(minutes, 0, 59))
        self.hours = sorted(_values(hours, 0, 23))
        self.months = _values(month, 1, 12, _MONTHS)
        self.years = _values(year, 1970, _MAX_YEAR)
        self._day: DayTest = (_day_of_week_test(day_of_week) if day_of_month == "?"
                              else _day_of_month_test(day_of_month))

    def matches_day(self, day: dt.date) -> bool:
        return day.year in self.years and day.month in self.months and self._day(day)

    def next_after(self, moment: dt.datetime) -> Optional[dt.datetime]:
        """The first firing time strictly after `moment` (UTC; a naive moment is taken as UTC),
        or None when the expression never fires again."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        moment = moment.astimezone(dt.timezone.utc)
        start = moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        while day.year <= max(self.years):
            if self.matches_day(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        candidate = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.timezone.utc)
                        if candidate >= start:
                            return candidate
            day += dt.timedelta(days=1)
        return None


def parse(expression: Union[str, object]) -> Union[int, Cron]:
    """A Chalice schedule (Rate, Cron or its string): seconds between runs, or a Cron."""
    text = expression if isinstance(expression, str) else expression.to_string()  # type: ignore[attr-defined]
    if text.strip().startswith("rate("):
        return rate_seconds(text)
    return Cron(text)


__all__: List[str] = ["Cron", "parse", "rate_seconds"]
