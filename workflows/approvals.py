"""The one approval engine: levels answered by groups under any/all/quorum rules, with
segregation of duties and timeouts. Change approvals use it; request items will too.

`ApprovalState` is plain pydantic state: validators call `refusal()` synchronously, the
update handler calls `record()` before its first await, and `run_chain()` is the durable
loop that waits on people and timers.

Segregation of duties: neither the requester nor the beneficiary (whom a request is for;
None when there is none, as for changes) may approve, and neither counts as an eligible
approver when a level opens."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Awaitable, Callable, Protocol

from pydantic import BaseModel

from definitions.approvals import ApprovalChain, ApprovalLevel, ApprovalRule, TimeoutAction
from definitions.org import Organisation

NO_APPROVAL_PENDING = "no approval is pending"


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class LevelStatus(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"


class DecisionRecord(BaseModel):
    user: str
    decision: Decision
    time: datetime
    comment: str = ""


class LevelState(BaseModel):
    level: int
    name: str
    group: str
    rule: ApprovalRule
    quorum: int | None = None
    required: int = 1
    status: LevelStatus = LevelStatus.PENDING
    decisions: list[DecisionRecord] = []
    escalations: int = 0
    started_at: datetime | None = None
    decided_at: datetime | None = None

    def approvals(self) -> int:
        return sum(1 for d in self.decisions if d.decision == Decision.APPROVED)


class ApprovalState(BaseModel):
    levels: list[LevelState] = []
    current: int | None = None
    outcome: Decision | None = None
    reason: str = ""

    @classmethod
    def from_chain(cls, chain: ApprovalChain | None) -> "ApprovalState":
        if chain is None:
            return cls()
        return cls(
            levels=[
                LevelState(level=i + 1, name=lvl.name, group=lvl.group, rule=lvl.rule, quorum=lvl.quorum)
                for i, lvl in enumerate(chain.levels)
            ]
        )

    def current_level(self) -> LevelState | None:
        if self.current is None or self.outcome is not None:
            return None
        return self.levels[self.current]

    def deciders(self) -> set[str]:
        return {d.user for lvl in self.levels for d in lvl.decisions}

    def refusal(self, actor: str, org: Organisation, requester: str, beneficiary: str | None = None) -> str | None:
        """Why `actor` may not decide now, or None. Checked by update validators, so a
        refused call never reaches history."""
        if org.person(actor) is None:
            return f"unknown user {actor!r}"
        level = self.current_level()
        if level is None or level.status != LevelStatus.WAITING:
            return NO_APPROVAL_PENDING
        if actor == requester:
            return f"{actor} requested this and cannot approve it (segregation of duties)"
        if actor == beneficiary:
            return f"{actor} is who this is for and cannot approve it (segregation of duties)"
        if actor in self.deciders():
            return f"{actor} has already decided on this"
        if actor not in org.members(level.group):
            return f"{actor} is not in group {level.group!r} (level {level.level} {level.name!r})"
        return None

    def record(self, actor: str, decision: Decision, at: datetime, comment: str) -> None:
        level = self.current_level()
        assert level is not None and level.status == LevelStatus.WAITING
        level.decisions.append(DecisionRecord(user=actor, decision=decision, time=at, comment=comment))
        if decision == Decision.REJECTED:
            self._close_level(level, LevelStatus.REJECTED, at, f"rejected by {actor}: {comment}".rstrip(": "))
        elif level.approvals() >= level.required:
            level.status, level.decided_at = LevelStatus.APPROVED, at

    def _close_level(self, level: LevelState, status: LevelStatus, at: datetime, reason: str) -> None:
        level.status, level.decided_at = status, at
        self.outcome, self.reason = Decision.REJECTED, reason

    def start_level(
        self, index: int, org: Organisation, requester: str, at: datetime, beneficiary: str | None = None
    ) -> str | None:
        """Open level `index`; returns why it can never complete, if so."""
        self.current = index
        level = self.levels[index]
        excluded = {requester, beneficiary, *self.deciders()}
        eligible = [m for m in org.members(level.group) if m not in excluded]
        level.required = {ApprovalRule.ANY: 1, ApprovalRule.ALL: len(eligible)}.get(level.rule, level.quorum or 1)
        level.status, level.started_at = LevelStatus.WAITING, at
        if len(eligible) < max(level.required, 1):
            reason = (
                f"level {level.level} {level.name!r} cannot complete: {len(eligible)} eligible "
                f"approver(s) in {level.group!r}, {max(level.required, 1)} needed"
            )
            self._close_level(level, LevelStatus.REJECTED, at, reason)
            return reason
        return None


class ApprovalHooks(Protocol):
    """What the owning workflow provides to the durable loop."""

    def now(self) -> datetime: ...

    async def wait(self, condition: Callable[[], bool], timeout: timedelta, summary: str) -> bool: ...

    async def notify(self, step: str, template: str, groups: list[str], extra: dict) -> None: ...

    def spell(self, duration: timedelta) -> str: ...


async def run_chain(
    state: ApprovalState,
    chain: ApprovalChain,
    org: Organisation,
    requester: str,
    hooks: ApprovalHooks,
    on_level_start: Callable[[LevelState], Awaitable[None]] | None = None,
    beneficiary: str | None = None,
) -> Decision | None:
    """Run every level in order until one rejects or times out; returns the outcome, or
    None when the wait was interrupted (the owner decides what that means). The owner
    passes `beneficiary` only where its recorded runs allow the stricter count."""
    for index, level_def in enumerate(chain.levels):
        if state.start_level(index, org, requester, hooks.now(), beneficiary):
            return Decision.REJECTED
        level = state.levels[index]
        await hooks.notify(
            f"approval.{level.level}.requested", "approval_requested", [level.group],
            {"level": level.model_dump(mode="json")},
        )
        approved = await _wait_for_level(state, level, level_def, hooks)
        if approved is not True:
            return None if approved is None else Decision.REJECTED
    state.outcome, state.current = Decision.APPROVED, None
    return Decision.APPROVED


async def _wait_for_level(
    state: ApprovalState, level: LevelState, level_def: ApprovalLevel, hooks: ApprovalHooks
) -> bool | None:
    decided = lambda: level.status != LevelStatus.WAITING  # noqa: E731
    while True:
        timeout = hooks.spell(level_def.timeout)
        summary = f"level {level.level} {level.name!r} waits for {level.group} (timeout {timeout})"
        if await hooks.wait(decided, level_def.timeout, summary):
            if level.status == LevelStatus.WAITING:
                return None
            return level.status == LevelStatus.APPROVED
        can_escalate = level_def.on_timeout == TimeoutAction.ESCALATE and level.escalations < level_def.max_escalations
        if not can_escalate:
            state._close_level(
                level, LevelStatus.TIMED_OUT, hooks.now(),
                f"level {level.level} {level.name!r} timed out after {hooks.spell(level_def.timeout)}"
                + (f" and {level.escalations} escalation(s)" if level.escalations else ""),
            )
            return False
        level.escalations += 1
        await hooks.notify(
            f"approval.{level.level}.escalated.{level.escalations}", "approval_escalated",
            [level_def.escalate_to or level.group, level.group],
            {"level": level.model_dump(mode="json")},
        )
