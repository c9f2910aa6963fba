"""The access review: attesting → (escalated) → closed | incomplete.

It reads the grants in force from the CMDB when it starts, asks each grantee's manager once
(one notification per manager, listing their people's grants), and takes `attest` updates:
only the grantee's manager, each grant once, nobody their own, all refused before anything
enters history. A revocation is written to the CMDB by the kit's idempotent `revoke_grant`.
At the deadline (`attest_within`) every manager still late is escalated to their own manager
(or the review's owner group, or its owner); `grace` later the review closes, and the owner
gets the report of what was kept, revoked and left unattested."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from access_review.models import (
        FINAL_STATES,
        REASON_KEPT,
        AccessReviewInput,
        AccessReviewStatus,
        Attestation,
        Decision,
        GrantReview,
        ReviewState,
    )
    from itsmflow.activities import GrantActivities, GrantQuery, RevokeInput
    from itsmflow.definitions import Organisation
    from itsmflow.workflow import (
        Event,
        Notify,
        ProcessWorkflow,
        SettleUpdate,
        SideEffect,
        append_event,
        refuse,
        refuse_state,
        run_in_order,
    )

SYSTEM = "system"


@dataclass
class Revoke(SideEffect):
    """Revoke one grant in the CMDB (keyed `<review id>:revoke:<grant key>`)."""

    grant: str


@workflow.defn
class AccessRecertificationWorkflow(SettleUpdate, ProcessWorkflow):
    @workflow.init
    def __init__(self, review: AccessReviewInput) -> None:
        self._init_base()
        self._review = review
        self._org = review.organisation
        self._effects: list[SideEffect] = []
        opened = workflow.now()
        self._status = AccessReviewStatus(
            id=review.id, title=review.title, owner=review.owner, owner_group=review.owner_group, opened_at=opened,
            due_at=opened + review.attest_within, closes_at=opened + review.attest_within + review.grace)

    # --- main loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, review: AccessReviewInput) -> AccessReviewStatus:
        self.publish_status()
        self._event(review.owner, "opened", f"attest within {self.spell(review.attest_within)}")
        await self._collect()
        await self._work_until(self._status.due_at, "managers to attest every grant")
        if self._status.pending():
            self._escalate()
            await self._work_until(self._status.closes_at, "late managers to attest, after the escalation")
        self._close()
        await self._drain()
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _collect(self) -> None:
        """The grants in force now, each with who attests it; one request to each attester."""
        limit = self._review.limit
        query = GrantQuery(as_of=self._status.opened_at, names=self._review.names, limit=limit + 1)
        grants = await self.cmdb(GrantActivities.list_grants, query, summary="list the grants in force")
        if len(grants) > limit:
            self._status.notices.append(f"more than {limit} grants are in force: this review covers the {limit} "
                                        "oldest")
            grants = grants[:limit]
        self._status.grants = [
            GrantReview(key=g.key, grantee=g.grantee, name=g.name, detail=g.detail, item_id=g.item_id,
                        granted_at=g.granted_at, attester=self._attester(g.grantee)) for g in grants]
        self._event(SYSTEM, "collected", f"{len(grants)} grant(s) to attest")
        for attester, theirs in self._by_attester().items():
            self._effects.append(Notify(f"attest.{attester}", "attest_requested", [attester],
                                        {"attester": attester, "grants": _listed(theirs)}))

    async def _work_until(self, end: datetime, summary: str) -> None:
        """Run what attestations queue until every grant is attested or `end` comes."""
        while True:
            await self._drain()
            if not self._status.pending():
                return
            remaining = end - workflow.now()
            if remaining <= timedelta(0):
                return
            await self.wait(lambda: bool(self._effects) or not self._status.pending(), remaining, summary)

    def _escalate(self) -> None:
        self._status.state, self._status.escalated_at = ReviewState.ESCALATED, workflow.now()
        self.set_search_state(ReviewState.ESCALATED.value)
        for attester, theirs in self._by_attester().items():
            above = self._above(attester)
            self._event(SYSTEM, "escalated", f"{len(theirs)} grant(s) {attester} has not attested: told {above}")
            self._effects.append(Notify(f"overdue.{attester}", "attestation_overdue",
                                        list(dict.fromkeys([above, attester])),
                                        {"attester": attester, "above": above, "grants": _listed(theirs)}))

    def _close(self) -> None:
        status = self._status
        status.unattested = [grant.key for grant in status.pending()]
        status.state = ReviewState.INCOMPLETE if status.unattested else ReviewState.CLOSED
        status.closed_at = workflow.now()
        self._event(SYSTEM, status.state.value, f"{len(status.kept)} kept, {len(status.revoked)} revoked, "
                                                f"{len(status.unattested)} unattested")
        self._effects.append(Notify("closed", "review_closed", [status.owner, *filter(None, [status.owner_group])],
                                    {"report": {part: _listed([self._grant(key) for key in keys]) for part, keys in
                                                (("kept", status.kept), ("revoked", status.revoked),
                                                 ("unattested", status.unattested))}}))
        self.set_search_state(status.state.value)
        self.publish_outcome("complete" if status.state == ReviewState.CLOSED else "incomplete")

    async def _drain(self) -> None:
        await run_in_order(self._effects, {Notify: self.send, Revoke: self._do_revoke})

    async def _do_revoke(self, revoke: Revoke) -> None:
        grant = self._grant(revoke.grant)
        done = await self.cmdb(
            GrantActivities.revoke_grant,
            RevokeInput(key=f"{self._status.id}:revoke:{grant.key}", grant_key=grant.key,
                        revoked_by=grant.decided_by or SYSTEM, reason=grant.reason),
            summary=f"revoke {grant.grantee}'s {grant.name} ({grant.key})")
        if done:
            grant.revoked_at = workflow.now()
            self._event(SYSTEM, "revoked", f"{grant.label} ({grant.key}) in the CMDB")
        else:
            self._event(SYSTEM, "not in force", f"{grant.label} ({grant.key}) had ended already")

    # --- the attest update ---------------------------------------------------------------------

    @workflow.update
    async def attest(self, attestation: Attestation) -> AccessReviewStatus:
        self._check_attest(attestation)  # again: validators can run back to back, before this records
        grant = self._grant(attestation.grant)
        grant.decision, grant.decided_by, grant.decided_at = attestation.decision, attestation.actor, workflow.now()
        grant.reason = attestation.reason[:REASON_KEPT]
        keep = attestation.decision == Decision.KEEP
        (self._status.kept if keep else self._status.revoked).append(grant.key)
        self._event(attestation.actor, "kept" if keep else "revoke", f"{grant.label} ({grant.key})")
        if not keep:
            self._effects.append(Revoke(grant.key))
        await self.until_settled()
        return self.status()

    @attest.validator
    def _check_attest(self, attestation: Attestation) -> None:
        actor, review = attestation.actor, self._status
        if self._org.person(actor) is None:
            refuse(f"unknown user {actor!r}")
        if review.state in FINAL_STATES:
            refuse_state(f"{review.id} is {review.state.value}: its attestations are over")
        grant = next((g for g in review.grants if g.key == attestation.grant), None)
        if grant is None:
            refuse(f"{attestation.grant!r} is not a grant under review in {review.id}")
        if actor == grant.grantee:
            refuse(f"{actor} may not attest their own grant {grant.key}")
        if not self._may_attest(actor, grant):
            refuse(f"{actor} may not attest {grant.key} ({grant.label}): {self._who_attests(grant)}")
        if grant.decision is not None:
            refuse(f"{grant.key} was attested already ({grant.decision.value} by {grant.decided_by})")

    # --- who attests ---------------------------------------------------------------------------

    def _attester(self, grantee: str) -> str:
        """The grantee's manager; for someone with no manager (or unknown to the directory), the
        owner group, else the owner."""
        return self._org.manager_of(grantee) or self._status.owner_group or self._status.owner

    def _above(self, attester: str) -> str:
        """Who hears that `attester` is late: their manager, else the owner group, else the owner."""
        return self._org.manager_of(attester) or self._status.owner_group or self._status.owner

    def _may_attest(self, actor: str, grant: GrantReview) -> bool:
        group = self._org.group(grant.attester)
        return actor in group.members if group else actor == grant.attester

    def _who_attests(self, grant: GrantReview) -> str:
        if self._org.group(grant.attester):
            return f"{grant.grantee} has no manager, a member of {grant.attester} attests it"
        if self._org.manager_of(grant.grantee) == grant.attester:
            return f"{grant.attester}, {grant.grantee}'s manager, attests it"
        return f"{grant.grantee} has no manager, {grant.attester} attests it"

    def _by_attester(self) -> dict[str, list[GrantReview]]:
        """The grants still waiting, by who attests them (in the order of the grants)."""
        waiting: dict[str, list[GrantReview]] = {}
        for grant in self._status.pending():
            waiting.setdefault(grant.attester, []).append(grant)
        return waiting

    def pending_actions(self) -> list[dict]:
        if self._status.state in FINAL_STATES:
            return []
        attesters = list(self._by_attester())
        groups = [a for a in attesters if self._org.group(a)]
        users = [a for a in attesters if a not in groups]
        return [{"action": "attest", "groups": groups, "users": users}] if attesters else []

    # --- state helpers -------------------------------------------------------------------------

    def _grant(self, key: str) -> GrantReview:
        return next(grant for grant in self._status.grants if grant.key == key)

    def _event(self, actor: str, action: str, details: str = "") -> None:
        append_event(self._status, Event(time=workflow.now(), actor=actor, action=action, details=details))

    @workflow.query
    def status(self) -> AccessReviewStatus:
        status = self._status.model_copy(deep=True)
        status.notices = [*self._status.notices, *self._notices]
        return status

    def _organisation(self) -> Organisation:
        return self._org

    def _template_folder(self) -> str:
        return "access-review"  # the process's name: its package's templates (Process.templates)

    def _notify_context(self) -> dict:
        return {"review": self._status.model_dump(mode="json", exclude={"events", "grants"}),
                "due": self.spell_time(self._status.due_at), "closes": self.spell_time(self._status.closes_at)}


def _listed(grants: list[GrantReview]) -> list[dict]:
    """Grants as the templates list them."""
    return [{"key": g.key, "label": g.label, "grantee": g.grantee, "name": g.name, "detail": g.detail,
             "granted_at": f"{g.granted_at:%Y-%m-%d}", "decided_by": g.decided_by or "",
             "revoked": g.revoked_at is not None} for g in grants]
