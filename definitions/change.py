"""Change policy: risk rules, approval chains by risk, windows, blackouts, templates."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from definitions.approvals import ApprovalChain
from definitions.base import Definition, Duration, Model
from definitions.org import ConfigurationItem, Criticality, Organisation
from definitions.windows import Blackout, MaintenanceWindow


class ChangeType(StrEnum):
    STANDARD = "standard"
    NORMAL = "normal"
    EMERGENCY = "emergency"


class Risk(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


class WindowViolation(StrEnum):
    """What submit does with a normal change outside every window or inside a blackout."""

    REJECT = "reject"
    MOVE = "move"


class ConflictAction(StrEnum):
    BLOCK = "block"
    WARN = "warn"


class RiskRule(Model):
    """Matches when every condition it sets holds; the first matching rule wins."""

    name: str
    risk: Risk
    ci_criticality: list[Criticality] = []
    outage: bool | None = None

    @model_validator(mode="after")
    def _has_condition(self) -> "RiskRule":
        if not self.ci_criticality and self.outage is None:
            raise ValueError(f"risk rule {self.name!r}: set ci_criticality or outage (use default_risk for the rest)")
        return self

    def matches(self, cis: list[ConfigurationItem], outage: bool) -> bool:
        if self.ci_criticality and not any(ci.criticality in self.ci_criticality for ci in cis):
            return False
        return self.outage is None or self.outage == outage


class StandardTemplate(Model):
    """A pre-approved change. `window` is `any` or the name of one of the policy's windows."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str = ""
    window: str = "any"
    cis: list[str] = []
    max_duration: Duration = timedelta(hours=2)


class ChangePolicy(Definition):
    kind: Literal["change-policy"] = "change-policy"
    organisation: str
    demo: bool = False
    risk_rules: list[RiskRule]
    default_risk: Risk = Risk.LOW
    approvals: dict[Risk, ApprovalChain]
    emergency_approvals: ApprovalChain
    implementer_groups: list[str] = ["change-managers"]
    notify_group: str = "change-managers"
    windows: list[MaintenanceWindow] = Field(min_length=1)
    blackouts: list[Blackout] = []
    outside_window: WindowViolation = WindowViolation.REJECT
    conflicts: ConflictAction = ConflictAction.WARN
    templates: list[StandardTemplate] = []
    max_duration: Duration = timedelta(hours=12)

    @model_validator(mode="after")
    def _complete(self) -> "ChangePolicy":
        problems = [f"approvals: no chain for risk {r.value!r}" for r in Risk if r not in self.approvals]
        windows = {w.name for w in self.windows}
        problems += [
            f"template {t.name!r}: unknown window {t.window!r}"
            for t in self.templates
            if t.window != "any" and t.window not in windows
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def assess_risk(self, cis: list[ConfigurationItem], outage: bool) -> tuple[Risk, str]:
        for rule in self.risk_rules:
            if rule.matches(cis, outage):
                return rule.risk, rule.name
        return self.default_risk, "default"

    def chain_for(self, change_type: ChangeType, risk: Risk) -> ApprovalChain | None:
        if change_type == ChangeType.STANDARD:
            return None
        if change_type == ChangeType.EMERGENCY:
            return self.emergency_approvals
        return self.approvals[risk]

    def template(self, name: str) -> StandardTemplate | None:
        return next((t for t in self.templates if t.name == name), None)

    def window(self, name: str) -> MaintenanceWindow | None:
        return next((w for w in self.windows if w.name == name), None)

    def reference_problems(self, org: Organisation) -> list[str]:
        """Names this policy uses that the organisation does not define."""
        groups = {g.name for g in org.groups}
        cis = {c.name for c in org.cis}
        problems: list[str] = []
        used: list[tuple[str, str]] = [("implementer_groups", g) for g in self.implementer_groups]
        used.append(("notify_group", self.notify_group))
        for risk, chain in self.approvals.items():
            used += [(f"approvals.{risk.value}", g) for g in sorted(chain.groups())]
        used += [("emergency_approvals", g) for g in sorted(self.emergency_approvals.groups())]
        problems += [f"{where}: unknown group {g!r}" for where, g in used if g not in groups]
        for template in self.templates:
            problems += [f"template {template.name!r}: unknown ci {c!r}" for c in template.cis if c not in cis]
        for where, chain in [(f"approvals.{r.value}", c) for r, c in self.approvals.items()] + [
            ("emergency_approvals", self.emergency_approvals)
        ]:
            for level in chain.levels:
                size = len(org.members(level.group))
                if level.quorum and org.group(level.group) and level.quorum > size:
                    problems.append(
                        f"{where}: level {level.name!r} quorum {level.quorum} exceeds group {level.group!r} size {size}"
                    )
        return problems
