"""The incident workflow's update handlers and their validators (a mixin of
IncidentWorkflow). Validators refuse before history; handlers change state
synchronously, queue side effects for the main loop and return the settled status."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.calendar import Pause
    from workflows import escalation
    from workflows.base import refuse as _refuse
    from workflows.incident_models import (
        OPEN_STATES,
        RECENT_EVENTS,
        ActorInput,
        AttachedEvent,
        AttachInput,
        EscalateInput,
        IncidentState,
        IncidentStatus,
        NoteInput,
        PriorityInput,
        ReasonInput,
        ReassignInput,
        ResolveInput,
    )

S = IncidentState
RESPONDER = ("member", "oncall", "notified", "manager")
ACTIVE = {S.NEW, S.IN_PROGRESS}


class IncidentUpdates:
    @workflow.update
    async def acknowledge(self, req: ActorInput) -> IncidentStatus:
        self._validate_ack(req)
        now = workflow.now()
        self._s.acknowledged_by, self._s.acknowledged_at = req.actor, now
        self._s.sla["response"].met_at = now
        if self._s.state == S.NEW:
            self._s.state = S.IN_PROGRESS
        self._s.escalation.active, self._s.escalation.next_at = False, None
        self._event(req.actor, "acknowledged", "escalation stopped")
        return await self._settle()

    @acknowledge.validator
    def _validate_ack(self, req: ActorInput) -> None:
        self._check(req.actor, "acknowledge", OPEN_STATES, RESPONDER)
        if self._s.acknowledged_by:
            _refuse(f"{self._s.id} was already acknowledged by {self._s.acknowledged_by}")

    @workflow.update
    async def escalate(self, req: EscalateInput) -> IncidentStatus:
        self._validate_escalate(req)
        self._engine.jump(self._s.escalation, workflow.now(), req.to_step)
        target = f"step {req.to_step}" if req.to_step else "the next step"
        self._event(req.actor, "escalated", f"to {target}")
        return await self._settle()

    @escalate.validator
    def _validate_escalate(self, req: EscalateInput) -> None:
        self._check(req.actor, "escalate", ACTIVE, RESPONDER)
        problem = self._engine.can_escalate(self._s.escalation, req.to_step)
        if problem:
            _refuse(problem)

    @workflow.update
    async def reassign(self, req: ReassignInput) -> IncidentStatus:
        self._validate_reassign(req)
        previous, now = self._s.assigned_group, workflow.now()
        self._s.assigned_group, self._s.acknowledged_by, self._s.acknowledged_at = req.group, None, None
        if self._s.state != S.ON_HOLD:
            self._s.state = S.NEW
        policy = self._policy.escalation_for(req.group)
        self._s.escalation = escalation.restart(self._s.escalation, policy, now)
        self._event(req.actor, "reassigned", f"{previous} → {req.group}" + (f": {req.reason}" if req.reason else "")
                    + ("" if policy else " (no escalation policy for that group)"))
        return await self._settle()

    @reassign.validator
    def _validate_reassign(self, req: ReassignInput) -> None:
        self._check(req.actor, "reassign", OPEN_STATES, ("member", "manager", "notified"))
        if self._org.group(req.group) is None:
            _refuse(f"unknown group {req.group!r}")
        if req.group == self._s.assigned_group:
            _refuse(f"{self._s.id} is already assigned to {req.group}")

    @workflow.update
    async def set_priority(self, req: PriorityInput) -> IncidentStatus:
        self._validate_priority(req)
        before = self._s.priority
        self._s.impact, self._s.urgency = req.impact, req.urgency
        self._s.priority = self._policy.priority(req.impact, req.urgency)
        self._set_targets()
        self._event(req.actor, "priority", f"{before.value} → {self._s.priority.value} (impact {req.impact}, "
                                           f"urgency {req.urgency})" + (f": {req.reason}" if req.reason else ""))
        return await self._settle()

    @set_priority.validator
    def _validate_priority(self, req: PriorityInput) -> None:
        self._check(req.actor, "change the priority of", OPEN_STATES, ("member", "manager", "notified"))
        if (req.impact, req.urgency) == (self._s.impact, self._s.urgency):
            _refuse(f"{self._s.id} already has impact {req.impact}, urgency {req.urgency}")

    @workflow.update
    async def hold(self, req: ReasonInput) -> IncidentStatus:
        self._validate_hold(req)
        self._s.state = S.ON_HOLD
        self._s.pauses.append(Pause(start=workflow.now()))
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
        self._s.pauses[-1] = self._s.pauses[-1].model_copy(update={"end": workflow.now()})
        self._s.state = S.IN_PROGRESS if self._s.acknowledged_by else S.NEW
        self._event(req.actor, "resumed")
        return await self._settle()

    @resume.validator
    def _validate_resume(self, req: ActorInput) -> None:
        self._check(req.actor, "resume", {S.ON_HOLD}, ("member", "manager", "notified"))

    @workflow.update
    async def resolve(self, req: ResolveInput) -> IncidentStatus:
        self._validate_resolve(req)
        now = workflow.now()
        if self._s.pauses and self._s.pauses[-1].end is None:
            self._s.pauses[-1] = self._s.pauses[-1].model_copy(update={"end": now})
        self._s.state, self._s.resolved_at = S.RESOLVED, now
        self._s.resolution_code, self._s.resolution_notes = req.code, req.notes
        self._s.resolutions += 1
        self._s.sla["resolution"].met_at = now
        self._s.escalation.active, self._s.escalation.next_at = False, None
        self._event(req.actor, "resolved", f"{req.code}" + (f": {req.notes}" if req.notes else ""))
        self._actions += [("record",), ("release",),
                          ("notify", f"resolved.{self._s.resolutions}", "incident_resolved", [self._s.opened_by], {})]
        return await self._settle()

    @resolve.validator
    def _validate_resolve(self, req: ResolveInput) -> None:
        self._check(req.actor, "resolve", OPEN_STATES, ("member", "manager", "notified"))

    @workflow.update
    async def reopen(self, req: ReasonInput) -> IncidentStatus:
        self._validate_reopen(req)
        now = workflow.now()
        self._s.pauses.append(Pause(start=self._s.resolved_at, end=now))
        self._s.state, self._s.resolved_at, self._s.sla["resolution"].met_at = S.IN_PROGRESS, None, None
        self._event(req.actor, "reopened", req.reason)
        return await self._settle()

    @reopen.validator
    def _validate_reopen(self, req: ReasonInput) -> None:
        self._check(req.actor, "reopen", {S.RESOLVED}, ("opener", "member", "manager"))

    @workflow.update
    async def note(self, req: NoteInput) -> IncidentStatus:
        self._validate_note(req)
        self._event(req.actor, "note", req.text)
        return await self._settle()

    @note.validator
    def _validate_note(self, req: NoteInput) -> None:
        self._check(req.actor, "add a note to", set(S) - {S.CLOSED}, ())

    @workflow.update
    async def declare_major(self, req: ReasonInput) -> IncidentStatus:
        self._validate_major(req)
        self._s.major = True
        self._event(req.actor, "major incident", req.reason)
        self._actions.append(("impacted",))
        return await self._settle()

    @declare_major.validator
    def _validate_major(self, req: ReasonInput) -> None:
        self._check(req.actor, "declare major", OPEN_STATES, ("member", "manager", "notified"))
        if self._s.major:
            _refuse(f"{self._s.id} is already a major incident")

    @workflow.signal
    def attach(self, event: AttachInput) -> None:
        """Another alert with this incident's dedup key."""
        self._s.dedup_count += 1
        self._s.last_seen = event.seen_at
        self._s.recent_events = [*self._s.recent_events[1 - RECENT_EVENTS:],
                                 AttachedEvent(seen_at=event.seen_at, title=event.title)]
        if self._s.dedup_count <= RECENT_EVENTS + 1:  # an alert storm is summarised, not a timeline
            self._event("system", "duplicate", f"event #{self._s.dedup_count} attached" +
                        (f": {event.title}" if event.title else ""))
        self._dirty = True
