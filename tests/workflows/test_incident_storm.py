"""No sequence of valid calls may wedge a run (issue 13): an alert storm and a stream of long
notes through one incident leave it bounded, and it still escalates at its exact time, is
acknowledged and resolves. `make chaos` runs the long version (10,000 attaches, 1,000 notes)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from definitions.text import MAX_TEXT
from tests.workflows.helpers import running_worker
from tests.workflows.incident_helpers import MINUTE, incidents, page, page_times, policy, skip_to  # noqa: F401
from workflows.incident_dedup import DedupInput, OpenRequest, OpenResult, router_id
from workflows.incident_models import IncidentResolveInput, NoteInput
from workflows.models import TIMELINE_HEAD, TIMELINE_TAIL, ActorInput


def close_to(actual, expected, slack=2.0) -> bool:
    return abs((actual - expected).total_seconds()) <= slack


@pytest.mark.parametrize("attaches, notes", [(1200, 200), pytest.param(10_000, 1000, marks=pytest.mark.slow)])
async def test_an_alert_storm_and_long_notes_do_not_wedge_an_incident(env, task_queue, db, channel, incidents,
                                                                      attaches, notes):
    key = "mon:lb-01:storm"
    storm_policy = policy(page("dave", delay=30 * MINUTE), page("frank"))
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(storm_policy, dedup_key=key)
        opened = await incidents.show(status.id)  # the first event opened it; every later one is attached

        async def attach(number: int) -> OpenResult:
            # A raw client: the CLI refuses a 2 KB title, an integration might send one.
            from itsmflow.app.incident_submit import build_incident

            raw = build_incident(title="lb-01 down", ci="lb-01", impact=1, urgency=1, opened_by="alice",
                                 dedup_key=key).model_copy(update={
                                     "policy": storm_policy, "dedup_router": router_id(key),
                                     "title": f"alert {number} " + "x" * 2048})
            operation = WithStartWorkflowOperation(
                "IncidentDedupWorkflow", DedupInput(key=key), id=router_id(key), task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
            return await env.client.execute_update_with_start_workflow(
                "attach_or_open", OpenRequest(incident=raw), start_workflow_operation=operation,
                result_type=OpenResult)

        for start in range(1, attaches, 50):
            results = await asyncio.gather(*(attach(n) for n in range(start, min(start + 50, attaches))))
            assert {r.id for r in results} == {opened.id}
        text = "n" * (MAX_TEXT - 16)
        for start in range(0, notes, 20):
            await asyncio.gather(*(incidents.act(opened.id, "note", NoteInput(actor="dave", text=f"{n} {text}"))
                                   for n in range(start, min(start + 20, notes))))
        stormed = await incidents.show(opened.id)
        assert stormed.dedup_count == attaches and len(stormed.recent_events) == 5
        assert all(len(e.title) <= 200 for e in stormed.recent_events)
        assert len(stormed.events) <= TIMELINE_HEAD + TIMELINE_TAIL and stormed.events_omitted > 0
        assert all(len(e.details) <= 500 for e in stormed.events)

        await skip_to(env, opened.opened_at + 30 * MINUTE + MINUTE)
        paged = await incidents.show(opened.id)
        frank = [offset for offset, details in page_times(paged) if "frank" in details]
        assert len(frank) == 1 and close_to(frank[0], 30 * MINUTE), page_times(paged)
        acked = await incidents.act(opened.id, "acknowledge", ActorInput(actor="dave"))
        assert acked.state.value == "in_progress"
        resolved = await incidents.act(opened.id, "resolve", IncidentResolveInput(actor="dave", code="fixed"))
        assert resolved.state.value == "resolved"
    # A task that met a new signal while it completed is retried at once (UNHANDLED_COMMAND); no other fails.
    failures = [e.workflow_task_failed_event_attributes for e in await _all_events(env, opened.id)
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    unhandled = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
    assert [f.failure.message for f in failures if f.cause != unhandled] == []
    assert await env.client.get_workflow_handle(router_id(key)).result() is None  # released at resolve
    assert len(await _runs(env, router_id(key))) > 1  # the router continued as new through the storm


async def _runs(env, workflow_id: str) -> list:
    from itsmflow.app.audit import run_histories

    return await run_histories(env.client, workflow_id)


async def _all_events(env, workflow_id: str) -> list:
    return [event for history in await _runs(env, workflow_id) for event in history.events]


async def test_a_note_over_32_kb_is_refused_by_the_worker_before_history(env, task_queue, db, channel, incidents):
    """A raw client skips the CLI's check: the update validator refuses it the same way."""
    from tests.workflows.helpers import accepted_updates, refusal

    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open()
        long = NoteInput.model_construct(actor="dave", text="n" * (MAX_TEXT + 1))
        assert await refusal(env.client.get_workflow_handle(status.id).execute_update("note", long)) == (
            "text is 32,769 bytes; at most 32,768 (32 KB)")
        assert ("note", "dave") not in await accepted_updates(env, status.id)
