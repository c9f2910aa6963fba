"""The `approve` / `reject` updates of every workflow that runs the approval engine
(changes, request items): one implementation, mixed in."""

from __future__ import annotations

from typing import NamedTuple

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.org import Organisation
    from workflows.approvals import NO_APPROVAL_PENDING, ApprovalState, Decision
    from workflows.base import ProcessWorkflow, refuse, refuse_state
    from workflows.change_models import ApproveInput, RejectInput


class ApprovalContext(NamedTuple):
    """What the owning workflow tells the updates: who may not approve (the requester and,
    for a request item, its beneficiary) and why it is not awaiting approval, if so."""

    organisation: Organisation
    requester: str
    beneficiary: str | None = None
    not_awaiting: str | None = None


class ApprovalUpdates(ProcessWorkflow):
    """Needs `self._approvals` and `_approval_context()`; `status()` and `until_settled()`
    come with ProcessWorkflow."""

    _approvals: ApprovalState

    def _approval_context(self) -> ApprovalContext:
        raise NotImplementedError

    @workflow.update
    async def approve(self, decision: ApproveInput):
        return await self._decide(decision.actor, Decision.APPROVED, decision.comment)

    @approve.validator
    def _validate_approve(self, decision: ApproveInput) -> None:
        self._validate_decision(decision.actor)

    @workflow.update
    async def reject(self, decision: RejectInput):
        return await self._decide(decision.actor, Decision.REJECTED, decision.reason)

    @reject.validator
    def _validate_reject(self, decision: RejectInput) -> None:
        self._validate_decision(decision.actor)

    def _validate_decision(self, actor: str, *, beneficiary_may_decide: bool = False) -> None:
        context = self._approval_context()
        if context.not_awaiting:
            refuse_state(context.not_awaiting)
        beneficiary = None if beneficiary_may_decide else context.beneficiary
        refusal = self._approvals.refusal(actor, context.organisation, context.requester, beneficiary)
        if refusal:
            (refuse_state if refusal == NO_APPROVAL_PENDING else refuse)(refusal)

    async def _decide(self, actor: str, decision: Decision, comment: str):
        # Validators may run back to back before either handler: check again, then record
        # before the first await so the second one sees this decision. Who a request is for
        # cannot change in between, so only the validator refuses the beneficiary: handlers
        # also run on replay, and runs recorded before that rule hold such decisions.
        self._validate_decision(actor, beneficiary_may_decide=True)
        self._approvals.record(actor, decision, workflow.now(), comment)
        await self.until_settled()
        return self.status()
