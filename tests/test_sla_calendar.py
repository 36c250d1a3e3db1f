"""Business-time arithmetic (chalicelib.sla.calendar) and a policy's deadlines, pause and resume:
pure, with a controlled clock (explicit instants), no AWS."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from chalicelib.sla.calendar import Calendar, calendar_for, holiday_dates, parse_business_hours
from chalicelib.sla.policies import Policy, policy_from, validate

H = 3_600_000
M = 60_000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
SPLIT_DAY = [["09:00", "12:30"], ["13:30", "17:00"]]
JOBURG = {"timezone": "Africa/Johannesburg", "week": {d: SPLIT_DAY for d in WEEKDAYS}}  # UTC+2, no DST


def at(zone: str, *parts: int) -> int:
    """Epoch ms of a local wall time (fold=0)."""
    from zoneinfo import ZoneInfo

    return round(dt.datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def joburg(*parts: int) -> int:
    return at("Africa/Johannesburg", *parts)


# --- multi-range days and weekends ---------------------------------------------------------------


def test_a_target_skips_the_lunch_break():
    cal = calendar_for(JOBURG)
    # Monday 2026-03-02 12:00: 30 min before lunch, then the afternoon.
    assert cal.add_business_ms(joburg(2026, 3, 2, 12, 0), 60 * M) == joburg(2026, 3, 2, 14, 0)
    assert cal.business_ms_between(joburg(2026, 3, 2, 12, 0), joburg(2026, 3, 2, 14, 0)) == 60 * M


def test_a_message_at_night_waits_for_the_morning():
    cal = calendar_for(JOBURG)
    assert cal.add_business_ms(joburg(2026, 3, 2, 22, 0), 15 * M) == joburg(2026, 3, 3, 9, 15)
    assert not cal.is_open(joburg(2026, 3, 2, 22, 0))
    assert cal.is_open(joburg(2026, 3, 3, 9, 0)) and not cal.is_open(joburg(2026, 3, 3, 12, 30))


def test_the_weekend_is_closed():
    cal = calendar_for(JOBURG)
    # Friday 2026-03-06 16:30: 30 min on Friday, 90 more on Monday.
    assert cal.add_business_ms(joburg(2026, 3, 6, 16, 30), 2 * H) == joburg(2026, 3, 9, 10, 30)
    assert cal.business_ms_between(joburg(2026, 3, 6, 17, 0), joburg(2026, 3, 9, 9, 0)) == 0
    # A whole working week is 5 x 7 h.
    assert cal.business_ms_between(joburg(2026, 3, 2), joburg(2026, 3, 9)) == 35 * H


def test_a_deadline_that_lands_on_a_range_end_is_that_end():
    cal = calendar_for(JOBURG)
    assert cal.add_business_ms(joburg(2026, 3, 2, 9, 0), int(3.5 * H)) == joburg(2026, 3, 2, 12, 30)
    assert cal.add_business_ms(joburg(2026, 3, 2, 9, 0), 0) == joburg(2026, 3, 2, 9, 0)


def test_24_7_is_wall_time():
    cal = Calendar(None)
    assert cal.add_business_ms(1_000, 5_000) == 6_000
    assert cal.business_ms_between(1_000, 6_000) == 5_000
    assert cal.business_ms_between(6_000, 1_000) == 0


def test_end_of_day_may_be_24_00():
    cal = calendar_for({"timezone": "UTC", "week": {"mon": [["22:00", "24:00"]], "tue": [["00:00", "01:00"]]}})
    start = at("UTC", 2026, 3, 2, 23, 0)
    assert cal.add_business_ms(start, 90 * M) == at("UTC", 2026, 3, 3, 0, 30)


# --- holidays -------------------------------------------------------------------------------------


def test_public_holidays_of_the_country_are_closed():
    hours = dict(JOBURG, holidays={"country": "ZA", "subdivision": None})
    cal = calendar_for(hours)
    # Human Rights Day 2026 is Saturday 21 March; Freedom Day, Monday 27 April 2026, is a holiday.
    assert dt.date(2026, 4, 27) in holiday_dates("ZA", None, 2026)
    assert cal.add_business_ms(joburg(2026, 4, 24, 16, 0), 2 * H) == joburg(2026, 4, 28, 10, 0)
    assert calendar_for(JOBURG).add_business_ms(joburg(2026, 4, 24, 16, 0), 2 * H) == joburg(2026, 4, 27, 10, 0)


def test_an_observed_holiday_closes_the_monday():
    # Christmas 2027 is a Saturday, Day of Goodwill Sunday 26: ZA observes it on Monday 27.
    assert dt.date(2027, 12, 27) in holiday_dates("ZA", None, 2027)


def test_explicit_dates_are_closed_and_a_deadline_crosses_christmas():
    hours = dict(JOBURG, holidays={"country": "ZA", "subdivision": None}, dates=["2026-12-24"])
    cal = calendar_for(hours)
    # Wednesday 23 Dec 16:00: 1 h that day; 24 (explicit), 25 (Christmas) closed, 26-27 weekend.
    assert cal.add_business_ms(joburg(2026, 12, 23, 16, 0), 8 * H) == joburg(2026, 12, 28, 17, 0)
    assert cal.business_ms_between(joburg(2026, 12, 23, 16, 0), joburg(2026, 12, 28, 17, 0)) == 8 * H


def test_a_subdivision_has_its_own_holidays():
    # Lisbon's municipal holiday (Santo António, 13 June) is in subdivision 11 only.
    assert dt.date(2026, 6, 13) in holiday_dates("PT", "11", 2026)
    assert dt.date(2026, 6, 13) not in holiday_dates("PT", None, 2026)


# --- DST ------------------------------------------------------------------------------------------


LISBON_SUNDAY = {"timezone": "Europe/Lisbon", "week": {"sun": [["00:30", "01:30"], ["09:00", "17:00"]]}}


@pytest.mark.parametrize("day", [dt.date(2026, 3, 29), dt.date(2026, 10, 25)])  # last Sundays: DST changes
def test_a_one_hour_range_across_the_dst_change_is_one_hour(day):
    cal = calendar_for(LISBON_SUNDAY)
    start = at("Europe/Lisbon", day.year, day.month, day.day, 0, 30)
    assert cal.business_ms_between(start - H, start + 3 * H) == H
    assert cal.add_business_ms(start, H) == start + H
    # The next range still opens at 09:00 local and lasts 8 h.
    nine = at("Europe/Lisbon", day.year, day.month, day.day, 9, 0)
    assert cal.add_business_ms(start, H + 30 * M) == nine + 30 * M
    assert cal.business_ms_between(nine, nine + 24 * H) == 8 * H


def test_office_hours_follow_the_local_clock_across_the_change():
    cal = calendar_for({"timezone": "Europe/Lisbon", "week": {d: [["09:00", "17:00"]] for d in WEEKDAYS}})
    # Friday 27 March 16:00 (UTC+0) plus 2 h: Monday 30 March 10:00 local, which is UTC+1.
    due = cal.add_business_ms(at("Europe/Lisbon", 2026, 3, 27, 16, 0), 2 * H)
    assert due == at("Europe/Lisbon", 2026, 3, 30, 10, 0)
    assert dt.datetime.fromtimestamp(due / 1000, dt.timezone.utc).hour == 9


def test_the_skipped_hour_does_not_count_twice():
    cal = calendar_for({"timezone": "Europe/Lisbon", "week": {"sun": [["00:00", "01:30"], ["02:00", "03:00"]]}})
    day_start = at("Europe/Lisbon", 2026, 3, 29, 0, 0)
    # Real time from 00:00 WET to 03:00 WEST is 2 h: nothing in it may be counted twice.
    assert cal.business_ms_between(day_start, day_start + 6 * H) == 2 * H


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, words", [
    ("9 to 5", "must be null or an object"),
    ({"week": {"mon": SPLIT_DAY}}, "IANA time zone"),
    ({"timezone": "Mars/Olympus", "week": {"mon": SPLIT_DAY}}, "unknown time zone"),
    ({"timezone": "../../etc/passwd", "week": {"mon": SPLIT_DAY}}, "IANA time zone"),
    ({"timezone": "UTC", "week": {"mon": [["17:00", "09:00"]]}}, "must end after it starts"),
    ({"timezone": "UTC", "week": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "overlap"),
    ({"timezone": "UTC", "week": {"mon": [["9:00", "12:00"]]}}, "HH:MM"),
    ({"timezone": "UTC", "week": {"mon": [["24:00", "24:00"]]}}, "24:00 can only end"),
    ({"timezone": "UTC", "week": {"mon": [["09:00", "12:00", "13:00"]]}}, "pair"),
    ({"timezone": "UTC", "week": {"funday": SPLIT_DAY}}, "unknown day"),
    ({"timezone": "UTC", "week": {"mon": []}}, "no open range"),
    ({"timezone": "UTC", "week": {"mon": [["09:00", "09:01"]] * 9}}, "more than 8"),
    ({"timezone": "UTC", "week": {"mon": SPLIT_DAY}, "holidays": {"country": "XX"}}, "no public holidays"),
    ({"timezone": "UTC", "week": {"mon": SPLIT_DAY}, "holidays": {"country": "za"}}, "country code"),
    ({"timezone": "UTC", "week": {"mon": SPLIT_DAY}, "holidays": {"country": "ZA", "subdivision": "ZZ"}},
     "not a subdivision"),
    ({"timezone": "UTC", "week": {"mon": SPLIT_DAY}, "dates": ["2026-02-30"]}, "not a calendar date"),
    ({"timezone": "UTC", "week": {"mon": SPLIT_DAY}, "dates": ["2026-01-01"] * 501}, "more than 500"),
    ({"timezone": "UTC", "week": {"mon": SPLIT_DAY}, "lunch": True}, "unknown field"),
])
def test_bad_business_hours_are_refused_with_a_clear_message(raw, words):
    with pytest.raises(ValueError, match=words):
        parse_business_hours(raw)


def test_valid_hours_round_trip_in_canonical_form():
    raw = {"timezone": "Africa/Johannesburg", "week": {"mon": [["13:30", "17:00"], ["09:00", "12:30"]]},
           "holidays": {"country": "ZA", "subdivision": None}, "dates": ["2026-12-24", "2026-12-24"]}
    canonical = parse_business_hours(raw).to_json()
    assert canonical == {"timezone": "Africa/Johannesburg", "week": {"mon": SPLIT_DAY},
                         "holidays": {"country": "ZA", "subdivision": None}, "dates": ["2026-12-24"]}
    assert parse_business_hours(canonical).to_json() == canonical


# --- a policy's deadlines, pause and resume --------------------------------------------------------


def _policy(**overrides) -> Policy:
    body = {"name": "Support", "first_response_seconds": 3600, "next_response_seconds": 1800,
            "warn_at_percent": 80, "business_hours": JOBURG, "pause_on": ["pending"]}
    body.update(overrides)
    return policy_from(validate(body), "sla_test")


def test_24_7_policy_matches_the_pure_rules_policy():
    from chalicelib.inbox.rules import SlaPolicy

    ours = _policy(business_hours=None, first_response_seconds=900, next_response_seconds=900)
    theirs = SlaPolicy()
    for since in (0, 1_700_000_000_123):
        for first in (True, False):
            assert ours.deadline(since, first) == theirs.deadline(since, first)


def test_deadline_counts_business_time_for_warning_and_due():
    policy = _policy()
    warn, due = policy.deadline(joburg(2026, 3, 2, 12, 0), first=True)
    assert warn == joburg(2026, 3, 2, 13, 48)  # 30 min before lunch, 18 min after (48 = 80 % of 60)
    assert due == joburg(2026, 3, 2, 14, 0)
    assert policy.deadline(joburg(2026, 3, 2, 12, 0), first=False)[1] == joburg(2026, 3, 2, 12, 30)


def test_pause_keeps_the_remaining_business_time_and_resume_restarts_it():
    policy = _policy()
    assert policy.pauses_on("pending") and not policy.pauses_on("snoozed") and not policy.pauses_on("open")
    since = joburg(2026, 3, 6, 16, 0)  # Friday
    warn, due = policy.deadline(since, first=True)
    assert due == joburg(2026, 3, 6, 17, 0)
    paused = joburg(2026, 3, 6, 16, 20)  # set pending 20 min in: 40 min left
    left = policy.remaining_ms(paused, due)
    assert left == 40 * M
    # Reopened on Monday 11:00: 40 business minutes from then; the warning stays at 80 % of the
    # target (28 min from now, where 12 min of slack remain).
    new_warn, new_due = policy.resume(joburg(2026, 3, 9, 11, 0), left, first=True)
    assert new_due == joburg(2026, 3, 9, 11, 40)
    assert new_warn == joburg(2026, 3, 9, 11, 28)
    # Past the warning point before the pause: the warning is due at once.
    late_warn, _ = policy.resume(joburg(2026, 3, 9, 11, 0), 5 * M, first=True)
    assert late_warn == joburg(2026, 3, 9, 11, 0)
    # Paused after the deadline: nothing left.
    assert policy.remaining_ms(due + M, due) == 0
    # Without knowing the target, the warning comes at 80 % of what is left.
    assert policy.resume(joburg(2026, 3, 9, 11, 0), 40 * M)[0] == joburg(2026, 3, 9, 11, 32)


def test_resume_over_a_closed_night():
    policy = _policy()
    warn, due = policy.resume(joburg(2026, 3, 2, 16, 50), 30 * M, first=False)
    assert due == joburg(2026, 3, 3, 9, 20)
    assert warn == joburg(2026, 3, 3, 9, 14)


# --- properties -----------------------------------------------------------------------------------

ZONES = ("Europe/Lisbon", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")
_slot = st.tuples(st.integers(0, 47), st.integers(1, 16)).map(lambda p: (p[0] * 30, min(1440, p[0] * 30 + p[1] * 30)))


@st.composite
def calendars(draw):
    week = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        slots = sorted(draw(st.lists(_slot, max_size=3)))
        ranges, end = [], -1
        for s, e in slots:
            if s >= end:
                ranges.append([f"{s // 60:02d}:{s % 60:02d}", "24:00" if e == 1440 else f"{e // 60:02d}:{e % 60:02d}"])
                end = e
        if ranges:
            week[day] = ranges
    assume(week)
    raw = {"timezone": draw(st.sampled_from(ZONES)), "week": week}
    if draw(st.booleans()):
        raw["holidays"] = {"country": draw(st.sampled_from(["PT", "US", "ZA"])), "subdivision": None}
    return calendar_for(raw)


# 2026-2027 with DST changes inside; instants in ms.
_instants = st.integers(1_767_225_600_000, 1_830_297_600_000)


@settings(max_examples=150)
@given(calendars(), _instants, st.integers(0, 10 * 24 * H))
def test_add_then_measure_gives_the_duration_back(cal, start, duration):
    end = cal.add_business_ms(start, duration)
    assert end >= start
    assert cal.business_ms_between(start, end) == duration


@settings(max_examples=150, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(calendars(), _instants, st.integers(1, 10 * 24 * H))
def test_measure_then_add_lands_on_the_end_inside_business_time(cal, start, span):
    end = start + span
    assume(cal.is_open(end - 1))  # the instant before `end` is business time
    assert cal.add_business_ms(start, cal.business_ms_between(start, end)) == end


@settings(max_examples=100)
@given(calendars(), _instants, st.integers(0, 5 * 24 * H), st.integers(0, 5 * 24 * H))
def test_business_time_is_additive(cal, a, first, second):
    b, c = a + first, a + first + second
    assert cal.business_ms_between(a, c) == cal.business_ms_between(a, b) + cal.business_ms_between(b, c)
    assert cal.business_ms_between(a, c) <= c - a
