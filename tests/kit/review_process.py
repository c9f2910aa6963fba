"""A process from outside the project, on the public kit only: a quarterly access review in
which a reviewer keeps or revokes each grant. Loaded through ITSM_PROCESSES, as a process
owner's local module would be (tests/kit/test_external_process.py)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

from itsmflow import Action, Process

with workflow.unsafe.imports_passed_through():
    from definitions.org import Organisation
    from itsmflow.workflow import ProcessWorkflow, SettleUpdate, refuse, refuse_state


class ReviewInput(BaseModel):
    id: str
    title: str
    owner: str
    reviewer: str
    grants: list[str]
    organisation: Organisation


class Attestation(BaseModel):
    actor: str
    grant: str
    keep: bool = True


class ReviewStatus(BaseModel):
    id: str
    title: str
    state: str = "attesting"
    reviewer: str
    pending: list[str]
    kept: list[str] = []
    revoked: list[str] = []


@workflow.defn
class AccessReviewWorkflow(SettleUpdate, ProcessWorkflow):
    @workflow.init
    def __init__(self, review: ReviewInput) -> None:
        self._init_base()
        self._org = review.organisation
        self._status = ReviewStatus(id=review.id, title=review.title, reviewer=review.reviewer, pending=review.grants)

    @workflow.run
    async def run(self, review: ReviewInput) -> ReviewStatus:
        self.publish_status()
        self.set_search_state("attesting")
        done = await self.wait(lambda: not self._status.pending, timedelta(days=7),
                               "the reviewer to attest every grant")
        self._status.state = "done" if done else "overdue"
        self.set_search_state(self._status.state)
        self.publish_outcome(self._status.state)
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    @workflow.update
    async def attest(self, attestation: Attestation) -> ReviewStatus:
        self._status.pending.remove(attestation.grant)
        (self._status.kept if attestation.keep else self._status.revoked).append(attestation.grant)
        await self.until_settled()
        return self.status()

    @attest.validator
    def _check_attest(self, attestation: Attestation) -> None:
        if attestation.actor != self._status.reviewer:
            refuse(f"{attestation.actor} is not the reviewer of {self._status.id} ({self._status.reviewer} is)")
        if attestation.grant not in self._status.pending:
            refuse_state(f"{attestation.grant!r} is not waiting for attestation in {self._status.id}")

    @workflow.query
    def status(self) -> ReviewStatus:
        return self._status.model_copy(deep=True)

    def pending_actions(self) -> list[dict]:
        return [{"action": "attest", "groups": [], "users": [self._status.reviewer]}] if self._status.pending else []

    def _organisation(self) -> Organisation:
        return self._org


HERE = "tests.kit.review_process"
REVIEW = Process(
    name="review", prefix="REV", workflows=(f"{HERE}:AccessReviewWorkflow",), input=f"{HERE}:ReviewInput",
    status=f"{HERE}:ReviewStatus", people=("owner", "reviewer"),
    actions=(Action("attest", "attest", f"{HERE}:Attestation", who="the reviewer", one_click=True,
                    help="Keep (keep=true) or revoke (keep=false) one grant."),),
    states=("attesting", "done", "overdue"), final={"done": "done", "overdue": "overdue"},
    attributes=("ItsmProcess", "ItsmState", "ItsmRequester", "ItsmOutcome", "ItsmResolvedAt"),
    description="Quarterly access review: the reviewer keeps or revokes each grant.",
)
