"""The incident process: new → in_progress ⇄ on_hold → resolved → closed (reopen within
the policy window, auto-close after it). Escalation steps and SLA notices are durable
timers; responders act through validated updates."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.cmdb import CmdbActivities
    from activities.models import RecordIncidentInput, WebhookInput
    from activities.webhook import WebhookActivities
    from definitions.incident import NoticeTarget
    from workflows import escalation, sla
    from workflows.base import NOTIFY_OPTIONS, SEARCH_ATTRIBUTES, ProcessWorkflow, SettleUpdate, refuse_state
    from workflows.base import refuse as _refuse
    from workflows.incident_models import (
        AnnounceMajor,
        IncidentInput,
        IncidentState,
        IncidentStatus,
        LookUpCi,
        RecordResolution,
        ReleaseRouter,
    )
    from workflows.incident_problems import IncidentProblems
    from workflows.incident_updates import IncidentUpdates
    from workflows.models import Event, SlaClock, append_event
    from workflows.patches import patched
    from workflows.side_effects import (
        ESCALATION_LANE,
        SLA_LANE,
        Handlers,
        Notify,
        SideEffect,
        Webhook,
        run_in_lanes,
        run_in_order,
    )

@workflow.defn
class IncidentWorkflow(IncidentUpdates, IncidentProblems, SettleUpdate, ProcessWorkflow):
    @workflow.init
    def __init__(self, inc: IncidentInput) -> None:
        self._init_base()
        self._inc = inc
        self._policy, self._org = inc.policy, inc.organisation
        self._engine = escalation.Engine(inc.policy, inc.organisation)
        self._dirty = False
        self._actions: list[SideEffect] = []
        self._published: dict[str, object] = {}
        # Patches are decided here, in the first activation, before the verified-start local
        # activity: checked after it, a patch can fall into a later workflow task live than
        # on replay (a slow local activity) and the replay then misses its marker.
        self._concurrent = patched("concurrent-side-effects")
        self._problem_link = bool(inc.ci) and inc.carried is None and patched("problem-link")
        # The incident starts the problem it suggests (and tells the open one) itself.
        self._own_problems = self._problem_link and patched("problem-from-workflow")
        if inc.carried is not None:
            self._status = inc.carried.model_copy(update={"runs": inc.carried.runs + 1})
            return
        now = workflow.now()
        priority = inc.policy.priority(inc.impact, inc.urgency)
        self._status = IncidentStatus(
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
            self._event(inc.opened_by, "opened", f"{self._status.priority.value} on {inc.ci or '-'} for {inc.group}")
            self._status.escalation = escalation.start(self._policy.escalation_for(inc.group), now)
            if self._problem_link:
                self._actions.append(LookUpCi())
            else:
                self._actions.append(Notify("opened", "incident_opened", [inc.opened_by]))
        while True:
            self._dirty = False
            now = workflow.now()
            self._run_due(now)
            await self._drain()
            self._publish()
            if self._status.state == IncidentState.CLOSED:
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
        for action in self._engine.run_due(self._status.escalation, now):
            self._event("system", "escalation", action.text)
            if action.kind == "notify":
                self._actions.append(Notify(action.key, "escalation_page", action.users, {"step": action.step},
                                            ordered_in=ESCALATION_LANE))
            elif action.kind == "webhook" and action.url:
                self._actions.append(Webhook(action.key, action.url))
        for name, clock in self._status.sla.items():
            calendar = self._policy.calendar(clock.calendar)
            for percent, moment in sla.pending_notices(clock, calendar, self._status.opened_at, self._status.pauses,
                                                       [n.percent for n in self._policy.sla_notices]):
                if moment > now:
                    break
                clock.notices_sent.append(percent)
                clock.breached = clock.breached or percent >= 100
                word = "breached" if percent >= 100 else f"{percent}% used"
                self._event("system", "sla", f"{name} {word} (due {clock.due:%Y-%m-%d %H:%M}Z)" if clock.due else word)
                recipients = self._notice_recipients(percent)
                self._actions.append(Notify(f"sla.{name}.{percent}", "sla_notice", recipients,
                                            {"clock": name, "percent": percent}, ordered_in=SLA_LANE))
        status, resolved_at = self._status, self._status.resolved_at
        if status.state == IncidentState.RESOLVED and resolved_at and now >= resolved_at + self._policy.reopen_window:
            status.state, status.closed_at = IncidentState.CLOSED, resolved_at + self._policy.reopen_window
            self._event("system", "closed", f"no reopen within {self.spell(self._policy.reopen_window)}")

    def _notice_recipients(self, percent: int) -> list[str]:
        targets = next((n.to for n in self._policy.sla_notices if n.percent == percent), [])
        names = {
            NoticeTarget.ASSIGNEE: [self._status.acknowledged_by] if self._status.acknowledged_by else [],
            NoticeTarget.GROUP: [self._status.assigned_group],
            NoticeTarget.ESCALATION: [self._policy.manager_group],
        }
        return [name for target in targets for name in names[target]] or [self._status.assigned_group]

    def _next_wake(self) -> datetime | None:
        candidates = []
        esc = self._status.escalation
        if esc.active and esc.next_at:
            candidates.append(esc.next_at)
        for clock in self._status.sla.values():
            calendar = self._policy.calendar(clock.calendar)
            pending = sla.pending_notices(clock, calendar, self._status.opened_at, self._status.pauses,
                                          [n.percent for n in self._policy.sla_notices])
            if pending:
                candidates.append(pending[0][1])
        if self._status.state == IncidentState.RESOLVED and self._status.resolved_at:
            candidates.append(self._status.resolved_at + self._policy.reopen_window)
        return min(candidates) if candidates else None

    def _wake_summary(self, wake: datetime | None) -> str:
        return f"next escalation / SLA check at {wake:%Y-%m-%d %H:%M:%S}Z" if wake else "waiting"

    async def _drain(self) -> None:
        handlers: Handlers = {Notify: self.send, Webhook: self._do_webhook, AnnounceMajor: self._do_impacted,
                    RecordResolution: self._do_record, ReleaseRouter: self._do_release, LookUpCi: self._do_on_ci}
        await (run_in_lanes if self._concurrent else run_in_order)(self._actions, handlers)

    async def _do_webhook(self, webhook: Webhook) -> None:
        step, url = webhook.step, webhook.url
        payload = {"summary": f"{self._status.id} {self._status.priority.value}: {self._status.title}",
                   "incident": self._status.model_dump(mode="json", include={"id", "title", "priority", "state", "ci",
                                                                         "assigned_group"})}
        try:
            await workflow.execute_activity_method(WebhookActivities.post_webhook, WebhookInput(
                key=f"{self._status.id}:{step}", url=url, payload=payload), summary=f"webhook {url}", **NOTIFY_OPTIONS)
        except Exception as err:  # surfaced, never silently dropped
            self._notices.append(f"webhook {url} failed: {err}")

    async def _do_impacted(self, _: AnnounceMajor) -> None:
        services: list[str] = []
        if self._status.ci:
            services = await self.cmdb(
                CmdbActivities.impacted_services, self._status.ci,
                summary=f"services depending on {self._status.ci}")
        self._status.impacted_services = services
        await self.notify("major", "incident_major", [self._policy.major_incident_group],
                          {"services": services})

    async def _do_record(self, _: RecordResolution) -> None:
        if self._status.ci and self._status.resolved_at:
            await self.cmdb(CmdbActivities.record_incident, RecordIncidentInput(
                key=f"{self._status.id}:resolve.{self._status.resolutions}", incident_id=self._status.id,
                ci=self._status.ci,
                priority=self._status.priority.value, code=self._status.resolution_code or "",
                resolved_at=self._status.resolved_at,
            ), summary=f"record the incident on {self._status.ci} in the CMDB")

    async def _do_release(self, _: ReleaseRouter) -> None:
        """Tell the dedup router this incident no longer takes its events, once: the router
        ends when released with nothing else open, so a resolve after a reopen has nothing
        to release (runs recorded before the patch still signal again). A router ended by
        hand is the release done, not a failure of the incident."""
        if not self._inc.dedup_router:
            return
        if self._status.resolutions > 1 and patched("release-router-once"):
            return
        try:
            await workflow.get_external_workflow_handle(self._inc.dedup_router).signal("release", self._status.id)
        except ApplicationError as gone:
            workflow.logger.info("dedup router %s already ended: %s", self._inc.dedup_router, gone)

    # --- state helpers -----------------------------------------------------------------------

    def _event(self, actor: str, action: str, details: str = "") -> None:
        append_event(self._status, Event(time=workflow.now(), actor=actor, action=action, details=details))

    def _set_targets(self) -> None:
        targets = self._policy.sla[self._status.priority]
        for name, target in (("response", targets.response), ("resolution", targets.resolution)):
            clock = self._status.sla.get(name) or SlaClock(name=name, target=target, calendar=targets.calendar)
            clock.target, clock.calendar = target, targets.calendar
            self._status.sla[name] = clock

    def _publish(self) -> None:
        now = workflow.now()
        for clock in self._status.sla.values():
            sla.refresh(clock, self._policy.calendar(clock.calendar), self._status.opened_at, self._status.pauses, now)
        values: dict[str, object] = {"ItsmState": self._status.state.value, "ItsmPriority": self._status.priority.value,
                  "ItsmGroup": self._status.assigned_group,
                  "ItsmBreached": any(c.breached for c in self._status.sla.values()),
                  "ItsmDueAt": self._status.sla["resolution"].due}
        if patched("kpi-attributes"):
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
        return {"ItsmAckedAt": self._status.sla["response"].met_at, "ItsmResolvedAt": self._status.resolved_at,
                "ItsmOutcome": self._status.resolution_code,
                "ItsmBreaches": sorted(name for name, clock in self._status.sla.items() if clock.breached) or None}

    def pending_actions(self) -> list[dict]:
        state, groups = self._status.state, [self._status.assigned_group, self._policy.manager_group]
        names = {IncidentState.NEW: ["ack", "resolve", "hold"], IncidentState.IN_PROGRESS: ["resolve", "hold"],
                 IncidentState.ON_HOLD: ["resume",
                                                                                                    "resolve"],
                 IncidentState.RESOLVED: ["reopen"]}.get(state, [])
        if self._status.acknowledged_by is None and state in (IncidentState.IN_PROGRESS, IncidentState.ON_HOLD):
            names.insert(0, "ack")
        return [{"action": name, "groups": groups, "users": [self._status.opened_by] if name == "reopen" else []}
                for name in names]

    def _organisation(self):
        return self._org

    def _template_folder(self) -> str:
        return "incident"

    def _notify_context(self) -> dict:
        return {"incident": self._status.model_dump(mode="json", exclude={"events", "escalation", "pauses"})}

    @workflow.query
    def status(self) -> IncidentStatus:
        # A shallow copy: what this changes is copied (the clocks) or replaced (the notices); the
        # rest is serialized before the run moves on (a query's or update's result, the memo).
        now, clocks = workflow.now(), {}
        for name, kept in self._status.sla.items():
            clock = clocks[name] = kept.model_copy()
            sla.refresh(clock, self._policy.calendar(clock.calendar), self._status.opened_at, self._status.pauses,
                        now)
        return self._status.model_copy(update={"sla": clocks, "notices": [*self._status.notices, *self._notices]})

    async def _settle(self) -> IncidentStatus:
        self._dirty = True
        await self.until_settled()
        return self.status()

    # --- authorization -----------------------------------------------------------------------

    def _roles(self, actor: str) -> set[str]:
        roles = set()
        if actor in self._org.members(self._status.assigned_group):
            roles.add("member")
        if actor in self._org.members(self._policy.manager_group):
            roles.add("manager")
        if actor in self._status.escalation.notified:
            roles.add("notified")
        if actor == self._status.opened_by:
            roles.add("opener")
        if actor in self._on_call_now():
            roles.add("oncall")
        return roles

    def _on_call_now(self) -> set[str]:
        policy = self._policy.escalation_for(self._status.assigned_group)
        schedules = [self._policy.schedule(s.schedule) for s in (policy.steps if policy else []) if s.schedule]
        return {user for s in schedules if s and (user := s.on_call(workflow.now()))}

    def _check(self, actor: str, action: str, states: set[IncidentState], roles: tuple[str, ...]) -> None:
        if self._org.person(actor) is None:
            _refuse(f"unknown user {actor!r}")
        if self._status.state not in states:
            refuse_state(f"{self._status.id} is {self._status.state.value}; cannot {action}")
        if roles and not self._roles(actor) & set(roles):
            _refuse(f"{actor} may not {action} {self._status.id} (not in {self._status.assigned_group}, on call, "
                    f"paged for it, or in {self._policy.manager_group})")
