"""The problem workflow's updates, validators and signals (a mixin of ProblemWorkflow).
Validators refuse before history; handlers change state synchronously, queue side
effects for the main loop and return the settled status."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.org import Organisation
    from definitions.problem import ProblemPolicy
    from workflows.base import ProcessWorkflow, refuse, refuse_state
    from workflows.models import ActorInput, ReasonInput, ResolveInput
    from workflows.problem_models import (
        CHANGE_ID,
        INCIDENT_ID,
        OPEN_STATES,
        SYSTEM,
        WORKED_STATES,
        ChangeClosed,
        ChangeLink,
        ChangeLinkInput,
        EndProblem,
        IncidentOccurred,
        KnownErrorInput,
        LinkInput,
        ProblemState,
        ProblemStatus,
        RecordKnownError,
        RootCauseInput,
    )
    from workflows.side_effects import Notify, SideEffect


class ProblemUpdates(ProcessWorkflow):
    """Needs what ProblemWorkflow declares here (its state, policy, queued effects and
    the helpers below)."""

    _status: ProblemStatus
    _policy: ProblemPolicy
    _org: Organisation
    _actions: list[SideEffect]
    _end_once: bool  # decided at the start (`problem-end-once`)

    def _event(self, actor: str, action: str, details: str = "") -> None:
        raise NotImplementedError

    def _link(self, actor: str, incident_id: str, tell: bool = True) -> None:
        raise NotImplementedError

    def _team(self) -> list[str]:
        raise NotImplementedError

    async def _settle(self) -> ProblemStatus:
        raise NotImplementedError

    @workflow.update
    async def investigate(self, req: ActorInput) -> ProblemStatus:
        self._validate_investigate(req)
        self._status.state = ProblemState.INVESTIGATING
        self._event(req.actor, "investigating")
        return await self._settle()

    @investigate.validator
    def _validate_investigate(self, req: ActorInput) -> None:
        self._check(req.actor, "investigate", {ProblemState.NEW})

    @workflow.update
    async def link(self, req: LinkInput) -> ProblemStatus:
        self._validate_link(req)
        self._link(req.actor, req.incident_id)
        return await self._settle()

    @link.validator
    def _validate_link(self, req: LinkInput) -> None:
        self._check(req.actor, "link incidents to", OPEN_STATES)
        if not INCIDENT_ID.match(req.incident_id):
            refuse(f"{req.incident_id!r} is not an incident id (INC-YYYYMMDD-XXXX)")
        if req.incident_id in self._status.incidents:
            refuse(f"{req.incident_id} is already linked to {self._status.id}")

    @workflow.update
    async def root_cause(self, req: RootCauseInput) -> ProblemStatus:
        self._validate_root_cause(req)
        if self._status.state == ProblemState.NEW:
            self._status.state = ProblemState.INVESTIGATING
        self._status.root_cause = req.text.strip()
        self._event(req.actor, "root cause", self._status.root_cause)
        return await self._settle()

    @root_cause.validator
    def _validate_root_cause(self, req: RootCauseInput) -> None:
        self._check(req.actor, "record the root cause of", OPEN_STATES)
        if not req.text.strip():
            refuse("the root cause must not be empty")

    @workflow.update
    async def known_error(self, req: KnownErrorInput) -> ProblemStatus:
        self._validate_known_error(req)
        self._status.state, self._status.workaround = ProblemState.KNOWN_ERROR, req.workaround.strip()
        self._status.known_error_revision += 1
        self._event(req.actor, "known error", self._status.workaround)
        audience = [*self._team(), *self._policy.known_error_groups]
        self._actions += [RecordKnownError(), Notify(f"known_error.{self._status.known_error_revision}", "known_error",
                                                     list(dict.fromkeys(audience)))]
        return await self._settle()

    @known_error.validator
    def _validate_known_error(self, req: KnownErrorInput) -> None:
        self._check(req.actor, "record a known error for", WORKED_STATES, hint=" (investigate it first)")
        if not req.workaround.strip():
            refuse("a known error needs a workaround")

    @workflow.update
    async def link_change(self, req: ChangeLinkInput) -> ProblemStatus:
        self._validate_link_change(req)
        self._status.changes.append(ChangeLink(id=req.change_id, linked_by=req.actor))
        self._event(req.actor, "change raised", req.change_id)
        return await self._settle()

    @link_change.validator
    def _validate_link_change(self, req: ChangeLinkInput) -> None:
        self._check(req.actor, "raise a change for", WORKED_STATES, hint=" (investigate it first)")
        if not CHANGE_ID.match(req.change_id):
            refuse(f"{req.change_id!r} is not a change id (CHG-YYYYMMDD-XXXX)")
        if any(c.id == req.change_id for c in self._status.changes):
            refuse(f"{req.change_id} is already linked to {self._status.id}")

    @workflow.update
    async def change_not_started(self, req: ChangeLinkInput) -> ProblemStatus:
        """The change linked by `link_change` did not start (its start was refused): the
        link records it as canceled, as a change that closed so would report itself."""
        self._validate_change_not_started(req)
        link = next(c for c in self._status.changes if c.id == req.change_id)
        link.outcome = "canceled"
        self._event(req.actor, "change not started", req.change_id)
        return await self._settle()

    @change_not_started.validator
    def _validate_change_not_started(self, req: ChangeLinkInput) -> None:
        link = next((c for c in self._status.changes if c.id == req.change_id), None)
        if link is None or link.outcome is not None:
            refuse(f"{req.change_id} is not a change waiting to start for {self._status.id}")
        if req.actor != link.linked_by:
            refuse(f"only {link.linked_by}, who raised {req.change_id}, may report that it did not start")

    @workflow.update
    async def resolve(self, req: ResolveInput) -> ProblemStatus:
        self._validate_resolve(req)
        self._resolve(req.actor, req.notes)
        return await self._settle()

    @resolve.validator
    def _validate_resolve(self, req: ResolveInput) -> None:
        self._check(req.actor, "resolve", WORKED_STATES)

    @workflow.update
    async def close(self, req: ReasonInput) -> ProblemStatus:
        self._validate_close(req)
        self._end(req.actor, ProblemState.CLOSED, "closed", req.reason)
        return await self._settle()

    @close.validator
    def _validate_close(self, req: ReasonInput) -> None:
        self._check(req.actor, "close", {ProblemState.RESOLVED}, managers_only=True)

    @workflow.update
    async def cancel(self, req: ReasonInput) -> ProblemStatus:
        self._validate_cancel(req)
        self._end(req.actor, ProblemState.CANCELED, "canceled", req.reason)
        self._actions.append(Notify("canceled", "problem_canceled", self._team()))
        return await self._settle()

    @cancel.validator
    def _validate_cancel(self, req: ReasonInput) -> None:
        self._check(req.actor, "cancel", OPEN_STATES, managers_only=True)
        if not req.reason.strip():
            refuse("a reason is required to cancel a problem")

    @workflow.signal
    def incident_occurred(self, event: IncidentOccurred) -> None:
        if self._status.state in OPEN_STATES and event.incident_id not in self._status.incidents:
            self._link(SYSTEM, event.incident_id, tell=False)
            self._dirty = True

    @workflow.signal
    def change_closed(self, event: ChangeClosed) -> None:
        """A successful change resolves the problem; any other outcome is recorded and the
        problem stays where it is."""
        link = next((c for c in self._status.changes if c.id == event.change_id), None)
        if link is None:
            link = ChangeLink(id=event.change_id, linked_by=SYSTEM)
            self._status.changes.append(link)
        link.outcome = event.outcome
        self._event(SYSTEM, "change closed", f"{event.change_id}: {event.outcome}")
        if event.outcome == "successful" and self._status.state in OPEN_STATES:
            self._resolve(SYSTEM, f"{event.change_id} successful")
        self._dirty = True

    # --- shared by the handlers --------------------------------------------------------------

    def _resolve(self, actor: str, notes: str) -> None:
        self._status.state, self._status.resolved_at = ProblemState.RESOLVED, workflow.now()
        self._status.resolution_notes = notes
        self._event(actor, "resolved", notes)
        self._actions += [EndProblem(), Notify("resolved", "problem_resolved", self._team())]

    def _end(self, actor: str, state: ProblemState, action: str, reason: str) -> None:
        ended = self._status.state == ProblemState.RESOLVED and self._end_once
        self._status.state, self._status.closed_at, self._status.reason = state, workflow.now(), reason
        self._event(actor, action, reason)
        if not ended:
            self._actions.append(EndProblem())

    def _check(self, actor: str, action: str, states: set[ProblemState], managers_only: bool = False,
               hint: str = "") -> None:
        if self._org.person(actor) is None:
            refuse(f"unknown user {actor!r}")
        if self._status.state not in states:
            refuse_state(f"{self._status.id} is {self._status.state.value}; cannot {action} it{hint}")
        groups = [self._policy.manager_group] if managers_only else self._team()
        if not any(actor in self._org.members(g) for g in groups):
            refuse(f"{actor} may not {action} {self._status.id} (not in {' or '.join(groups)})")
