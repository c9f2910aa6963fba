"""The incident workflow's update handlers and their validators (a mixin of
IncidentWorkflow). Validators refuse before history; handlers change state
synchronously, queue side effects for the main loop and return the settled status."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.calendar import Pause
    from workflows import escalation
    from workflows.base import refuse as _refuse
    from workflows.incident_base import IncidentBase
    from workflows.incident_models import (
        OPEN_STATES,
        RECENT_EVENTS,
        AnnounceMajor,
        AttachedEvent,
        AttachInput,
        EscalateInput,
        IncidentResolveInput,
        IncidentState,
        IncidentStatus,
        NoteInput,
        PriorityInput,
        ReassignInput,
        RecordResolution,
        ReleaseRouter,
    )
    from workflows.models import ActorInput, ReasonInput
    from workflows.side_effects import Notify

RESPONDER = ("member", "oncall", "notified", "manager")
ACTIVE = {IncidentState.NEW, IncidentState.IN_PROGRESS}


class IncidentUpdates(IncidentBase):
    @workflow.update
    async def acknowledge(self, req: ActorInput) -> IncidentStatus:
        self._validate_ack(req)
        now = workflow.now()
        self._status.acknowledged_by, self._status.acknowledged_at = req.actor, now
        self._status.sla["response"].met_at = now
        if self._status.state == IncidentState.NEW:
            self._status.state = IncidentState.IN_PROGRESS
        self._status.escalation.active, self._status.escalation.next_at = False, None
        self._event(req.actor, "acknowledged", "escalation stopped")
        return await self._settle()

    @acknowledge.validator
    def _validate_ack(self, req: ActorInput) -> None:
        self._check(req.actor, "acknowledge", OPEN_STATES, RESPONDER)
        if self._status.acknowledged_by:
            _refuse(f"{self._status.id} was already acknowledged by {self._status.acknowledged_by}")

    @workflow.update
    async def escalate(self, req: EscalateInput) -> IncidentStatus:
        self._validate_escalate(req)
        self._engine.jump(self._status.escalation, workflow.now(), req.to_step)
        target = f"step {req.to_step}" if req.to_step else "the next step"
        self._event(req.actor, "escalated", f"to {target}")
        return await self._settle()

    @escalate.validator
    def _validate_escalate(self, req: EscalateInput) -> None:
        self._check(req.actor, "escalate", ACTIVE, RESPONDER)
        problem = self._engine.can_escalate(self._status.escalation, req.to_step)
        if problem:
            _refuse(problem)

    @workflow.update
    async def reassign(self, req: ReassignInput) -> IncidentStatus:
        self._validate_reassign(req)
        previous, now = self._status.assigned_group, workflow.now()
        self._status.assigned_group, self._status.acknowledged_by, self._status.acknowledged_at = req.group, None, None
        if self._status.state != IncidentState.ON_HOLD:
            self._status.state = IncidentState.NEW
        policy = self._policy.escalation_for(req.group)
        self._status.escalation = escalation.restart(self._status.escalation, policy, now)
        self._event(req.actor, "reassigned", f"{previous} → {req.group}" + (f": {req.reason}" if req.reason else "")
                    + ("" if policy else " (no escalation policy for that group)"))
        return await self._settle()

    @reassign.validator
    def _validate_reassign(self, req: ReassignInput) -> None:
        self._check(req.actor, "reassign", OPEN_STATES, ("member", "manager", "notified"))
        if self._org.group(req.group) is None:
            _refuse(f"unknown group {req.group!r}")
        if req.group == self._status.assigned_group:
            _refuse(f"{self._status.id} is already assigned to {req.group}")

    @workflow.update
    async def set_priority(self, req: PriorityInput) -> IncidentStatus:
        self._validate_priority(req)
        before = self._status.priority
        self._status.impact, self._status.urgency = req.impact, req.urgency
        self._status.priority = self._policy.priority(req.impact, req.urgency)
        self._set_targets()
        self._event(req.actor, "priority", f"{before.value} → {self._status.priority.value} (impact {req.impact}, "
                                           f"urgency {req.urgency})" + (f": {req.reason}" if req.reason else ""))
        return await self._settle()

    @set_priority.validator
    def _validate_priority(self, req: PriorityInput) -> None:
        self._check(req.actor, "change the priority of", OPEN_STATES, ("member", "manager", "notified"))
        if (req.impact, req.urgency) == (self._status.impact, self._status.urgency):
            _refuse(f"{self._status.id} already has impact {req.impact}, urgency {req.urgency}")

    @workflow.update
    async def hold(self, req: ReasonInput) -> IncidentStatus:
        self._validate_hold(req)
        self._status.state = IncidentState.ON_HOLD
        self._status.pauses.append(Pause(start=workflow.now()))
        self._event(req.actor, "on hold", req.reason)
        return await self._settle()

    @hold.validator
    def _validate_hold(self, req: ReasonInput) -> None:
        self._check(req.actor, "put on hold", ACTIVE, ("member", "manager", "notified"))
        if not req.reason.strip():
            _refuse("a reason is required to put an incident on hold")

    @workflow.update
    async def resume(self, req: ActorInput) -> IncidentStatus:
        self._validate_resume(req)
        self._status.pauses[-1] = self._status.pauses[-1].model_copy(update={"end": workflow.now()})
        self._status.state = IncidentState.IN_PROGRESS if self._status.acknowledged_by else IncidentState.NEW
        self._event(req.actor, "resumed")
        return await self._settle()

    @resume.validator
    def _validate_resume(self, req: ActorInput) -> None:
        self._check(req.actor, "resume", {IncidentState.ON_HOLD}, ("member", "manager", "notified"))

    @workflow.update
    async def resolve(self, req: IncidentResolveInput) -> IncidentStatus:
        self._validate_resolve(req)
        now = workflow.now()
        if self._status.pauses and self._status.pauses[-1].end is None:
            self._status.pauses[-1] = self._status.pauses[-1].model_copy(update={"end": now})
        self._status.state, self._status.resolved_at = IncidentState.RESOLVED, now
        self._status.resolution_code, self._status.resolution_notes = req.code, req.notes
        self._status.resolutions += 1
        self._status.sla["resolution"].met_at = now
        self._status.escalation.active, self._status.escalation.next_at = False, None
        self._event(req.actor, "resolved", f"{req.code}" + (f": {req.notes}" if req.notes else ""))
        self._actions += [RecordResolution(), ReleaseRouter(),
                          Notify(f"resolved.{self._status.resolutions}", "incident_resolved", [self._status.opened_by])]
        return await self._settle()

    @resolve.validator
    def _validate_resolve(self, req: IncidentResolveInput) -> None:
        self._check(req.actor, "resolve", OPEN_STATES, ("member", "manager", "notified"))

    @workflow.update
    async def reopen(self, req: ReasonInput) -> IncidentStatus:
        self._validate_reopen(req)
        now = workflow.now()
        assert self._status.resolved_at is not None  # resolved: the validator says so
        self._status.pauses.append(Pause(start=self._status.resolved_at, end=now))
        self._status.state, self._status.resolved_at = IncidentState.IN_PROGRESS, None
        self._status.sla["resolution"].met_at = None
        self._event(req.actor, "reopened", req.reason)
        return await self._settle()

    @reopen.validator
    def _validate_reopen(self, req: ReasonInput) -> None:
        self._check(req.actor, "reopen", {IncidentState.RESOLVED}, ("opener", "member", "manager"))

    @workflow.update
    async def note(self, req: NoteInput) -> IncidentStatus:
        self._validate_note(req)
        self._event(req.actor, "note", req.text)
        return await self._settle()

    @note.validator
    def _validate_note(self, req: NoteInput) -> None:
        self._check(req.actor, "add a note to", set(IncidentState) - {IncidentState.CLOSED}, ())

    @workflow.update
    async def declare_major(self, req: ReasonInput) -> IncidentStatus:
        self._validate_major(req)
        self._status.major = True
        self._event(req.actor, "major incident", req.reason)
        self._actions.append(AnnounceMajor())
        return await self._settle()

    @declare_major.validator
    def _validate_major(self, req: ReasonInput) -> None:
        self._check(req.actor, "declare major", OPEN_STATES, ("member", "manager", "notified"))
        if self._status.major:
            _refuse(f"{self._status.id} is already a major incident")

    @workflow.signal
    def attach(self, event: AttachInput) -> None:
        """Another alert with this incident's dedup key."""
        self._status.dedup_count += 1
        self._status.last_seen = event.seen_at
        self._status.recent_events = [*self._status.recent_events[1 - RECENT_EVENTS:],
                                 AttachedEvent(seen_at=event.seen_at, title=event.title)]
        if self._status.dedup_count <= RECENT_EVENTS + 1:  # an alert storm is summarised, not a timeline
            self._event("system", "duplicate", f"event #{self._status.dedup_count} attached" +
                        (f": {event.title}" if event.title else ""))
        self._dirty = True
