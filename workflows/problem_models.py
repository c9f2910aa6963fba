"""Boundary models of the problem process: workflow input, update and signal inputs,
status/result. Add fields, never reorder meaning: running histories carry these."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from definitions.org import Organisation
from definitions.problem import ProblemPolicy
from definitions.text import Text, Title
from workflows.models import ActorInput, Event
from workflows.side_effects import SideEffect

SYSTEM = "system"
INCIDENT_ID = re.compile(r"^INC-\d{8}-[A-Z0-9]{4}$")
CHANGE_ID = re.compile(r"^CHG-\d{8}-[A-Z0-9]{4}$")


class ProblemState(StrEnum):
    NEW = "new"
    INVESTIGATING = "investigating"
    KNOWN_ERROR = "known_error"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELED = "canceled"


OPEN_STATES = {ProblemState.NEW, ProblemState.INVESTIGATING, ProblemState.KNOWN_ERROR}
WORKED_STATES = {ProblemState.INVESTIGATING, ProblemState.KNOWN_ERROR}
FINAL_STATES = {ProblemState.CLOSED, ProblemState.CANCELED}


class ProblemInput(BaseModel):
    """Everything a run needs, with the policy and directory snapshot at open. `opened_by`
    None: suggested by the system from recurring incidents (no person to verify)."""

    id: str
    title: Title
    description: Text = ""
    ci: str
    incidents: list[str] = []
    opened_by: str | None = None
    policy: ProblemPolicy
    organisation: Organisation


class ChangeLink(BaseModel):
    id: str
    linked_by: str
    outcome: str | None = None


class ProblemStatus(BaseModel):
    """What `itsm problem show --json` prints; also the workflow's result."""

    id: str
    title: Title
    description: Text = ""
    ci: str
    state: ProblemState = ProblemState.NEW
    opened_by: str
    opened_at: datetime
    suggested: bool = False
    incidents: list[str] = []
    root_cause: str = ""
    workaround: str = ""
    known_error_revision: int = 0
    changes: list[ChangeLink] = []
    resolved_at: datetime | None = None
    resolution_notes: str = ""
    closed_at: datetime | None = None
    reason: str = ""
    events: list[Event] = []
    events_omitted: int = 0  # between the timeline's head and tail
    notices: list[str] = []
    policy: str = ""


class LinkInput(ActorInput):
    incident_id: str


class RootCauseInput(ActorInput):
    text: str


class KnownErrorInput(ActorInput):
    workaround: str


class ChangeLinkInput(ActorInput):
    change_id: str


class IncidentOccurred(BaseModel):
    """Signal: another incident on the problem's CI (sent by the `incident_on_ci` activity)."""

    incident_id: str


class ChangeClosed(BaseModel):
    """Signal from a change raised for the problem: its outcome, or rejected / canceled."""

    change_id: str
    outcome: str


def start_attributes(problem: ProblemInput) -> dict[str, object]:
    """Start-time search attributes of a problem."""
    return {"ItsmProcess": "problem", "ItsmState": ProblemState.NEW.value,
            "ItsmRequester": problem.opened_by or SYSTEM, "ItsmGroup": problem.policy.manager_group,
            "ItsmCI": [problem.ci]}


# --- side effects the problem queues for its main loop (see workflows/side_effects.py) ---


@dataclass
class ClaimCi(SideEffect):
    """At open: become the CI's open problem, which new incidents on it join."""


@dataclass
class TellIncident(SideEffect):
    """Tell a linked incident it belongs to this problem."""

    incident_id: str


@dataclass
class RecordKnownError(SideEffect):
    """The known error (root cause and workaround) in the CMDB, shown on new incidents."""


@dataclass
class EndProblem(SideEffect):
    """Retire the known error and release the CI."""
