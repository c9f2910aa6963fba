"""Models every process shares, defined once: the timeline event, the SLA clock, and the
actor, reason and resolve inputs of updates. Add fields, never reorder meaning."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel

from definitions.text import one_line


class Event(BaseModel):
    time: datetime
    actor: str
    action: str
    details: str = ""


# A run's timeline keeps its first and last events, with a count of those in between, and each
# event's details shortened: its state stays bounded; the full detail is in the history.
TIMELINE_HEAD, TIMELINE_TAIL, EVENT_DETAILS = 20, 100, 500


class Timeline(Protocol):
    """A status with a bounded timeline."""

    events: list[Event]
    events_omitted: int


def append_event(status: Timeline, event: Event) -> None:
    """Append to `status.events`, keeping head and tail (`status.events_omitted` counts the rest)."""
    event.details = one_line(event.details, EVENT_DETAILS)
    status.events.append(event)
    if len(status.events) > TIMELINE_HEAD + TIMELINE_TAIL:
        del status.events[TIMELINE_HEAD]
        status.events_omitted += 1


class SlaClock(BaseModel):
    name: str
    target: timedelta
    calendar: str
    due: datetime | None = None
    elapsed_percent: float = 0.0
    paused: bool = False
    breached: bool = False
    met_at: datetime | None = None
    notices_sent: list[int] = []


class ActorInput(BaseModel):
    """An update that only names who acts."""

    actor: str


class ReasonInput(ActorInput):
    reason: str = ""


class ResolveInput(ActorInput):
    """Resolve a problem; an incident's resolve adds its resolution code."""

    notes: str = ""
