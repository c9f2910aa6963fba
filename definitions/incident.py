"""Incident policy: priority matrix, SLA targets on business calendars, on-call
schedules and escalation policies (ordered steps) per assignment group."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, model_validator

from definitions.base import Definition, Duration, Model, format_hours, parse_duration
from definitions.calendar import BusinessCalendar
from definitions.oncall import OnCallSchedule
from definitions.org import Organisation


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


def _no_days(value: object) -> object:
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*d\s*", value):
        raise ValueError("SLA targets take minutes or hours ('30m', '8h'), not days: "
                         "products disagree on what a day is")
    return value


SlaDuration = Annotated[
    timedelta, BeforeValidator(parse_duration), BeforeValidator(_no_days), PlainSerializer(format_hours,
                                                                                           return_type=str)
]


class SlaTargets(Model):
    response: SlaDuration
    resolution: SlaDuration
    calendar: str


class NoticeTarget(StrEnum):
    ASSIGNEE = "assignee"
    GROUP = "group"
    ESCALATION = "escalation"


class SlaNotice(Model):
    percent: int = Field(gt=0, le=100)
    to: list[NoticeTarget] = Field(min_length=1)


class StepKind(StrEnum):
    NOTIFY_USER = "notify_user"
    NOTIFY_GROUP = "notify_group"
    NOTIFY_ON_CALL = "notify_on_call"
    WEBHOOK = "webhook"
    WAIT = "wait"
    REPEAT = "repeat"
    IF_TIME_BETWEEN = "if_time_between"


_REQUIRED = {
    StepKind.NOTIFY_USER: "user",
    StepKind.NOTIFY_GROUP: "group",
    StepKind.NOTIFY_ON_CALL: "schedule",
    StepKind.WEBHOOK: "url",
    StepKind.WAIT: "duration",
    StepKind.REPEAT: "from_step",
    StepKind.IF_TIME_BETWEEN: "calendar",
}


class EscalationStep(Model):
    """One step. Notify and webhook steps wait `delay` before the next step; a notify step
    whose target resolves to nobody is skipped without spending its delay. `repeat` jumps
    back to `from_step` (1-based) at most `max_loops` times. `if_time_between` lets the next
    step run only when the time is inside (or outside) the calendar's hours."""

    kind: StepKind
    user: str | None = None
    group: str | None = None
    schedule: str | None = None
    url: str | None = None
    delay: Duration = timedelta(0)
    duration: Duration | None = None
    from_step: int | None = Field(default=None, ge=1)
    max_loops: int = Field(default=1, ge=1, le=9)
    calendar: str | None = None
    when: Literal["inside", "outside"] = "inside"
    round_robin: bool = False

    @model_validator(mode="after")
    def _has_target(self) -> "EscalationStep":
        field = _REQUIRED[self.kind]
        if getattr(self, field) is None:
            raise ValueError(f"step kind {self.kind.value} needs {field}")
        return self


class EscalationPolicy(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    group: str
    steps: list[EscalationStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _repeat_points_back(self) -> "EscalationPolicy":
        for number, step in enumerate(self.steps, start=1):
            if step.kind == StepKind.REPEAT and step.from_step is not None and step.from_step >= number:
                raise ValueError(f"policy {self.name!r} step {number}: repeat must point to an earlier step")
        return self


class IncidentPolicy(Definition):
    kind: Literal["incident-policy"] = "incident-policy"
    organisation: str
    priority_matrix: dict[str, Priority] = Field(description="'impact/urgency' → priority, 1 high … 3 low")
    default_priority: Priority = Priority.P4
    sla: dict[Priority, SlaTargets]
    sla_notices: list[SlaNotice] = [
        SlaNotice(percent=50, to=[NoticeTarget.ASSIGNEE]),
        SlaNotice(percent=75, to=[NoticeTarget.ASSIGNEE, NoticeTarget.GROUP]),
        SlaNotice(percent=100, to=[NoticeTarget.ASSIGNEE, NoticeTarget.GROUP, NoticeTarget.ESCALATION]),
    ]
    calendars: list[BusinessCalendar]
    schedules: list[OnCallSchedule] = []
    escalation_policies: list[EscalationPolicy] = Field(min_length=1)
    default_group: str
    manager_group: str
    major_incident_group: str
    reopen_window: Duration = timedelta(days=3)
    continue_as_new_after: int = Field(default=2000, ge=50, description="history events before continue-as-new")

    @model_validator(mode="after")
    def _complete(self) -> "IncidentPolicy":
        problems = [f"sla: no targets for {p.value}" for p in Priority if p not in self.sla]
        calendars = {c.name for c in self.calendars}
        schedules = {s.name for s in self.schedules}
        problems += [f"sla.{p.value}: unknown calendar {t.calendar!r}" for p, t in self.sla.items()
                     if t.calendar not in calendars]
        for key in self.priority_matrix:
            if not re.fullmatch(r"[1-3]/[1-3]", key):
                problems.append(f"priority_matrix: key {key!r} is not 'impact/urgency' with values 1-3")
        for policy in self.escalation_policies:
            for number, step in enumerate(policy.steps, start=1):
                where = f"escalation policy {policy.name!r} step {number}"
                if step.schedule and step.schedule not in schedules:
                    problems.append(f"{where}: unknown schedule {step.schedule!r}")
                if step.calendar and step.calendar not in calendars:
                    problems.append(f"{where}: unknown calendar {step.calendar!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def priority(self, impact: int, urgency: int) -> Priority:
        return self.priority_matrix.get(f"{impact}/{urgency}", self.default_priority)

    def calendar(self, name: str) -> BusinessCalendar:
        return next(c for c in self.calendars if c.name == name)

    def schedule(self, name: str) -> OnCallSchedule | None:
        return next((s for s in self.schedules if s.name == name), None)

    def escalation_for(self, group: str) -> EscalationPolicy | None:
        return next((p for p in self.escalation_policies if p.group == group), None)

    def reference_problems(self, org: Organisation) -> list[str]:
        groups = {g.name for g in org.groups}
        users = {p.username for p in org.people}
        problems = [f"{field}: unknown group {getattr(self, field)!r}"
                    for field in ("default_group", "manager_group", "major_incident_group")
                    if getattr(self, field) not in groups]
        for policy in self.escalation_policies:
            if policy.group not in groups:
                problems.append(f"escalation policy {policy.name!r}: unknown group {policy.group!r}")
            for number, step in enumerate(policy.steps, start=1):
                if step.group and step.group not in groups:
                    problems.append(f"escalation policy {policy.name!r} step {number}: unknown group {step.group!r}")
                if step.user and step.user not in users:
                    problems.append(f"escalation policy {policy.name!r} step {number}: unknown user {step.user!r}")
        for schedule in self.schedules:
            problems += [f"schedule {schedule.name!r}: unknown user {u!r}"
                         for u in schedule.rotation.users if u not in users]
        return problems
