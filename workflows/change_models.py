"""Boundary models of the change process: workflow input, update inputs, status/result.
Add fields, never reorder meaning: running histories carry these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from definitions.change import ChangePolicy, ChangeType, Risk
from definitions.org import Organisation
from definitions.text import Text, Title
from workflows.approvals import ApprovalState, LevelState
from workflows.models import ActorInput, ReasonInput


class ChangeState(StrEnum):
    NEW = "new"
    ASSESS = "assess"
    AUTHORIZE = "authorize"
    SCHEDULED = "scheduled"
    IMPLEMENT = "implement"
    REVIEW = "review"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELED = "canceled"


FINAL_STATES = {ChangeState.CLOSED, ChangeState.REJECTED, ChangeState.CANCELED}
CANCELABLE_STATES = {ChangeState.NEW, ChangeState.ASSESS, ChangeState.AUTHORIZE, ChangeState.SCHEDULED}
JOINABLE_STATES = CANCELABLE_STATES  # a change may join a release until it is implemented


class Outcome(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    BACKED_OUT = "backed-out"


class ChangeInput(BaseModel):
    """Everything a run needs, including the policy and directory snapshot at submit."""

    id: str
    title: Title
    description: Text = ""
    change_type: ChangeType
    template: str | None = None
    cis: list[str]
    planned_start: datetime
    planned_end: datetime
    outage: bool = False
    requested_by: str
    policy: ChangePolicy
    organisation: Organisation
    submit_notes: list[str] = []
    problem: str | None = None
    release: str | None = None  # created with this release, whose approval and window it follows


class ApproveInput(ActorInput):
    comment: str = ""


class RejectInput(ActorInput):
    reason: str = Field(min_length=1)


class CompleteInput(ActorInput):
    outcome: Outcome
    notes: str = ""


class CancelInput(ReasonInput):
    """Cancel a change, with why."""


class ChangeStatus(BaseModel):
    """What `itsm change show --json` prints; also the workflow's result."""

    id: str
    title: Title
    type: ChangeType
    template: str | None = None
    state: ChangeState
    risk: Risk | None = None
    risk_rule: str | None = None
    requested_by: str
    cis: list[str]
    planned_start: datetime
    planned_end: datetime
    original_start: datetime | None = None
    outage: bool = False
    policy: str
    close_code: Outcome | None = None
    implemented_by: str | None = None
    implementation_notes: str = ""
    reason: str = ""
    conflicts: list[str] = []
    notices: list[str] = []
    approvals: list[LevelState] = []
    problem: str | None = None
    release: str | None = None  # the release it belongs to: it decides when the change is implemented

    @classmethod
    def initial(cls, change: ChangeInput) -> "ChangeStatus":
        return cls(
            id=change.id, title=change.title, type=change.change_type, template=change.template,
            state=ChangeState.NEW, requested_by=change.requested_by, cis=list(change.cis),
            planned_start=change.planned_start, planned_end=change.planned_end, outage=change.outage,
            policy=f"{change.policy.name}@{change.policy.version}", notices=list(change.submit_notes),
            problem=change.problem, release=change.release,
        )

    def with_approvals(self, approvals: ApprovalState) -> "ChangeStatus":
        return self.model_copy(update={"approvals": [lvl.model_copy(deep=True) for lvl in approvals.levels]})
