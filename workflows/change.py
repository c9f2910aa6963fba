"""The change process: new → assess → authorize → scheduled → implement → review → closed,
or rejected / canceled. Approvals, completion and cancel are validated updates."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cmdb import CmdbActivities
    from activities.models import Conflict, ConflictQuery, RecordChangeInput, ReleaseInput, ReserveInput
    from definitions.change import ChangeType, ConflictAction
    from definitions.windows import next_slot
    from workflows.approval_updates import ApprovalContext, ApprovalUpdates
    from workflows.approvals import ApprovalState, Decision, run_chain
    from workflows.base import SEARCH_ATTRIBUTES, ProcessWorkflow, SettleUpdate, refuse_state
    from workflows.base import refuse as _refuse
    from workflows.change_models import (
        CANCELABLE_STATES,
        FINAL_STATES,
        JOINABLE_STATES,
        CancelInput,
        ChangeInput,
        ChangeState,
        ChangeStatus,
        CompleteInput,
        Outcome,
    )
    from workflows.patches import patched
    from workflows.problem import tell_problem
    from workflows.release_models import JoinReleaseInput, MemberReport


def _describe(conflicts: list[Conflict]) -> list[str]:
    return sorted({f"{c.change_id} on {c.ci}" for c in conflicts})


@workflow.defn
class ChangeWorkflow(ApprovalUpdates, SettleUpdate, ProcessWorkflow):
    @workflow.init
    def __init__(self, change: ChangeInput) -> None:
        self._init_base()
        self._change = change
        self._status = ChangeStatus.initial(change)
        self._approvals = ApprovalState.from_chain(change.policy.chain_for(change.change_type, self._risk()[0]))
        self._completion: CompleteInput | None = None
        self._cancel: CancelInput | None = None
        self._release_go = False
        # Created with a release: the release's approval chain stands for its own.
        self._authorized_by_release = bool(change.release) and patched("change-release")

    def _items(self):
        """The change's CIs as the directory snapshot describes them."""
        return [ci for name in self._change.cis if (ci := self._change.organisation.ci(name))]

    def _risk(self):
        return self._change.policy.assess_risk(self._items(), self._change.outage)

    # --- main loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, change: ChangeInput) -> ChangeStatus:
        self.publish_status()
        phases = {
            ChangeType.STANDARD: [self._schedule, self._implement, self._review],
            ChangeType.NORMAL: [self._assess, self._authorize, self._schedule, self._implement, self._review],
            ChangeType.EMERGENCY: [self._assess, self._authorize, self._schedule, self._implement, self._review],
        }[change.change_type]
        self.set_search_state(ChangeState.NEW)
        await self.notify("submitted", "change_submitted", [change.requested_by])
        for phase in phases:
            if self._cancel is not None:
                await self._finish_canceled()
                break
            if not await phase():
                break
        if change.problem and patched("problem-change"):
            outcome = self._status.close_code or self._status.state
            if notice := await tell_problem(change.problem, change.id, outcome.value):
                self._notices.append(notice)
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _enter(self, state: ChangeState) -> None:
        self._status.state = state
        self.set_search_state(state)
        if state in FINAL_STATES:
            self.publish_outcome((self._status.close_code or state).value)
        if self._status.release:
            await self._report()

    async def _assess(self) -> bool:
        await self._enter(ChangeState.ASSESS)
        risk, rule = self._risk()
        self._status.risk, self._status.risk_rule = risk, rule
        workflow.upsert_search_attributes([SEARCH_ATTRIBUTES["ItsmRisk"].value_set(risk.value)])
        if self._change.change_type == ChangeType.EMERGENCY:
            return True
        conflicts = await self.cmdb(
            CmdbActivities.find_conflicts,
            ConflictQuery(change_id=self._change.id, cis=self._change.cis, start=self._change.planned_start,
                          end=self._change.planned_end, ignore=self._own_release()),
            summary="check the change calendar for conflicts"
        )
        self._status.conflicts = _describe(conflicts)
        releases = [c for c in conflicts if c.change_id.startswith("REL-")]
        if releases:  # a release's window is its own, whatever the policy says of other conflicts
            return await self._finish_rejected(f"conflicts with release {', '.join(_describe(releases))}")
        if conflicts and self._change.policy.conflicts == ConflictAction.BLOCK:
            return await self._finish_rejected(f"conflicts with {', '.join(self._status.conflicts)}")
        if conflicts:
            self._notices.append(f"conflicts (warning only): {', '.join(self._status.conflicts)}")
        return True

    async def _authorize(self) -> bool:
        if self._authorized_by_release:
            self._notices.append(f"authorized with release {self._change.release} (its approval chain)")
            return True
        await self._enter(ChangeState.AUTHORIZE)
        assert self._status.risk is not None  # set by _assess
        chain = self._change.policy.chain_for(self._change.change_type, self._status.risk)
        assert chain is not None
        self._approvals = ApprovalState.from_chain(chain)
        outcome = await run_chain(self._approvals, chain, self._change.organisation, self._change.requested_by, self)
        if self._cancel is not None:
            return await self._finish_canceled()
        if outcome != Decision.APPROVED:
            return await self._finish_rejected(self._approvals.reason)
        await self.notify("approved", "change_approved", [self._change.requested_by])
        return True

    async def _schedule(self) -> bool:
        now = workflow.now()
        if now > self._status.planned_start and self._change.change_type != ChangeType.EMERGENCY \
                and not self._status.release:  # a release's change keeps to the release's window
            self._move_to_next_slot(now)
        block = (self._change.policy.conflicts == ConflictAction.BLOCK
                 and self._change.change_type != ChangeType.EMERGENCY)
        conflicts = await self.cmdb(
            CmdbActivities.reserve_calendar,
            ReserveInput(change_id=self._change.id, cis=self._change.cis, start=self._status.planned_start,
                         end=self._status.planned_end, exclusive=block, ignore=self._own_release()),
            summary="reserve the change calendar"
        )
        if conflicts:
            return await self._finish_rejected(f"conflicts with {', '.join(_describe(conflicts))}")
        await self._enter(ChangeState.SCHEDULED)
        await self.notify("scheduled", "change_scheduled", [self._change.requested_by, *self._implementer_groups()])
        if self._status.release:
            return await self._wait_for_release()
        delay = self._status.planned_start - workflow.now()
        if delay > timedelta(0):
            await self.wait(lambda: self._cancel is not None or self._status.release is not None, delay,
                            f"until planned start {self._status.planned_start:%Y-%m-%d %H:%M} UTC")
        if self._status.release and self._cancel is None:  # joined a release while waiting
            return await self._wait_for_release()
        if self._cancel is not None:
            return await self._finish_canceled()
        return True

    def _own_release(self) -> list[str]:
        """The calendar booking of this change's release is not a conflict."""
        return [self._status.release] if self._status.release else []

    async def _wait_for_release(self) -> bool:
        """Scheduled in a release: implemented when the release says go, canceled on its no-go."""
        await self.wait(lambda: self._release_go, None, f"release {self._status.release} to go")
        if self._cancel is not None:
            return await self._finish_canceled()
        return True

    async def _report(self) -> None:
        """Tell the change's release where it stands (a release that ended is not waiting)."""
        assert self._status.release is not None
        ended = self._status.state in FINAL_STATES
        report = MemberReport(change_id=self._change.id, state=self._status.state.value,
                              risk=self._status.risk.value if self._status.risk else None, cis=self._change.cis,
                              outcome=(self._status.close_code or self._status.state).value if ended else None)
        try:
            await workflow.get_external_workflow_handle(self._status.release).signal("member_report", report)
        except Exception:
            self._notices.append(f"release {self._status.release} could not be told ({report.state})")

    def _move_to_next_slot(self, now: datetime) -> None:
        """Approval ended after the planned start: move to the next slot the policy allows."""
        duration = self._status.planned_end - self._status.planned_start
        policy = self._change.policy
        template = policy.template(self._change.template) if self._change.template else None
        if template and template.window == "any":
            slot = now
        else:
            named = policy.window(template.window) if template else None
            windows = [named] if named else policy.windows
            slot = next_slot(windows, policy.blackouts, now, duration) or now
        self._status.original_start = self._status.original_start or self._status.planned_start
        self._status.planned_start, self._status.planned_end = slot, slot + duration
        self._notices.append(f"planned start passed during approval; moved to {self.spell_time(slot)}")

    async def _implement(self) -> bool:
        await self._enter(ChangeState.IMPLEMENT)
        await self.notify("implement", "change_implement", self._implementer_groups())
        done = lambda: self._completion is not None  # noqa: E731
        overrun = self._status.planned_end - workflow.now()
        if overrun > timedelta(0) and await self.wait(done, overrun, "until planned end"):
            return True
        self._notices.append(f"implementation overran its planned end {self.spell_time(self._status.planned_end)}")
        await self.notify("overrun", "change_overrun", [self._change.policy.notify_group])
        await self.wait(done, None, "implementation to complete")
        return True

    async def _review(self) -> bool:
        await self._enter(ChangeState.REVIEW)
        assert self._completion is not None
        if self._completion.outcome == Outcome.SUCCESSFUL:
            await self.cmdb(
                CmdbActivities.record_change,
                RecordChangeInput(
                    key=f"{self._change.id}:review", change_id=self._change.id, cis=self._change.cis,
                    outcome=self._completion.outcome.value, title=self._change.title, closed_at=workflow.now(),
                ),
                summary=f"record the change on {', '.join(self._change.cis)} in the CMDB"
            )
        await self._release(ChangeState.CLOSED)
        self._status.close_code = self._completion.outcome
        await self._enter(ChangeState.CLOSED)
        await self.notify("closed", "change_closed", [self._change.requested_by, self._change.policy.notify_group])
        return True

    async def _release(self, state: ChangeState) -> None:
        await self.cmdb(
            CmdbActivities.release_calendar, ReleaseInput(change_id=self._change.id, state=state.value),
            summary="release the change calendar"
        )

    async def _finish_rejected(self, reason: str) -> bool:
        self._status.reason = reason
        await self._enter(ChangeState.REJECTED)
        await self.notify("rejected", "change_rejected", [self._change.requested_by])
        return False

    async def _finish_canceled(self) -> bool:
        assert self._cancel is not None
        self._status.reason = self._cancel.reason
        was_scheduled = self._status.state == ChangeState.SCHEDULED
        await self._enter(ChangeState.CANCELED)
        if was_scheduled:
            await self._release(ChangeState.CANCELED)
        await self.notify("canceled", "change_canceled", [self._change.requested_by, *self._waiting_groups()])
        return False

    # --- helpers -----------------------------------------------------------------------------

    def _implementer_groups(self) -> list[str]:
        owners = [ci.owner_group for ci in self._items()]
        return list(dict.fromkeys([*self._change.policy.implementer_groups, *owners]))

    def _waiting_groups(self) -> list[str]:
        level = self._approvals.current_level()
        return [level.group] if level else []

    def pending_actions(self) -> list[dict]:
        state, level = self._status.state, self._approvals.current_level()
        actions = []
        if state == ChangeState.AUTHORIZE and level is not None:
            actions += [{"action": name, "groups": [level.group], "users": []} for name in ("approve", "reject")]
        if state == ChangeState.IMPLEMENT and self._completion is None:
            actions.append({"action": "complete", "groups": self._implementer_groups(), "users": []})
        if state in CANCELABLE_STATES:
            actions.append({"action": "cancel", "groups": [self._change.policy.notify_group],
                            "users": [self._change.requested_by]})
        return actions

    def interrupted(self) -> bool:
        return self._cancel is not None

    # --- releases ----------------------------------------------------------------------------

    @workflow.update
    async def join_release(self, join: JoinReleaseInput) -> ChangeStatus:
        """Join a release: from now on its go / no-go and window decide when this change is
        implemented, not its own planned start."""
        self._validate_join(join)
        patched("change-release")
        self._status.release = join.release_id
        workflow.upsert_search_attributes([SEARCH_ATTRIBUTES["ItsmParent"].value_set(join.release_id)])
        await self._report()
        await self.until_settled()
        return self.status()

    @join_release.validator
    def _validate_join(self, join: JoinReleaseInput) -> None:
        self._check_actor(join.actor)
        if self._status.release:
            _refuse(f"{self._change.id} belongs to release {self._status.release} already")
        if self._status.state not in JOINABLE_STATES or self._cancel is not None:
            refuse_state(f"{self._change.id} is {self._status.state.value} and can no longer join a release")
        if self._status.planned_start < join.window_start or self._status.planned_end > join.window_end:
            _refuse(f"{self._change.id} is planned {self.spell_time(self._status.planned_start)} – "
                    f"{self.spell_time(self._status.planned_end)}, outside the window of {join.release_id} "
                    f"({self.spell_time(join.window_start)} – {self.spell_time(join.window_end)})")
        managers = self._change.organisation.members(self._change.policy.notify_group)
        if join.actor != self._change.requested_by and join.actor not in managers:
            _refuse(f"only the requester or {self._change.policy.notify_group} may put {self._change.id} in a release")

    @workflow.signal
    def release_go(self) -> None:
        """From its release: implement now."""
        if self._status.release:
            self._release_go = True

    @workflow.signal
    def release_cancel(self, reason: str) -> None:
        """From its release (a no-go, a rejection, or a change before it failed)."""
        if self._status.release and self._cancel is None and self._status.state in CANCELABLE_STATES:
            self._cancel = CancelInput(actor=self._status.release, reason=reason)

    def _organisation(self):
        return self._change.organisation

    def _template_folder(self) -> str:
        return "change"

    def _notify_context(self) -> dict:
        return {"change": self.status().model_dump(mode="json")}

    # --- queries and updates -----------------------------------------------------------------

    @workflow.query
    def status(self) -> ChangeStatus:
        status = self._status.with_approvals(self._approvals)
        status.notices = [*self._status.notices, *self._notices]
        return status

    def _check_actor(self, actor: str) -> None:
        if self._change.organisation.person(actor) is None:
            _refuse(f"unknown user {actor!r}")

    def _approval_context(self) -> ApprovalContext:
        state = self._status.state
        not_awaiting = (None if state == ChangeState.AUTHORIZE
                        else f"{self._change.id} is {state.value}, not awaiting approval")
        return ApprovalContext(self._change.organisation, self._change.requested_by, not_awaiting=not_awaiting)

    @workflow.update
    async def complete(self, completion: CompleteInput) -> ChangeStatus:
        self._validate_complete(completion)
        self._completion = completion
        self._status.implemented_by, self._status.implementation_notes = completion.actor, completion.notes
        await self.until_settled()
        return self.status()

    @complete.validator
    def _validate_complete(self, completion: CompleteInput) -> None:
        self._check_actor(completion.actor)
        if self._status.state != ChangeState.IMPLEMENT or self._completion is not None:
            refuse_state(f"{self._change.id} is {self._status.state.value}, not being implemented")
        allowed = self._implementer_groups()
        if not any(completion.actor in self._change.organisation.members(g) for g in allowed):
            _refuse(f"{completion.actor} may not implement this change (needs one of: {', '.join(allowed)})")

    @workflow.update
    async def cancel(self, cancel: CancelInput) -> ChangeStatus:
        self._validate_cancel(cancel)
        self._cancel = cancel
        await self.until_settled()
        return self.status()

    @cancel.validator
    def _validate_cancel(self, cancel: CancelInput) -> None:
        self._check_actor(cancel.actor)
        if self._status.state in FINAL_STATES or self._status.state not in CANCELABLE_STATES or self._cancel:
            refuse_state(f"{self._change.id} is {self._status.state.value} and can no longer be canceled")
        managers = self._change.organisation.members(self._change.policy.notify_group)
        if cancel.actor != self._change.requested_by and cancel.actor not in managers:
            _refuse(f"only the requester or {self._change.policy.notify_group} may cancel {self._change.id}")
