"""A request (REQ-…): one item, or a bundle of items with a DAG, each a child
ItemWorkflow (RITM-…). Item states roll up to the request; cancel reaches every item,
which compensates its own completed work."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.base import ProcessWorkflow, refuse, refuse_state
    from workflows.item import ItemWorkflow
    from workflows.models import Event, append_event
    from workflows.request_models import (
        FINAL,
        CancelRequestInput,
        ItemEvent,
        ItemInput,
        ItemRef,
        RequestInput,
        RequestState,
        RequestStatus,
    )
    from workflows.search_attributes import typed



def roll_up(items: list[ItemRef], canceled: bool) -> RequestState:
    states = {ref.state for ref in items}
    if states & {RequestState.REQUESTED, RequestState.APPROVAL, RequestState.FULFILLING}:
        return RequestState.APPROVAL if RequestState.APPROVAL in states else RequestState.FULFILLING
    for final in (RequestState.CANCELED if canceled else None, RequestState.FAILED, RequestState.REJECTED,
                  RequestState.CANCELED):
        if final in states:
            return final
    return RequestState.FULFILLED


@workflow.defn
class RequestWorkflow(ProcessWorkflow):
    @workflow.init
    def __init__(self, request: RequestInput) -> None:
        self._init_base()
        self._in = request
        self._status = RequestStatus(
            id=request.id, item=request.item, title=request.title, requested_by=request.requested_by,
            requested_for=request.requested_for, variables=request.variables,
            items=[ItemRef(id=p.id, item=p.item.name, after=p.after) for p in request.plans],
        )
        self._started: set[str] = set()
        self._handles: list = []
        self._reported: set[str] = set()
        self._cancel: CancelRequestInput | None = None
        self._dirty = False

    @workflow.run
    async def run(self, request: RequestInput) -> RequestStatus:
        self.publish_status()
        self._event(request.requested_by, "submitted", f"{request.item} for {request.requested_for}")
        while True:
            self._dirty = False
            await self._advance()
            state = roll_up(self._status.items, self._cancel is not None)
            if state != self._status.state:
                self._status.state = state
                self.set_search_state(state.value)
                if state in FINAL:
                    self.publish_outcome(state.value)
                self._event("system", "state", state.value)
            if all(ref.state in FINAL for ref in self._status.items):
                break
            await self.wait(lambda: self._dirty, None, "items to progress")
        # The state is final; items with a lifetime of their own (access that expires) are
        # still followed, so the request closes when the last of them does.
        self.finish()
        await asyncio.gather(*self._handles, return_exceptions=True)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _advance(self) -> None:
        """Start items whose predecessors are fulfilled; skip those whose never will be;
        pass a cancel on to every running item."""
        refs = {ref.id: ref for ref in self._status.items}
        for ref in self._status.items:
            if ref.id in self._started or ref.state in FINAL:
                continue
            blocked = [refs[d] for d in ref.after if refs[d].state in FINAL - {RequestState.FULFILLED}]
            if self._cancel is not None or blocked:
                ref.state = RequestState.CANCELED
                ref.reason = ("request canceled" if self._cancel
                              else f"skipped: {blocked[0].item} {blocked[0].state.value}")
                self._event("system", "skipped", f"{ref.id} {ref.item}: {ref.reason}")
            elif all(refs[d].state == RequestState.FULFILLED for d in ref.after):
                await self._start(ref)
        if self._cancel is not None:
            for ref in self._status.items:
                if ref.id in self._started and ref.state not in FINAL:
                    reason = self._cancel.reason or f"canceled by {self._cancel.actor}"
                    await workflow.get_external_workflow_handle(ref.id).signal(ItemWorkflow.cancel, reason)

    async def _start(self, ref: ItemRef) -> None:
        plan = next(p for p in self._in.plans if p.id == ref.id)
        self._started.add(ref.id)
        handle = await workflow.start_child_workflow(
            ItemWorkflow.run,
            ItemInput(id=ref.id, request_id=self._status.id, plan=plan, requested_by=self._in.requested_by,
                      requested_for=self._in.requested_for, organisation=self._in.organisation,
                      calendar=self._in.calendar),
            id=ref.id, parent_close_policy=ParentClosePolicy.ABANDON, memo={"title": plan.item.title},
            search_attributes=typed({"ItsmProcess": "item", "ItsmState": "requested", "ItsmType": plan.item.name,
                                     "ItsmParent": self._status.id, "ItsmRequester": self._in.requested_by}),
        )
        self._handles.append(handle)
        self._event("system", "item", f"{ref.id} {ref.item} started")

    def _event(self, actor: str, action: str, details: str = "") -> None:
        append_event(self._status, Event(time=workflow.now(), actor=actor, action=action, details=details))

    def pending_actions(self) -> list[dict]:
        if self._status.state in FINAL or self._cancel is not None:
            return []
        return [{"action": "cancel", "groups": [], "users": [self._status.requested_by]}]

    def _organisation(self):
        return self._in.organisation

    def _template_folder(self) -> str:
        return "request"

    def _notify_context(self) -> dict:
        return {}

    @workflow.signal
    def item_changed(self, event: ItemEvent) -> None:
        ref = next((r for r in self._status.items if r.id == event.item_id), None)
        if ref is not None:
            ref.state, ref.reason = event.state, event.reason
            self._reported.add(ref.id)
            self._dirty = True

    @workflow.query
    def status(self) -> RequestStatus:
        return self._status

    # A run that fails at start (an unverified actor) ends with this update still waiting; its
    # caller gets the run's failure, so there is nothing to warn about.
    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def settle(self) -> RequestStatus:
        """Returns once every started item has reported and the request waits."""
        await workflow.wait_condition(lambda: self.settled() and self._started <= self._reported)
        return self._status

    @workflow.update
    async def cancel(self, cancel: CancelRequestInput) -> RequestStatus:
        self._validate_cancel(cancel)
        self._cancel = cancel
        self._event(cancel.actor, "cancel", cancel.reason)
        self._dirty = True
        await workflow.wait_condition(lambda: self.settled() and all(
            r.state in FINAL for r in self._status.items if r.id in self._started))
        return self._status

    @cancel.validator
    def _validate_cancel(self, cancel: CancelRequestInput) -> None:
        org = self._in.organisation
        if org.person(cancel.actor) is None:
            refuse(f"unknown user {cancel.actor!r}")
        if self._status.state in FINAL or self._cancel is not None:
            refuse_state(f"{self._status.id} is {self._status.state.value} and can no longer be canceled")
        if cancel.actor != self._in.requested_by and cancel.actor not in org.members(self._in.cancel_group):
            refuse(f"only the requester or {self._in.cancel_group} may cancel {self._status.id}")
