"""SLA clocks of a process: targets from the policy, computed by the pure calculator in
definitions/calendar.py, with notices at thresholds that never fire twice."""

from __future__ import annotations

from datetime import datetime

from definitions.calendar import BusinessCalendar, Pause, due_time, percent_used, threshold_time
from workflows.models import SlaClock


def refresh(clock: SlaClock, calendar: BusinessCalendar, start: datetime, pauses: list[Pause], now: datetime) -> None:
    """Recompute due, % used, paused and breached as of `now` (or as of when it was met)."""
    until = clock.met_at or now
    clock.paused = clock.met_at is None and any(p.end is None for p in pauses)
    clock.due = due_time(calendar, start, clock.target, pauses)
    clock.elapsed_percent = round(percent_used(calendar, start, until, clock.target, pauses), 2)
    clock.breached = clock.breached or clock.elapsed_percent >= 100.0


def pending_notices(
    clock: SlaClock, calendar: BusinessCalendar, start: datetime, pauses: list[Pause], percents: list[int]
) -> list[tuple[int, datetime]]:
    """(percent, time) of the notices still to send, soonest first; none while met or paused."""
    if clock.met_at is not None or any(p.end is None for p in pauses):
        return []
    found = []
    for percent in percents:
        if percent in clock.notices_sent:
            continue
        moment = threshold_time(calendar, start, clock.target, pauses, percent / 100)
        if moment is not None:
            found.append((percent, moment))
    return sorted(found, key=lambda item: item[1])
