"""A requested item (RITM-…): approvals through the shared engine, then the task DAG
(automated tasks fall back to a manual task when retries are exhausted), optional expiry,
and compensation of completed automated tasks in reverse order on cancel or failure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.fulfillment import FulfillmentActivities
    from activities.models import ActionInput
    from definitions.catalog import FulfillmentTask, TaskKind
    from itsmflow.errors import UNKNOWN_ACTION
    from workflows import sla
    from workflows.approval_updates import ApprovalContext, ApprovalUpdates
    from workflows.approvals import ApprovalState, Decision, run_chain
    from workflows.base import ProcessWorkflow
    from workflows.models import Event, SlaClock, append_event
    from workflows.patches import patched
    from workflows.request_models import (
        FINAL,
        ItemEvent,
        ItemInput,
        ItemStatus,
        ManualTaskInput,
        RequestState,
        TaskState,
        TaskStatus,
    )
    from workflows.search_attributes import typed
    from workflows.task import ManualTaskWorkflow

ACTION_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3,
                           non_retryable_error_types=[UNKNOWN_ACTION])


@workflow.defn
class ItemWorkflow(ApprovalUpdates, ProcessWorkflow):
    @workflow.init
    def __init__(self, item: ItemInput) -> None:
        self._init_base()
        self._in, self._item, self._org = item, item.plan.item, item.organisation
        chain = self._item.approval if self._item.needs_approval(item.plan.variables) else None
        self._approvals = ApprovalState.from_chain(chain)
        self._status = ItemStatus(
            id=item.id, request_id=item.request_id, item=self._item.name, title=self._item.title,
            variables=item.plan.variables, requested_for=item.requested_for,
            tasks=[TaskStatus(name=t.name, kind=t.kind.value, title=t.title, group=t.group) for t in self._item.tasks],
            sla=SlaClock(name="fulfillment", target=self._item.sla, calendar=item.calendar.name),
        )
        self._opened = workflow.now()
        self._cancel: str | None = None
        self._undo: list[tuple[str, str]] = []
        self._children: dict[str, workflow.ChildWorkflowHandle] = {}

    @workflow.run
    async def run(self, item: ItemInput) -> ItemStatus:
        self.publish_status()
        self._event(item.requested_by, "requested", ", ".join(f"{k}={v}" for k, v in item.plan.variables.items()))
        # Items started before the SLA watcher existed replay without it (tests/histories).
        watcher = asyncio.create_task(self._watch_sla()) if patched("fulfillment-sla-watch") else None
        try:
            return await self._run(item)
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _watch_sla(self) -> None:
        """One breach notice if the item is not done within its fulfillment SLA."""
        due = self._in.calendar.add_business_time(self._opened, self._item.sla)
        open_states = (RequestState.REQUESTED, RequestState.APPROVAL, RequestState.FULFILLING)
        try:
            await workflow.wait_condition(lambda: self._status.state not in open_states, timeout=due - workflow.now(),
                                          timeout_summary=f"fulfillment SLA due {due:%Y-%m-%d %H:%M}Z")
        except asyncio.TimeoutError:
            assert self._status.sla is not None  # an item's clock is set when it opens
            self._status.sla.breached = True
            self.publish_breaches(["fulfillment"])
            self._event("system", "sla", f"fulfillment SLA breached (due {due:%Y-%m-%d %H:%M}Z)")
            groups = sorted({t.group for t in self._item.tasks if t.group}) or [self._in.requested_by]
            await self.notify("sla.breached", "sla_breached", groups, {"due": due.isoformat()})

    async def _run(self, item: ItemInput) -> ItemStatus:
        if self._approvals.levels:
            await self._enter(RequestState.APPROVAL)
            # Items opened before segregation of duties covered the beneficiary replay with the
            # old eligible count (a level of only the beneficiary kept waiting).
            beneficiary = item.requested_for if patched("sod-beneficiary") else None
            assert self._item.approval is not None  # it has approval levels
            outcome = await run_chain(self._approvals, self._item.approval, self._org, item.requested_by, self,
                                      beneficiary=beneficiary)
            if outcome != Decision.APPROVED and self._cancel is None:
                self._status.reason = self._approvals.reason
                await self._enter(RequestState.REJECTED)
        if self._status.state not in (RequestState.REJECTED,) and self._cancel is None:
            await self._enter(RequestState.FULFILLING)
            if await self._run_plan():
                await self._fulfilled()
            elif self._cancel is None:
                await self._compensate("a task failed")
                await self._enter(RequestState.FAILED)
        if self._cancel is not None and self._status.state not in (RequestState.REJECTED, RequestState.FAILED):
            await self._compensate(self._cancel)
            self._status.reason = self._cancel
            await self._enter(RequestState.CANCELED)
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _fulfilled(self) -> None:
        await self._enter(RequestState.FULFILLED)
        await self.notify("fulfilled", "item_fulfilled", [self._in.requested_by])
        if not self._item.expiry_variable:
            return
        days = int(self._in.plan.variables[self._item.expiry_variable])
        self._status.expires_at = self._opened + timedelta(days=days)
        if not await self.wait(lambda: False, self._status.expires_at - workflow.now(),
                               f"access expires after {days} days"):
            await self._compensate(f"expired after {days} days")
            self._event("system", "expired", "access revoked")

    def _stop_reason(self) -> str | None:
        """Why the plan's manual tasks are to stop (the item's cancel, a failed task), if they are."""
        if self._cancel is not None:
            return self._cancel
        return "a sibling task failed" if any(t.state == TaskState.FAILED for t in self._status.tasks) else None

    async def _run_plan(self) -> bool:
        pending = list(self._item.tasks)
        running: dict[str, asyncio.Task] = {}
        while True:
            if (stopping := self._stop_reason()) is not None:
                for handle in self._children.values():
                    await handle.signal(ManualTaskWorkflow.cancel, stopping)
                if running:
                    await asyncio.gather(*running.values(), return_exceptions=True)
                return False
            for task in [t for t in pending if all(self._task(d).state == TaskState.DONE for d in t.after)]:
                pending.remove(task)
                self._task(task.name).state = TaskState.RUNNING
                running[task.name] = asyncio.create_task(self._run_task(task))
            if not pending and not running:
                return True
            finished = lambda: any(r.done() for r in running.values())  # noqa: E731
            busy = lambda: any(t.state == TaskState.RUNNING for t in self._status.tasks)  # noqa: E731
            if busy():  # automation under way: not a stable state, so updates keep waiting
                # Used within this iteration only: the loop variables are the ones meant.
                await workflow.wait_condition(lambda: finished() or not busy() or self._cancel is not None)  # noqa: B023
            else:
                await self.wait(finished, None, "people to do their tasks")
            for name in [n for n, r in running.items() if r.done()]:
                running.pop(name).result()

    def _task(self, name: str) -> TaskStatus:
        return next(t for t in self._status.tasks if t.name == name)

    async def _run_task(self, task: FulfillmentTask) -> None:
        kinds = {TaskKind.AUTOMATED: self._automated, TaskKind.MANUAL: self._manual, TaskKind.NOTIFY: self._notify}
        await kinds[task.kind](task, self._task(task.name))
        self._task(task.name).finished_at = workflow.now()

    async def _automated(self, task: FulfillmentTask, status: TaskStatus) -> None:
        key = f"{self._status.id}:{task.name}"
        assert task.action is not None  # an automated task has an action (definitions validate)
        try:
            await workflow.execute_activity_method(
                FulfillmentActivities.run_action, ActionInput(key=key, action=task.action, item_id=self._status.id,
                                          requested_for=self._in.requested_for, variables=self._in.plan.variables),
                summary=f"{task.title} ({task.action})",
                start_to_close_timeout=timedelta(seconds=30), retry_policy=ACTION_RETRY)
        except ActivityError as err:
            cause = getattr(err.cause, "message", str(err))
            self._event("system", "fallback", f"{task.name}: automation failed after retries ({cause}); "
                                              f"manual task for {task.group}")
            status.fallback = True
            await self._manual(task, status)
            return
        self._undo.append((task.name, key))
        status.state = TaskState.DONE
        self._event("system", "done", task.title)

    async def _manual(self, task: FulfillmentTask, status: TaskStatus) -> None:
        task_id = self._new_id("TASK")
        status.task_id = task_id
        assert task.group is not None  # a manual task (or an automated one's fallback) has a group
        handle = await workflow.start_child_workflow(
            ManualTaskWorkflow.run,
            ManualTaskInput(id=task_id, item_id=self._status.id, request_id=self._status.request_id, title=task.title,
                            group=task.group, requested_for=self._in.requested_for, organisation=self._org,
                            details=", ".join(f"{k}={v}" for k, v in self._in.plan.variables.items())),
            id=task_id, parent_close_policy=ParentClosePolicy.TERMINATE,
            memo={"title": task.title}, search_attributes=typed({
                "ItsmProcess": "task", "ItsmState": "open", "ItsmGroup": task.group, "ItsmParent": self._status.id,
                "ItsmRequester": self._in.requested_by}),
        )
        self._children[task.name] = handle
        if (stopping := self._stop_reason()) is not None and patched("item-stop-starting-task"):
            # Stopped while this task was starting: the plan's loop told only the tasks started
            # by then, and would wait for this one for good.
            await handle.signal(ManualTaskWorkflow.cancel, stopping)
        status.state = TaskState.OPEN
        self._event("system", "task", f"{task_id} for {task.group}: {task.title}")
        result = await handle
        self._children.pop(task.name, None)
        status.state, status.by, status.notes = result.state, result.by, result.notes
        self._event(result.by or "system", result.state.value, f"{task_id}: {task.title}"
                    + (f" ({result.notes})" if result.notes else ""))

    async def _notify(self, task: FulfillmentTask, status: TaskStatus) -> None:
        recipients = [u for u in (self._in.requested_by, self._in.requested_for) if self._org.person(u)]
        await self.notify(f"task.{task.name}", "welcome", recipients or [g for g in [task.group] if g])
        status.state = TaskState.DONE

    async def _compensate(self, reason: str) -> None:
        """Undo completed automated tasks, last first, recording each."""
        while self._undo:
            name, key = self._undo.pop()
            await self.cmdb(FulfillmentActivities.undo_action, key, summary=f"undo {name}")
            self._task(name).state = TaskState.COMPENSATED
            self._event("system", "compensated", f"{name} ({reason})")

    def _new_id(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        suffix = "".join(workflow.random().choice(alphabet) for _ in range(4))
        return f"{prefix}-{workflow.now():%Y%m%d}-{suffix}"

    def _event(self, actor: str, action: str, details: str = "") -> None:
        append_event(self._status, Event(time=workflow.now(), actor=actor, action=action, details=details))

    async def _enter(self, state: RequestState) -> None:
        self._status.state = state
        self.set_search_state(state.value)
        if state in FINAL:
            self.publish_outcome(state.value)
        self._event("system", "state", state.value)
        await workflow.get_external_workflow_handle(self._status.request_id).signal(
            "item_changed", ItemEvent(item_id=self._status.id, state=state, reason=self._status.reason))

    def interrupted(self) -> bool:
        return self._cancel is not None

    def pending_actions(self) -> list[dict]:
        level = self._approvals.current_level()
        if self._status.state != RequestState.APPROVAL or level is None:
            return []
        return [{"action": name, "groups": [level.group], "users": []} for name in ("approve", "reject")]

    def _organisation(self):
        return self._org

    def _template_folder(self) -> str:
        return "request"

    def _notify_context(self) -> dict:
        return {"item": self._status.model_dump(mode="json", include={"id", "request_id", "item", "title", "state",
                                                                 "variables", "requested_for", "reason"})}

    @workflow.query
    def status(self) -> ItemStatus:
        status = self._status.model_copy(deep=True)
        status.approvals = [lvl.model_copy(deep=True) for lvl in self._approvals.levels]
        final = self._status.state not in (RequestState.REQUESTED, RequestState.APPROVAL, RequestState.FULFILLING)
        done_at = max((e.time for e in self._status.events if e.action == "state"), default=None) if final else None
        assert status.sla is not None
        status.sla.met_at = done_at
        sla.refresh(status.sla, self._in.calendar, self._opened, [], workflow.now())
        return status

    @workflow.signal
    def cancel(self, reason: str) -> None:
        if self._cancel is None and self._status.state in (RequestState.REQUESTED, RequestState.APPROVAL,
                                                           RequestState.FULFILLING, RequestState.FULFILLED):
            self._cancel = reason or "canceled"

    def _approval_context(self) -> ApprovalContext:
        state = self._status.state
        not_awaiting = (None if state == RequestState.APPROVAL
                        else f"{self._status.id} is {state.value}, not awaiting approval")
        return ApprovalContext(self._org, self._in.requested_by, self._in.requested_for, not_awaiting)
