"""Boundary models of release management (REL-…): a release bundles changes (existing ones
that join it, new ones created with it), has its own approval chain and deployment window,
takes a go/no-go at window start and implements its changes along a declared DAG. Add
fields, never reorder meaning."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from definitions.approvals import ApprovalChain
from definitions.org import Organisation
from definitions.text import Text, Title
from workflows.approvals import LevelState
from workflows.change_models import ChangeInput
from workflows.models import ActorInput, Event, ReasonInput


class ReleaseState(StrEnum):
    PLANNING = "planning"  # its changes get ready (scheduled, waiting for the release)
    AUTHORIZE = "authorize"  # its own approval chain
    SCHEDULED = "scheduled"  # approved, waiting for the window to open
    GO_NO_GO = "go-no-go"  # the window is open: the release manager decides
    IMPLEMENTING = "implementing"  # its changes one by one along the DAG
    BACKING_OUT = "backing-out"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELED = "canceled"


FINAL_STATES = {ReleaseState.CLOSED, ReleaseState.REJECTED, ReleaseState.CANCELED}


class ReleaseOutcome(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    NO_GO = "no-go"


class ReleaseInput(BaseModel):
    id: str
    title: Title
    description: Text = ""
    requested_by: str  # who planned it (may not approve it)
    manager: str  # the release manager: decides go / no-go
    window_start: datetime
    window_end: datetime
    changes: list[str] = Field(min_length=1)  # every member, in the order given
    cis: list[str] = []  # every member's CIs: the release books them for its window
    created: list[ChangeInput] = []  # the members the release starts itself
    after: dict[str, list[str]] = {}  # change → the changes that must succeed before it
    approval: ApprovalChain
    organisation: Organisation


def order(after: dict[str, list[str]], changes: list[str]) -> list[str]:
    """The changes in an order the DAG allows (prerequisites first; otherwise as given).
    Raises ValueError on an unknown change or a cycle."""
    unknown = sorted({c for c, before in after.items() for c in (c, *before) if c not in changes})
    if unknown:
        raise ValueError(f"the DAG names changes not in the release: {', '.join(unknown)}")
    done: list[str] = []
    while len(done) < len(changes):
        ready = [c for c in changes if c not in done and all(b in done for b in after.get(c, []))]
        if not ready:
            raise ValueError(f"the DAG has a cycle among {', '.join(c for c in changes if c not in done)}")
        done.append(ready[0])
    return done


class Member(BaseModel):
    """A change of the release as the release knows it (the change reports each step)."""

    id: str
    after: list[str] = []
    state: str = "new"
    risk: str | None = None
    cis: list[str] = []
    outcome: str | None = None  # its close code once closed, or its final state
    back_out: str | None = None  # the TASK that backs it out, when the release failed after it


class ReleaseStatus(BaseModel):
    id: str
    title: Title
    state: ReleaseState = ReleaseState.PLANNING
    requested_by: str = ""
    manager: str
    window_start: datetime
    window_end: datetime
    members: list[Member] = []
    approvals: list[LevelState] = []
    decided_by: str | None = None
    outcome: ReleaseOutcome | None = None
    reason: str = ""
    conflicts: list[str] = []
    events: list[Event] = []
    events_omitted: int = 0
    notices: list[str] = []


class GoInput(ActorInput):
    comment: str = ""


class NoGoInput(ReasonInput):
    """The release manager's no-go at window start: every change is canceled."""


class MemberReport(BaseModel):
    """Signal from a member change: where it stands (`outcome` once it has ended)."""

    change_id: str
    state: str
    risk: str | None = None
    cis: list[str] = []
    outcome: str | None = None


class JoinReleaseInput(ActorInput):
    """Update on a change: join a release, which then decides when it is implemented."""

    release_id: str
    window_start: datetime
    window_end: datetime
