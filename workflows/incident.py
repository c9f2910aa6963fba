"""The incident process: new → in_progress ⇄ on_hold → resolved → closed (reopen within
the policy window, auto-close after it). Escalation steps and SLA notices are durable
timers; responders act through validated updates."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import RecordIncidentInput, WebhookInput
    from definitions.incident import NoticeTarget
    from workflows import escalation, sla
    from workflows.base import (
        CMDB_OPTIONS,
        NOTIFY_OPTIONS,
        SEARCH_ATTRIBUTES,
        ProcessWorkflow,
        SettleUpdate,
        refuse_state,
    )
    from workflows.base import refuse as _refuse
    from workflows.incident_models import Event, IncidentInput, IncidentState, IncidentStatus, SlaClock, append_event
    from workflows.incident_problems import IncidentProblems
    from workflows.incident_updates import IncidentUpdates

S = IncidentState
@workflow.defn
class IncidentWorkflow(IncidentUpdates, IncidentProblems, SettleUpdate, ProcessWorkflow):
    @workflow.init
    def __init__(self, inc: IncidentInput) -> None:
        self._init_base()
        self._inc = inc
        self._policy, self._org = inc.policy, inc.organisation
        self._engine = escalation.Engine(inc.policy, inc.organisation)
        self._dirty = False
        self._actions: list[tuple] = []
        self._published: dict[str, object] = {}
        # Patches are decided here, in the first activation, before the verified-start local
        # activity: checked after it, a patch can fall into a later workflow task live than
        # on replay (a slow local activity) and the replay then misses its marker.
        self._concurrent = workflow.patched("concurrent-side-effects")
        self._problem_link = bool(inc.ci) and inc.carried is None and workflow.patched("problem-link")
        # The incident starts the problem it suggests (and tells the open one) itself.
        self._own_problems = self._problem_link and workflow.patched("problem-from-workflow")
        if inc.carried is not None:
            self._s = inc.carried.model_copy(update={"runs": inc.carried.runs + 1})
            return
        now = workflow.now()
        priority = inc.policy.priority(inc.impact, inc.urgency)
        self._s = IncidentStatus(
            id=inc.id, title=inc.title, description=inc.description, ci=inc.ci, priority=priority,
            impact=inc.impact, urgency=inc.urgency, assigned_group=inc.group, opened_by=inc.opened_by,
            opened_at=now, dedup_key=inc.dedup_key, last_seen=now, policy=f"{inc.policy.name}@{inc.policy.version}",
        )
        self._set_targets()

    # --- main loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inc: IncidentInput) -> IncidentStatus:
        self.publish_status()
        if inc.carried is None:
            now = workflow.now()
            self._event(inc.opened_by, "opened", f"{self._s.priority.value} on {inc.ci or '-'} for {inc.group}")
            self._s.escalation = escalation.start(self._policy.escalation_for(inc.group), now)
            if self._problem_link:
                self._actions.append(("on_ci",))
            else:
                self._actions.append(("notify", "opened", "incident_opened", [inc.opened_by], {}))
        while True:
            self._dirty = False
            now = workflow.now()
            self._run_due(now)
            await self._drain()
            self._publish()
            if self._s.state == S.CLOSED:
                break
            if self._history_is_long():
                # A settled wait: running update handlers return (they wait for settled), then we go on.
                await self.wait(workflow.all_handlers_finished, None, "updates to finish before continuing as new")
                if not self._actions and not self._dirty:
                    workflow.continue_as_new(self._inc.model_copy(update={"carried": self.status()}))
            wake = self._next_wake()
            timeout = max(wake - workflow.now(), timedelta(milliseconds=1)) if wake else None
            await self.wait(lambda: self._dirty, timeout, self._wake_summary(wake))
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() > self._policy.continue_as_new_after)

    def _run_due(self, now: datetime) -> None:
        for action in self._engine.run_due(self._s.escalation, now):
            self._event("system", "escalation", action.text)
            if action.kind == "notify":
                self._actions.append(("notify", action.key, "escalation_page", action.users, {"step": action.step}))
            elif action.kind == "webhook":
                self._actions.append(("webhook", action.key, action.url))
        for name, clock in self._s.sla.items():
            calendar = self._policy.calendar(clock.calendar)
            for percent, moment in sla.pending_notices(clock, calendar, self._s.opened_at, self._s.pauses,
                                                       [n.percent for n in self._policy.sla_notices]):
                if moment > now:
                    break
                clock.notices_sent.append(percent)
                clock.breached = clock.breached or percent >= 100
                word = "breached" if percent >= 100 else f"{percent}% used"
                self._event("system", "sla", f"{name} {word} (due {clock.due:%Y-%m-%d %H:%M}Z)" if clock.due else word)
                recipients = self._notice_recipients(percent)
                self._actions.append(("notify", f"sla.{name}.{percent}", "sla_notice", recipients,
                                      {"clock": name, "percent": percent}))
        if self._s.state == S.RESOLVED and now >= self._s.resolved_at + self._policy.reopen_window:
            self._s.state, self._s.closed_at = S.CLOSED, self._s.resolved_at + self._policy.reopen_window
            self._event("system", "closed", f"no reopen within {self.spell(self._policy.reopen_window)}")

    def _notice_recipients(self, percent: int) -> list[str]:
        targets = next((n.to for n in self._policy.sla_notices if n.percent == percent), [])
        names = {
            NoticeTarget.ASSIGNEE: [self._s.acknowledged_by] if self._s.acknowledged_by else [],
            NoticeTarget.GROUP: [self._s.assigned_group],
            NoticeTarget.ESCALATION: [self._policy.manager_group],
        }
        return [name for target in targets for name in names[target]] or [self._s.assigned_group]

    def _next_wake(self) -> datetime | None:
        candidates = []
        esc = self._s.escalation
        if esc.active and esc.next_at:
            candidates.append(esc.next_at)
        for clock in self._s.sla.values():
            calendar = self._policy.calendar(clock.calendar)
            pending = sla.pending_notices(clock, calendar, self._s.opened_at, self._s.pauses,
                                          [n.percent for n in self._policy.sla_notices])
            if pending:
                candidates.append(pending[0][1])
        if self._s.state == S.RESOLVED:
            candidates.append(self._s.resolved_at + self._policy.reopen_window)
        return min(candidates) if candidates else None

    def _wake_summary(self, wake: datetime | None) -> str:
        return f"next escalation / SLA check at {wake:%Y-%m-%d %H:%M:%S}Z" if wake else "waiting"

    async def _drain(self) -> None:
        dispatch = {"notify": self._do_notify, "webhook": self._do_webhook, "impacted": self._do_impacted,
                    "record": self._do_record, "release": self._do_release, "on_ci": self._do_on_ci}
        if not self._concurrent:
            while self._actions:
                kind, *args = self._actions.pop(0)
                await dispatch[kind](*args)
            return
        while self._actions:
            lanes: dict[str, list[tuple]] = {}
            for action in self._actions:
                lanes.setdefault(self._lane(action), []).append(action)
            self._actions = []
            await asyncio.gather(*(self._run_lane(dispatch, actions) for actions in lanes.values()))

    @staticmethod
    def _lane(action: tuple) -> str:
        """Side effects in different lanes are independent (the opened notice and the first
        page, the CMDB record and the resolved notice) and run concurrently: one round trip,
        not one each. Within a lane (escalation steps, one SLA clock's notices) order holds."""
        kind, *args = action
        return args[0].split(".")[0] if kind in ("notify", "webhook") and args[0].startswith(("escalation", "sla")) \
            else kind + ":" + (args[0] if args else "")

    @staticmethod
    async def _run_lane(dispatch: dict, actions: list[tuple]) -> None:
        for kind, *args in actions:
            await dispatch[kind](*args)

    async def _do_notify(self, step: str, template: str, to: list[str], extra: dict) -> None:
        await self.notify(step, template, to, extra)

    async def _do_webhook(self, step: str, url: str) -> None:
        payload = {"summary": f"{self._s.id} {self._s.priority.value}: {self._s.title}",
                   "incident": self._s.model_dump(mode="json", include={"id", "title", "priority", "state", "ci",
                                                                         "assigned_group"})}
        try:
            await workflow.execute_activity("post_webhook", WebhookInput(
                key=f"{self._s.id}:{step}", url=url, payload=payload), summary=f"webhook {url}", **NOTIFY_OPTIONS)
        except Exception as err:  # surfaced, never silently dropped
            self._notices.append(f"webhook {url} failed: {err}")

    async def _do_impacted(self) -> None:
        services: list[str] = []
        if self._s.ci:
            services = await workflow.execute_activity(
                "impacted_services", self._s.ci, result_type=list[str],
                summary=f"services depending on {self._s.ci}", **CMDB_OPTIONS)
        self._s.impacted_services = services
        await self.notify("major", "incident_major", [self._policy.major_incident_group],
                          {"services": services})

    async def _do_record(self) -> None:
        if self._s.ci:
            await workflow.execute_activity("record_incident", RecordIncidentInput(
                key=f"{self._s.id}:resolve.{self._s.resolutions}", incident_id=self._s.id, ci=self._s.ci,
                priority=self._s.priority.value, code=self._s.resolution_code or "", resolved_at=self._s.resolved_at,
            ), summary=f"record the incident on {self._s.ci} in the CMDB", **CMDB_OPTIONS)

    async def _do_release(self) -> None:
        """Tell the dedup router this incident no longer takes its events, once: the router
        ends when released with nothing else open, so a resolve after a reopen has nothing
        to release (runs recorded before the patch still signal again). A router ended by
        hand is the release done, not a failure of the incident."""
        if not self._inc.dedup_router:
            return
        if self._s.resolutions > 1 and workflow.patched("release-router-once"):
            return
        try:
            await workflow.get_external_workflow_handle(self._inc.dedup_router).signal("release", self._s.id)
        except ApplicationError as gone:
            workflow.logger.info("dedup router %s already ended: %s", self._inc.dedup_router, gone)

    # --- state helpers -----------------------------------------------------------------------

    def _event(self, actor: str, action: str, details: str = "") -> None:
        append_event(self._s, Event(time=workflow.now(), actor=actor, action=action, details=details))

    def _set_targets(self) -> None:
        targets = self._policy.sla[self._s.priority]
        for name, target in (("response", targets.response), ("resolution", targets.resolution)):
            clock = self._s.sla.get(name) or SlaClock(name=name, target=target, calendar=targets.calendar)
            clock.target, clock.calendar = target, targets.calendar
            self._s.sla[name] = clock

    def _publish(self) -> None:
        now = workflow.now()
        for clock in self._s.sla.values():
            sla.refresh(clock, self._policy.calendar(clock.calendar), self._s.opened_at, self._s.pauses, now)
        values = {"ItsmState": self._s.state.value, "ItsmPriority": self._s.priority.value,
                  "ItsmGroup": self._s.assigned_group, "ItsmBreached": any(c.breached for c in self._s.sla.values()),
                  "ItsmDueAt": self._s.sla["resolution"].due}
        if workflow.patched("kpi-attributes"):
            values |= {k: v for k, v in self._kpi_values().items() if v is not None}
        changed = {k: v for k, v in values.items() if self._published.get(k, ...) != v}
        if changed:
            self._published.update(changed)
            workflow.upsert_search_attributes([
                SEARCH_ATTRIBUTES[k].value_set(v) if v is not None else SEARCH_ATTRIBUTES[k].value_unset()
                for k, v in changed.items()
            ])

    def _kpi_values(self) -> dict[str, object]:
        """Milestones for `itsm report kpis`: the response clock's met time (a reassignment
        does not clear it), the last resolution and the breached clocks. Only ever set, never
        unset (the test server keeps an unset value as a typed null that breaks describe):
        a reopened incident keeps its last resolution, and ItsmState says it is open again."""
        return {"ItsmAckedAt": self._s.sla["response"].met_at, "ItsmResolvedAt": self._s.resolved_at,
                "ItsmOutcome": self._s.resolution_code,
                "ItsmBreaches": sorted(name for name, clock in self._s.sla.items() if clock.breached) or None}

    def pending_actions(self) -> list[dict]:
        state, groups = self._s.state, [self._s.assigned_group, self._policy.manager_group]
        names = {S.NEW: ["ack", "resolve", "hold"], S.IN_PROGRESS: ["resolve", "hold"], S.ON_HOLD: ["resume",
                                                                                                    "resolve"],
                 S.RESOLVED: ["reopen"]}.get(state, [])
        if self._s.acknowledged_by is None and state in (S.IN_PROGRESS, S.ON_HOLD):
            names.insert(0, "ack")
        return [{"action": name, "groups": groups, "users": [self._s.opened_by] if name == "reopen" else []}
                for name in names]

    def _organisation(self):
        return self._org

    def _template_folder(self) -> str:
        return "incident"

    def _notify_context(self) -> dict:
        return {"incident": self._s.model_dump(mode="json", exclude={"events", "escalation", "pauses"})}

    @workflow.query
    def status(self) -> IncidentStatus:
        status = self._s.model_copy(deep=True)
        now = workflow.now()
        for clock in status.sla.values():
            sla.refresh(clock, self._policy.calendar(clock.calendar), status.opened_at, status.pauses, now)
        status.notices = [*self._s.notices, *self._notices]
        return status

    async def _settle(self) -> IncidentStatus:
        self._dirty = True
        await self.until_settled()
        return self.status()

    # --- authorization -----------------------------------------------------------------------

    def _roles(self, actor: str) -> set[str]:
        roles = set()
        if actor in self._org.members(self._s.assigned_group):
            roles.add("member")
        if actor in self._org.members(self._policy.manager_group):
            roles.add("manager")
        if actor in self._s.escalation.notified:
            roles.add("notified")
        if actor == self._s.opened_by:
            roles.add("opener")
        if actor in self._on_call_now():
            roles.add("oncall")
        return roles

    def _on_call_now(self) -> set[str]:
        policy = self._policy.escalation_for(self._s.assigned_group)
        schedules = [self._policy.schedule(s.schedule) for s in (policy.steps if policy else []) if s.schedule]
        return {user for s in schedules if s and (user := s.on_call(workflow.now()))}

    def _check(self, actor: str, action: str, states: set[IncidentState], roles: tuple[str, ...]) -> None:
        if self._org.person(actor) is None:
            _refuse(f"unknown user {actor!r}")
        if self._s.state not in states:
            refuse_state(f"{self._s.id} is {self._s.state.value}; cannot {action}")
        if roles and not self._roles(actor) & set(roles):
            _refuse(f"{actor} may not {action} {self._s.id} (not in {self._s.assigned_group}, on call, "
                    f"paged for it, or in {self._policy.manager_group})")
