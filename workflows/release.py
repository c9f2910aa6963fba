"""Release management (REL-…): planning → authorize → scheduled → go-no-go → implementing
→ closed (successful | failed), or rejected / canceled (no-go). The release starts the
changes created with it, takes its own approval chain, waits for its window, lets its
manager decide go or no-go at window start, then implements its changes one by one along
the declared DAG; a failed change cancels those not yet started and backs out, by a manual
task for its CI's group, each one already done."""

from __future__ import annotations

from typing import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cmdb import CmdbActivities
    from activities.models import ReleaseInput as CalendarRelease
    from activities.models import ReserveInput
    from workflows.approval_updates import ApprovalContext, ApprovalUpdates
    from workflows.approvals import ApprovalState, Decision, run_chain
    from workflows.base import ProcessWorkflow, SettleUpdate, open_or_attach, refuse, refuse_state
    from workflows.change import ChangeWorkflow
    from workflows.change_models import ChangeInput
    from workflows.models import Event, ReasonInput, append_event
    from workflows.release_models import (
        FINAL_STATES,
        GoInput,
        Member,
        MemberReport,
        NoGoInput,
        ReleaseInput,
        ReleaseOutcome,
        ReleaseState,
        ReleaseStatus,
        order,
    )
    from workflows.request_models import ManualTaskInput
    from workflows.search_attributes import typed
    from workflows.task import ManualTaskWorkflow

ENDED = {"closed", "rejected", "canceled"}  # a member change's final states
READY = "scheduled"  # a member waiting for the release


@workflow.defn
class ReleaseWorkflow(ApprovalUpdates, SettleUpdate, ProcessWorkflow):
    @workflow.init
    def __init__(self, release: ReleaseInput) -> None:
        self._init_base()
        self._release = release
        self._status = ReleaseStatus(
            id=release.id, title=release.title, requested_by=release.requested_by, manager=release.manager,
            window_start=release.window_start,
            window_end=release.window_end,
            members=[Member(id=c, after=release.after.get(c, [])) for c in order(release.after, release.changes)])
        self._approvals = ApprovalState.from_chain(release.approval)
        self._decision: GoInput | NoGoInput | None = None
        self._withdrawn: ReasonInput | None = None

    # --- main loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, release: ReleaseInput) -> ReleaseStatus:
        self.publish_status()
        self._event(release.requested_by, "planned", f"{len(release.changes)} changes, window "
                    f"{self.spell_time(release.window_start)} – {self.spell_time(release.window_end)}")
        if not await self._book():
            return await self._end(ReleaseState.REJECTED, None)
        for change in release.created:
            await self._start_change(change)
        await self.notify("planned", "release_planned", list(dict.fromkeys([release.requested_by, release.manager])))
        if not await self._authorize():
            if self._withdrawn is not None:
                return await self._withdraw()
            return await self._end(ReleaseState.REJECTED, None)
        await self._enter(ReleaseState.SCHEDULED)
        if release.window_start > workflow.now():
            await self.wait(lambda: False, release.window_start - workflow.now(),
                            f"the window to open at {self.spell_time(release.window_start)}")
        if self._withdrawn is not None:
            return await self._withdraw()
        await self._enter(ReleaseState.GO_NO_GO)
        await self.notify("go-no-go", "release_go_no_go", [release.manager])
        if release.window_end > workflow.now():
            await self.wait(lambda: self._decision is not None, release.window_end - workflow.now(),
                            "the release manager's go / no-go")
        if not isinstance(self._decision, GoInput):
            self._status.reason = self._decision.reason if isinstance(self._decision, NoGoInput) else \
                "no decision before the window closed"
            await self._cancel_from(0, f"{release.id}: no-go ({self._status.reason})")
            return await self._end(ReleaseState.CANCELED, ReleaseOutcome.NO_GO)
        await self._enter(ReleaseState.IMPLEMENTING)
        failed_at = await self._implement()
        if failed_at is None:
            return await self._end(ReleaseState.CLOSED, ReleaseOutcome.SUCCESSFUL)
        failed = self._status.members[failed_at]
        self._status.reason = f"{failed.id} {failed.outcome}"
        await self._cancel_from(failed_at + 1, f"{release.id} failed at {failed.id}")
        await self._enter(ReleaseState.BACKING_OUT)
        await self._back_out(self._status.members[:failed_at])
        return await self._end(ReleaseState.CLOSED, ReleaseOutcome.FAILED)

    async def _book(self) -> bool:
        """The window is the release's own: book its changes' CIs for it, refused (and the
        release rejected) when a change outside it is booked there already."""
        release = self._release
        conflicts = await self.cmdb(
            CmdbActivities.reserve_calendar,
            ReserveInput(change_id=release.id, cis=release.cis, start=release.window_start, end=release.window_end,
                         exclusive=True, ignore=release.changes),
            summary="book the release's window in the change calendar")
        if conflicts:
            self._status.conflicts = sorted({f"{c.change_id} on {c.ci}" for c in conflicts})
            self._status.reason = f"conflicts with {', '.join(self._status.conflicts)}"
            return False
        return True

    async def _start_change(self, change: ChangeInput) -> None:
        attributes: dict[str, object] = {
            "ItsmProcess": "change", "ItsmState": "new", "ItsmType": change.change_type.value,
            "ItsmRequester": change.requested_by, "ItsmCI": change.cis, "ItsmParent": self._release.id}
        await open_or_attach(ChangeWorkflow.run, change, id=change.id, memo={"title": change.title},
                             search_attributes=typed(attributes), summary=change.title)
        self._event("system", "created", f"{change.id}: {change.title}")

    async def _withdraw(self) -> ReleaseStatus:
        assert self._withdrawn is not None
        self._status.reason = self._withdrawn.reason
        await self._cancel_from(0, f"{self._release.id} canceled: {self._withdrawn.reason}")
        return await self._end(ReleaseState.CANCELED, None)

    async def _authorize(self) -> bool:
        await self._enter(ReleaseState.AUTHORIZE)
        outcome = await run_chain(self._approvals, self._release.approval, self._release.organisation,
                                  self._release.requested_by, self)
        if self._withdrawn is not None:
            return False
        if outcome != Decision.APPROVED:
            self._status.reason = self._approvals.reason
            await self._cancel_from(0, f"{self._release.id} rejected")
            return False
        return True

    async def _implement(self) -> int | None:
        """Each change in DAG order, once the ones before it succeeded: the index of the first
        that did not, or None."""
        for index, member in enumerate(self._status.members):
            await self._signal(member.id, ChangeWorkflow.release_go)
            self._event("system", "go", f"{member.id} to implement")
            await self.wait(self._ended(member), None, f"{member.id} to be implemented")
            self._event("system", member.outcome or "", member.id)
            if member.outcome != "successful":
                return index
        return None

    @staticmethod
    def _ended(member: Member) -> Callable[[], bool]:
        return lambda: member.outcome is not None

    async def _cancel_from(self, start: int, reason: str) -> None:
        """Cancel every member from `start` on that has not ended, and wait until each has."""
        waiting = [m for m in self._status.members[start:] if m.outcome is None]
        for member in waiting:
            await self._signal(member.id, ChangeWorkflow.release_cancel, reason)
        if waiting:
            await self.wait(lambda: all(m.outcome is not None for m in waiting), None,
                            f"{', '.join(m.id for m in waiting)} to cancel")

    async def _back_out(self, done: list[Member]) -> None:
        """A back-out task, for its CI's owner group, for each change already done."""
        org = self._release.organisation
        for member in done:
            cis = [ci for name in member.cis if (ci := org.ci(name))]
            group = cis[0].owner_group if cis else self._release.approval.levels[0].group
            task_id = self._new_id("TASK")
            await open_or_attach(
                ManualTaskWorkflow.run,
                ManualTaskInput(id=task_id, item_id=member.id, request_id=self._release.id,
                                title=f"Back out {member.id} ({', '.join(member.cis)})", group=group,
                                requested_for=self._release.manager, organisation=org,
                                details=f"release {self._release.id} failed: {self._status.reason}"),
                id=task_id, memo={"title": f"Back out {member.id}"},
                search_attributes=typed({"ItsmProcess": "task", "ItsmState": "open", "ItsmGroup": group,
                                         "ItsmParent": self._release.id, "ItsmRequester": self._release.manager}),
                summary=f"back out {member.id}")
            member.back_out = task_id
            self._event("system", "back-out", f"{task_id} for {group}: back out {member.id}")

    async def _end(self, state: ReleaseState, outcome: ReleaseOutcome | None) -> ReleaseStatus:
        self._status.outcome = outcome
        await self.cmdb(CmdbActivities.release_calendar, CalendarRelease(change_id=self._release.id, state=state.value),
                        summary="free the release's window in the change calendar")
        await self._enter(state)
        await self.notify(state.value, "release_ended", [self._release.manager])
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _signal(self, change_id: str, signal, *args) -> None:
        try:
            await workflow.get_external_workflow_handle(change_id).signal(signal, *args)
        except Exception as err:  # an ended or unknown change: say so, do not wait for it
            member = self._member(change_id)
            if member is not None and member.outcome is None:
                member.outcome = "gone"
            self._notices.append(f"{change_id} could not be told ({err})")

    # --- state helpers -----------------------------------------------------------------------

    async def _enter(self, state: ReleaseState) -> None:
        self._status.state = state
        self.set_search_state(state.value)
        self._event("system", "state", state.value)
        if state in FINAL_STATES:
            self.publish_outcome(self._status.outcome.value if self._status.outcome else state.value)

    def _event(self, actor: str, action: str, details: str = "") -> None:
        append_event(self._status, Event(time=workflow.now(), actor=actor, action=action, details=details))

    def _member(self, change_id: str) -> Member | None:
        return next((m for m in self._status.members if m.id == change_id), None)

    def _new_id(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return f"{prefix}-{workflow.now():%Y%m%d}-{''.join(workflow.random().choice(alphabet) for _ in range(4))}"

    def _organisation(self):
        return self._release.organisation

    def _template_folder(self) -> str:
        return "release"

    def _notify_context(self) -> dict:
        return {"release": self._status.model_dump(mode="json", exclude={"events"})}

    def pending_actions(self) -> list[dict]:
        level = self._approvals.current_level()
        if self._status.state == ReleaseState.AUTHORIZE and level is not None:
            return [{"action": name, "groups": [level.group], "users": []} for name in ("approve", "reject")]
        if self._status.state == ReleaseState.GO_NO_GO and self._decision is None:
            return [{"action": name, "groups": [], "users": [self._release.manager]} for name in ("go", "no-go")]
        return []

    def _approval_context(self) -> ApprovalContext:
        state = self._status.state
        not_awaiting = None if state == ReleaseState.AUTHORIZE else \
            f"{self._release.id} is {state.value}, not awaiting approval"
        return ApprovalContext(self._release.organisation, self._release.requested_by, not_awaiting=not_awaiting)

    # --- queries, updates, signals -----------------------------------------------------------

    @workflow.query
    def status(self) -> ReleaseStatus:
        status = self._status.model_copy(deep=True)
        status.approvals = [level.model_copy(deep=True) for level in self._approvals.levels]
        status.notices = [*self._status.notices, *self._notices]
        return status

    @workflow.update
    async def go(self, decision: GoInput) -> ReleaseStatus:
        self._validate_go(decision)
        self._decision, self._status.decided_by = decision, decision.actor
        self._event(decision.actor, "go", decision.comment)
        await self.until_settled()
        return self.status()

    @go.validator
    def _validate_go(self, decision: GoInput) -> None:
        self._check_decider(decision.actor)
        waiting = [f"{m.id} is {m.state}" for m in self._status.members if m.state != READY]
        if waiting:
            refuse_state(f"not every change is ready for {self._release.id}: {'; '.join(waiting)} (no-go, or wait)")

    @workflow.update
    async def no_go(self, decision: NoGoInput) -> ReleaseStatus:
        self._validate_no_go(decision)
        self._decision, self._status.decided_by = decision, decision.actor
        self._event(decision.actor, "no-go", decision.reason)
        await self.until_settled()
        return self.status()

    @no_go.validator
    def _validate_no_go(self, decision: NoGoInput) -> None:
        self._check_decider(decision.actor)
        if not decision.reason.strip():
            refuse("a no-go needs a reason")

    def _check_decider(self, actor: str) -> None:
        if self._release.organisation.person(actor) is None:
            refuse(f"unknown user {actor!r}")
        if self._status.state != ReleaseState.GO_NO_GO or self._decision is not None:
            refuse_state(f"{self._release.id} is {self._status.state.value}, not waiting for a go / no-go")
        if actor != self._release.manager:
            refuse(f"only the release manager ({self._release.manager}) decides go / no-go for {self._release.id}")

    def interrupted(self) -> bool:
        return self._withdrawn is not None

    @workflow.update
    async def cancel(self, cancel: ReasonInput) -> ReleaseStatus:
        """Call the release off before its window opens: its changes are canceled."""
        self._validate_cancel(cancel)
        self._withdrawn = cancel
        self._event(cancel.actor, "canceled", cancel.reason)
        await self.until_settled()
        return self.status()

    @cancel.validator
    def _validate_cancel(self, cancel: ReasonInput) -> None:
        if self._release.organisation.person(cancel.actor) is None:
            refuse(f"unknown user {cancel.actor!r}")
        if self._status.state not in (ReleaseState.PLANNING, ReleaseState.AUTHORIZE, ReleaseState.SCHEDULED) \
                or self._withdrawn is not None:
            refuse_state(f"{self._release.id} is {self._status.state.value} and can no longer be canceled")
        if cancel.actor not in (self._release.requested_by, self._release.manager):
            refuse(f"only {self._release.requested_by} or {self._release.manager} may cancel {self._release.id}")

    @workflow.signal
    def member_report(self, report: MemberReport) -> None:
        """From a member change: its state, and its outcome once it has ended."""
        member = self._member(report.change_id)
        if member is None:
            return
        member.state, member.risk, member.cis = report.state, report.risk or member.risk, report.cis or member.cis
        if report.state in ENDED:
            member.outcome = report.outcome or report.state
