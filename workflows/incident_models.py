"""Boundary models of the incident process. `IncidentStatus` is the query result, the
workflow result and the state carried across continue-as-new."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from activities.models import KnownError
from definitions.calendar import Pause
from definitions.incident import IncidentPolicy, Priority
from definitions.org import Organisation
from definitions.text import Text, Title, one_line


class IncidentState(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATES = {IncidentState.NEW, IncidentState.IN_PROGRESS, IncidentState.ON_HOLD}


class Event(BaseModel):
    time: datetime
    actor: str
    action: str
    details: str = ""


# A run's timeline keeps its first and last events, with a count of those in between, and each
# event's details shortened: its state stays bounded; the full detail is in the history.
TIMELINE_HEAD, TIMELINE_TAIL, EVENT_DETAILS = 20, 100, 500


RECENT_EVENTS = 5  # attached events an incident keeps (with their count and the last time seen)


class AttachedEvent(BaseModel):
    seen_at: datetime
    title: Title = ""


def append_event(status, event: Event) -> None:
    """Append to `status.events`, keeping head and tail (`status.events_omitted` counts the rest)."""
    event.details = one_line(event.details, EVENT_DETAILS)
    status.events.append(event)
    if len(status.events) > TIMELINE_HEAD + TIMELINE_TAIL:
        del status.events[TIMELINE_HEAD]
        status.events_omitted += 1


class EscalationStatus(BaseModel):
    policy: str | None = None
    step: int = 1
    next_at: datetime | None = None
    active: bool = False
    loops: dict[str, int] = {}
    turns: dict[str, int] = {}
    sequence: int = 0
    notified: list[str] = []


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


class IncidentStatus(BaseModel):
    id: str
    title: Title
    description: Text = ""
    ci: str | None = None
    state: IncidentState = IncidentState.NEW
    priority: Priority
    impact: int
    urgency: int
    assigned_group: str
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    opened_by: str
    opened_at: datetime
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution_code: str | None = None
    resolution_notes: str = ""
    resolutions: int = 0
    major: bool = False
    impacted_services: list[str] = []
    dedup_key: str | None = None
    dedup_count: int = 1
    last_seen: datetime | None = None
    recent_events: list[AttachedEvent] = []  # the last RECENT_EVENTS attached
    escalation: EscalationStatus = EscalationStatus()
    sla: dict[str, SlaClock] = {}
    pauses: list[Pause] = []
    events: list[Event] = []
    events_omitted: int = 0  # between the timeline's head and tail
    notices: list[str] = []
    policy: str = ""
    runs: int = 1
    problem: str | None = None
    known_errors: list[KnownError] = []


class IncidentInput(BaseModel):
    id: str
    title: Title
    description: Text = ""
    ci: str | None = None
    impact: int = Field(ge=1, le=3)
    urgency: int = Field(ge=1, le=3)
    group: str
    opened_by: str
    dedup_key: str | None = None
    dedup_router: str | None = None
    policy: IncidentPolicy
    organisation: Organisation
    carried: IncidentStatus | None = None


class ActorInput(BaseModel):
    actor: str


class EscalateInput(ActorInput):
    to_step: int | None = Field(default=None, ge=1)


class ReassignInput(ActorInput):
    group: str
    reason: str = ""


class PriorityInput(ActorInput):
    impact: int = Field(ge=1, le=3)
    urgency: int = Field(ge=1, le=3)
    reason: str = ""


class ReasonInput(ActorInput):
    reason: str = ""


class ResolveInput(ActorInput):
    code: str = Field(min_length=1)
    notes: str = ""


class NoteInput(ActorInput):
    text: str = Field(min_length=1)


class AttachInput(BaseModel):
    """Another event with the same dedup key (delivered by the dedup router)."""

    seen_at: datetime
    title: Title = ""


def start_attributes(incident: IncidentInput) -> dict[str, object]:
    """Start-time search attributes of an incident (an IncidentInput)."""
    return {
        "ItsmProcess": "incident", "ItsmState": "new", "ItsmRequester": incident.opened_by,
        "ItsmGroup": incident.group, "ItsmPriority": incident.policy.priority(incident.impact, incident.urgency).value,
        "ItsmCI": [incident.ci] if incident.ci else None, "ItsmDedupKey": incident.dedup_key,
    }
