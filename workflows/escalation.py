"""The escalation engine: runs the due steps of an escalation policy. Pure and
deterministic (the caller passes `now`); the incident workflow performs the actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from definitions.incident import EscalationPolicy, EscalationStep, IncidentPolicy, StepKind
from definitions.oncall import round_robin
from definitions.org import Organisation
from workflows.incident_models import EscalationStatus

MAX_STEPS_PER_RUN = 200


@dataclass
class EscalationAction:
    kind: str  # notify | webhook | skip | note
    step: int
    text: str
    users: list[str] = field(default_factory=list)
    url: str | None = None
    key: str = ""


def start(policy: EscalationPolicy | None, now: datetime) -> EscalationStatus:
    if policy is None:
        return EscalationStatus()
    return EscalationStatus(policy=policy.name, step=1, next_at=now, active=True)


def restart(esc: EscalationStatus, policy: EscalationPolicy | None, now: datetime) -> EscalationStatus:
    fresh = start(policy, now)
    fresh.sequence, fresh.notified = esc.sequence, esc.notified
    return fresh


class Engine:
    def __init__(self, incident_policy: IncidentPolicy, org: Organisation) -> None:
        self.incident_policy = incident_policy
        self.org = org
        self._kinds: dict[StepKind, Callable] = {
            StepKind.NOTIFY_USER: self._notify_user,
            StepKind.NOTIFY_GROUP: self._notify_group,
            StepKind.NOTIFY_ON_CALL: self._notify_on_call,
            StepKind.WEBHOOK: self._webhook,
            StepKind.WAIT: self._wait,
            StepKind.REPEAT: self._repeat,
            StepKind.IF_TIME_BETWEEN: self._if_time_between,
        }

    def policy(self, esc: EscalationStatus) -> EscalationPolicy | None:
        return next((p for p in self.incident_policy.escalation_policies if p.name == esc.policy), None)

    def run_due(self, esc: EscalationStatus, now: datetime) -> list[EscalationAction]:
        """Execute every step due at `now`; sets `next_at` for the next one."""
        policy = self.policy(esc)
        actions: list[EscalationAction] = []
        for _ in range(MAX_STEPS_PER_RUN):
            if not esc.active or esc.next_at is None or esc.next_at > now or policy is None:
                break
            if esc.step > len(policy.steps):
                esc.active, esc.next_at = False, None
                actions.append(EscalationAction("note", esc.step, "escalation exhausted: no further steps"))
                break
            number, step = esc.step, policy.steps[esc.step - 1]
            esc.step += 1
            due_at = esc.next_at
            action = self._kinds[step.kind](esc, number, step, due_at)
            if action is not None:
                if action.kind in ("notify", "webhook"):
                    esc.sequence += 1
                    action.key = f"escalation.{esc.sequence}.step{number}"
                actions.append(action)
        return actions

    def _after(self, esc: EscalationStatus, due_at: datetime, delay: timedelta) -> None:
        esc.next_at = due_at + delay

    def _page(self, esc, number, step, due_at, users: list[str], target: str) -> EscalationAction:
        users = [u for u in users if self.org.person(u)]
        if not users:
            return EscalationAction("skip", number, f"step {number} skipped: {target} resolves to nobody")
        self._after(esc, due_at, step.delay)
        esc.notified = list(dict.fromkeys([*esc.notified, *users]))
        return EscalationAction("notify", number, f"step {number}: paged {', '.join(users)} ({target})", users=users)

    def _notify_user(self, esc, number, step: EscalationStep, due_at):
        assert step.user is not None  # the step's kind requires it (definitions validate)
        return self._page(esc, number, step, due_at, [step.user], f"user {step.user}")

    def _notify_group(self, esc, number, step: EscalationStep, due_at):
        assert step.group is not None
        members = self.org.members(step.group)
        if step.round_robin and members:
            turn = esc.turns.get(str(number), 0)
            esc.turns[str(number)] = turn + 1
            members = [round_robin(members, turn)]
        return self._page(esc, number, step, due_at, members, f"group {step.group}")

    def _notify_on_call(self, esc, number, step: EscalationStep, due_at):
        assert step.schedule is not None
        schedule = self.incident_policy.schedule(step.schedule)
        user = schedule.on_call(due_at) if schedule else None
        return self._page(esc, number, step, due_at, [user] if user else [], f"on-call {step.schedule}")

    def _webhook(self, esc, number, step: EscalationStep, due_at):
        self._after(esc, due_at, step.delay)
        return EscalationAction("webhook", number, f"step {number}: webhook {step.url}", url=step.url)

    def _wait(self, esc, number, step: EscalationStep, due_at):
        assert step.duration is not None
        self._after(esc, due_at, step.duration)
        return None

    def _repeat(self, esc, number, step: EscalationStep, due_at):
        done = esc.loops.get(str(number), 0)
        if done >= step.max_loops:
            return EscalationAction("note", number, f"step {number}: repeat limit {step.max_loops} reached")
        esc.loops[str(number)] = done + 1
        esc.step = step.from_step
        return EscalationAction("note", number, f"step {number}: repeat from step {step.from_step} "
                                                f"(loop {done + 1} of {step.max_loops})")

    def _if_time_between(self, esc, number, step: EscalationStep, due_at):
        assert step.calendar is not None
        inside = self.incident_policy.calendar(step.calendar).is_open(due_at)
        if inside == (step.when == "inside"):
            return None
        esc.step += 1
        return EscalationAction("skip", number + 1, f"step {number + 1} skipped: time is "
                                                    f"{'inside' if inside else 'outside'} {step.calendar} hours")

    def jump(self, esc: EscalationStatus, now: datetime, to_step: int | None) -> None:
        """Manual escalation: run the next step (or step `to_step`) now."""
        if to_step is not None:
            esc.step = to_step
        esc.active, esc.next_at = True, now

    def can_escalate(self, esc: EscalationStatus, to_step: int | None) -> str | None:
        policy = self.policy(esc)
        if policy is None:
            return "no escalation policy applies to this incident's group"
        if to_step is not None and to_step > len(policy.steps):
            return f"policy {policy.name!r} has {len(policy.steps)} steps"
        if to_step is None and esc.step > len(policy.steps):
            return "no further escalation step; use --to-step N"
        return None
