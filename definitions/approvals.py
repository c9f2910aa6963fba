"""Approval chains: ordered levels, each answered by a group under a rule."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import Field, model_validator

from definitions.base import Duration, Model


class ApprovalRule(StrEnum):
    ANY = "any"
    ALL = "all"
    QUORUM = "quorum"


class TimeoutAction(StrEnum):
    REJECT = "reject"
    ESCALATE = "escalate"


class ApprovalLevel(Model):
    """One level. `escalate` notifies `escalate_to` and waits another timeout, at most
    `max_escalations` times, then rejects: a change is never left waiting forever."""

    name: str
    group: str
    rule: ApprovalRule = ApprovalRule.ANY
    quorum: int | None = Field(default=None, ge=1)
    timeout: Duration = timedelta(days=2)
    on_timeout: TimeoutAction = TimeoutAction.REJECT
    escalate_to: str | None = None
    max_escalations: int = Field(default=2, ge=1, le=10)

    @model_validator(mode="after")
    def _rule_fits(self) -> "ApprovalLevel":
        if self.rule == ApprovalRule.QUORUM and self.quorum is None:
            raise ValueError(f"level {self.name!r}: rule quorum needs a quorum number")
        if self.rule != ApprovalRule.QUORUM and self.quorum is not None:
            raise ValueError(f"level {self.name!r}: quorum is only for rule quorum")
        if self.on_timeout == TimeoutAction.ESCALATE and not self.escalate_to:
            raise ValueError(f"level {self.name!r}: on_timeout escalate needs escalate_to")
        if self.timeout <= timedelta(0):
            raise ValueError(f"level {self.name!r}: timeout must be positive")
        return self


class ApprovalChain(Model):
    levels: list[ApprovalLevel] = Field(min_length=1)

    def groups(self) -> set[str]:
        return {lvl.group for lvl in self.levels} | {
            lvl.escalate_to for lvl in self.levels if lvl.escalate_to
        }
