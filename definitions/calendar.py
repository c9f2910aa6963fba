"""Business calendars and the SLA calculator (shared/SLA-RULES.md). Pure functions:
(calendar, start, target, pauses) → due; no clock, no I/O.

Rules pinned by tests/definitions/test_calendar.py: weekday and holiday are decided in
the calendar's timezone (DST honoured: hours are local wall-clock); a clock started
outside working hours starts at the next opening; a budget that runs out exactly at
closing is due at that closing; 24x7 (or 00:00-24:00 every day) is continuous; paused
time is measured on the same calendar; thresholds come from the same arithmetic."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterator
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field, PrivateAttr, model_validator

from definitions.base import Model, TimeZoneName
from definitions.windows import Weekday

_RANGE = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
_WEEKDAYS = list(Weekday)
SEARCH_DAYS = 3660


def _minutes(text: str) -> tuple[int, int]:
    match = _RANGE.match(text.strip())
    if not match:
        raise ValueError(f"range {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
        raise ValueError(f"range {text!r} is not a time of day (end may be 24:00)")
    if end <= start:
        raise ValueError(f"range {text!r} must end after it starts")
    return start, end


# always open, timezone, hours by weekday, holidays
HoursKey = tuple[bool, str, tuple[tuple[str, tuple[str, ...]], ...], frozenset[date]]


@lru_cache(maxsize=8192)
def _open_spans(key: HoursKey, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """Open intervals of local `day` on the calendar `key` (timezone, hours, holidays), in UTC.
    Pure: the same key and day always give the same spans, so one cache serves every run."""
    _, zone_name, hours, holidays = key
    if day in holidays:
        return ()
    zone = ZoneInfo(zone_name)
    spans = []
    for start, end in sorted(_minutes(r) for r in dict(hours).get(_WEEKDAYS[day.weekday()].value, ())):
        opens = datetime.combine(day, time(start // 60, start % 60), zone)
        closes = (datetime.combine(day + timedelta(days=1), time(0), zone) if end == 24 * 60
                  else datetime.combine(day, time(end // 60, end % 60), zone))
        spans.append((opens.astimezone(timezone.utc), closes.astimezone(timezone.utc)))
    return tuple(spans)


class BusinessCalendar(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    timezone: TimeZoneName = "UTC"
    always_open: bool = False
    hours: dict[Weekday, list[str]] = {}
    holidays: list[date] = []
    _hours_key: tuple | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _valid_hours(self) -> "BusinessCalendar":
        if not self.always_open and not any(self.hours.values()):
            raise ValueError(f"calendar {self.name!r}: needs hours or always_open")
        for day, ranges in self.hours.items():
            spans = sorted(_minutes(r) for r in ranges)
            for (_, end), (start, _) in zip(spans, spans[1:]):
                if start < end:
                    raise ValueError(f"calendar {self.name!r}: {day.value} ranges overlap")
        return self

    @property
    def key(self) -> HoursKey:
        """What the calendar's arithmetic depends on, hashable (the caches' key). Built once
        per calendar: kept with the very hours and holidays it was built from, so a copy made
        with other ones (`model_copy(update=...)`) builds its own."""
        private = self.__pydantic_private__ or {}
        kept = private.get("_hours_key")
        if kept is None or kept[0] is not self.hours or kept[1] is not self.holidays or \
                kept[2][:2] != (self.always_open, self.timezone):
            key = (self.always_open, self.timezone, tuple((d.value, tuple(r)) for d, r in sorted(self.hours.items())),
                   frozenset(self.holidays))
            kept = private["_hours_key"] = (self.hours, self.holidays, key)
        return kept[2]

    def _day(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Open intervals of local `day`, in UTC (computed once per calendar and day: every SLA
        clock's status walks the same days again)."""
        return _open_spans(self.key, day)

    def intervals(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals ending after `moment`, in order; adjacent ones merged."""
        if self.always_open:
            yield moment, moment + timedelta(days=SEARCH_DAYS)
            return
        day = moment.astimezone(ZoneInfo(self.timezone)).date() - timedelta(days=1)
        pending: tuple[datetime, datetime] | None = None
        for offset in range(SEARCH_DAYS):
            for opens, closes in self._day(day + timedelta(days=offset)):
                if pending and opens <= pending[1]:
                    pending = (pending[0], max(pending[1], closes))
                    continue
                if pending and pending[1] > moment:
                    yield pending
                pending = (opens, closes)
        if pending and pending[1] > moment:
            yield pending

    def is_open(self, moment: datetime) -> bool:
        return any(opens <= moment for opens, _ in self._first(moment))

    def _first(self, moment: datetime) -> list[tuple[datetime, datetime]]:
        return [next(self.intervals(moment), (moment + timedelta(days=SEARCH_DAYS),) * 2)]

    def next_opening(self, moment: datetime) -> datetime:
        opens, _ = self._first(moment)[0]
        return max(opens, moment)

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        total = timedelta(0)
        if end <= start:
            return total
        for opens, closes in self.intervals(start):
            if opens >= end:
                break
            total += min(closes, end) - max(opens, start)
        return total

    def add_business_time(self, start: datetime, budget: timedelta) -> datetime:
        for opens, closes in self.intervals(start):
            cursor = max(opens, start)
            if budget <= closes - cursor:
                return cursor + budget
            budget -= closes - cursor
        raise ValueError(f"calendar {self.name!r} has no working time in {SEARCH_DAYS} days")


class Pause(Model):
    """An on-hold interval; `end` None while still paused."""

    start: AwareDatetime
    end: AwareDatetime | None = None


def _paused(calendar: BusinessCalendar, start: datetime, until: datetime, pauses: list[Pause]) -> timedelta:
    return sum((calendar.business_time_between(max(p.start, start), min(p.end or until, until)) for p in pauses),
               timedelta(0))


def business_elapsed(calendar: BusinessCalendar, start: datetime, now: datetime, pauses: list[Pause]) -> timedelta:
    """Business time used between `start` and `now`, less business time spent paused."""
    return calendar.business_time_between(start, now) - _paused(calendar, start, now, pauses)


_THRESHOLDS: dict[tuple, datetime] = {}
THRESHOLDS_KEPT = 20_000  # answers kept before the cache starts over (a few MB)


def threshold_time(calendar: BusinessCalendar, start: datetime, target: timedelta, pauses: list[Pause],
                   fraction: float) -> datetime | None:
    """When used/target reaches `fraction`; None while a pause is open (the clock is stopped).
    Pure, so answers are kept: a run's status asks the same of every clock at each workflow
    task and each query."""
    closed = [(p.start, p.end) for p in pauses if p.end is not None]
    if len(closed) < len(pauses):
        return None
    key = (calendar.key, start, target, tuple(closed), fraction)
    found = _THRESHOLDS.get(key)
    if found is None:
        if len(_THRESHOLDS) >= THRESHOLDS_KEPT:
            _THRESHOLDS.clear()
        found = _THRESHOLDS[key] = _threshold_time(calendar, start, target, closed, fraction)
    return found


def _threshold_time(calendar: BusinessCalendar, start: datetime, target: timedelta,
                    closed: list[tuple[datetime, datetime]], fraction: float) -> datetime:
    budget, cursor = target * fraction, start
    for paused, resumed in sorted(closed, key=lambda p: p[0]):
        if resumed <= cursor:
            continue
        segment = calendar.business_time_between(cursor, paused)
        if budget <= segment:
            return calendar.add_business_time(cursor, budget)
        budget -= segment
        cursor = max(cursor, resumed)
    return calendar.add_business_time(cursor, budget)


def due_time(calendar: BusinessCalendar, start: datetime, target: timedelta, pauses: list[Pause]) -> datetime | None:
    """When the target is used up; None while paused."""
    return threshold_time(calendar, start, target, pauses, 1.0)


def percent_used(calendar: BusinessCalendar, start: datetime, now: datetime, target: timedelta,
                 pauses: list[Pause]) -> float:
    return 100.0 * (business_elapsed(calendar, start, now, pauses) / target)
