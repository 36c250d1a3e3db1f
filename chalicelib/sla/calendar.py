"""Business-time arithmetic for reply deadlines: pure, no I/O, milliseconds since the epoch.

A policy's business hours are a time zone, wall-clock ranges per weekday (several per day;
a day absent from `week`, or with no range, is closed), public holidays from the `holidays`
package by country/subdivision, and explicit closed dates:

    {"timezone": "Africa/Johannesburg",
     "week": {"mon": [["09:00", "12:30"], ["13:30", "17:00"]], ...},
     "holidays": {"country": "ZA", "subdivision": null},
     "dates": ["2026-12-24"]}

`None` means 24/7: business time is wall time.

Business time is real elapsed time while open. Each range's ends are mapped from wall-clock time
to instants with zoneinfo (PEP 495, fold=0: the first of a repeated time; a time skipped by the
clock change keeps the offset in force before it), so a 1-hour range across a DST change is still
1 hour of business time, "09:00" is 09:00 local on both sides of the change, and a range that
contains the skipped hour is an hour shorter in real time (the longer when the hour repeats).
Holidays and explicit dates close the whole local day.

`parse_business_hours` validates strictly (ValueError with a message fit for a 400 answer) and
`BusinessHours.to_json` gives the canonical form back. The `holidays` package is imported lazily
(only when a calendar names a country) and each (country, subdivision, year) is computed once
per container.
"""
from __future__ import annotations

import datetime as _dt
import functools
import re
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RANGES_PER_DAY = 8
MAX_DATES = 500
MAX_TIMEZONE_CHARS = 64
#: How far the day walk goes before giving up (a policy's targets are validated to stay well inside).
MAX_WALK_DAYS = 4 * 366
DAY_MS = 86_400_000
MINUTE_MS = 60_000

_TIME = re.compile(r"^(?:([01][0-9]|2[0-3]):([0-5][0-9])|24:00)$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TZ = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,3}$")
_COUNTRY = re.compile(r"^[A-Z]{2,3}$")
_SUBDIVISION = re.compile(r"^[A-Za-z0-9\-]{1,10}$")

Range = Tuple[int, int]  # minutes after local midnight, [start, end), end may be 1440


@dataclass(frozen=True)
class BusinessHours:
    """Validated business hours (build with `parse_business_hours`)."""

    timezone: str
    week: Tuple[Tuple[Range, ...], ...]  # 7 entries, Monday first
    country: Optional[str] = None
    subdivision: Optional[str] = None
    dates: FrozenSet[_dt.date] = frozenset()

    def to_json(self) -> Dict[str, Any]:
        return {
            "timezone": self.timezone,
            "week": {DAYS[i]: [[_hhmm(s), _hhmm(e)] for s, e in ranges] for i, ranges in enumerate(self.week)
                     if ranges},
            "holidays": {"country": self.country, "subdivision": self.subdivision} if self.country else None,
            "dates": sorted(d.isoformat() for d in self.dates),
        }

    def weekly_open_ms(self) -> int:
        """Nominal open time of one week (wall-clock minutes, DST ignored)."""
        return sum(e - s for ranges in self.week for s, e in ranges) * MINUTE_MS


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_time(value: Any, where: str, is_end: bool) -> int:
    if not isinstance(value, str) or not _TIME.match(value):
        raise ValueError(f"{where} must be a time \"HH:MM\" (00:00 to 23:59, or 24:00 as an end)")
    if value == "24:00":
        if not is_end:
            raise ValueError(f"{where}: 24:00 can only end a range")
        return 1440
    return int(value[:2]) * 60 + int(value[3:])


def _parse_day(value: Any, where: str) -> Tuple[Range, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of [\"HH:MM\", \"HH:MM\"] ranges")
    if len(value) > MAX_RANGES_PER_DAY:
        raise ValueError(f"{where} has more than {MAX_RANGES_PER_DAY} ranges")
    ranges: List[Range] = []
    for index, pair in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"{here} must be a pair [\"HH:MM\", \"HH:MM\"]")
        start, end = _parse_time(pair[0], here + "[0]", False), _parse_time(pair[1], here + "[1]", True)
        if end <= start:
            raise ValueError(f"{here}: the range must end after it starts ({pair[0]} to {pair[1]}); "
                             "a range cannot cross midnight, split it into two days")
        ranges.append((start, end))
    ranges.sort()
    for (s1, e1), (s2, e2) in zip(ranges, ranges[1:]):
        if s2 < e1:
            raise ValueError(f"{where}: ranges {_hhmm(s1)}-{_hhmm(e1)} and {_hhmm(s2)}-{_hhmm(e2)} overlap")
    return tuple(ranges)


def check_timezone(name: Any, where: str = "business_hours.timezone") -> str:
    """The name of an IANA time zone zoneinfo can load, else ValueError."""
    if not isinstance(name, str) or not name or len(name) > MAX_TIMEZONE_CHARS or not _TZ.match(name):
        raise ValueError(f"{where} must be an IANA time zone name such as \"Europe/Lisbon\"")
    try:
        _zone(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError, OSError for odd names
        raise ValueError(f"{where}: unknown time zone {name!r}") from None
    return name


def _parse_holidays(value: Any) -> Tuple[Optional[str], Optional[str]]:
    where = "business_hours.holidays"
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be null or {{\"country\": \"ZA\", \"subdivision\": null}}")
    unknown = set(value) - {"country", "subdivision"}
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))[:200]}")
    country, subdivision = value.get("country"), value.get("subdivision")
    if not isinstance(country, str) or not _COUNTRY.match(country):
        raise ValueError(f"{where}.country must be an ISO 3166 country code such as \"ZA\"")
    if subdivision is not None and (not isinstance(subdivision, str) or not _SUBDIVISION.match(subdivision)):
        raise ValueError(f"{where}.subdivision must be null or a subdivision code such as \"GP\"")
    supported = _supported_countries()
    if country not in supported:
        raise ValueError(f"{where}.country: no public holidays known for {country!r}")
    if subdivision is not None and subdivision not in supported[country]:
        choices = ", ".join(supported[country][:40]) or "none"
        raise ValueError(f"{where}.subdivision: {subdivision!r} is not a subdivision of {country} ({choices})")
    return country, subdivision


def _parse_dates(value: Any) -> FrozenSet[_dt.date]:
    where = "business_hours.dates"
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of dates \"YYYY-MM-DD\"")
    if len(value) > MAX_DATES:
        raise ValueError(f"{where} has more than {MAX_DATES} dates")
    found = set()
    for index, raw in enumerate(value):
        if not isinstance(raw, str) or not _DATE.match(raw):
            raise ValueError(f"{where}[{index}] must be a date \"YYYY-MM-DD\"")
        try:
            day = _dt.date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{where}[{index}]: {raw!r} is not a calendar date") from None
        if not 2000 <= day.year < 2100:  # the range every time the API accepts lies in (chalicelib.inputs)
            raise ValueError(f"{where}[{index}] must lie between 2000 and 2100")
        found.add(day)
    return frozenset(found)


def parse_business_hours(raw: Any) -> Optional[BusinessHours]:
    """Validate the API's `business_hours` (None: 24/7). ValueError says what is wrong and where."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("business_hours must be null or an object with timezone and week")
    unknown = set(raw) - {"timezone", "week", "holidays", "dates"}
    if unknown:
        raise ValueError(f"business_hours: unknown field(s) {', '.join(sorted(map(str, unknown)))[:200]}")
    timezone = check_timezone(raw.get("timezone"))
    week_raw = raw.get("week")
    if not isinstance(week_raw, dict):
        raise ValueError("business_hours.week must be an object such as {\"mon\": [[\"09:00\", \"17:00\"]]}")
    unknown_days = set(week_raw) - set(DAYS)
    if unknown_days:
        raise ValueError(f"business_hours.week: unknown day(s) {', '.join(sorted(map(str, unknown_days)))[:100]}; "
                         f"days are {', '.join(DAYS)}")
    week = tuple(_parse_day(week_raw[day], f"business_hours.week.{day}") if day in week_raw else ()
                 for day in DAYS)
    if not any(week):
        raise ValueError("business_hours.week has no open range: a deadline would never come")
    country, subdivision = _parse_holidays(raw.get("holidays"))
    return BusinessHours(timezone, week, country, subdivision, _parse_dates(raw.get("dates")))


# --- lazily loaded, cached per container --------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


@functools.lru_cache(maxsize=1)
def _supported_countries() -> Dict[str, List[str]]:
    import holidays  # ~50 ms: only for calendars that name a country

    return {code: list(subdivisions) for code, subdivisions in holidays.list_supported_countries().items()}


@functools.lru_cache(maxsize=256)
def holiday_dates(country: str, subdivision: Optional[str], year: int) -> FrozenSet[_dt.date]:
    """Public holidays (observed days included) of one country/subdivision in one year."""
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


# --- the arithmetic -------------------------------------------------------------------------------


def _instant_ms(zone: Any, day: _dt.date, minutes: int) -> int:
    if minutes >= 1440:
        day, minutes = day + _dt.timedelta(days=1), minutes - 1440
    local = _dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=zone)
    return round(local.timestamp() * 1000)


@functools.lru_cache(maxsize=8192)
def _open_intervals(hours: BusinessHours, day: _dt.date) -> Tuple[Tuple[int, int], ...]:
    """The instants [start, end) the calendar is open on one local date, in order, disjoint."""
    ranges = hours.week[day.weekday()]
    if not ranges or day in hours.dates:
        return ()
    if hours.country and day in holiday_dates(hours.country, hours.subdivision, day.year):
        return ()
    zone = _zone(hours.timezone)
    found: List[Tuple[int, int]] = []
    floor = None
    for start_min, end_min in ranges:
        start, end = _instant_ms(zone, day, start_min), _instant_ms(zone, day, end_min)
        if floor is not None and start < floor:  # wall times in a skipped hour map non-monotonically
            start = floor
        if end > start:
            found.append((start, end))
            floor = end
    return tuple(found)


class Calendar:
    """Business time for one policy. `Calendar(None)` is 24/7."""

    __slots__ = ("hours", "_zone")

    def __init__(self, hours: Optional[BusinessHours] = None) -> None:
        self.hours = hours
        self._zone = _zone(hours.timezone) if hours is not None else None

    @property
    def always_open(self) -> bool:
        return self.hours is None

    @property
    def zone(self) -> Any:
        """The calendar's time zone (UTC for a 24/7 calendar)."""
        return self._zone or _dt.timezone.utc

    def is_holiday(self, day: _dt.date) -> bool:
        """A public holiday of the calendar's country, or one of its own closed dates."""
        hours = self.hours
        if hours is None:
            return False
        return day in hours.dates or bool(hours.country and day in holiday_dates(hours.country, hours.subdivision,
                                                                                   day.year))

    def _local_date(self, ms: int) -> _dt.date:
        return _dt.datetime.fromtimestamp(ms / 1000, tz=self._zone).date()

    def intervals(self, day: _dt.date) -> Sequence[Tuple[int, int]]:
        """Open instants of a local date (24/7: never asked)."""
        assert self.hours is not None
        return _open_intervals(self.hours, day)

    def is_open(self, ms: int) -> bool:
        if self.hours is None:
            return True
        return any(start <= ms < end for start, end in self.intervals(self._local_date(ms)))

    def add_business_ms(self, start_ms: int, duration_ms: int) -> int:
        """The earliest instant by which `duration_ms` of business time has passed since `start_ms`."""
        start_ms, duration_ms = int(start_ms), int(duration_ms)
        if duration_ms <= 0:
            return start_ms
        if self.hours is None:
            return start_ms + duration_ms
        remaining = duration_ms
        day = self._local_date(start_ms)
        for _ in range(MAX_WALK_DAYS):
            for start, end in self.intervals(day):
                start = max(start, start_ms)
                if end <= start:
                    continue
                if end - start >= remaining:
                    return start + remaining
                remaining -= end - start
            day += _dt.timedelta(days=1)
        raise ValueError(f"business time of {duration_ms} ms does not fit in {MAX_WALK_DAYS} days of this calendar")

    def business_ms_between(self, a_ms: int, b_ms: int) -> int:
        """Business time in [a, b) (0 when b <= a)."""
        a_ms, b_ms = int(a_ms), int(b_ms)
        if b_ms <= a_ms:
            return 0
        if self.hours is None:
            return b_ms - a_ms
        total = 0
        day, last = self._local_date(a_ms), self._local_date(b_ms)
        while day <= last:
            for start, end in self.intervals(day):
                lo, hi = max(start, a_ms), min(end, b_ms)
                if hi > lo:
                    total += hi - lo
            day += _dt.timedelta(days=1)
        return total


def calendar_for(raw: Any) -> Calendar:
    """A calendar from the API/stored JSON form (validated)."""
    return Calendar(parse_business_hours(raw))


def add_business_ms(business_hours: Optional[Mapping[str, Any]], start_ms: int, duration_ms: int) -> int:
    """Convenience over `Calendar`: `business_hours` in its JSON form, or None for 24/7."""
    return calendar_for(business_hours).add_business_ms(start_ms, duration_ms)


def business_ms_between(business_hours: Optional[Mapping[str, Any]], a_ms: int, b_ms: int) -> int:
    return calendar_for(business_hours).business_ms_between(a_ms, b_ms)
