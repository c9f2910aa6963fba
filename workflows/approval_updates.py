"""The `approve` / `reject` updates of every workflow that runs the approval engine
(changes, request items): one implementation, mixed in."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.org import Organisation
    from workflows.approvals import Decision
    from workflows.base import refuse
    from workflows.change_models import ApproveInput, RejectInput


class ApprovalUpdates:
    """Needs `self._approvals` (ApprovalState), `status()`, `until_settled()` and
    `_approval_context()` → (organisation, requester, why-not-awaiting or None)."""

    def _approval_context(self) -> tuple[Organisation, str, str | None]:
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

    def _validate_decision(self, actor: str) -> None:
        org, requester, not_awaiting = self._approval_context()
        if not_awaiting:
            refuse(not_awaiting)
        refusal = self._approvals.refusal(actor, org, requester)
        if refusal:
            refuse(refusal)

    async def _decide(self, actor: str, decision: Decision, comment: str):
        # Validators may run back to back before either handler: check again, then record
        # before the first await so the second one sees this decision.
        self._validate_decision(actor)
        self._approvals.record(actor, decision, workflow.now(), comment)
        await self.until_settled()
        return self.status()
