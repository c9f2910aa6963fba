"""The SLA clock's rules (shared/SLA-RULES.md), one test each, at exact datetimes."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from definitions.calendar import BusinessCalendar, Pause, business_elapsed, due_time, percent_used, threshold_time
from definitions.windows import Weekday

UTC = timezone.utc
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = BusinessCalendar(name="office", hours={d: ["09:00-17:00"] for d in WEEKDAYS}, holidays=[date(2026, 12, 7)])
LUNCH = BusinessCalendar(name="lunch", hours={d: ["09:00-12:00", "13:00-17:00"] for d in WEEKDAYS})
ALWAYS = BusinessCalendar(name="always", always_open=True)
MIDNIGHT_TO_MIDNIGHT = BusinessCalendar(name="m2m", hours={d: ["00:00-24:00"] for d in
                                                          (*WEEKDAYS, "sat", "sun")})
H = timedelta(hours=1)


def at(*args, zone=UTC) -> datetime:
    return datetime(*args, tzinfo=zone)


def test_rule1_weekday_and_holiday_in_the_calendars_timezone():
    tokyo = BusinessCalendar(name="tokyo", timezone="Asia/Tokyo", hours={d: ["09:00-17:00"] for d in WEEKDAYS},
                             holidays=[date(2026, 11, 30)])
    # Sunday 2026-11-29 23:30 UTC is Monday 08:30 in Tokyo, a Tokyo holiday: next opening is Tuesday 09:00 JST.
    assert tokyo.next_opening(at(2026, 11, 29, 23, 30)) == at(2026, 12, 1, 0, 0)
    # Friday 2026-11-27 23:30 UTC is Saturday in Tokyo: closed, although Friday in UTC.
    assert not tokyo.is_open(at(2026, 11, 27, 23, 30))


def test_rule1_dst_is_honoured_hours_are_local_wall_clock():
    berlin = BusinessCalendar(name="berlin", timezone="Europe/Berlin", hours={d: ["09:00-17:00"] for d in WEEKDAYS})
    # Clocks go back on Sunday 2026-10-25: Friday opens 07:00 UTC, Monday opens 08:00 UTC.
    assert berlin.next_opening(at(2026, 10, 23, 0)) == at(2026, 10, 23, 7)
    assert berlin.next_opening(at(2026, 10, 24, 0)) == at(2026, 10, 26, 8)
    assert berlin.business_time_between(at(2026, 10, 23, 0), at(2026, 10, 27, 0)) == 16 * H


def test_rule2_no_days_unit_for_targets():
    from definitions.incident import SlaTargets

    with pytest.raises(ValidationError, match="not days"):
        SlaTargets(response="1d", resolution="8h", calendar="office")
    assert SlaTargets(response="30m", resolution="24h", calendar="office").resolution == 24 * H


def test_rule3_start_outside_hours_begins_at_next_opening_keeping_seconds():
    saturday_night = at(2026, 11, 28, 23, 59, 59)
    assert due_time(OFFICE, saturday_night, timedelta(minutes=30), []) == at(2026, 11, 30, 9, 30)
    assert OFFICE.add_business_time(at(2026, 11, 30, 9, 0, 7), timedelta(minutes=1)) == at(2026, 11, 30, 9, 1, 7)


def test_rule4_budget_ending_at_closing_is_due_at_closing():
    assert due_time(OFFICE, at(2026, 11, 27, 16), H, []) == at(2026, 11, 27, 17)
    assert due_time(LUNCH, at(2026, 11, 30, 11), H, []) == at(2026, 11, 30, 12)


def test_p3_opened_friday_1700_is_due_monday():
    friday_close = at(2026, 11, 27, 17)
    assert due_time(OFFICE, friday_close, 2 * H, []) == at(2026, 11, 30, 11)
    assert due_time(OFFICE, friday_close, 8 * H, []) == at(2026, 11, 30, 17)
    assert due_time(OFFICE, at(2026, 11, 27, 16), 4 * H, []) == at(2026, 11, 30, 12)


def test_holiday_is_skipped():
    # Monday 2026-12-07 is a holiday: Friday 16:00 + 2h → Tuesday 10:00.
    assert due_time(OFFICE, at(2026, 12, 4, 16), 2 * H, []) == at(2026, 12, 8, 10)


def test_rule5_24x7_and_00_24_are_continuous():
    for calendar in (ALWAYS, MIDNIGHT_TO_MIDNIGHT):
        assert calendar.add_business_time(at(2026, 11, 27, 23, 30), H) == at(2026, 11, 28, 0, 30)
        assert calendar.business_time_between(at(2026, 11, 27, 12), at(2026, 11, 29, 12)) == 48 * H


def test_rule6_pause_is_measured_on_the_calendar():
    start = at(2026, 11, 27, 16)  # Friday
    weekend_hold = [Pause(start=at(2026, 11, 27, 16, 30), end=at(2026, 11, 30, 9, 30))]
    # 30 min used Friday, paused over the weekend (only 30 business minutes Monday are lost).
    assert due_time(OFFICE, start, 2 * H, weekend_hold) == at(2026, 11, 30, 11)
    assert due_time(OFFICE, start, 2 * H, []) == at(2026, 11, 30, 10)
    assert business_elapsed(OFFICE, start, at(2026, 11, 30, 10), weekend_hold) == H


def test_open_pause_freezes_the_clock():
    start = at(2026, 11, 30, 9)
    paused = [Pause(start=at(2026, 11, 30, 10))]
    assert due_time(OFFICE, start, 4 * H, paused) is None
    assert business_elapsed(OFFICE, start, at(2026, 11, 30, 15), paused) == H


def test_rule7_thresholds():
    start = at(2026, 11, 30, 9)
    assert [threshold_time(OFFICE, start, 4 * H, [], f) for f in (0.5, 0.75, 1.0)] == [
        at(2026, 11, 30, 11), at(2026, 11, 30, 12), at(2026, 11, 30, 13)]
    assert percent_used(OFFICE, start, at(2026, 11, 30, 12), 4 * H, []) == 75.0
    assert percent_used(OFFICE, start, at(2026, 12, 1, 9), 4 * H, []) == 200.0


def test_multiple_pauses():
    start = at(2026, 11, 30, 9)
    pauses = [Pause(start=at(2026, 11, 30, 10), end=at(2026, 11, 30, 11)),
              Pause(start=at(2026, 11, 30, 12), end=at(2026, 11, 30, 14))]
    assert due_time(OFFICE, start, 3 * H, pauses) == at(2026, 11, 30, 15)


def test_add_and_between_are_inverses():
    rng = random.Random(20261124)
    calendars = [OFFICE, LUNCH, ALWAYS, BusinessCalendar(name="ny", timezone="America/New_York",
                                                         hours={d: ["08:00-18:00"] for d in WEEKDAYS})]
    for _ in range(500):
        calendar = rng.choice(calendars)
        start = at(2026, 1, 1) + timedelta(seconds=rng.randrange(365 * 86400))
        budget = timedelta(seconds=rng.randrange(1, 60 * 3600))
        due = calendar.add_business_time(start, budget)
        assert calendar.business_time_between(start, due) == budget, (calendar.name, start, budget)


def test_long_budgets_walk_by_range_not_minute():
    import time

    began = time.perf_counter()
    for _ in range(20):
        OFFICE.add_business_time(at(2026, 1, 1), 30 * 8 * H)
    assert time.perf_counter() - began < 1.0


@pytest.mark.parametrize("hours, message", [
    ({"mon": ["09:00-08:00"]}, "must end after"), ({"mon": ["9-17"]}, "HH:MM-HH:MM"),
    ({"mon": ["09:00-12:00", "11:00-13:00"]}, "overlap"), ({}, "needs hours"),
])
def test_invalid_calendars(hours, message):
    with pytest.raises(ValidationError, match=message):
        BusinessCalendar(name="bad", hours=hours)
    with pytest.raises(ValidationError, match="unknown timezone"):
        BusinessCalendar(name="bad", timezone="Mars/Base", always_open=True)


def test_zoneinfo_used_is_the_calendar_zone():
    assert ZoneInfo(OFFICE.timezone) == ZoneInfo("UTC")


def test_kept_answers_follow_the_calendar_they_were_asked_of():
    """The calculator keeps its answers (thresholds, open hours by day): a copy of a calendar
    with other hours, holidays or timezone, asked the same question after the original, gets
    its own answer, not the original's."""
    start = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # Friday 16:00
    assert due_time(OFFICE, start, 2 * H, []) == datetime(2026, 12, 8, 10, 0, tzinfo=UTC)  # Mon 7th a holiday
    assert due_time(OFFICE.model_copy(update={"holidays": []}), start, 2 * H, []) == \
        datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    later = OFFICE.model_copy(update={"hours": {Weekday(d): ["10:00-17:00"] for d in WEEKDAYS}})
    assert due_time(later, start, 2 * H, []) == datetime(2026, 12, 8, 11, 0, tzinfo=UTC)
    east = OFFICE.model_copy(update={"timezone": "Asia/Tokyo"})
    assert due_time(east, start, 2 * H, []) != due_time(OFFICE, start, 2 * H, [])
    assert due_time(OFFICE.model_copy(update={"always_open": True}), start, 2 * H, []) == start + 2 * H
    assert due_time(OFFICE, start, 2 * H, []) == datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
