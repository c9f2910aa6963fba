"""Maintenance windows and blackouts: occurrences in local time, containment, and the next
slot a change may move to. Pure functions, explicit instants (2026-11-23 is a Monday)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest
from pydantic import ValidationError

from definitions.windows import (
    WEEKDAYS_MON_FRI,
    Blackout,
    MaintenanceWindow,
    Weekday,
    blackout_hit,
    next_slot,
    window_for,
)

HOUR = timedelta(hours=1)
WEEKNIGHT = MaintenanceWindow(name="weeknight", days=WEEKDAYS_MON_FRI, start=time(22), end=time(4))
WEEKEND = MaintenanceWindow(name="weekend", days=[Weekday.SAT, Weekday.SUN], start=time(6), end=time(18))
ALWAYS = MaintenanceWindow(name="always", always_open=True)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_overnight_window_closes_the_next_day_and_opens_only_on_its_days():
    assert WEEKNIGHT.occurrence(utc(2026, 11, 23).date()) == (utc(2026, 11, 23, 22), utc(2026, 11, 24, 4))
    assert WEEKNIGHT.occurrence(utc(2026, 11, 28).date()) is None
    assert WEEKEND.occurrence(utc(2026, 11, 28).date()) == (utc(2026, 11, 28, 6), utc(2026, 11, 28, 18))


def test_occurrence_follows_the_local_timezone_across_daylight_saving():
    berlin = MaintenanceWindow(name="berlin", days=[Weekday.SAT], start=time(22), end=time(4), timezone="Europe/Berlin")
    assert berlin.occurrence(utc(2026, 11, 28).date()) == (utc(2026, 11, 28, 21), utc(2026, 11, 29, 3))
    assert berlin.occurrence(utc(2026, 7, 4).date()) == (utc(2026, 7, 4, 20), utc(2026, 7, 5, 2))
    opens, closes = berlin.occurrence(utc(2026, 10, 24).date())
    assert (opens, closes, closes - opens) == (utc(2026, 10, 24, 20), utc(2026, 10, 25, 3), 7 * HOUR)


@pytest.mark.parametrize(("start", "end", "inside"), [
    (utc(2026, 11, 23, 22), utc(2026, 11, 24, 4), True),
    (utc(2026, 11, 24, 1), utc(2026, 11, 24, 2), True),
    (utc(2026, 11, 28, 1), utc(2026, 11, 28, 3), True),
    (utc(2026, 11, 23, 21, 59), utc(2026, 11, 23, 23), False),
    (utc(2026, 11, 24, 3), utc(2026, 11, 24, 4, 1), False),
    (utc(2026, 11, 23, 2), utc(2026, 11, 23, 3), False),
    (utc(2026, 11, 24, 23), utc(2026, 11, 25, 23), False),
], ids=["exact-fit", "after-midnight", "friday-night", "opens-too-early", "ends-too-late", "sunday-night", "too-long"])
def test_contains_needs_one_whole_occurrence(start, end, inside):
    assert WEEKNIGHT.contains(start, end) is inside


def test_always_open_contains_anything():
    assert ALWAYS.contains(utc(2026, 11, 23, 12), utc(2026, 12, 23, 12))


def test_window_and_blackout_validation():
    with pytest.raises(ValidationError, match="unknown timezone 'Mars/Olympus'"):
        MaintenanceWindow(name="w", timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="window 'w': needs at least one day or always_open"):
        MaintenanceWindow(name="w", days=[])
    assert MaintenanceWindow(name="w", days=[], always_open=True).always_open
    with pytest.raises(ValidationError, match="blackout 'b': end must be after start"):
        Blackout(name="b", start=utc(2026, 12, 1), end=utc(2026, 12, 1))
    with pytest.raises(ValidationError, match="timezone"):
        Blackout(name="b", start=datetime(2026, 12, 1), end=datetime(2026, 12, 2))


def test_blackouts_are_half_open():
    freeze = Blackout(name="freeze", start=utc(2026, 12, 1), end=utc(2026, 12, 2))
    later = Blackout(name="later", start=utc(2026, 12, 1, 12), end=utc(2026, 12, 3))
    assert freeze.overlaps(utc(2026, 11, 30, 23), utc(2026, 12, 1, 0, 1))
    assert not freeze.overlaps(utc(2026, 11, 30, 23), utc(2026, 12, 1))
    assert not freeze.overlaps(utc(2026, 12, 2), utc(2026, 12, 2, 1))
    assert blackout_hit([freeze, later], utc(2026, 12, 1, 13), utc(2026, 12, 1, 14)) is freeze
    assert blackout_hit([freeze, later], utc(2026, 12, 2, 13), utc(2026, 12, 2, 14)) is later
    assert blackout_hit([freeze, later], utc(2026, 12, 4), utc(2026, 12, 5)) is None


def test_window_for_picks_the_first_window_that_contains_the_change():
    assert window_for([WEEKNIGHT, WEEKEND], utc(2026, 11, 28, 7), utc(2026, 11, 28, 9)) is WEEKEND
    assert window_for([WEEKNIGHT, WEEKEND], utc(2026, 11, 24, 12), utc(2026, 11, 24, 13)) is None
    assert window_for([WEEKNIGHT, ALWAYS], utc(2026, 11, 23, 23), utc(2026, 11, 24)) is WEEKNIGHT


@pytest.mark.parametrize(("after", "duration", "blackouts", "slot"), [
    (utc(2026, 11, 23, 23), HOUR, [], utc(2026, 11, 23, 23)),
    (utc(2026, 11, 23, 12), HOUR, [], utc(2026, 11, 23, 22)),
    (utc(2026, 11, 24, 3, 30), HOUR, [], utc(2026, 11, 24, 22)),
    (utc(2026, 11, 27, 12), 2 * HOUR, [], utc(2026, 11, 27, 22)),
    (utc(2026, 11, 28, 4), 8 * HOUR, [], utc(2026, 11, 28, 6)),
    (utc(2026, 11, 23, 12), HOUR, [(utc(2026, 11, 23, 21), utc(2026, 11, 24, 1))], utc(2026, 11, 24, 1)),
    (utc(2026, 11, 23, 12), 4 * HOUR, [(utc(2026, 11, 23, 21), utc(2026, 11, 24, 1))], utc(2026, 11, 24, 22)),
    (utc(2026, 11, 27, 12), 13 * HOUR, [], None),
], ids=["inside", "before-opening", "rest-too-short", "friday", "weekend-earlier", "after-blackout",
        "blackout-leaves-too-little", "longer-than-any-window"])
def test_next_slot_is_the_earliest_fitting_start(after, duration, blackouts, slot):
    freezes = [Blackout(name=f"b{i}", start=start, end=end) for i, (start, end) in enumerate(blackouts)]
    assert next_slot([WEEKNIGHT, WEEKEND], freezes, after, duration) == slot


def test_next_slot_in_an_always_open_window_skips_chained_blackouts():
    freezes = [Blackout(name="a", start=utc(2026, 12, 1), end=utc(2026, 12, 2)),
               Blackout(name="b", start=utc(2026, 12, 2, 0, 30), end=utc(2026, 12, 3))]
    assert next_slot([ALWAYS], freezes, utc(2026, 11, 30, 23, 30), HOUR) == utc(2026, 12, 3)
    assert next_slot([ALWAYS], freezes, utc(2026, 11, 30, 12), HOUR) == utc(2026, 11, 30, 12)


def test_next_slot_gives_up_after_the_horizon():
    freeze = Blackout(name="year", start=utc(2026, 11, 1), end=utc(2027, 11, 1))
    assert next_slot([WEEKNIGHT], [freeze], utc(2026, 11, 23), HOUR) is None
    saturday = utc(2026, 11, 28, 4)
    assert next_slot([WEEKNIGHT], [], saturday, HOUR, horizon=timedelta(days=2)) is None
    assert next_slot([WEEKNIGHT], [], saturday, HOUR, horizon=timedelta(days=3)) == utc(2026, 11, 30, 22)
