"""Maintenance windows and blackouts: when a change may run. Pure functions, no clock."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field, model_validator

from definitions.base import Model, TimeZoneName

SEARCH_HORIZON = timedelta(days=90)


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_WEEKDAYS = list(Weekday)
WEEKDAYS_MON_FRI = _WEEKDAYS[:5]


class MaintenanceWindow(Model):
    """A weekly window opening on `days` at `start` (local time in `timezone`) and closing
    at `end`, on the next day when `end` <= `start` (22:00-04:00 crosses midnight).
    A change must fit one occurrence, anchored on the day the window opens."""

    name: str
    days: list[Weekday] = Field(default_factory=lambda: list(Weekday))
    start: time = time(0, 0)
    end: time = time(0, 0)
    timezone: TimeZoneName = "UTC"
    always_open: bool = False

    @model_validator(mode="after")
    def _has_days(self) -> "MaintenanceWindow":
        if not self.always_open and not self.days:
            raise ValueError(f"window {self.name!r}: needs at least one day or always_open")
        return self

    def occurrence(self, day: date) -> tuple[datetime, datetime] | None:
        """The occurrence that opens on local `day`, in UTC, or None if it doesn't open then."""
        if _WEEKDAYS[day.weekday()] not in self.days:
            return None
        zone = ZoneInfo(self.timezone)
        opens = datetime.combine(day, self.start, zone)
        close_day = day if self.end > self.start else day + timedelta(days=1)
        closes = datetime.combine(close_day, self.end, zone)
        return opens.astimezone(ZoneInfo("UTC")), closes.astimezone(ZoneInfo("UTC"))

    def occurrences_from(self, moment: datetime, horizon: timedelta):
        """Occurrences that may contain `moment` or come after it, in order."""
        local_day = moment.astimezone(ZoneInfo(self.timezone)).date() - timedelta(days=1)
        for offset in range(horizon.days + 2):
            occ = self.occurrence(local_day + timedelta(days=offset))
            if occ:
                yield occ

    def contains(self, start: datetime, end: datetime) -> bool:
        if self.always_open:
            return True
        for opens, closes in self.occurrences_from(start, timedelta(days=1)):
            if opens <= start and end <= closes:
                return True
        return False


class Blackout(Model):
    """No normal change may overlap [start, end)."""

    name: str
    start: AwareDatetime
    end: AwareDatetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> "Blackout":
        if self.end <= self.start:
            raise ValueError(f"blackout {self.name!r}: end must be after start")
        return self

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return start < self.end and self.start < end


def blackout_hit(blackouts: list[Blackout], start: datetime, end: datetime) -> Blackout | None:
    return next((b for b in blackouts if b.overlaps(start, end)), None)


def window_for(windows: list[MaintenanceWindow], start: datetime, end: datetime) -> MaintenanceWindow | None:
    return next((w for w in windows if w.contains(start, end)), None)


def next_slot(
    windows: list[MaintenanceWindow],
    blackouts: list[Blackout],
    after: datetime,
    duration: timedelta,
    horizon: timedelta = SEARCH_HORIZON,
) -> datetime | None:
    """Earliest start >= `after` whose [start, start+duration) fits one window occurrence
    and overlaps no blackout; None when nothing fits within `horizon`."""
    best: datetime | None = None
    for window in windows:
        occurrences = (
            [(after, after + horizon + duration)]
            if window.always_open
            else window.occurrences_from(after, horizon)
        )
        for opens, closes in occurrences:
            if opens > after + horizon or (best and opens >= best):
                break
            candidate = max(opens, after)
            while candidate + duration <= closes:
                hit = blackout_hit(blackouts, candidate, candidate + duration)
                if not hit:
                    break
                candidate = hit.end
            if candidate + duration <= closes:
                best = candidate if best is None else min(best, candidate)
                break
    return best
