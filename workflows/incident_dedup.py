"""Deduplication of incidents by key: one small router workflow per dedup key, reached
with update-with-start. While it holds an open incident, another event with the key is
attached to it (count + last seen); otherwise it opens a new incident as an abandoned
child. The incident releases the router when it resolves."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel
from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.incident import IncidentWorkflow
    from workflows.incident_models import AttachInput, IncidentInput
    from workflows.incident_models import start_attributes as incident_attributes
    from workflows.patches import patched
    from workflows.search_attributes import typed


class DedupCarried(BaseModel):
    """What a router hands its continue-as-new: the incident it holds and its event count."""

    current: str | None = None
    count: int = 0
    opened: bool = False


class DedupInput(BaseModel):
    key: str
    carried: DedupCarried | None = None


# An alert storm reaches one router: it continues as new before its history grows large.
CONTINUE_AS_NEW_AFTER = 2000


class OpenRequest(BaseModel):
    incident: IncidentInput


class OpenResult(BaseModel):
    id: str
    attached: bool
    count: int


def router_id(key: str) -> str:
    return f"INC-DEDUP-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


@workflow.defn
class IncidentDedupWorkflow:
    @workflow.init
    def __init__(self, request: DedupInput) -> None:
        carried = request.carried or DedupCarried()
        self._current: str | None = carried.current
        self._count = carried.count
        self._opened = carried.opened

    @workflow.run
    async def run(self, request: DedupInput) -> str | None:
        # Routers recorded before they could continue as new replay without it.
        may_continue = patched("router-continue-as-new")
        # An opener the validator refused (e.g. ITSM_AUTH) leaves nothing to route: end.
        await workflow.wait_condition(lambda: self._opened or workflow.all_handlers_finished())
        while self._opened:
            await workflow.wait_condition(
                lambda: (self._opened and self._current is None) or (may_continue and self._long()))
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._current is not None and may_continue and self._long():
                workflow.continue_as_new(DedupInput(key=request.key, carried=DedupCarried(
                    current=self._current, count=self._count, opened=self._opened)))
            if self._current is None:  # no event opened a new incident meanwhile
                return None
        return None

    def _long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > CONTINUE_AS_NEW_AFTER

    @workflow.update
    async def attach_or_open(self, request: OpenRequest) -> OpenResult:
        incident = request.incident
        if self._current is not None:
            current = self._current
            try:
                await workflow.get_external_workflow_handle(current).signal(
                    IncidentWorkflow.attach, AttachInput(seen_at=workflow.now(), title=incident.title))
                self._count += 1
                return OpenResult(id=current, attached=True, count=self._count)
            except Exception:
                if self._current == current:
                    self._current = None
        self._current, self._opened, self._count = incident.id, True, 1
        await workflow.start_child_workflow(
            IncidentWorkflow.run, incident, id=incident.id, task_queue=workflow.info().task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON, memo={"title": incident.title},
            search_attributes=typed(incident_attributes(incident)),
        )
        return OpenResult(id=incident.id, attached=False, count=1)

    @attach_or_open.validator
    def _validate_attach_or_open(self, request: OpenRequest) -> None:
        """Nothing to refuse here: the validator is where ITSM_AUTH verifies the opener."""

    @workflow.signal
    def release(self, incident_id: str) -> None:
        if incident_id == self._current:
            self._current = None
