"""The approval engine as plain state: who may decide, when a level completes, why a level
can never complete, and the durable loop driven by a fake clock (no Temporal)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from definitions.acme import ORGANISATION
from definitions.approvals import ApprovalChain, ApprovalLevel, ApprovalRule, TimeoutAction
from workflows.approvals import ApprovalState, Decision, LevelStatus, run_chain

T0 = datetime(2026, 11, 24, 9, tzinfo=timezone.utc)
MANAGER = ApprovalLevel(name="change-manager", group="change-managers", timeout=timedelta(minutes=30),
                        on_timeout=TimeoutAction.ESCALATE, escalate_to="cab", max_escalations=2)
CAB = ApprovalLevel(name="cab", group="cab", rule=ApprovalRule.QUORUM, quorum=2, timeout=timedelta(hours=1))
CHAIN = ApprovalChain(levels=[MANAGER, CAB])
DB_ADMINS = ApprovalChain(levels=[ApprovalLevel(name="db-admins", group="db-admins")])  # grace alone


def started(chain=CHAIN, requester="alice", beneficiary=None) -> ApprovalState:
    state = ApprovalState.from_chain(chain)
    assert state.start_level(0, ORGANISATION, requester, T0, beneficiary) is None
    return state


def test_from_chain_lists_pending_levels_and_none_means_no_approval():
    state = ApprovalState.from_chain(CHAIN)
    assert [(lvl.level, lvl.name, lvl.group, lvl.rule, lvl.quorum, lvl.status) for lvl in state.levels] == [
        (1, "change-manager", "change-managers", "any", None, "pending"), (2, "cab", "cab", "quorum", 2, "pending")]
    assert (state.current, state.current_level(), state.outcome) == (None, None, None)
    assert ApprovalState.from_chain(None) == ApprovalState()


@pytest.mark.parametrize(("rule", "quorum", "requester", "beneficiary", "required"), [
    (ApprovalRule.ANY, None, "alice", None, 1),
    (ApprovalRule.QUORUM, 2, "alice", None, 2),
    (ApprovalRule.ALL, None, "alice", None, 3),
    (ApprovalRule.ALL, None, "dave", None, 2),
    (ApprovalRule.ALL, None, "alice", "dave", 2),
    (ApprovalRule.ALL, None, "bob", "dave", 1),
    (ApprovalRule.ALL, None, "dave", "dave", 2),
])
def test_start_level_sets_required_approvals_from_rule_and_eligible_members(rule, quorum, requester, beneficiary,
                                                                             required):
    chain = ApprovalChain(levels=[ApprovalLevel(name="cab", group="cab", rule=rule, quorum=quorum)])
    state = started(chain, requester, beneficiary)
    level = state.current_level()
    assert (level.status, level.started_at, level.required, state.current) == ("waiting", T0, required, 0)


def test_level_that_cannot_reach_its_quorum_rejects_at_once():
    state = started(requester="bob")
    state.record("carol", Decision.APPROVED, T0, "")
    reason = state.start_level(1, ORGANISATION, "bob", T0 + timedelta(minutes=1))
    assert reason == "level 2 'cab' cannot complete: 1 eligible approver(s) in 'cab', 2 needed"
    assert (state.outcome, state.reason, state.levels[1].status) == ("rejected", reason, "rejected")
    assert state.levels[1].decided_at == T0 + timedelta(minutes=1)


@pytest.mark.parametrize(("actor", "requester", "refusal"), [
    ("mallory", "alice", "unknown user 'mallory'"),
    ("bob", "bob", "bob requested this and cannot approve it (segregation of duties)"),
    ("alice", "alice", "alice requested this and cannot approve it (segregation of duties)"),
    ("erin", "alice", "erin is not in group 'change-managers' (level 1 'change-manager')"),
    ("carol", "alice", None),
])
def test_refusal_at_the_first_level(actor, requester, refusal):
    assert started(requester=requester).refusal(actor, ORGANISATION, requester) == refusal


@pytest.mark.parametrize(("actor", "requester", "beneficiary", "refusal"), [
    ("bob", "alice", "bob", "bob is who this is for and cannot approve it (segregation of duties)"),
    ("bob", "bob", "bob", "bob requested this and cannot approve it (segregation of duties)"),
    ("carol", "alice", "bob", None),
    ("bob", "alice", None, None),
])
def test_refusal_of_whom_it_is_for(actor, requester, beneficiary, refusal):
    state = started(requester=requester, beneficiary=beneficiary)
    assert state.refusal(actor, ORGANISATION, requester, beneficiary) == refusal


def test_level_whose_only_member_is_the_beneficiary_cannot_complete():
    state = ApprovalState.from_chain(DB_ADMINS)
    reason = state.start_level(0, ORGANISATION, "alice", T0, beneficiary="grace")
    assert reason == "level 1 'db-admins' cannot complete: 0 eligible approver(s) in 'db-admins', 1 needed"
    assert (state.outcome, state.reason, state.levels[0].status) == ("rejected", reason, "rejected")
    assert started(DB_ADMINS).current_level().required == 1  # without a beneficiary grace may approve


def test_refusal_when_nothing_is_pending():
    state = ApprovalState.from_chain(CHAIN)
    assert state.refusal("bob", ORGANISATION, "alice") == "no approval is pending"
    state = started()
    state.record("bob", Decision.REJECTED, T0, "no")
    assert state.refusal("carol", ORGANISATION, "alice") == "no approval is pending"


def test_one_decision_per_person_across_levels():
    state = started()
    state.record("bob", Decision.APPROVED, T0, "ok")
    assert state.start_level(1, ORGANISATION, "alice", T0) is None
    assert state.refusal("bob", ORGANISATION, "alice") == "bob has already decided on this"
    state.record("carol", Decision.APPROVED, T0, "")
    assert state.refusal("carol", ORGANISATION, "alice") == "carol has already decided on this"
    assert state.refusal("dave", ORGANISATION, "alice") is None
    assert state.deciders() == {"bob", "carol"}


def test_quorum_level_approves_on_the_required_count():
    state = started()
    state.record("bob", Decision.APPROVED, T0, "")
    state.start_level(1, ORGANISATION, "alice", T0)
    cab = state.levels[1]
    state.record("carol", Decision.APPROVED, T0 + timedelta(minutes=5), "")
    assert (cab.status, cab.approvals(), cab.decided_at) == ("waiting", 1, None)
    state.record("dave", Decision.APPROVED, T0 + timedelta(minutes=9), "fine")
    assert (cab.status, cab.approvals(), cab.decided_at) == ("approved", 2, T0 + timedelta(minutes=9))
    assert [(d.user, d.decision, d.time, d.comment) for d in cab.decisions] == [
        ("carol", "approved", T0 + timedelta(minutes=5), ""), ("dave", "approved", T0 + timedelta(minutes=9), "fine")]


@pytest.mark.parametrize(("comment", "reason"), [("too risky", "rejected by carol: too risky"),
                                                  ("", "rejected by carol")])
def test_any_reject_closes_the_level_and_the_chain(comment, reason):
    state = started()
    state.record("carol", Decision.REJECTED, T0 + timedelta(minutes=3), comment)
    level = state.levels[0]
    assert (level.status, level.decided_at, state.outcome, state.reason) == (
        "rejected", T0 + timedelta(minutes=3), "rejected", reason)
    assert state.current_level() is None


class FakeHooks:
    """A fake clock. Every `answer_every`, `decide(now)` acts; returning False stands for an
    interruption (e.g. a cancel), which wakes the wait like ProcessWorkflow.wait does."""

    def __init__(self, decide=None, answer_every: timedelta | None = None) -> None:
        self.clock, self.decide, self.answer_every = T0, decide, answer_every
        self.sent: list[tuple[datetime, str, list[str]]] = []

    def now(self) -> datetime:
        return self.clock

    async def wait(self, condition, timeout, summary) -> bool:
        deadline = self.clock + timeout
        while self.decide and self.clock + self.answer_every <= deadline:
            self.clock += self.answer_every
            if self.decide(self.clock) is False or condition():
                return True
        self.clock = deadline
        return False

    async def notify(self, step, template, groups, extra=None) -> None:
        self.sent.append((self.clock, step, groups))

    def spell(self, duration: timedelta) -> str:
        from definitions.base import format_duration

        return format_duration(duration)


async def test_run_chain_escalates_at_each_timeout_then_times_out():
    state, hooks = ApprovalState.from_chain(CHAIN), FakeHooks()
    assert await run_chain(state, CHAIN, ORGANISATION, "alice", hooks) == Decision.REJECTED
    half_hour = timedelta(minutes=30)
    assert hooks.sent == [
        (T0, "approval.1.requested", ["change-managers"]),
        (T0 + half_hour, "approval.1.escalated.1", ["cab", "change-managers"]),
        (T0 + 2 * half_hour, "approval.1.escalated.2", ["cab", "change-managers"]),
    ]
    level = state.levels[0]
    assert (level.status, level.escalations, level.decided_at) == ("timed_out", 2, T0 + 3 * half_hour)
    assert state.reason == "level 1 'change-manager' timed out after 30m and 2 escalation(s)"
    assert state.levels[1].status == LevelStatus.PENDING


async def test_run_chain_approves_level_by_level():
    state = ApprovalState.from_chain(CHAIN)
    approvers = iter(["bob", "carol", "dave"])
    hooks = FakeHooks(lambda at: state.record(next(approvers), Decision.APPROVED, at, ""), timedelta(minutes=10))
    assert await run_chain(state, CHAIN, ORGANISATION, "alice", hooks) == Decision.APPROVED
    assert (state.outcome, state.current, [lvl.status for lvl in state.levels]) == (
        "approved", None, ["approved", "approved"])
    cab = state.levels[1]
    assert (cab.started_at, cab.decided_at) == (T0 + timedelta(minutes=10), T0 + timedelta(minutes=30))
    assert [step for _, step, _ in hooks.sent] == ["approval.1.requested", "approval.2.requested"]


async def test_run_chain_rejects_at_once_when_only_the_beneficiary_could_approve():
    state, hooks = ApprovalState.from_chain(DB_ADMINS), FakeHooks()
    assert await run_chain(state, DB_ADMINS, ORGANISATION, "alice", hooks, beneficiary="grace") == Decision.REJECTED
    assert (hooks.sent, state.levels[0].decided_at) == ([], T0)
    assert state.reason == "level 1 'db-admins' cannot complete: 0 eligible approver(s) in 'db-admins', 1 needed"


async def test_run_chain_returns_none_when_interrupted():
    state = ApprovalState.from_chain(CHAIN)
    hooks = FakeHooks(lambda at: False, timedelta(minutes=1))
    assert await run_chain(state, CHAIN, ORGANISATION, "alice", hooks) is None
    assert (state.outcome, state.levels[0].status) == (None, "waiting")
