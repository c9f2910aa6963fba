"""Boundary models of request fulfillment: request (REQ) → items (RITM) → manual
tasks (TASK). Add fields, never reorder meaning."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from definitions.calendar import BusinessCalendar
from definitions.catalog import CatalogItem
from definitions.org import Organisation
from definitions.text import Title
from workflows.approvals import LevelState
from workflows.models import Event, ReasonInput, ResolveInput, SlaClock


class RequestState(StrEnum):
    REQUESTED = "requested"
    APPROVAL = "approval"
    FULFILLING = "fulfilling"
    FULFILLED = "fulfilled"
    REJECTED = "rejected"
    CANCELED = "canceled"
    FAILED = "failed"


FINAL = {RequestState.FULFILLED, RequestState.REJECTED, RequestState.CANCELED, RequestState.FAILED}


class TaskState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OPEN = "open"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"
    COMPENSATED = "compensated"


class TaskStatus(BaseModel):
    name: str
    kind: str
    title: Title
    state: TaskState = TaskState.PENDING
    group: str | None = None
    task_id: str | None = None
    by: str | None = None
    notes: str = ""
    fallback: bool = False
    finished_at: datetime | None = None


class ItemPlan(BaseModel):
    """One item of a request, resolved and validated at submit."""

    id: str
    item: CatalogItem
    variables: dict
    after: list[str] = []
    catalog: str = ""  # name@version the item was ordered from (audit)


class ItemInput(BaseModel):
    id: str
    request_id: str
    plan: ItemPlan
    requested_by: str
    requested_for: str
    organisation: Organisation
    calendar: BusinessCalendar


class ItemStatus(BaseModel):
    id: str
    request_id: str
    item: str
    title: Title
    state: RequestState = RequestState.REQUESTED
    variables: dict = {}
    requested_for: str = ""
    approvals: list[LevelState] = []
    tasks: list[TaskStatus] = []
    events: list[Event] = []
    events_omitted: int = 0  # between the timeline's head and tail
    sla: SlaClock | None = None
    expires_at: datetime | None = None
    reason: str = ""


class ItemEvent(BaseModel):
    item_id: str
    state: RequestState
    reason: str = ""


class RequestInput(BaseModel):
    id: str
    item: str
    title: Title
    variables: dict
    requested_by: str
    requested_for: str
    plans: list[ItemPlan]
    organisation: Organisation
    calendar: BusinessCalendar
    cancel_group: str = "service-desk"
    catalog: str = ""  # name@version (audit)


class ItemRef(BaseModel):
    id: str
    item: str
    state: RequestState = RequestState.REQUESTED
    after: list[str] = []
    reason: str = ""


class RequestStatus(BaseModel):
    id: str
    item: str
    title: Title
    state: RequestState = RequestState.REQUESTED
    requested_by: str
    requested_for: str
    variables: dict = {}
    items: list[ItemRef] = []
    events: list[Event] = []
    events_omitted: int = 0  # between the timeline's head and tail
    reason: str = ""


class ManualTaskInput(BaseModel):
    id: str
    item_id: str
    request_id: str
    title: Title
    group: str
    requested_for: str
    details: str = ""
    organisation: Organisation


class ManualTaskResult(BaseModel):
    id: str
    state: TaskState
    title: Title = ""
    group: str = ""
    item_id: str = ""
    by: str | None = None
    notes: str = ""


class TaskActionInput(ResolveInput):
    """Complete or fail a manual task, with notes."""


class CancelRequestInput(ReasonInput):
    """Cancel a request, with why."""
