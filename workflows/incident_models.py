"""Boundary models of the incident process. `IncidentStatus` is the query result, the
workflow result and the state carried across continue-as-new."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from activities.models import KnownError
from definitions.calendar import Pause
from definitions.incident import IncidentPolicy, Priority
from definitions.org import Organisation
from definitions.text import Text, Title
from workflows.models import ActorInput, Event, ResolveInput, SlaClock
from workflows.side_effects import SideEffect


class IncidentState(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATES = {IncidentState.NEW, IncidentState.IN_PROGRESS, IncidentState.ON_HOLD}


RECENT_EVENTS = 5  # attached events an incident keeps (with their count and the last time seen)


class AttachedEvent(BaseModel):
    seen_at: datetime
    title: Title = ""


class EscalationStatus(BaseModel):
    policy: str | None = None
    step: int = 1
    next_at: datetime | None = None
    active: bool = False
    loops: dict[str, int] = {}
    turns: dict[str, int] = {}
    sequence: int = 0
    notified: list[str] = []


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


class EscalateInput(ActorInput):
    to_step: int | None = Field(default=None, ge=1)


class ReassignInput(ActorInput):
    group: str
    reason: str = ""


class PriorityInput(ActorInput):
    impact: int = Field(ge=1, le=3)
    urgency: int = Field(ge=1, le=3)
    reason: str = ""


class IncidentResolveInput(ResolveInput):
    code: str = Field(min_length=1)


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


# --- side effects the incident queues for its main loop (see workflows/side_effects.py) ---


@dataclass
class LookUpCi(SideEffect):
    """At open: the CI's known errors and problem, then the opened notice."""


@dataclass
class RecordResolution(SideEffect):
    """On resolve: the incident in the CMDB's record of its CI."""


@dataclass
class ReleaseRouter(SideEffect):
    """On resolve: tell the dedup router this incident takes no more events."""


@dataclass
class AnnounceMajor(SideEffect):
    """On declare major: the impacted services, then the major-incident notice."""
